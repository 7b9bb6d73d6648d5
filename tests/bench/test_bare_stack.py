"""bench.bare_stack answers the bench's query with the rows Nectar and the peers are checked for."""

from __future__ import annotations

import asyncio
import os
import sys

import pytest

_environ = dict(os.environ)
from bench import bench_peers as peers  # noqa: E402

# Importing the bench sets its defaults in the environment; other tests' subprocesses must not inherit them.
os.environ.clear()
os.environ.update(_environ)


@pytest.fixture
def customer_db():
    name = peers._customer_database()
    yield name
    peers._drop_database(name)


@pytest.mark.parametrize("workers", [1, 2])
def test_the_bare_stack_serves_the_20_rows_of_the_bench_query(customer_db, workers):
    port = peers._free_port()
    env = {**os.environ, "BARE_STACK_DSN": f"{peers.PG} dbname={customer_db}"}
    command = [sys.executable, "-m", "bench.bare_stack", "--port", str(port), "--workers", str(workers)]
    servers = peers.Servers()
    try:
        servers.start(command, port=port, what="bench.bare_stack", env=env, cwd=peers.BASE_DIR)
        target = peers.RestTarget("bare", port, "GET", "/rows?region=EU", {})

        async def twice():
            conn, headers = await target.connect()
            try:
                for request_id in (1, 2):  # raises unless 20 EU rows from the first EU id come back
                    await target.call(conn, headers, request_id)
                return await conn.request("GET", "/rows?region=Mars", {})
            finally:
                conn.close()

        status, _, body = asyncio.run(twice())
        assert (status, body) == (200, b'{"results": []}')
    finally:
        servers.stop()
    assert all(process.poll() is not None for process in servers.processes)
