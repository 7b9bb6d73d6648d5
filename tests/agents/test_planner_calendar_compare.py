"""Calendar periods side by side ("weight shipped per depot city, this month compared with last month").

The schema is one the planner was not written against; every design must pass the platform's own checks,
and the compiled SQL runs on real SQLite, PostgreSQL and MariaDB databases whose rows say what each period holds.
"""

from __future__ import annotations

import sqlite3
import uuid
from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from agents.planner import PlanningError, plan_requirement
from endpoints.compiler import Catalog, interpretation_compile
from endpoints.verification.coverage import shape_check
from endpoints.verification.findings import failed
from roles.permissions import Grant
from roles.sqlcheck import check_sql
from tests.agents.planner_checks import design_problems
from tests.roles.conftest import MY_ADMIN_URL, PG_ADMIN_URL

from .planner_schemas import LOGISTICS

TABLES = (
    "CREATE TABLE depots (depot_id INTEGER PRIMARY KEY, city VARCHAR(40), country VARCHAR(2))",
    "CREATE TABLE vehicles (vehicle_id INTEGER PRIMARY KEY, plate VARCHAR(20), depot_id INTEGER, capacity_kg INTEGER)",
    "CREATE TABLE shipments (shipment_id INTEGER PRIMARY KEY, vehicle_id INTEGER, dispatched_at TIMESTAMP NULL, "
    "weight_kg NUMERIC(12, 2), state VARCHAR(20))",
)


def _unit_start(day: date, unit: str, offset: int = 0) -> date:
    """The first day of the calendar unit `day` is in, moved by `offset` units."""
    months = {"month": 1, "quarter": 3, "year": 12}[unit]
    index = day.year * 12 + day.month - 1
    index = index - index % months + offset * months if unit != "year" else day.year * 12 + offset * 12
    return date(index // 12, index % 12 + 1, 1)


def _rows(unit: str) -> list[tuple]:
    """Rotterdam: 10 this period, 5 + 7 the one before, 100 before that; Hamburg: 3 the one before; Antwerp only
    long ago (so it is not listed)."""
    today = date.today()
    current, previous = _unit_start(today, unit), _unit_start(today, unit, -1)
    older = previous - timedelta(days=1)
    return [
        (1, 1, f"{today} 08:00:00", 10, "delivered"),
        (2, 1, f"{previous} 00:00:00", 5, "delivered"),
        (3, 1, f"{current - timedelta(days=1)} 23:00:00", 7, "delivered"),
        (4, 1, f"{older} 12:00:00", 100, "delivered"),
        (5, 2, f"{previous + timedelta(days=2)} 09:00:00", 3, "lost"),
        (6, 3, f"{older} 09:00:00", 40, "delivered"),
    ]


def _fill(execute, unit: str) -> None:
    for statement in TABLES:
        execute(statement)
    execute("INSERT INTO depots VALUES (1, 'Rotterdam', 'NL'), (2, 'Hamburg', 'DE'), (3, 'Antwerp', 'BE')")
    execute("INSERT INTO vehicles VALUES (1, 'AB-12', 1, 900), (2, 'CD-34', 2, 900), (3, 'EF-56', 3, 900)")
    for row in _rows(unit):
        execute(f"INSERT INTO shipments VALUES ({row[0]}, {row[1]}, '{row[2]}', {row[3]}, '{row[4]}')")


def _sqlite_rows(tmp_path, unit: str, sql: str) -> list[tuple]:
    db = sqlite3.connect(tmp_path / f"depots_{unit}.sqlite3")
    _fill(db.execute, unit)
    try:
        return [tuple(r) for r in db.execute(sql).fetchall()]
    finally:
        db.close()


def _server_rows(engine: str, unit: str, sql: str) -> list[tuple]:
    """Run on a throwaway PostgreSQL or MariaDB database holding the rows of `_rows`."""
    name = f"nectar_cal_{uuid.uuid4().hex[:10]}"
    if engine == "postgres":
        admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        url, create, drop = (
            f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}",
            f'CREATE DATABASE "{name}"',
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)',
        )
    else:
        admin = sa.create_engine(MY_ADMIN_URL, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        url, create, drop = (
            f"mysql+pymysql://root@127.0.0.1:3306/{name}",
            f"CREATE DATABASE `{name}`",
            f"DROP DATABASE IF EXISTS `{name}`",
        )
    with admin.connect() as conn:
        conn.execute(sa.text(create))
    engine_ = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine_.begin() as conn:
            _fill(lambda statement: conn.execute(sa.text(statement)), unit)
            return [tuple(r) for r in conn.execute(sa.text(sql)).all()]
    finally:
        engine_.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(drop))
        admin.dispose()


def _plan(requirement: str):
    plan = plan_requirement(requirement=requirement, schema=LOGISTICS, dialect="sqlite")
    assert plan.interpretation is not None
    assert design_problems(requirement, plan.interpretation, schema=LOGISTICS) == []
    return plan


WORDINGS = [
    ("Total weight of shipments per depot city, this month compared with last month", "month"),
    ("Total weight of shipments per depot city this quarter versus the previous quarter", "quarter"),
    ("Total weight of shipments per depot city, this year vs last year", "year"),
]


@pytest.mark.parametrize(("requirement", "unit"), WORDINGS)
@pytest.mark.parametrize("dialect", ["sqlite", "postgres", "mysql"])
def test_each_figure_is_measured_once_per_calendar_period_side_by_side(tmp_path, requirement, unit, dialect):
    plan = _plan(requirement)
    assert "period_comparison" in plan.shape
    first, second = plan.interpretation.measures
    assert (first.window.start.calendar.offset, second.window.start.calendar.offset) == (0, -1)
    assert first.window.start.calendar.unit == second.window.start.calendar.unit == unit
    sql = interpretation_compile(plan.interpretation, catalog=Catalog(LOGISTICS), dialect=dialect).sql
    rows = _sqlite_rows(tmp_path, unit, sql) if dialect == "sqlite" else _server_rows(dialect, unit, sql)
    # Antwerp shipped only before both periods: it is not listed; Hamburg shipped nothing this period.
    assert sorted((city, float(now), float(before)) for city, now, before in rows) == [
        ("Hamburg", 0.0, 3.0),
        ("Rotterdam", 10.0, 12.0),
    ]


def test_the_figures_are_named_after_their_periods():
    plan = _plan("Number of shipments per vehicle, this quarter versus the previous quarter")
    names = [m.id for m in plan.interpretation.measures]
    assert names[0] == "shipment_count_this_quarter"
    assert names[1].startswith("shipment_co") and names[1].endswith("_previous_quarter") and len(names[1]) <= 30


@pytest.mark.parametrize(
    ("requirement", "why"),
    [
        ("Total weight of shipments this month compared with last year", "compare periods of the same length"),
        ("Total weight of shipments this month compared with this month", "compares a period with itself"),
    ],
)
def test_periods_of_different_lengths_or_the_same_period_twice_are_declined(requirement, why):
    with pytest.raises(PlanningError, match=why):
        plan_requirement(requirement=requirement, schema=LOGISTICS, dialect="sqlite")


def test_a_design_that_measures_only_one_of_the_periods_is_refused_by_the_shape_check():
    requirement = "Total weight of shipments this month compared with last month"
    plan = _plan(requirement)
    one = plan.interpretation.model_copy(update={"measures": plan.interpretation.measures[:1]})
    catalog = Catalog(LOGISTICS)
    assert not failed(shape_check(requirement=requirement, interpretation=plan.interpretation, catalog=catalog))
    same = plan.interpretation.measures[0].window
    twice = plan.interpretation.model_copy(
        update={
            "measures": [
                plan.interpretation.measures[0],
                plan.interpretation.measures[1].model_copy(
                    update={"window": same.model_copy(update={"phrase": "compared with last month"})}
                ),
            ]
        }
    )
    for wrong in (one, twice):
        refused = failed(shape_check(requirement=requirement, interpretation=wrong, catalog=catalog))
        assert any("side by side" in f.message for f in refused)


@pytest.mark.parametrize(("requirement", "unit"), WORDINGS)
@pytest.mark.parametrize("engine", ["sqlite", "postgresql", "mysql"])
def test_the_compiled_comparison_passes_the_sql_check_of_every_engine(requirement, unit, engine):
    """Calendar starts use only side-effect-free built-ins (MariaDB's MAKEDATE for a year or a quarter)."""
    schema = {**LOGISTICS, "engine": engine}
    grants = [Grant(o["schema"], o["name"], "table", frozenset({"SELECT"}), None, {}, o) for o in schema["objects"]]
    dialect = {"postgresql": "postgres"}.get(engine, engine)
    sql = interpretation_compile(_plan(requirement).interpretation, catalog=Catalog(schema), dialect=dialect).sql
    check_sql(sql=sql, params={}, schema=schema, grants=grants)
