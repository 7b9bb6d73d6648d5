"""People who handle rows ('technicians'), negated states ('unfixed') and durations ('time to finish, in hours').

The schema is one the planner was not written against; every design passes the platform's own checks.
"""

from __future__ import annotations

import copy
import sqlite3

import pytest

from agents.planner import PlanningError, plan_requirement
from endpoints.compiler import Catalog, CompileError, interpretation_compile
from endpoints.interpretation import interpretation_parse
from tests.agents.planner_checks import design_problems

from .planner_schemas import schema_of

WORKSHOP = schema_of(
    {
        "vehicles": {
            "columns": {"vehicle_id": "integer", "plate": "string", "make": "string"},
            "pk": ["vehicle_id"],
            "values": {"make": ["Volvo", "Skoda", "Fiat"]},
        },
        "repair_jobs": {
            "columns": {
                "job_id": "integer",
                "vehicle_id": "integer",
                "state": "string",
                "urgency": "string",
                "handled_by": "string",
                "reported_at": "date-time",
                "finished_at": "date-time",
            },
            "pk": ["job_id"],
            "fks": {"vehicle_id": "vehicles.vehicle_id"},
            "values": {
                "state": ["queued", "in_repair", "fixed", "delivered"],
                "urgency": ["low", "normal", "rush"],
                "handled_by": ["Maya Lindqvist", "Tomas Ruiz", "Ines Duarte"],
            },
        },
    }
)

TECHNICIAN = {"term": "technicians", "kind": "column", "object": "repair_jobs", "column": "handled_by"}
UNFIXED = {
    "term": "unfixed",
    "kind": "filter",
    "object": "repair_jobs",
    "filters": [{"column": "state", "op": "not_in", "values": ["fixed", "delivered"]}],
}


def _questions(requirement: str, schema: dict = WORKSHOP, glossary: list | None = None) -> dict:
    with pytest.raises(PlanningError) as raised:
        plan_requirement(requirement=requirement, schema=schema, glossary=glossary)
    return {q.phrase: q for q in raised.value.questions}


def _plan(requirement: str, glossary: list | None = None, schema: dict = WORKSHOP):
    plan = plan_requirement(requirement=requirement, schema=schema, glossary=glossary)
    assert design_problems(requirement, plan.interpretation, schema=schema) == []
    return plan.interpretation


def test_a_word_for_people_asks_which_column_names_them_offering_person_like_text_columns():
    questions = _questions("Technicians with the most unfixed repair jobs")
    question = questions["Technicians"]
    assert question.kind == "column"
    mappings = [c.mapping for c in question.choices]
    assert {"term": "Technicians", "kind": "column", "object": "repair_jobs", "column": "handled_by"} in mappings
    assert [m["column"] for m in mappings if m["kind"] == "column"] == ["handled_by"]  # not plate, make or state
    assert mappings[-1]["kind"] == "ignore"


def test_a_negated_state_asks_which_values_end_it_and_never_offers_the_value_itself_as_an_equality():
    question = _questions("Technicians with the most unfixed repair jobs")["unfixed"]
    assert question.kind == "filter" and question.multiple
    values = [c.mapping["filters"][0]["values"][0] for c in question.choices]
    assert values[:2] == ["fixed", "delivered"]  # the negated value, then the other one that ends a job
    assert all(c.mapping["filters"][0]["op"] == "not_in" for c in question.choices)


def test_people_with_the_most_rows_group_by_their_column_without_empty_ones_ordered_by_the_count():
    interp = _plan("Technicians with the most unfixed repair jobs", [TECHNICIAN, UNFIXED])
    assert [(g.column.column, g.phrase) for g in interp.group_by] == [("handled_by", "Technicians")]
    conditions = {(f.column.column, f.op, tuple(f.values or ())) for f in interp.filters}
    assert ("state", "not_in", ("fixed", "delivered")) in conditions
    assert ("handled_by", "not_null", ()) in conditions
    assert interp.measures[0].func == "count"
    assert (interp.order_by[0].measure, interp.order_by[0].direction) == (interp.measures[0].id, "desc")
    assert interp.limit is None  # every technician, ordered


def test_an_answered_people_term_asks_nothing_the_next_time_and_takes_the_verb_after_it():
    interp = _plan("How many repair jobs each technician got last month", [TECHNICIAN])
    assert [(g.column.column, g.phrase) for g in interp.group_by] == [("handled_by", "technician got")]
    assert any(f.column.column == "handled_by" and f.op == "not_null" for f in interp.filters)
    assert interp.windows and interp.windows[0].column.column == "reported_at"


def test_a_negated_state_the_database_type_ends_with_one_value_needs_no_question():
    schema = copy.deepcopy(WORKSHOP)
    table = next(o for o in schema["objects"] if o["name"] == "repair_jobs")
    state = next(c for c in table["columns"] if c["name"] == "state")
    state["enum"], state["samples"] = ["queued", "in_repair", "fixed"], []
    interp = _plan("Unfixed repair jobs", schema=schema)
    assert [(f.column.column, f.op, f.values, f.phrase) for f in interp.filters] == [
        ("state", "not_in", ["fixed"], "Unfixed")
    ]


def test_a_negated_state_known_only_from_samples_is_asked_even_with_one_ending_value():
    schema = copy.deepcopy(WORKSHOP)
    table = next(o for o in schema["objects"] if o["name"] == "repair_jobs")
    next(c for c in table["columns"] if c["name"] == "state")["samples"] = ["queued", "in_repair", "fixed"]
    assert _questions("Unfixed repair jobs", schema=schema)["Unfixed"].kind == "filter"


def test_time_to_a_verb_in_hours_is_the_duration_from_the_start_date_to_the_date_the_verb_names():
    interp = _plan("Average time to finish a repair job, in hours, for each urgency")
    measure = interp.measures[0]
    assert (measure.func, measure.column.column, measure.until.column, measure.unit) == (
        "avg",
        "reported_at",
        "finished_at",
        "hour",
    )
    assert [(f.column.column, f.op) for f in interp.filters] == [("finished_at", "not_null")]
    assert [g.column.column for g in interp.group_by] == ["urgency"]


def test_a_duration_without_a_unit_is_declined_asking_for_one():
    with pytest.raises(PlanningError, match="in hours, in minutes or in days"):
        plan_requirement(requirement="Average time to finish a repair job for each urgency", schema=WORKSHOP)


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        ("postgres", "EXTRACT(EPOCH FROM (rj.finished_at - rj.reported_at)) / 3600"),
        ("sqlite", "(julianday(rj.finished_at) - julianday(rj.reported_at)) * 24"),
        ("mysql", "TIMESTAMPDIFF(SECOND, rj.reported_at, rj.finished_at) / 3600"),
    ],
)
def test_a_duration_compiles_for_each_dialect(dialect, expected):
    interp = _plan("Average time to finish a repair job, in hours, for each urgency")
    sql = interpretation_compile(interp, catalog=Catalog(WORKSHOP), dialect=dialect).sql
    assert expected in sql
    assert "finished_at IS NOT NULL" in sql


def test_a_duration_in_minutes_returns_the_minutes_between_the_dates_on_sqlite():
    interp = _plan("Average time to finish a repair job, in minutes, for each urgency")
    sql = interpretation_compile(interp, catalog=Catalog(WORKSHOP), dialect="sqlite").sql
    db = sqlite3.connect(":memory:")
    db.execute(
        "CREATE TABLE repair_jobs (job_id INTEGER PRIMARY KEY, vehicle_id INTEGER, state TEXT, urgency TEXT, "
        "handled_by TEXT, reported_at TEXT, finished_at TEXT)"
    )
    db.executemany(
        "INSERT INTO repair_jobs (urgency, reported_at, finished_at) VALUES (?, ?, ?)",
        [
            ("rush", "2026-03-01 10:00:00", "2026-03-01 10:30:00"),
            ("rush", "2026-03-01 10:00:00", "2026-03-01 11:30:00"),
            ("rush", "2026-03-01 10:00:00", None),  # not finished: left out
            ("low", "2026-03-01 08:00:00", "2026-03-02 08:00:00"),
        ],
    )
    rows = {urgency: round(value, 6) for urgency, value in db.execute(sql).fetchall()}
    assert rows == {"low": 1440.0, "rush": 60.0}


def test_a_duration_of_a_column_that_is_not_a_date_is_refused_by_the_compiler():
    interp = interpretation_parse(
        {
            "entities": [{"alias": "rj", "object": "repair_jobs"}],
            "measures": [
                {
                    "id": "hours",
                    "func": "avg",
                    "column": {"entity": "rj", "column": "urgency"},
                    "until": {"entity": "rj", "column": "finished_at"},
                    "unit": "hour",
                }
            ],
        }
    )
    with pytest.raises(CompileError, match="not a date"):
        interpretation_compile(interp, catalog=Catalog(WORKSHOP), dialect="postgres")


def test_a_duration_needs_its_unit():
    with pytest.raises(ValueError, match="needs both"):
        interpretation_parse(
            {
                "entities": [{"alias": "rj", "object": "repair_jobs"}],
                "measures": [
                    {
                        "id": "hours",
                        "func": "avg",
                        "column": {"entity": "rj", "column": "reported_at"},
                        "until": {"entity": "rj", "column": "finished_at"},
                    }
                ],
            }
        )
