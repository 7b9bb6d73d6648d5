"""Sakila into PostgreSQL 15 from its own SQL files, copied to SQLite and MariaDB with its rows and keys.

Sakila is the harder of the two for a copy: an enum (mpaa_rating), a domain (year), an array
(special_features), a full-text column and composite primary keys. Each run uses uniquely named
databases and a subset of the tables, dropped at the end.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from bench.datasets import DatasetCopy, copy_database, dataset_drop, load_postgres, unique_name

TABLES = ["language", "actor", "category", "film", "film_actor", "film_category", "country", "city"]
TODAY = date(2026, 12, 1)


@pytest.fixture(scope="module")
def sakila_pg():
    copy = load_postgres(dataset="sakila", database=unique_name("test_sakila"), progress=False, today=TODAY)
    yield copy
    dataset_drop(copy)


@pytest.fixture(params=["sqlite", "mysql"])
def sakila_copy(request, sakila_pg, tmp_path):
    copy = copy_database(
        source_url=sakila_pg.url,
        engine=request.param,
        database=unique_name("test_sakila"),
        fingerprint="test",
        dataset="sakila",
        shift=sakila_pg.shift,
        tables=TABLES,
        directory=tmp_path,
        progress=False,
    )
    yield copy
    dataset_drop(copy)


def _engine(copy: DatasetCopy) -> sa.Engine:
    return sa.create_engine(copy.url, poolclass=sa.NullPool)


def _rows(copy: DatasetCopy, sql: str) -> list[tuple]:
    engine = _engine(copy)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql)).all()]
    finally:
        engine.dispose()


def test_postgres_load_has_sakila_s_rows_with_dates_moved_into_the_last_week(sakila_pg):
    counts = dict(_rows(sakila_pg, "SELECT 'film', count(*) FROM film UNION ALL SELECT 'rental', count(*) FROM rental"))
    assert counts == {"film": 1000, "rental": 16044}
    shift = sakila_pg.shift
    assert shift.mode == "weeks" and shift.days % 7 == 0
    assert 0 <= (TODAY - date.fromisoformat(shift.newest_shifted)).days < 7
    newest = _rows(sakila_pg, "SELECT max(rental_date) FROM rental")[0][0]
    assert newest == datetime(2006, 2, 14, 15, 16, 3) + timedelta(days=shift.days)  # Sakila's last rental


def test_copy_has_the_rows_keys_and_values_of_postgres(sakila_pg, sakila_copy):
    assert set(sakila_copy.tables) == set(TABLES)
    for table in TABLES:
        assert _rows(sakila_copy, f"SELECT count(*) FROM {table}") == _rows(sakila_pg, f"SELECT count(*) FROM {table}")
    engine = _engine(sakila_copy)
    try:
        inspector = sa.inspect(engine)
        assert inspector.get_pk_constraint("film_actor")["constrained_columns"] == ["actor_id", "film_id"]
        foreign = {(tuple(f["constrained_columns"]), f["referred_table"]) for f in inspector.get_foreign_keys("film")}
        assert (("language_id",), "language") in foreign
        assert {f["referred_table"] for f in inspector.get_foreign_keys("film_actor")} == {"actor", "film"}
        assert [f["referred_table"] for f in inspector.get_foreign_keys("city")] == ["country"]
    finally:
        engine.dispose()
    # Enum, domain and array values arrive as plain values, the same on every row.
    sql = "SELECT film_id, rating, release_year, special_features, rental_rate FROM film ORDER BY film_id"
    expected = [
        (i, str(r), int(y), ",".join(f or []), float(p)) for i, r, y, f, p in _rows(sakila_pg, sql)
    ]  # fmt: skip
    got = [(i, r, int(y), f, float(p)) for i, r, y, f, p in _rows(sakila_copy, sql)]
    assert got == expected
    assert _rows(sakila_copy, "SELECT count(*) FROM film_actor fa JOIN actor a ON a.actor_id = fa.actor_id") == [
        (5462,)
    ]
