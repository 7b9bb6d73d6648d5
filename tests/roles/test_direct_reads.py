"""roles.connectors.direct: a read on the loop through psycopg's cursor answers exactly as SQLAlchemy's result does."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from roles import executor
from roles.connectors import direct, read_connection, service_engines, service_engines_close_loop
from roles.connectors.onloop import run_on_loop
from roles.introspection import service_schema
from tests.roles.conftest import customer_url, table_perm

pytestmark = pytest.mark.django_db(transaction=True)

# More of PostgreSQL's types than the shared customers table has.
EXTRA = [
    "CREATE TABLE gauges (id integer PRIMARY KEY, span int4range, host inet, code char(3), ratio real, "
    "doc json, counts integer[], cost money, stamp timestamp, day date)",
    "INSERT INTO gauges VALUES (1, '[1,5)', '10.0.0.1', 'ab', 0.5, '{\"a\": [1, 2]}', '{1,2,3}', 12.5, "
    "'2024-02-29 12:30:00', '2024-02-29'), (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
]


@pytest.fixture
def gauges(pg_service):
    with psycopg.connect(customer_url(pg_service).replace("postgresql+psycopg://", "postgresql://")) as conn:
        for statement in EXTRA:
            conn.execute(statement)
    service_schema(service=pg_service, refresh=True)
    return pg_service


@pytest.fixture
def fetches(monkeypatch):
    calls = []
    fetch = direct._fetch

    async def counted(raw, sql, params, max_rows):
        calls.append(sql)
        return await fetch(raw, sql, params, max_rows)

    monkeypatch.setattr(direct, "_fetch", counted)
    return calls


def _three_times_on_a_loop(read):
    async def scenario():
        try:
            return [await run_on_loop(read) for _ in range(3)]
        finally:
            await service_engines_close_loop()

    return asyncio.run(scenario())


def test_every_column_type_of_a_table_reads_alike_directly_through_sqlalchemy_and_in_a_thread(
    pg_service, make_role, fetches
):
    role = make_role(pg_service, [table_perm("customers", actions=("SELECT",))])
    service_engines(service=pg_service)

    def read(filters):
        return executor.executor_query(role=role, object_name="customers", order_by="id", filters=filters)

    ranged = [{"column": "id", "op": "gte", "value": 1}, {"column": "id", "op": "lte", "value": 3}]
    first, second, third = _three_times_on_a_loop(lambda: read(ranged))
    assert first == second == third == read(ranged)
    assert first.row_count >= 2 and "tags" in first.columns and "session_len" in first.columns
    # The first read of the statement went through SQLAlchemy, which had no row processor: the next ones are direct.
    assert len(fetches) == 2
    listed = {"column": "id", "op": "in", "value": [1, 2, 3]}  # one bound value per item: a statement of its own
    assert _three_times_on_a_loop(lambda: read(listed)) == [first] * 3
    assert len(fetches) == 4


def test_other_postgresql_types_read_alike_directly_through_sqlalchemy_and_in_a_thread(gauges, make_role, fetches):
    role = make_role(gauges, [table_perm("gauges", actions=("SELECT",))])
    service_engines(service=gauges)

    def read():
        return executor.executor_query(role=role, object_name="gauges", order_by="id")

    results = _three_times_on_a_loop(read)
    assert results[0] == results[1] == results[2] == read()
    assert results[0].rows[0]["doc"] == {"a": [1, 2]} and results[0].rows[0]["counts"] == [1, 2, 3]
    assert results[0].rows[1]["host"] is None and "span" in results[0].columns
    assert len(fetches) == 2


def test_a_result_column_sqlalchemy_converts_keeps_the_statement_on_sqlalchemy(pg_service, fetches):
    service_engines(service=pg_service)
    converted = sa.select(sa.literal_column("'{1,2}'::int[]", type_=postgresql.ARRAY(sa.Integer)).label("a"))
    plain = sa.select(sa.literal_column("'{1,2}'::int[]").label("a"))

    def read(statement):
        with read_connection(service=pg_service) as (conn, _):
            keys, rows = direct.read_rows(conn, statement, {})
            return keys, [tuple(row) for row in rows]

    assert _three_times_on_a_loop(lambda: read(converted)) == [(["a"], [([1, 2],)])] * 3
    assert fetches == []  # SQLAlchemy's result has a row processor for the typed array: every read is its own
    assert _three_times_on_a_loop(lambda: read(plain)) == [(["a"], [([1, 2],)])] * 3
    assert len(fetches) == 2


def test_checked_sql_with_its_page_reads_alike_directly(pg_service, make_role, fetches):
    role = make_role(pg_service, [table_perm("customers", actions=("SELECT",))])
    service_engines(service=pg_service)
    checked = executor.sql_check(
        role=role, sql="SELECT id, name, balance FROM customers WHERE region = :region ORDER BY id", params=None
    )

    def read():
        return executor.executor_run_checked(role=role, checked=checked, params={"region": "EU"}, limit=1)

    results = _three_times_on_a_loop(read)
    assert results[0] == results[1] == results[2] == read()
    assert results[0].row_count == 1 and results[0].truncated  # one row asked for, one more fetched
    assert len(fetches) == 2


def test_a_driver_error_on_the_direct_way_is_sqlalchemy_s(pg_service, make_role, fetches):
    role = make_role(pg_service, [table_perm("customers", actions=("SELECT",))])
    service_engines(service=pg_service)
    checked = executor.sql_check(role=role, sql="SELECT id FROM customers WHERE id = 1 / :d", params=None)

    def read(d):
        return executor.executor_run_checked(role=role, checked=checked, params={"d": d})

    def refused():
        try:
            read(0)
        except executor.ExecutorError as exc:  # caught inside the call on the loop, as a tool call does
            return exc

    async def scenario():
        try:
            await run_on_loop(read, d=1)  # through SQLAlchemy; the next read is direct
            return await run_on_loop(refused)
        finally:
            await service_engines_close_loop()

    on_the_loop = asyncio.run(scenario())
    with pytest.raises(executor.ExecutorError) as in_a_thread:
        read(0)
    assert len(fetches) == 1
    assert (on_the_loop.code, str(on_the_loop)) == (in_a_thread.value.code, str(in_a_thread.value))


def test_a_statement_with_bind_processors_is_never_read_directly(pg_service):
    dialect = service_engines(service=pg_service).read.dialect
    table = sa.table("t", sa.column("doc", sa.JSON))
    with_processor = sa.select(table).where(table.c.doc == sa.bindparam("doc", type_=sa.JSON))
    assert direct._plan(with_processor, dialect) is None
    expanding = sa.select(table).where(table.c.doc.in_(sa.bindparam("ids", expanding=True)))
    assert direct._plan(expanding, dialect) is None
    assert direct._plan(sa.select(table).where(sa.column("id") == sa.bindparam("id", type_=sa.Integer)), dialect)
