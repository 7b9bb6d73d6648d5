"""Nectar's MCP tools and generated endpoints beside MCP Toolbox and DBHub, on the same data and query.

    python -m bench.bench_peers [--seconds 5] [--rounds 3] [--workers 2] [--only nectar,toolbox,dbhub,bare]

The peers come from the npm registry (`@toolbox-sdk/server`, which ships a Go binary, and
`@bytebase/dbhub`); they are installed into bench/.peers/ on first use (not committed), which
this script says when it does. Everything runs on this machine against the local PostgreSQL:

- a customer database of 10 000 customers, the same for every server;
- the same 20-row query: customers of region EU ordered by id, 20 rows (Nectar: query_customers
  with a filter, the Role's checks applied; Toolbox: a postgres-sql tool; DBHub: execute_sql);
- Nectar in its documented production layout: `python -m nectar.webserver --workers N` (uvicorn
  with N worker processes on one port) serving nectar.asgi (key, Role, permissions, row filters,
  audit, rate limits all on);
- a raw JSON-RPC client over Streamable HTTP (keep-alive HTTP/1.1 on asyncio streams, cheap
  enough not to be the bottleneck), at 1 and 16 connections, rounds interleaved across servers;
  every answer is checked for its 20 rows;
- generated endpoints (GET /api/v1/x/...) beside Toolbox's REST invoke (--enable-api);
- a direct psycopg query as the floor;
- the bare Python stack (bench.bare_stack): the same web server, driver and query with no check at
  all, what that stack costs by itself.

It prints medians over the rounds and the ratios to Toolbox and to the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nectar.settings")
os.environ.setdefault("NECTAR_TEST_DATABASE_NAME", f"test_nectar_bench_peers_{os.getpid()}")
# The bench's customer database is the local PostgreSQL, which Services may reach only when listed.
os.environ.setdefault("NECTAR_SERVICE_ALLOWED_HOSTS", "127.0.0.1")

import django

django.setup()

import psycopg  # noqa: E402
from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402

BASE_DIR = Path(__file__).resolve().parent.parent
PEERS_DIR = BASE_DIR / "bench" / ".peers"
PEER_PACKAGES = ["@toolbox-sdk/server@1.12.0", "@bytebase/dbhub@1.4.0"]
PG = "host=127.0.0.1 port=5432 user=postgres"
SQL = "SELECT id, name, region, balance FROM customers WHERE region = %s ORDER BY id LIMIT 20"
ROWS = 20
FIRST_ID = 3  # region EU is g % 3 == 0


# --- Setup --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_port(port: int, process: subprocess.Popen, what: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(f"{what} exited with status {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(0.2)


def _customer_database() -> str:
    name = f"nectar_peers_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{PG} dbname=postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(f"{PG} dbname={name}") as conn:
        conn.execute(
            "CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, region text NOT NULL, "
            "balance numeric(12,2) DEFAULT 0, email text)"
        )
        conn.execute(
            "INSERT INTO customers (name, region, balance, email) SELECT 'customer ' || g, "
            "(ARRAY['EU','US','APAC'])[1 + g % 3], g % 1000, 'c' || g || '@example.com' "
            "FROM generate_series(1, 10000) g"
        )
        conn.execute("CREATE INDEX customers_region ON customers (region, id)")
        conn.execute("ANALYZE customers")
    return name


def _drop_database(name: str) -> None:
    with psycopg.connect(f"{PG} dbname=postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _drop_platform_database(name: str) -> None:
    """The throwaway platform database, also while the in-process measurements' threads (audit flusher,
    invalidation listener, MCP workers) still hold connections to it."""
    from nectar import invalidation

    invalidation.stop_listening()  # it would reconnect to the database being dropped
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**{**params, "dbname": "postgres"}, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _ensure_peers() -> dict[str, Path]:
    bins = {
        "toolbox": PEERS_DIR / "node_modules" / ".bin" / "toolbox",
        "dbhub": PEERS_DIR / "node_modules" / ".bin" / "dbhub",
    }
    if not all(path.exists() for path in bins.values()):
        print(f"Installing the peers from the npm registry into {PEERS_DIR} (first use): {', '.join(PEER_PACKAGES)}")
        PEERS_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(PEERS_DIR), *PEER_PACKAGES], check=True
        )
    return bins


class Servers:
    def __init__(self):
        self.processes: list[subprocess.Popen] = []

    def start(self, command: list[str], *, port: int, what: str, env: dict | None = None, cwd=None) -> None:
        log = open(os.environ.get("BENCH_SERVER_LOG", os.devnull), "a")  # noqa: SIM115
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=log, start_new_session=True)
        process.port = port
        self.processes.append(process)
        _wait_port(port, process, what)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, 15)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)


# --- A lean HTTP/1.1 keep-alive client ----------------------------------------------------------


class HttpConnection:
    def __init__(self, port: int):
        self.port = port
        self.reader = self.writer = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)

    async def request(self, method: str, path: str, headers: dict, body: bytes = b"") -> tuple[int, dict, bytes]:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{self.port}", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        response_headers = {}
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            response_headers[name.strip().lower()] = value.strip()
        if "content-length" in response_headers:
            data = await self.reader.readexactly(int(response_headers["content-length"]))
        elif response_headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readline()).strip().split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            data = b"".join(parts)
        else:
            data = await self.reader.read()
        return status, response_headers, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _json_of(headers: dict, data: bytes):
    if headers.get("content-type", "").startswith("text/event-stream"):
        for line in data.decode().splitlines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if "result" in message or "error" in message:
                    return message
        raise ValueError("no JSON-RPC answer in the event stream")
    return json.loads(data)


class McpTarget:
    """One MCP server: how to call the 20-row tool and where its rows are in the answer."""

    def __init__(self, name: str, port: int, path: str, tool: str, arguments: dict, headers: dict | None = None):
        self.name, self.port, self.path, self.tool, self.arguments = name, port, path, tool, arguments
        self.headers = headers or {}

    async def connect(self) -> tuple[HttpConnection, dict]:
        conn = HttpConnection(self.port)
        await conn.open()
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            **self.headers,
        }
        init = {
            "jsonrpc": "2.0",
            "id": 0,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "bench", "version": "1"},
            },
        }
        status, response_headers, data = await conn.request("POST", self.path, headers, json.dumps(init).encode())
        if status != 200:
            raise RuntimeError(f"{self.name}: initialize answered {status}: {data[:200]!r}")
        session = response_headers.get("mcp-session-id")
        headers["MCP-Protocol-Version"] = _json_of(response_headers, data)["result"].get(
            "protocolVersion", "2025-06-18"
        )
        if session:
            headers["Mcp-Session-Id"] = session
        note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
        await conn.request("POST", self.path, headers, json.dumps(note).encode())
        return conn, headers

    async def call(self, conn: HttpConnection, headers: dict, request_id: int) -> None:
        body = {
            "jsonrpc": "2.0",
            "id": request_id,
            "method": "tools/call",
            "params": {"name": self.tool, "arguments": self.arguments},
        }
        status, response_headers, data = await conn.request("POST", self.path, headers, json.dumps(body).encode())
        if status != 200:
            raise RuntimeError(f"{self.name}: HTTP {status}: {data[:200]!r}")
        check_rows(self.name, rows_of_tool_result(_json_of(response_headers, data)))


def rows_of_tool_result(message: dict) -> list:
    if "error" in message:
        raise RuntimeError(f"JSON-RPC error {message['error']}")
    result = message["result"]
    if result.get("isError"):
        raise RuntimeError(f"tool error: {result.get('content')}")
    structured = result.get("structuredContent")
    if isinstance(structured, dict) and isinstance(structured.get("rows"), list):
        return structured["rows"]
    texts = [c.get("text", "") for c in result.get("content") or [] if c.get("type") == "text"]
    rows = []
    for text in texts:
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError:
            continue
        rows.extend(_find_rows(parsed))
    return rows


def _find_rows(value) -> list:
    if isinstance(value, list):
        if value and all(isinstance(v, dict) and "id" in v for v in value):
            return value
        return [row for v in value for row in _find_rows(v)]
    if isinstance(value, dict):
        if "id" in value and "region" in value:
            return [value]
        return [row for v in value.values() for row in _find_rows(v)]
    return []


def check_rows(what: str, rows: list) -> None:
    if len(rows) != ROWS or int(rows[0]["id"]) != FIRST_ID or any(r["region"] != "EU" for r in rows):
        raise RuntimeError(
            f"{what}: expected {ROWS} EU rows from id {FIRST_ID}, got {rows[:2]!r}... ({len(rows)} rows)"
        )


class RestTarget:
    def __init__(self, name: str, port: int, method: str, path: str, headers: dict, body: bytes = b""):
        self.name, self.port, self.method, self.path, self.headers, self.body = name, port, method, path, headers, body

    async def connect(self):
        conn = HttpConnection(self.port)
        await conn.open()
        return conn, self.headers

    async def call(self, conn: HttpConnection, headers: dict, request_id: int) -> None:
        status, _, data = await conn.request(self.method, self.path, headers, self.body)
        if status != 200:
            raise RuntimeError(f"{self.name}: HTTP {status}: {data[:200]!r}")
        payload = json.loads(data)
        rows = payload.get("results") if isinstance(payload, dict) and "results" in payload else _find_rows(payload)
        if isinstance(payload, dict) and isinstance(payload.get("result"), str):
            rows = _find_rows(json.loads(payload["result"]))
        check_rows(self.name, rows)


async def _drive(target, connections: int, seconds: float) -> tuple[list[float], float]:
    opened = [await target.connect() for _ in range(connections)]
    for conn, headers in opened:  # warm-up
        await target.call(conn, headers, 1)
    latencies: list[float] = []
    stop_at = time.perf_counter() + seconds

    async def loop(conn, headers):
        request_id = 2
        while time.perf_counter() < stop_at:
            began = time.perf_counter()
            await target.call(conn, headers, request_id)
            latencies.append((time.perf_counter() - began) * 1000)
            request_id += 1

    began = time.perf_counter()
    await asyncio.gather(*(loop(conn, headers) for conn, headers in opened))
    elapsed = time.perf_counter() - began
    for conn, _ in opened:
        conn.close()
    return latencies, elapsed


def _cpu_seconds(pid: int | None) -> float:
    """User + system CPU of a server process and its children (its worker processes)."""
    if pid is None:
        return 0.0
    import psutil

    try:
        root = psutil.Process(pid)
        total = 0.0
        for process in [root, *root.children(recursive=True)]:
            times = process.cpu_times()
            total += times.user + times.system
        return total
    except psutil.Error:
        return 0.0


def measure(target, connections: int, seconds: float) -> tuple[float, float, float]:
    """(calls/s, p50 ms, server CPU ms per call)."""
    pid = getattr(target, "server_pid", None)
    before = _cpu_seconds(pid)
    latencies, elapsed = asyncio.run(_drive(target, connections, seconds))
    cpu = (_cpu_seconds(pid) - before) * 1000 / max(1, len(latencies) + connections)
    return len(latencies) / elapsed, statistics.median(latencies), cpu


def floor_p50(database: str, calls: int = 2000) -> float:
    with psycopg.connect(f"{PG} dbname={database}") as conn:
        conn.execute(SQL, ("EU",)).fetchall()
        latencies = []
        for _ in range(calls):
            began = time.perf_counter()
            rows = conn.execute(SQL, ("EU",)).fetchall()
            latencies.append((time.perf_counter() - began) * 1000)
            assert len(rows) == ROWS
    return statistics.median(latencies)


# --- Nectar ---------------------------------------------------------------------------------------


def _nectar_setup(customer_db: str) -> dict:
    from endpoints.models import EndpointStatus, GeneratedEndpoint
    from endpoints.runtime import endpoint_checked_for_calls
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
            {
                "objectName": "customers",
                "schema": "public",
                "path": "/table/customers",
                "actions": ["SELECT"],
                "columns": {"deny": ["email"]},
            }
        ],
    )
    role.refresh_from_db()
    _, secret = RoleApiKey.issue(role=role, name="bench")
    endpoint = GeneratedEndpoint.objects.create(
        organization=org,
        role=role,
        method="GET",
        slug="eu-customers",
        version=1,
        parameters={"type": "object", "properties": {"region": {"type": "string"}}, "required": ["region"]},
        sql="SELECT id, name, region, balance FROM customers WHERE region = :region ORDER BY id LIMIT 20",
        status=EndpointStatus.DEPLOYED,
    )
    # As endpoint_deploy does: the SQL checked now and kept on the row, so calls run it without parsing.
    endpoint.checked_sql = endpoint_checked_for_calls(endpoint=endpoint)
    endpoint.save(update_fields=["checked_sql"])
    return {"instance": role.mcp_instance, "secret": secret}


def compact_mode_timings(customer_db: str, tables: int, calls: int = 30) -> dict[str, float]:
    """search_tools, describe_tool and call_tool on a Role granted `tables` tables (compact mode), in process."""
    from mcpservers.audit import audit_flush
    from mcpservers.services import instance_authorize_cached, tool_call
    from roles.models import Organization, Role, RoleApiKey, Service

    with psycopg.connect(f"{PG} dbname={customer_db}", autocommit=True) as conn:
        for i in range(tables):
            conn.execute(
                f"CREATE TABLE wide_{i} (id int PRIMARY KEY, name text NOT NULL, region text, amount numeric(10,2), "
                f"placed_at timestamptz, note text)"
            )
            conn.execute(f"INSERT INTO wide_{i} SELECT g, 'n' || g, 'EU', g, now(), NULL FROM generate_series(1, 20) g")
    org = Organization.objects.create(name="Wide", slug="wide")
    service = Service.objects.create(
        organization=org,
        name="wide",
        engine="postgresql",
        host="127.0.0.1",
        port=5432,
        database=customer_db,
        username="postgres",
    )
    permissions = [
        {"objectName": f"wide_{i}", "schema": "public", "path": f"/table/wide_{i}", "actions": ["SELECT"]}
        for i in range(tables)
    ]
    role = Role.objects.create(
        organization=org, service=service, name="Wide reader", mcp_enabled=True, permissions=permissions
    )
    role.refresh_from_db()
    _, secret = RoleApiKey.issue(role=role, name="wide")
    instance_id = str(role.mcp_instance.pk)
    requests = {
        "search_tools": {"query": "wide_42 query", "limit": 10},
        "describe_tool": {"name": "query_wide_42"},
        "call_tool": {"name": "query_wide_42", "arguments": {"filters": {"region": "EU"}, "limit": 5}},
    }
    timings = {}
    for name, arguments in requests.items():
        latencies = []
        for _ in range(calls):
            began = time.perf_counter()
            caller = instance_authorize_cached(instance_id=instance_id, secret=secret)
            result = tool_call(instance=caller.instance, api_key=caller.key, name=name, arguments=arguments)
            latencies.append((time.perf_counter() - began) * 1000)
            if result.is_error:
                raise RuntimeError(f"{name}: {result.text}")
        timings[name] = statistics.median(latencies[1:])
    audit_flush()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="web worker processes for Nectar")
    parser.add_argument("--only", default="nectar,toolbox,dbhub,bare")
    parser.add_argument("--connections", default="1,16")
    parser.add_argument("--catalog", type=int, default=500, help="tables of the compact-mode Role (0: skip)")
    args = parser.parse_args()
    wanted = set(args.only.split(","))
    connection_counts = [int(c) for c in args.connections.split(",")]

    load = os.getloadavg()
    print(f"Load average before the run: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} cores")
    bins = _ensure_peers() if wanted & {"toolbox", "dbhub"} else {}
    print("Setting up: throwaway platform database, customer database, servers ...", flush=True)
    platform_name = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    customer_db = _customer_database()
    servers = Servers()
    workdir = Path(tempfile.mkdtemp(prefix="nectar-peers-"))
    try:
        targets: dict[str, object] = {}
        if "nectar" in wanted:
            nectar = _nectar_setup(customer_db)
            port = _free_port()
            parts = urlsplit(settings.DATABASE_URL)
            env = {
                **os.environ,
                "DATABASE_URL": urlunsplit(parts._replace(path=f"/{platform_name}")),
                "DB_CONN_MAX_AGE": "600",
                "LOG_LEVEL": "WARNING",
                "MCP_RATE_LIMIT_PER_KEY": "100000000/min",
                "MCP_RATE_LIMIT_PER_ORGANIZATION": "100000000/min",
                "NECTAR_ENDPOINT_RATE_LIMIT": "100000000/min",
                "NECTAR_AUDIT_JOURNAL_DIR": str(workdir / "audit"),
            }
            command = [sys.executable, "-m", "nectar.webserver", "--host", "127.0.0.1", "--port", str(port)]
            command += ["--workers", str(args.workers), "--log-level", "warning"]
            servers.start(command, port=port, what="Nectar (nectar.webserver)", env=env, cwd=BASE_DIR)
            auth = {"Authorization": f"Bearer {nectar['secret']}"}
            targets["Nectar MCP"] = McpTarget(
                "Nectar MCP",
                port,
                f"/mcp/{nectar['instance'].id}/",
                "query_customers",
                {
                    "columns": ["id", "name", "region", "balance"],
                    "filters": {"region": "EU"},
                    "order_by": "id",
                    "limit": ROWS,
                },
                headers=auth,
            )
            targets["Nectar endpoint"] = RestTarget(
                "Nectar endpoint",
                port,
                "GET",
                "/api/v1/x/bench/eu-customers?region=EU&limit=20",
                {**auth, "Accept": "application/json"},
            )
        if "toolbox" in wanted:
            port = _free_port()
            (workdir / "tools.yaml").write_text(
                "sources:\n  bench:\n    kind: postgres\n    host: 127.0.0.1\n    port: 5432\n"
                f"    database: {customer_db}\n    user: postgres\n    password: trust-auth-ignores-it\n"
                "tools:\n  eu_customers:\n    kind: postgres-sql\n    source: bench\n"
                "    description: Customers of a region, by id.\n"
                "    parameters:\n      - name: region\n        type: string\n        description: The region.\n"
                "    statement: SELECT id, name, region, balance FROM customers\n"
                "      WHERE region = $1 ORDER BY id LIMIT 20;\n"
            )
            command = [str(bins["toolbox"]), "--config", str(workdir / "tools.yaml"), "--port", str(port)]
            command += ["--enable-api", "--disable-version-check", "--disable-reload", "--log-level", "ERROR"]
            servers.start(command, port=port, what="MCP Toolbox", cwd=workdir)
            targets["Toolbox MCP"] = McpTarget("Toolbox MCP", port, "/mcp", "eu_customers", {"region": "EU"})
            targets["Toolbox REST"] = RestTarget(
                "Toolbox REST",
                port,
                "POST",
                "/api/tool/eu_customers/invoke",
                {"Content-Type": "application/json"},
                json.dumps({"region": "EU"}).encode(),
            )
        if "bare" in wanted:
            port = _free_port()
            command = [sys.executable, "-m", "bench.bare_stack", "--port", str(port), "--workers", str(args.workers)]
            env = {**os.environ, "BARE_STACK_DSN": f"{PG} dbname={customer_db}"}
            servers.start(command, port=port, what="the bare Python stack (bench.bare_stack)", env=env, cwd=BASE_DIR)
            targets["Bare Python stack"] = RestTarget("Bare Python stack", port, "GET", "/rows?region=EU", {})
        if "dbhub" in wanted:
            port = _free_port()
            dsn = f"postgres://postgres@127.0.0.1:5432/{customer_db}?sslmode=disable"
            command = [str(bins["dbhub"]), "--transport=http", f"--port={port}", f"--dsn={dsn}"]
            servers.start(command, port=port, what="DBHub", cwd=workdir)
            targets["DBHub MCP"] = McpTarget(
                "DBHub MCP", port, "/mcp", "execute_sql", {"sql": SQL.replace("%s", "'EU'")}
            )

        for target in targets.values():
            target.server_pid = next(
                (p.pid for p in servers.processes if getattr(p, "port", None) == target.port), None
            )
        results: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
        floors = []
        for round_number in range(1, args.rounds + 1):
            print(f"Round {round_number}/{args.rounds} ...", flush=True)
            floors.append(floor_p50(customer_db))
            for name, target in targets.items():
                for connections in connection_counts:
                    results.setdefault((name, connections), []).append(measure(target, connections, args.seconds))
        floor = statistics.median(floors)

        print(
            f"\nMedians of {args.rounds} interleaved rounds, {args.seconds:g} s each; {ROWS} rows per call; "
            f"Nectar: nectar.webserver --workers {args.workers}"
        )
        header = f"{'server':<20}" + "".join(
            f"{f'calls/s @{c}':>14}{f'p50 ms @{c}':>13}{f'CPU ms @{c}':>12}" for c in connection_counts
        )
        print(header)
        summary = {}
        for name in targets:
            cells = ""
            for connections in connection_counts:
                rate = statistics.median(r for r, _, _ in results[(name, connections)])
                p50 = statistics.median(p for _, p, _ in results[(name, connections)])
                cpu = statistics.median(c for _, _, c in results[(name, connections)])
                summary[(name, connections)] = (rate, p50)
                cells += f"{rate:>14.0f}{p50:>13.2f}{cpu:>12.2f}"
            print(f"{name:<20}{cells}")
        print(f"{'psycopg (floor)':<20}{'':>14}{floor:>13.2f}")
        print("(CPU ms: user + system time of the server's processes per call; DBHub's and Toolbox's included)")
        print()
        for ours, theirs in (
            ("Nectar MCP", "Toolbox MCP"),
            ("Nectar MCP", "DBHub MCP"),
            ("Nectar endpoint", "Toolbox REST"),
            ("Nectar endpoint", "Bare Python stack"),
            ("Bare Python stack", "Toolbox REST"),
        ):
            if (ours, 1) in summary and (theirs, 1) in summary:
                ratios = ", ".join(
                    f"{summary[(ours, c)][0] / summary[(theirs, c)][0]:.2f}x at {c}" for c in connection_counts
                )
                print(f"{ours} / {theirs} calls/s: {ratios}")
        for name in ("Nectar MCP", "Nectar endpoint"):
            if (name, 1) in summary:
                print(f"{name} p50 at 1 connection: {summary[(name, 1)][1] - floor:+.2f} ms beside the psycopg floor")
        if args.catalog and "nectar" in wanted:
            print(f"\nCompact mode on a {args.catalog}-table Role (in process, median per call, warm caches):")
            for name, ms in compact_mode_timings(customer_db, args.catalog).items():
                print(f"  {name:<14}{ms:>8.2f} ms")
    finally:
        servers.stop()
        from roles.connectors import service_engines_dispose
        from roles.models import Service

        for service in Service.objects.all():
            service_engines_dispose(service=service)
        connection.close()
        _drop_platform_database(platform_name)
        _drop_database(customer_db)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
