"""The benchmark's dataset loader: Northwind into PostgreSQL 15 from its SQL file, copied to SQLite and MariaDB.

Each run uses uniquely named databases (dropped at the end) and a subset of Northwind's tables,
so the copies stay small and fast.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from bench.datasets import (
    DatasetCopy,
    DatasetError,
    copy_database,
    dataset_drop,
    date_shift_for,
    load_postgres,
    shift_value,
    unique_name,
    view_sql_for,
)

TABLES = ["customers", "employees", "shippers", "orders"]
TODAY = date(2026, 12, 1)


@pytest.fixture(scope="module")
def northwind_pg():
    copy = load_postgres(dataset="northwind", database=unique_name("test_northwind"), progress=False, today=TODAY)
    yield copy
    dataset_drop(copy)


def _copy(source: DatasetCopy, engine: str, tmp_path, *, database: str, tables=TABLES) -> DatasetCopy:
    return copy_database(
        source_url=source.url,
        engine=engine,
        database=database,
        fingerprint="test",
        dataset="northwind",
        shift=source.shift,
        tables=tables,
        directory=tmp_path,
        progress=False,
    )


@pytest.fixture(params=["sqlite", "mysql"])
def northwind_copy(request, northwind_pg, tmp_path):
    copy = _copy(northwind_pg, request.param, tmp_path, database=unique_name("test_northwind"))
    yield copy
    dataset_drop(copy)


def _scalar(copy: DatasetCopy, sql: str):
    engine = sa.create_engine(copy.url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def test_postgres_load_moves_the_newest_date_into_the_last_week_keeping_weekdays(northwind_pg):
    shift = northwind_pg.shift
    assert shift.mode == "weeks" and shift.days % 7 == 0
    newest = date.fromisoformat(shift.newest_shifted)
    assert TODAY - timedelta(days=7) < newest <= TODAY
    first_order = _scalar(northwind_pg, "SELECT min(order_date) FROM orders")
    assert first_order == date(1996, 7, 4) + timedelta(days=shift.days)
    assert first_order.weekday() == date(1996, 7, 4).weekday()
    assert "weekdays kept" in northwind_pg.shift_text and shift.newest_shifted in northwind_pg.shift_text


def test_postgres_load_is_reused_when_nothing_changed(northwind_pg):
    again = load_postgres(dataset="northwind", database=northwind_pg.database, progress=False, today=TODAY)
    assert again.reused and again.shift == northwind_pg.shift
    assert _scalar(again, "SELECT count(*) FROM orders") == 830


def test_postgres_load_is_rebuilt_when_the_wanted_shift_changes(northwind_pg):
    moved = load_postgres(
        dataset="northwind", database=northwind_pg.database, progress=False, today=TODAY + timedelta(days=7)
    )
    try:
        assert not moved.reused and moved.shift.days == northwind_pg.shift.days + 7
    finally:
        load_postgres(dataset="northwind", database=northwind_pg.database, progress=False, today=TODAY)


def test_copy_has_the_rows_keys_and_dates_of_postgres(northwind_pg, northwind_copy):
    assert set(northwind_copy.tables) == set(TABLES)
    for table in TABLES:
        expected = _scalar(northwind_pg, f"SELECT count(*) FROM {table}")
        assert _scalar(northwind_copy, f"SELECT count(*) FROM {table}") == expected
    newest = _scalar(northwind_copy, "SELECT max(order_date) FROM orders")
    assert str(newest)[:10] == _scalar(northwind_pg, "SELECT max(order_date) FROM orders").isoformat()
    engine = sa.create_engine(northwind_copy.url, poolclass=sa.NullPool)
    try:
        inspector = sa.inspect(engine)
        assert inspector.get_pk_constraint("orders")["constrained_columns"] == ["order_id"]
        foreign = {(tuple(f["constrained_columns"]), f["referred_table"]) for f in inspector.get_foreign_keys("orders")}
        assert foreign == {
            (("customer_id",), "customers"),
            (("employee_id",), "employees"),
            (("ship_via",), "shippers"),
        }
        self_reference = inspector.get_foreign_keys("employees")
        assert [(f["constrained_columns"], f["referred_table"]) for f in self_reference] == [
            (["reports_to"], "employees")
        ]
        types = {c["name"]: c["type"] for c in inspector.get_columns("orders")}
        assert isinstance(types["order_date"], sa.Date) and isinstance(types["freight"], sa.Float)
    finally:
        engine.dispose()
    assert northwind_copy.shift == northwind_pg.shift


def test_copy_is_reused_while_unchanged_and_rebuilt_for_other_tables(northwind_pg, northwind_copy, tmp_path):
    again = _copy(northwind_pg, northwind_copy.engine, tmp_path, database=_name_of(northwind_copy))
    assert again.reused
    fewer = _copy(northwind_pg, northwind_copy.engine, tmp_path, database=_name_of(northwind_copy), tables=["shippers"])
    assert not fewer.reused and fewer.tables == ("shippers",)


def _name_of(copy: DatasetCopy) -> str:
    return copy.database if copy.engine != "sqlite" else copy.database.rsplit("/", 1)[-1].removesuffix(".sqlite3")


def test_views_that_translate_are_kept_and_the_others_listed(northwind_pg, tmp_path):
    engine = sa.create_engine(northwind_pg.url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE OR REPLACE VIEW uk_or_us_orders AS SELECT order_id, ship_country FROM orders "
                             "WHERE ship_country IN ('UK', 'USA')"))  # fmt: skip
        conn.execute(sa.text("CREATE OR REPLACE VIEW order_weekdays AS SELECT order_id, "
                             "to_char(order_date, 'FMDay') AS weekday FROM orders"))  # fmt: skip
    engine.dispose()
    copy = _copy(northwind_pg, "sqlite", tmp_path, database=unique_name("test_views"))
    try:
        assert copy.views == ("uk_or_us_orders",)
        assert any(line.startswith("view order_weekdays: ") for line in copy.skipped)
        assert _scalar(copy, "SELECT count(*) FROM uk_or_us_orders") == _scalar(
            northwind_pg, "SELECT count(*) FROM uk_or_us_orders"
        )
    finally:
        dataset_drop(copy)


def test_view_translation_turns_any_array_back_into_in_and_drops_enum_casts():
    definition = "SELECT id FROM t WHERE (status = ANY (ARRAY['paid'::order_status, 'shipped'::order_status]))"
    assert "IN ('paid', 'shipped')" in view_sql_for(definition, "mysql")
    assert "order_status" not in view_sql_for(definition, "sqlite")


def test_unknown_dataset_engine_or_name_is_refused_with_a_clear_message(northwind_pg, tmp_path):
    with pytest.raises(DatasetError, match="unknown dataset 'chinook'"):
        load_postgres(dataset="chinook", progress=False)
    with pytest.raises(DatasetError, match="database name"):
        load_postgres(dataset="northwind", database="Robert'); DROP", progress=False)
    with pytest.raises(DatasetError, match="no table"):
        _copy(northwind_pg, "sqlite", tmp_path, database=unique_name("t"), tables=["nope"])


def test_week_shift_keeps_weekdays_and_year_shift_keeps_calendar_dates():
    weeks = date_shift_for(mode="weeks", newest=date(2005, 8, 23), today=TODAY)
    assert weeks.days % 7 == 0 and 0 <= (TODAY - shift_value(date(2005, 8, 23), weeks)).days < 7
    years = date_shift_for(mode="years", newest=date(2005, 8, 23), today=TODAY)
    assert years.years == 21 and shift_value(date(2005, 8, 23), years) == date(2026, 8, 23)
    assert shift_value(date(2004, 2, 29), years) == date(2025, 2, 28)
    assert shift_value(datetime(2005, 1, 1, 12, 30), weeks).time() == datetime(2005, 1, 1, 12, 30).time()
    assert date_shift_for(mode="none", newest=date(2005, 8, 23), today=TODAY).days == 0
    with pytest.raises(DatasetError, match="shift must be one of"):
        date_shift_for(mode="months", newest=date(2005, 8, 23), today=TODAY)
