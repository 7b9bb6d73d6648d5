"""The MCP worker pool: bounded threads that reuse their platform connections."""

from __future__ import annotations

import anyio
import pytest
from django.db import connection

from mcpservers.workers import run_in_worker, worker_pool_close

pytestmark = pytest.mark.django_db(transaction=True)


def _backend_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def test_many_concurrent_calls_share_a_bounded_set_of_reused_connections(settings):
    settings.MCP_WORKER_THREADS = 3
    settings.MCP_DB_CONN_MAX_AGE = 60
    worker_pool_close()

    async def scenario():
        pids = []

        async def one():
            pids.append(await run_in_worker(_backend_pid))

        async with anyio.create_task_group() as tg:
            for _ in range(30):
                tg.start_soon(one)
        return pids

    try:
        first, second = anyio.run(scenario), anyio.run(scenario)
        assert len(first) == len(second) == 30
        assert len(set(first)) <= 3
        assert len(set(first) | set(second)) <= 3  # 60 calls, the same few connections, not new ones
    finally:
        worker_pool_close()


def test_a_transaction_left_open_is_not_handed_to_the_next_task(settings):
    settings.MCP_WORKER_THREADS = 1
    worker_pool_close()

    def leave_open() -> int:
        connection.set_autocommit(False)
        return _backend_pid()

    try:
        leaked = anyio.run(run_in_worker, leave_open)
        assert anyio.run(run_in_worker, connection.get_autocommit) is True
        assert anyio.run(run_in_worker, _backend_pid) != leaked
    finally:
        worker_pool_close()
