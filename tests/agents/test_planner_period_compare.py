"""Changes between periods ("members whose visits dropped in the last 30 days") and terms that need a definition.

The schema is one the planner was not written against; every design must pass the platform's own checks,
and the compiled SQL runs on a real SQLite database whose rows say which members are meant.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from agents.orchestrator import success_results
from agents.planner import PlanningError, plan_requirement
from endpoints.compiler import Catalog, interpretation_compile
from endpoints.interpretation import interpretation_parse
from endpoints.verification.coverage import shape_check
from endpoints.verification.findings import failed
from endpoints.verification.realization import realization_check
from learning.glossary import mapping_parse
from tests.agents.planner_checks import design_problems

from .planner_schemas import schema_of

GYM = schema_of(
    {
        "members": {
            "columns": {"member_id": "integer", "first_name": "string", "last_name": "string", "plan": "string"},
            "pk": ["member_id"],
            "values": {"plan": ["basic", "premium", "vip"]},
        },
        "visits": {
            "columns": {"visit_id": "integer", "member_id": "integer", "club": "string", "checked_in_at": "date-time"},
            "pk": ["visit_id"],
            "fks": {"member_id": "members.member_id"},
        },
        "fees": {
            "columns": {
                "fee_id": "integer",
                "member_id": "integer",
                "amount": "number",
                "discount": "number",
                "state": "string",
                "billed_on": "date",
            },
            "pk": ["fee_id"],
            "fks": {"member_id": "members.member_id"},
            "values": {"state": ["settled", "open", "written_off"]},
        },
    }
)
SPEND = [
    {"term": "spend", "kind": "measure", "func": "sum", "object": "fees", "column": "amount"},
    {
        "term": "spend",
        "kind": "filter",
        "object": "fees",
        "filters": [{"column": "state", "op": "in", "values": ["settled"]}],
    },
]


def _ago(days: int) -> str:
    return (datetime.now() - timedelta(days=days)).strftime("%Y-%m-%d %H:%M:%S")


@pytest.fixture
def gym_db(tmp_path):
    """Ada's visits fell (3 before, 1 now); Bob's rose; Cy visited only long ago; Di never; Eve the same each time."""
    db = sqlite3.connect(tmp_path / "gym.sqlite3")
    db.executescript(
        """CREATE TABLE members (member_id INTEGER PRIMARY KEY, first_name TEXT, last_name TEXT, plan TEXT);
        CREATE TABLE visits (visit_id INTEGER PRIMARY KEY, member_id INTEGER, club TEXT, checked_in_at TIMESTAMP);
        CREATE TABLE fees (fee_id INTEGER PRIMARY KEY, member_id INTEGER, amount NUMERIC, discount NUMERIC,
                           state TEXT, billed_on DATE);"""
    )
    members = [
        (1, "Ada", "Lee", "basic"),
        (2, "Bob", "Ray", "vip"),
        (3, "Cy", "Orr", "basic"),
        (4, "Di", "Fox", "basic"),
    ]
    members.append((5, "Eve", "Ng", "premium"))
    db.executemany("INSERT INTO members VALUES (?, ?, ?, ?)", members)
    visits = [(1, 40), (1, 45), (1, 50), (1, 5), (2, 40), (2, 3), (2, 4), (3, 200), (3, 300), (5, 10), (5, 50)]
    db.executemany(
        "INSERT INTO visits (member_id, club, checked_in_at) VALUES (?, 'north', ?)", [(m, _ago(d)) for m, d in visits]
    )
    fees = [(1, 30, "settled"), (1, 99, "written_off"), (2, 50, "settled"), (3, 20, "open")]
    db.executemany(
        "INSERT INTO fees (member_id, amount, discount, state, billed_on) VALUES (?, ?, 0, ?, ?)",
        [(m, a, s, _ago(60)[:10]) for m, a, s in fees],
    )
    db.commit()
    yield db
    db.close()


def _rows(db, interp, shape: str = "primary") -> list[dict]:
    compiled = interpretation_compile(interp, catalog=Catalog(GYM), dialect="sqlite", shape=shape)
    cursor = db.execute(compiled.sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _plan(requirement: str, glossary: list[dict] | None = None):
    plan = plan_requirement(requirement=requirement, schema=GYM, glossary=glossary, dialect="sqlite")
    assert plan.interpretation is not None
    assert design_problems(requirement, plan.interpretation, schema=GYM) == []
    return plan


def test_rows_whose_activity_dropped_compare_the_last_period_with_the_one_before(gym_db):
    plan = _plan("Members whose visits dropped in the last 30 days")
    comparison = plan.interpretation.comparisons[0]
    assert (comparison.func, comparison.direction, comparison.amount, comparison.unit) == ("count", "down", 30, "day")
    assert comparison.entities[0].object == "visits" and comparison.date.column == "checked_in_at"
    for shape in ("primary", "alternate"):
        rows = _rows(gym_db, plan.interpretation, shape)
        # Cy had nothing in either window: 0 < 0 is no drop.
        assert [(r["first_name"], r["recent_visits"], r["previous_visits"]) for r in rows] == [("Ada", 1, 3)]


@pytest.mark.parametrize(
    "requirement",
    ["Members whose visits grew in the last 30 days", "Members whose visits increased in the last 30 days"],
)
def test_rows_whose_activity_grew_are_those_with_more_than_in_the_period_before(gym_db, requirement):
    plan = _plan(requirement)
    assert plan.interpretation.comparisons[0].direction == "up"
    assert [r["first_name"] for r in _rows(gym_db, plan.interpretation)] == ["Bob"]


def test_the_previous_period_may_be_said_and_must_be_as_long_as_the_current_one():
    plan = _plan("Members whose visits dropped in the last 4 weeks compared with the previous 4 weeks")
    comparison = plan.interpretation.comparisons[0]
    assert (comparison.amount, comparison.unit) == (4, "week")
    with pytest.raises(PlanningError, match="different lengths"):
        plan_requirement(
            requirement="Members whose visits dropped in the last 4 weeks compared with the previous 2 weeks",
            schema=GYM,
        )


def test_activity_is_the_dated_child_table_that_records_events(gym_db):
    plan = _plan("Members whose activity dropped in the last 30 days")
    assert plan.interpretation.comparisons[0].entities[0].object == "visits"


def test_lifetime_spend_asks_what_spend_means_then_sums_it_over_all_time(gym_db):
    requirement = "Members whose visits dropped in the last 30 days, with their lifetime spend"
    with pytest.raises(PlanningError) as asked:
        plan_requirement(requirement=requirement, schema=GYM)
    assert {q.id for q in asked.value.questions} == {"measure", "statuses_1"}
    assert all(q.phrase == "spend" for q in asked.value.questions)
    assert "total spend per member" not in str(asked.value).lower()
    plan = _plan(requirement, SPEND)
    measure = plan.interpretation.measures[0]
    assert (measure.id, measure.func, measure.column.column) == ("lifetime_spend", "sum", "amount")
    assert [f.values for f in measure.filters] == [["settled"]]
    for shape in ("primary", "alternate"):
        assert [(r["first_name"], r["lifetime_spend"]) for r in _rows(gym_db, plan.interpretation, shape)] == [
            ("Ada", 30)
        ]


def test_a_member_with_nothing_to_sum_keeps_a_lifetime_spend_of_zero(gym_db):
    gym_db.execute("DELETE FROM fees WHERE member_id = 1")
    gym_db.commit()
    plan = _plan("Members whose visits dropped in the last 30 days, with their lifetime spend", SPEND)
    assert [(r["first_name"], r["lifetime_spend"]) for r in _rows(gym_db, plan.interpretation)] == [("Ada", 0)]


def test_a_money_figure_is_compared_as_a_sum_of_the_defined_measure(gym_db):
    plan = _plan("Members whose spend dropped in the last 30 days", SPEND)
    comparison = plan.interpretation.comparisons[0]
    assert (comparison.func, comparison.column.column, comparison.date.column) == ("sum", "amount", "billed_on")
    assert [f.values for f in comparison.filters] == [["settled"]]


def test_words_beside_the_change_that_it_cannot_read_are_declined():
    with pytest.raises(PlanningError, match="beside the change"):
        plan_requirement(requirement="Members whose visits dropped in the last 30 days by club", schema=GYM)


def test_a_plain_lack_of_activity_is_still_an_anti_join():
    plan = _plan("Members who haven't visited in the last 30 days")
    assert plan.interpretation.comparisons == []
    assert plan.interpretation.exists and plan.interpretation.exists[0].negated


def test_a_term_that_needs_a_definition_asks_with_definitions_the_platform_can_build():
    requirement = "Calculate member churn risk based on their last 60 days of visits"
    with pytest.raises(PlanningError) as asked:
        plan_requirement(requirement=requirement, schema=GYM)
    (question,) = asked.value.questions
    assert question.text.startswith("What does 'churn risk' mean here?")
    assert [c.id for c in question.choices] == ["lapsed", "dropped", "leave_it_out"]
    for choice in question.choices:
        assert mapping_parse(choice.mapping).kind in ("definition", "ignore")
    assert question.choices[0].mapping == {
        "term": "churn risk",
        "kind": "definition",
        "object": "visits",
        "column": "checked_in_at",
        "shape": "lapsed",
        "func": "max",
    }
    assert "architect" not in str(asked.value).lower() and "planner" not in str(asked.value).lower()


def test_a_lapsed_definition_keeps_rows_whose_latest_activity_is_before_the_cut_off(gym_db):
    requirement = "Calculate member churn risk based on their last 60 days of visits"
    with pytest.raises(PlanningError) as asked:
        plan_requirement(requirement=requirement, schema=GYM)
    lapsed = asked.value.questions[0].choices[0].mapping
    plan = _plan(requirement, [lapsed])
    for shape in ("primary", "alternate"):
        rows = _rows(gym_db, plan.interpretation, shape)
        # Cy's latest visit is 200 days ago; Di never visited, so is not 'at risk' of leaving: never active.
        assert [r["first_name"] for r in rows] == ["Cy"]
        assert rows[0]["latest_checked_in_at"] == _ago(200)[:10] or rows[0]["latest_checked_in_at"].startswith(
            _ago(200)[:10]
        )
    # The next requirement with the term asks nothing, over its own window.
    again = _plan("Members at churn risk in the last 30 days", [lapsed | {"term": "churn risk"}])
    assert again.interpretation.exists[0].window.start.relative.amount == -30


def test_a_dropped_definition_is_a_period_comparison(gym_db):
    requirement = "Calculate member churn risk based on their last 30 days of visits"
    dropped = {
        "term": "churn risk",
        "kind": "definition",
        "shape": "dropped",
        "object": "visits",
        "column": "checked_in_at",
        "func": "count",
    }
    plan = _plan(requirement, [dropped])
    assert plan.interpretation.comparisons[0].direction == "down"
    assert [r["first_name"] for r in _rows(gym_db, plan.interpretation)] == ["Ada"]


def test_a_term_the_data_holds_as_a_value_is_no_definition():
    plan = plan_requirement(requirement="VIP members", schema=GYM)
    assert plan.interpretation.comparisons == [] and plan.interpretation.exists == []
    assert [f.column.column for f in plan.interpretation.filters] == ["plan"]
    assert [p.default for p in plan.interpretation.parameters] == ["vip"]


def test_the_platform_refuses_a_change_with_no_comparison_or_the_wrong_way_round(gym_db):
    requirement = "Members whose visits dropped in the last 30 days"
    plan = _plan(requirement)
    catalog = Catalog(GYM)
    without = interpretation_parse(
        {"entities": [{"alias": "m", "object": "members", "phrase": "Members"}], "select": []}
    )
    assert any(
        "compares two periods" in m
        for m in [
            f.message for f in failed(shape_check(requirement=requirement, interpretation=without, catalog=catalog))
        ]
    )
    flipped = plan.interpretation.model_copy(
        update={"comparisons": [plan.interpretation.comparisons[0].model_copy(update={"direction": "up"})]}
    )
    assert [f.message for f in failed(shape_check(requirement=requirement, interpretation=flipped, catalog=catalog))]
    sql = interpretation_compile(plan.interpretation, catalog=catalog, dialect="sqlite").sql
    assert not failed(realization_check(sql=sql, dialect="sqlite", interpretation=plan.interpretation, catalog=catalog))
    refused = failed(realization_check(sql=sql, dialect="sqlite", interpretation=flipped, catalog=catalog))
    assert [f.element for f in refused] == ["comparisons[0]"]


@pytest.mark.parametrize(
    ("dialect", "cut_off", "before"),
    [
        ("postgres", "CURRENT_DATE + INTERVAL '-30 day'", "CURRENT_DATE + INTERVAL '-60 day'"),
        ("mysql", "DATE_ADD(CURRENT_DATE, INTERVAL -30 DAY)", "DATE_ADD(CURRENT_DATE, INTERVAL -60 DAY)"),
        ("sqlite", "date(date('now'), '-30 days')", "date(date('now'), '-60 days')"),
    ],
)
def test_the_comparison_compiles_for_each_engine_as_correlated_subqueries(dialect, cut_off, before):
    plan = _plan("Members whose visits dropped in the last 30 days")
    sql = interpretation_compile(plan.interpretation, catalog=Catalog(GYM), dialect=dialect).sql
    assert cut_off in sql and before in sql
    assert sql.count("SELECT COUNT(*) FROM visits") == 4  # both figures, shown and compared


def test_a_learned_pattern_names_the_tables_a_comparison_reads():
    requirement = "Members whose visits dropped in the last 30 days"
    interp = _plan(requirement).interpretation
    execution = SimpleNamespace(
        result={"phases": {"exploration": {"schema": {"objects": [{"name": "members"}, {"name": "visits"}]}}}},
        business_requirement=requirement,
    )
    endpoint = SimpleNamespace(
        interpretation=interp.model_dump(by_alias=True, exclude_none=True),
        slug="members-whose-visits-dropped",
        description="",
        parameters={},
        sql="SELECT 1",
        role=SimpleNamespace(service=SimpleNamespace(engine="postgresql")),
        verdict="",
    )
    results = success_results(execution=execution, endpoint=endpoint)
    assert results["pattern"]["objects"] == ["members", "visits"]
    assert "period_comparison" in results["pattern"]["shape"]
