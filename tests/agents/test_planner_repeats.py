"""'Twice', 'more than once', 'at least three times': a count of the rows the verb names, per entity, with HAVING.

The schema is one the planner was not written against; every design must pass the platform's own checks,
and a design missing its HAVING condition is caught by them.
"""

from __future__ import annotations

import pytest

from agents.planner import PlanningError, plan_requirement
from endpoints.interpretation import interpretation_parse
from tests.agents.planner_checks import design_problems

from .planner_schemas import schema_of

HOTEL = schema_of(
    {
        "guests": {
            "columns": {"guest_id": "integer", "first_name": "string", "last_name": "string"},
            "pk": ["guest_id"],
        },
        "rooms": {"columns": {"room_id": "integer", "label": "string"}, "pk": ["room_id"]},
        "bookings": {
            "columns": {"booking_id": "integer", "guest_id": "integer", "room_id": "integer", "booked_at": "date"},
            "pk": ["booking_id"],
            "fks": {"guest_id": "guests.guest_id", "room_id": "rooms.room_id"},
        },
        "charges": {
            "columns": {"charge_id": "integer", "booking_id": "integer", "state": "string", "amount": "number"},
            "pk": ["charge_id"],
            "fks": {"booking_id": "bookings.booking_id"},
            "values": {"state": ["settled", "declined", "reversed"]},
        },
    }
)


def _plan(requirement: str, glossary: list[dict] | None = None):
    plan = plan_requirement(requirement=requirement, schema=HOTEL, glossary=glossary)
    assert plan.interpretation is not None
    return plan


def _problems(requirement: str, interp) -> list[str]:
    return design_problems(requirement, interp, schema=HOTEL)


@pytest.mark.parametrize(
    ("requirement", "op", "value", "phrase"),
    [
        ("Guests who booked more than once", "gt", 1, "booked more than once"),
        ("Guests who booked twice", "gte", 2, "booked twice"),
        ("Guests who booked at least twice", "gte", 2, "booked at least twice"),
        ("Guests who booked at least three times", "gte", 3, "booked at least three times"),
        ("Guests who booked more than 4 times", "gt", 4, "booked more than 4 times"),
    ],
)
def test_a_repeat_after_a_verb_counts_the_rows_the_verb_names_per_entity(requirement, op, value, phrase):
    plan = _plan(requirement)
    interp = plan.interpretation
    [having] = interp.having
    assert (having.op, having.value, having.phrase) == (op, value, phrase)
    assert interp.root.object == "bookings" and [m.func for m in interp.measures] == ["count"]
    assert {g.column.column for g in interp.group_by} >= {"guest_id"}
    assert "HAVING COUNT(*)" in plan.sql
    assert _problems(requirement, interp) == []
    wrong = interpretation_parse({**interp.model_dump(by_alias=True, exclude_none=True), "having": []})
    assert _problems(requirement, wrong)


def test_the_same_thing_more_than_once_counts_per_entity_and_thing_not_a_plain_count():
    requirement = "Guests who booked the same room more than once"
    plan = _plan(requirement)
    interp = plan.interpretation
    assert not interp.having and not interp.measures  # not the guests who booked more than once
    [exists] = interp.exists
    assert [e.object for e in exists.entities] == ["bookings"]
    assert [c.column for c in exists.repeated.per] == ["room_id"]
    assert _problems(requirement, interp) == []


def test_rows_a_status_of_their_own_could_leave_out_are_asked_about_before_counting():
    with pytest.raises(PlanningError) as caught:
        plan_requirement(requirement="Bookings that were charged twice", schema=HOTEL)
    [question] = caught.value.questions
    assert question.phrase == "charged" and question.multiple
    labels = {c.label for c in question.choices}
    assert "charges.state = 'settled'" in labels and "every state counts" in labels


def test_the_answer_filters_the_counted_rows_and_the_count_asks_nothing_more():
    requirement = "Bookings that were charged twice"
    glossary = [
        {
            "term": "charged",
            "kind": "filter",
            "object": "charges",
            "filters": [{"column": "state", "op": "in", "values": ["settled"]}],
        }
    ]
    plan = _plan(requirement, glossary)
    interp = plan.interpretation
    [having] = interp.having
    assert (having.op, having.value) == ("gte", 2)
    assert interp.root.object == "charges"
    assert any(f.column.column == "state" and f.values == ["settled"] for f in interp.filters)
    assert "c.state IN" in plan.sql and "HAVING COUNT(*) >= 2" in plan.sql
    assert _problems(requirement, interp) == []
