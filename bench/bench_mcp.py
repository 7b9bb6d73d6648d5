"""MCP tool-call latency and throughput over Streamable HTTP, beside the same query run through psycopg.

    python -m bench.bench_mcp [--calls 400] [--clients 1,16]

Creates a throwaway platform database (migrated) and a PostgreSQL 15 customer database with
10 000 customers, enables MCP for a Role, starts daphne (the production ASGI server) on a free
port, then calls query_customers with the official MCP client from 1 and 16 concurrent clients.
The floor is the same SELECT through psycopg with one connection per client.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nectar.settings")
# A platform database of the bench's own, never another run's (create_test_db clobbers its target).
os.environ.setdefault("NECTAR_TEST_DATABASE_NAME", f"test_nectar_bench_mcp_{os.getpid()}")

import django

django.setup()

import anyio  # noqa: E402
import httpx2  # noqa: E402
import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from mcp import Client  # noqa: E402
from mcp.client.streamable_http import streamable_http_client  # noqa: E402

BASE_DIR = Path(__file__).resolve().parent.parent
PG = "host=127.0.0.1 port=5432 user=postgres"
FLOOR_SQL = "SELECT id, name, region, balance FROM customers WHERE region = %s ORDER BY id LIMIT 10"
ARGUMENTS = {"columns": ["id", "name", "region", "balance"], "filters": {"region": "EU"}, "order_by": "id", "limit": 10}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _customer_database() -> str:
    name = f"nectar_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{PG} dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(f"{PG} dbname={name}") as conn:
        conn.execute(
            "CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, region text NOT NULL, "
            "balance numeric(12,2) DEFAULT 0)"
        )
        conn.execute(
            "INSERT INTO customers (name, region, balance) SELECT 'customer ' || g, "
            "(ARRAY['EU','US','APAC'])[1 + g % 3], g % 1000 FROM generate_series(1, 10000) g"
        )
        conn.execute("CREATE INDEX customers_region ON customers (region, id)")
    return name


def _drop_database(name: str) -> None:
    with psycopg.connect(f"{PG} dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _summary(latencies_ms: list[float], seconds: float) -> tuple[float, float, float]:
    ordered = sorted(latencies_ms) or [float("nan")]
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return p50, p99, len(ordered) / seconds


async def _mcp_run(url: str, secret: str, clients: int, calls: int) -> tuple[list[float], float, list[str]]:
    latencies: list[float] = []
    errors: list[str] = []
    per_client = max(1, calls // clients)

    async def one_client():
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}"})
        async with http, Client(streamable_http_client(url, http_client=http)) as client:
            await client.list_tools()
            await client.call_tool("query_customers", ARGUMENTS)  # warm-up
            ready.set()
            await start.wait()
            for _ in range(per_client):
                began = time.perf_counter()
                try:
                    result = await client.call_tool("query_customers", ARGUMENTS)
                except Exception as exc:  # a protocol error (e.g. "Internal server error"): count it, go on
                    errors.append(str(exc))
                    continue
                latencies.append((time.perf_counter() - began) * 1000)
                if result.is_error:
                    errors.append(result.content[0].text)

    start = anyio.Event()
    ready = anyio.Event()
    async with anyio.create_task_group() as tg:
        for _ in range(clients):
            tg.start_soon(one_client)
        await ready.wait()
        await anyio.sleep(0.5)  # let every client finish its warm-up
        began = time.perf_counter()
        start.set()
    return latencies, time.perf_counter() - began, errors


def _floor_run(database: str, clients: int, calls: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = max(1, calls // clients)
    barrier = threading.Barrier(clients + 1)

    def worker():
        with psycopg.connect(f"{PG} dbname={database}") as conn:
            conn.execute(FLOOR_SQL, ("EU",)).fetchall()
            barrier.wait()
            local = []
            for _ in range(per_client):
                began = time.perf_counter()
                conn.execute(FLOOR_SQL, ("EU",)).fetchall()
                local.append((time.perf_counter() - began) * 1000)
            with lock:
                latencies.extend(local)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    return latencies, time.perf_counter() - began


def main() -> None:
    for noisy in ("httpx", "httpx2", "mcp"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=400, help="tool calls per run")
    parser.add_argument("--clients", default="1,16", help="comma-separated client counts")
    args = parser.parse_args()
    client_counts = [int(c) for c in args.clients.split(",")]

    print("Setting up: throwaway platform database, customer database, daphne ...", flush=True)
    platform_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    customer_db = _customer_database()
    server = None
    try:
        from roles.models import Organization, Role, RoleApiKey, Service

        org = Organization.objects.create(name="Bench", slug="bench")
        service = Service.objects.create(
            organization=org,
            name="bench",
            engine="postgresql",
            host="127.0.0.1",
            port=5432,
            database=customer_db,
            username="postgres",
        )
        role = Role.objects.create(
            organization=org,
            service=service,
            name="Bench reader",
            mcp_enabled=True,
            permissions=[
                {"objectName": "customers", "schema": "public", "path": "/table/customers", "actions": ["SELECT"]}
            ],
        )
        role.refresh_from_db()
        instance = role.mcp_instance
        _, secret = RoleApiKey.issue(role=role, name="bench")

        port = _free_port()
        parts = urlsplit(settings.DATABASE_URL)
        env = {
            **os.environ,
            "DATABASE_URL": urlunsplit(parts._replace(path=f"/{platform_name}")),
            "DB_CONN_MAX_AGE": os.environ.get("DB_CONN_MAX_AGE", "60"),
            "LOG_LEVEL": "WARNING",
        }
        server = subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "nectar.asgi:application"],
            cwd=BASE_DIR,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "w"),  # noqa: SIM115
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("daphne did not start") from None
                time.sleep(0.2)
        url = f"http://127.0.0.1:{port}/mcp/{instance.id}/"

        rows = []
        for clients in client_counts:
            latencies, seconds, errors = anyio.run(_mcp_run, url, secret, clients, args.calls)
            rows.append(("MCP query_customers (HTTP)", clients, *_summary(latencies, seconds), len(errors)))
            for message in sorted(set(errors))[:3]:
                print(f"  {clients} clients: error {message!r} x{errors.count(message)}")
            latencies, seconds = _floor_run(customer_db, clients, args.calls)
            rows.append(("psycopg SELECT (floor)", clients, *_summary(latencies, seconds), 0))

        print(f"\n{args.calls} calls per run; 10 rows of 10 000; DB_CONN_MAX_AGE={env['DB_CONN_MAX_AGE']}")
        print(f"{'path':<28}{'clients':>8}{'p50 ms':>10}{'p99 ms':>10}{'calls/s':>10}{'errors':>8}")
        for name, clients, p50, p99, rate, failed in rows:
            print(f"{name:<28}{clients:>8}{p50:>10.2f}{p99:>10.2f}{rate:>10.0f}{failed:>8}")
    finally:
        if server is not None:
            server.terminate()
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
        from roles.connectors import service_engines_dispose
        from roles.models import Service

        for service in Service.objects.all():
            service_engines_dispose(service=service)
        connection.creation.destroy_test_db(platform_name, verbosity=0)
        _drop_database(customer_db)


if __name__ == "__main__":
    main()
