"""Everyday ways of saying a window or a measure: 'in the past week', 'the highest lifetime value'."""

from __future__ import annotations

import pytest

from agents.planner import PlanningError, plan_requirement
from agents.planner.intent import read_phrases

from .planner_schemas import schema_of
from .test_planner_ranking_shapes import DINER, _checked
from .test_planner_shapes import _without

# Rentals of boats: each hire has its own amount and a status that could leave some out.
MARINA = schema_of(
    {
        "sailors": {
            "columns": {"sailor_id": "integer", "first_name": "string", "last_name": "string"},
            "pk": ["sailor_id"],
        },
        "hires": {
            "columns": {
                "hire_id": "integer",
                "sailor_id": "integer",
                "hired_at": "date-time",
                "charge_amount": "number",
                "deposit_amount": "number",
                "state": "string",
            },
            "pk": ["hire_id"],
            "fks": {"sailor_id": "sailors.sailor_id"},
            "values": {"state": ["booked", "sailed", "cancelled"]},
        },
    }
)


@pytest.mark.parametrize(
    ("text", "amount", "unit"),
    [("in the past week", 7, "day"), ("over the past month", 1, "month"), ("the past 3 weeks", 21, "day")],
)
def test_the_past_week_is_the_days_up_to_today(text, amount, unit):
    window = read_phrases(f"Tabs opened {text}").window
    assert (window.kind, window.amount, window.unit) == ("rolling", amount, unit)


def test_tabs_opened_in_the_past_week_start_seven_days_back_and_a_calendar_week_is_refused():
    requirement = "Tabs opened in the past week"
    interp = plan_requirement(requirement=requirement, schema=DINER).interpretation
    [window] = interp.windows
    assert window.column.column == "opened_at" and window.end is None
    assert (window.start.relative.amount, window.start.relative.unit) == (-7, "day")
    assert _checked(requirement, interp, DINER) == []
    calendar = {"start": {"calendar": {"unit": "week", "offset": -1}}, "end": {"calendar": {"unit": "week"}}}
    last_week = _without(interp, windows=[{**window.model_dump(exclude_none=True), **calendar}])
    assert any("past week" in p for p in _checked(requirement, last_week, DINER))


def test_the_highest_lifetime_value_sums_every_amount_of_the_entity():
    requirement = "The five guests with the highest lifetime value"
    interp = plan_requirement(requirement=requirement, schema=DINER).interpretation
    [measure] = interp.measures
    assert (measure.func, measure.column.column) == ("sum", "amount")
    assert interp.windows == []
    assert interp.limit.n == 5 and interp.order_by[0].direction == "desc"
    assert {g.column.column for g in interp.group_by} == {"guest_no", "first_name", "last_name"}
    assert _checked(requirement, interp, DINER) == []
    averaged = _without(interp, measures=[{**measure.model_dump(exclude_none=True), "func": "avg"}])
    assert any("lifetime value" in p for p in _checked(requirement, averaged, DINER))


def test_a_lifetime_value_that_two_amounts_and_a_status_could_mean_is_asked_as_a_business_definition():
    with pytest.raises(PlanningError) as raised:
        plan_requirement(requirement="The ten sailors with the highest lifetime value", schema=MARINA)
    questions = {q.id: q for q in raised.value.questions}
    assert set(questions) == {"measure", "statuses_1"}
    measure = questions["measure"]
    assert measure.phrase == "lifetime value"
    assert {c.mapping.get("column") for c in measure.choices} >= {"charge_amount", "deposit_amount"}
    assert {v for c in questions["statuses_1"].choices for f in c.mapping.get("filters", []) for v in f["values"]} == {
        "booked",
        "sailed",
        "cancelled",
    }


def test_an_answered_lifetime_value_is_the_sum_of_the_chosen_amount_over_the_chosen_statuses():
    glossary = [
        {"term": "lifetime value", "kind": "measure", "func": "sum", "object": "hires", "column": "charge_amount"},
        {
            "term": "lifetime value",
            "kind": "filter",
            "object": "hires",
            "filters": [{"column": "state", "op": "in", "values": ["sailed"]}],
        },
    ]
    requirement = "The ten sailors with the highest lifetime value"
    interp = plan_requirement(requirement=requirement, schema=MARINA, glossary=glossary).interpretation
    [measure] = interp.measures
    assert (measure.func, measure.column.column) == ("sum", "charge_amount")
    [status] = interp.filters
    assert status.column.column == "state" and status.values == ["sailed"]
    assert interp.limit.n == 10
    assert _checked(requirement, interp, MARINA) == []


# Repair jobs and the parts fitted on each: a part is the parent of a job's lines, not a child of the job.
WORKSHOP_TABLES = {
    "parts": {"columns": {"part_id": "integer", "part_name": "string"}, "pk": ["part_id"]},
    "jobs": {"columns": {"job_id": "integer", "booked_on": "date", "bay": "string"}, "pk": ["job_id"]},
    "job_parts": {
        "columns": {"job_part_id": "integer", "job_id": "integer", "part_id": "integer", "pieces": "integer"},
        "pk": ["job_part_id"],
        "fks": {"job_id": "jobs.job_id", "part_id": "parts.part_id"},
    },
}


def test_jobs_with_more_than_three_different_parts_count_each_part_of_their_lines_once():
    requirement = "Jobs from the last 30 days with more than three different parts"
    schema = schema_of(WORKSHOP_TABLES)
    interp = plan_requirement(requirement=requirement, schema=schema).interpretation
    [measure] = interp.measures
    assert measure.func == "count_distinct" and measure.column.column == "part_id"
    assert interp.entity(measure.column.entity).object == "job_parts"
    [having] = interp.having
    assert (having.measure, having.op, having.value) == (measure.id, "gt", 3)
    assert having.phrase == "more than three different parts"
    assert "job_id" in {g.column.column for g in interp.group_by}
    [window] = interp.windows
    assert window.column.column == "booked_on"
    assert _checked(requirement, interp, schema) == []
    every_line = _without(interp, measures=[{"id": measure.id, "func": "count", "phrase": measure.phrase}])
    assert any("different parts" in p for p in _checked(requirement, every_line, schema))


def test_parts_that_two_child_tables_of_a_job_name_are_not_guessed():
    tables = dict(WORKSHOP_TABLES)
    tables["job_returns"] = {
        "columns": {"return_id": "integer", "job_id": "integer", "part_id": "integer"},
        "pk": ["return_id"],
        "fks": {"job_id": "jobs.job_id", "part_id": "parts.part_id"},
    }
    with pytest.raises(PlanningError):
        plan_requirement(requirement="Jobs with more than three different parts", schema=schema_of(tables))


# Invoices with two dates that both say when an invoice happened.
BILLING = schema_of(
    {
        "invoices": {
            "columns": {
                "invoice_id": "integer",
                "state": "string",
                "channel": "string",
                "amount": "number",
                "created_at": "date-time",
                "settled_at": "date-time",
            },
            "pk": ["invoice_id"],
            "values": {"state": ["open", "settled", "void"], "channel": ["post", "emailed"]},
        }
    }
)
INVOICES_DATED = [{"term": "invoices", "kind": "column", "object": "invoices", "column": "created_at"}]


def test_a_window_two_dates_of_the_rows_could_carry_is_asked_with_those_dates():
    with pytest.raises(PlanningError) as raised:
        plan_requirement(requirement="How many void invoices last month, per channel", schema=BILLING)
    [question] = raised.value.questions
    assert question.phrase == "invoices" and "which date says when invoices happen" in question.text
    assert [c.mapping for c in question.choices] == [
        {"term": "invoices", "kind": "column", "object": "invoices", "column": name}
        for name in ("created_at", "settled_at")
    ]


def test_the_answered_date_of_the_rows_carries_their_windows_and_the_word_still_names_the_table():
    requirement = "How many void invoices last month, per channel"
    interp = plan_requirement(requirement=requirement, schema=BILLING, glossary=INVOICES_DATED).interpretation
    [window] = interp.windows
    assert window.column.column == "created_at"
    assert [e.object for e in interp.entities] == ["invoices"]
    assert [g.column.column for g in interp.group_by] == ["channel"]
    assert _checked(requirement, interp, BILLING) == []
    listed = plan_requirement(requirement="Invoices per channel", schema=BILLING, glossary=INVOICES_DATED)
    assert listed.interpretation.windows == [] and "created_at" not in {
        g.column.column for g in listed.interpretation.group_by
    }


def test_a_date_the_requirement_names_wins_over_the_answered_one():
    requirement = "Invoices settled last month"
    interp = plan_requirement(requirement=requirement, schema=BILLING, glossary=INVOICES_DATED).interpretation
    [window] = interp.windows
    assert window.column.column == "settled_at"


def test_rows_named_by_another_word_are_not_asked_about_their_date():
    glossary = [{"term": "bills", "kind": "entity", "object": "invoices"}]
    with pytest.raises(PlanningError) as raised:
        plan_requirement(requirement="How many void bills last month, per channel", schema=BILLING, glossary=glossary)
    assert raised.value.questions == []
    assert "created_at or invoices.settled_at" in str(raised.value)
