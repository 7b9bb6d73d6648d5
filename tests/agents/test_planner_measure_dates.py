"""A glossary measure applies where the requirement names none, and a window two dates could hold is not guessed."""

from __future__ import annotations

import pytest

from agents.planner import PlanningError, plan_requirement

from .planner_schemas import schema_of

TILL = schema_of(
    {
        "payments": {
            "columns": {
                "payment_id": "integer",
                "method": "string",
                "status": "string",
                "amount": "number",
                "created_at": "date-time",
                "paid_at": "date-time",
            },
            "pk": ["payment_id"],
            "values": {"method": ["card", "cash"], "status": ["paid", "refunded"]},
        }
    }
)


def _plan(requirement: str, glossary=None):
    return plan_requirement(requirement=requirement, schema=TILL, glossary=glossary).interpretation


def test_a_measure_the_glossary_gives_a_term_applies_where_the_requirement_names_none():
    refunded = {"term": "Refunds", "kind": "value", "object": "payments", "column": "status", "value": "refunded"}
    summed = {"term": "Refunds", "kind": "measure", "func": "sum", "object": "payments", "column": "amount"}
    interp = _plan("Refunds by method", glossary=[refunded, summed])
    [measure] = interp.measures
    assert (measure.func, measure.column.column) == ("sum", "amount")
    [status] = [f for f in interp.filters if f.column.column == "status"]
    assert "refunded" in (status.values or [status.value or interp.parameter(status.param).default])
    assert [g.column.column for g in interp.group_by] == ["method"]


def test_a_window_two_dates_could_hold_is_declined_until_the_date_is_named():
    refunded = {"term": "Refunds", "kind": "value", "object": "payments", "column": "status", "value": "refunded"}
    summed = {"term": "Refunds", "kind": "measure", "func": "sum", "object": "payments", "column": "amount"}
    with pytest.raises(PlanningError) as declined:
        _plan("Refunds by method last month", glossary=[refunded, summed])
    assert "created_at" in str(declined.value) and "paid_at" in str(declined.value)
    interp = _plan("Refunds by method paid last month", glossary=[refunded, summed])
    [window] = interp.windows
    assert window.column.column == "paid_at"


def test_a_window_two_dates_could_hold_asks_when_a_business_term_names_the_rows_and_the_answer_dates_them():
    refunded = {"term": "Refunds", "kind": "value", "object": "payments", "column": "status", "value": "refunded"}
    summed = {"term": "Refunds", "kind": "measure", "func": "sum", "object": "payments", "column": "amount"}
    with pytest.raises(PlanningError) as asked:
        _plan("Refunds by method last month", glossary=[refunded, summed])
    [question] = asked.value.questions
    assert {c.mapping["column"] for c in question.choices} == {"created_at", "paid_at"}
    answer = next(c.mapping for c in question.choices if c.mapping["column"] == "paid_at")
    interp = _plan("Refunds by method last month", glossary=[refunded, summed, answer])
    [window] = interp.windows
    assert window.column.column == "paid_at"
    [status] = [f for f in interp.filters if f.column.column == "status"]
    assert "refunded" in (status.values or [status.value or interp.parameter(status.param).default])
