"""Negated verbs across foreign keys, lookups by '<entity> number', and comparisons two columns could mean.

Small schemas of the tests' own; each design passes the platform's checks, and the wrong-shaped design is caught.
"""

from __future__ import annotations

import pytest

from agents.planner import PlanningError, plan_requirement
from endpoints.interpretation import interpretation_parse
from endpoints.verification.lexicon import content_words
from tests.agents.planner_checks import design_problems

from .planner_schemas import schema_of

MARINA = schema_of(
    {
        "boats": {
            "columns": {"boat_id": "integer", "title": "string", "hire_rate": "number", "insured_cost": "number"},
            "pk": ["boat_id"],
        },
        "moorings": {
            "columns": {"mooring_id": "integer", "boat_id": "integer", "berth": "string"},
            "pk": ["mooring_id"],
            "fks": {"boat_id": "boats.boat_id"},
        },
        "sailors": {
            "columns": {"sailor_id": "integer", "first_name": "string", "last_name": "string"},
            "pk": ["sailor_id"],
        },
        "charters": {
            "columns": {
                "charter_id": "integer",
                "mooring_id": "integer",
                "sailor_id": "integer",
                "chartered_at": "date-time",
                "last_update": "date-time",
            },
            "pk": ["charter_id"],
            "fks": {"mooring_id": "moorings.mooring_id", "sailor_id": "sailors.sailor_id"},
        },
    }
)


def _plan(requirement: str, glossary=None):
    return plan_requirement(requirement=requirement, schema=MARINA, glossary=glossary).interpretation


def _problems(requirement: str, interp) -> list[str]:
    return design_problems(requirement, interp, schema=MARINA)


def _without(interp, **changes):
    data = interp.model_dump(by_alias=True, exclude_none=True)
    data.update(changes)
    return interpretation_parse(data)


def test_never_with_a_verb_is_an_anti_join_along_the_foreign_keys_to_the_table_the_verb_names():
    requirement = "Boats that have never been chartered"
    interp = _plan(requirement)
    [absent] = interp.exists
    assert absent.negated and [e.object for e in absent.entities] == ["moorings", "charters"]
    assert absent.phrase == "never been chartered"
    assert _problems(requirement, interp) == []
    assert any("never" in p for p in _problems(requirement, _without(interp, exists=[])))


def test_nobody_has_verbed_since_a_date_keeps_the_date_inside_the_anti_join():
    requirement = "Boats nobody has chartered since 2024-01-01"
    interp = _plan(requirement)
    [absent] = interp.exists
    assert absent.negated and absent.window is not None
    assert absent.window.column.column == "chartered_at" and absent.window.start.date == "2024-01-01"
    assert _problems(requirement, interp) == []
    assert any("nobody" in p for p in _problems(requirement, _without(interp, exists=[])))


def test_a_rolling_window_in_a_negation_uses_the_date_the_row_happened_not_the_last_update():
    requirement = "Sailors who haven't chartered anything in the last 30 days"
    interp = _plan(requirement)
    [absent] = interp.exists
    assert absent.negated and absent.phrase == "haven't chartered anything"
    assert absent.window.column.column == "chartered_at"
    assert _problems(requirement, interp) == []


def test_a_lookup_by_the_entitys_own_number_is_its_key_as_a_required_parameter():
    requirement = "Look up a sailor by their sailor number"
    interp = _plan(requirement)
    [only] = interp.filters
    assert only.column.column == "sailor_id" and interp.parameter(only.param).required
    assert interp.parameter(only.param).default is None
    assert _problems(requirement, interp) == []
    assert "up" not in [w.lower for w in content_words(requirement)]
    assert any("number" in p for p in _problems(requirement, _without(interp, filters=[], parameters=[])))


def test_a_number_of_something_else_is_never_taken_for_the_key():
    requirement = "Look up a sailor by their phone number"
    try:
        interp = _plan(requirement)
    except PlanningError:
        return
    assert not interp.filters
    assert _problems(requirement, interp)  # so it is asked or declined, never deployed


def test_a_comparison_another_word_could_put_on_another_column_is_asked_with_both_columns():
    requirement = "Boats that cost more than 400 dollars to hire"
    with pytest.raises(PlanningError) as asked:
        _plan(requirement)
    [question] = asked.value.questions
    labels = [c.label for c in question.choices]
    assert labels == ["the column boats.insured_cost", "the column boats.hire_rate"]
    chosen = next(c for c in question.choices if c.label.endswith("hire_rate"))
    assert chosen.mapping["term"] == "cost" and chosen.mapping["kind"] == "column"
    interp = _plan(requirement, glossary=[chosen.mapping])
    [compare] = [f for f in interp.filters if f.op == "gt"]
    assert (compare.column.column, compare.value) == ("hire_rate", 400)
    assert _problems(requirement, interp) == []
