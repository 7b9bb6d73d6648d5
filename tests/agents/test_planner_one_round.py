"""One round of questions is enough: everything the planner can already know it needs is asked at once.

"Returns by courier last month" over rows with two dates: what 'returns' are and which date 'last month' is
by are both asked in the first round, so a user who answers once gets an endpoint.
"""

from __future__ import annotations

from agents.planner import plan_requirement
from agents.planner.planner import requirement_questions
from tests.agents.planner_checks import design_problems

from .planner_schemas import schema_of

PARCELS = schema_of(
    {
        "parcels": {
            "columns": {
                "parcel_id": "integer",
                "courier": "string",
                "weight_kg": "number",
                "state": "string",
                "created_at": "date-time",
                "shipped_at": "date-time",
            },
            "pk": ["parcel_id"],
            "values": {"courier": ["swift", "hermes"], "state": ["delivered", "returned", "lost"]},
        },
        "pickups": {
            "columns": {"pickup_id": "integer", "courier": "string", "picked_up_on": "date"},
            "pk": ["pickup_id"],
        },
    }
)
REQUIREMENT = "Returns by courier last month"


def _answer(questions, picks: dict[str, str]) -> list[dict]:
    """The glossary the answers define: for each question, the choice whose label is given."""
    glossary = []
    for q in questions:
        choice = next(c for c in q.choices if c.label == picks[q.id])
        glossary.append(dict(choice.mapping))
    return glossary


def test_a_term_and_the_date_of_its_window_are_asked_in_the_same_round():
    questions = requirement_questions(requirement=REQUIREMENT, schema=PARCELS)
    by_id = {q.id: q for q in questions}
    assert set(by_id) == {"term_1", "window_date_1"}
    assert "parcels.state = 'returned'" in [c.label for c in by_id["term_1"].choices]
    assert [c.label for c in by_id["window_date_1"].choices] == ["parcels.created_at", "parcels.shipped_at"]
    glossary = _answer(questions, {"term_1": "parcels.state = 'returned'", "window_date_1": "parcels.shipped_at"})
    assert requirement_questions(requirement=REQUIREMENT, schema=PARCELS, glossary=glossary) == []
    plan = plan_requirement(requirement=REQUIREMENT, schema=PARCELS, glossary=glossary)
    assert design_problems(REQUIREMENT, plan.interpretation, schema=PARCELS) == []
    (window,) = plan.interpretation.windows
    assert window.column.column == "shipped_at"
    (condition,) = plan.interpretation.filters
    assert condition.column.column == "state" and plan.defaults().get(condition.param, condition.value) == "returned"


def test_no_date_is_asked_when_the_rows_a_term_may_mean_have_one_clear_date():
    questions = requirement_questions(requirement="Pickups by courier last month", schema=PARCELS)
    assert all(not q.id.startswith("window_date") for q in questions)


def test_no_date_is_asked_without_a_window():
    questions = requirement_questions(requirement="Returns by courier", schema=PARCELS)
    assert [q.id for q in questions] == ["term_1"]
