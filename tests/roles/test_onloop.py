"""Reads on the event loop (roles.connectors.onloop): PostgreSQL's asyncio pool, and refusals of what would block."""

from __future__ import annotations

import asyncio
import threading

import pytest

from mcpservers import limits
from roles import executor
from roles.connectors import read_connection, service_engines, service_engines_close_loop, write_connection
from roles.connectors.onloop import BlockingOnLoop, on_loop, run_on_loop
from roles.models import Service
from tests.roles.conftest import table_perm

pytestmark = pytest.mark.django_db(transaction=True)


def _on_a_loop(function, **kwargs):
    """function(**kwargs) through run_on_loop on a fresh event loop, its pools closed afterwards."""

    async def scenario():
        try:
            return await run_on_loop(function, **kwargs)
        finally:
            await service_engines_close_loop()

    return asyncio.run(scenario())


def test_a_postgresql_read_runs_on_the_loops_thread_through_its_asyncio_pool(pg_service, make_role):
    role = make_role(pg_service, [table_perm("customers", actions=("SELECT",))])
    service_engines(service=pg_service)  # a Service's pools are made off the loop (its target check resolves names)
    seen = {}

    def read():
        seen["thread"], seen["on_loop"] = threading.get_ident(), on_loop()
        result = executor.executor_query(role=role, object_name="customers", order_by="id", limit=2)
        seen["engines"] = service_engines(service=pg_service).loop_engines
        return result

    async def scenario():
        seen["loop_thread"] = threading.get_ident()
        try:
            return await run_on_loop(read)
        finally:
            await service_engines_close_loop()

    result = asyncio.run(scenario())
    assert [row["id"] for row in result.rows] == [1, 2]
    assert seen["on_loop"] and seen["thread"] == seen["loop_thread"]
    assert len(seen["engines"]) == 0  # closed with its loop
    assert not on_loop()


def test_the_same_read_answers_alike_on_the_loop_and_in_a_thread(pg_service, make_role):
    role = make_role(pg_service, [table_perm("customers", actions=("SELECT",))])
    service_engines(service=pg_service)
    filters = {
        "or": [
            {"column": "id", "op": "in", "value": [1, 2, 99]},
            {
                "and": [
                    {"column": "balance", "op": "gt", "value": "20"},
                    {"column": "created_at", "op": "gte", "value": "2024-04-01T00:00:00"},
                ]
            },
        ]
    }
    arguments = {"filters": filters, "order_by": "id"}

    def read():
        return executor.executor_query(role=role, object_name="customers", include_total=True, **arguments)

    on_the_loop = _on_a_loop(read)
    assert on_the_loop == read()
    assert on_the_loop.row_count >= 2 and on_the_loop.total == on_the_loop.row_count


@pytest.mark.parametrize("engine", ["mysql", "sqlite"])
def test_a_read_of_a_database_without_an_asyncio_driver_is_refused_on_the_loop(engine, request, make_role):
    service = request.getfixturevalue({"mysql": "my_service", "sqlite": "sqlite_service"}[engine])
    role = make_role(service, [table_perm("customers", actions=("SELECT",))])
    service_engines(service=service)
    with pytest.raises(BlockingOnLoop):
        _on_a_loop(executor.executor_query, role=role, object_name="customers")
    assert executor.executor_query(role=role, object_name="customers", limit=1).row_count == 1  # in a thread


def test_writes_transactions_and_new_pools_are_refused_on_the_loop(pg_service):
    service_engines(service=pg_service)

    def write():
        with write_connection(service=pg_service):
            raise AssertionError("a write must not start on the loop")

    def several_statements():
        with read_connection(service=pg_service, transaction=True):
            raise AssertionError("a multi-statement read must not start on the loop")

    for work in (write, several_statements):
        with pytest.raises(BlockingOnLoop):
            _on_a_loop(work)
    edited = Service.objects.get(pk=pg_service.pk)
    edited.save()  # a new updated_at: its pools are rebuilt on next use, which is not done on the loop
    with pytest.raises(BlockingOnLoop):
        _on_a_loop(service_engines, service=edited)


def test_a_platform_query_on_the_loop_is_refused_before_it_runs(org):
    with pytest.raises(BlockingOnLoop) as refused:
        _on_a_loop(lambda: Service.objects.filter(organization=org).count())
    assert type(refused.value.__cause__).__name__ == "SynchronousOnlyOperation"


def test_a_rate_limit_lease_is_taken_off_the_loop_and_spent_on_it(settings):
    settings.REDIS_URL = ""
    rate = limits.Rate(100, 60)
    with pytest.raises(BlockingOnLoop):
        _on_a_loop(limits.take, bucket="onloop-test", rate=rate)  # no lease yet: the shared counter is not asked
    assert limits.take("onloop-test", rate)[0]  # a lease of two calls, one spent (in a thread)
    assert _on_a_loop(limits.take, bucket="onloop-test", rate=rate)[0]  # the other, spent on the loop


def test_a_read_on_the_loop_survives_a_connection_the_server_closed(pg_service, make_role):
    import psycopg

    from tests.roles.conftest import customer_url

    role = make_role(pg_service, [table_perm("customers", actions=("SELECT",))])
    service_engines(service=pg_service)

    def read():
        return executor.executor_query(role=role, object_name="customers", order_by="id", limit=1).rows

    def backends() -> list[int]:
        with read_connection(service=pg_service) as (conn, _):
            return [row[0] for row in conn.exec_driver_sql("SELECT pg_backend_pid()")]

    async def scenario():
        try:
            first = await run_on_loop(read)
            pid = (await run_on_loop(backends))[0]  # the loop pool's one connection
            dsn = customer_url(pg_service).replace("postgresql+psycopg://", "postgresql://")
            with psycopg.connect(dsn, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            again = await run_on_loop(read)  # the dead connection fails; the read is retried on a new one
            return first, again, (await run_on_loop(backends))[0] != pid
        finally:
            await service_engines_close_loop()

    first, again, replaced = asyncio.run(scenario())
    assert first == again and len(first) == 1
    assert replaced
