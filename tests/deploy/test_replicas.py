"""Two web replicas (daphne) and two workers (qcluster) on one PostgreSQL and one Redis, behind a
round-robin proxy: the deployment the README describes, exercised through its public interfaces.

The replicas run in production mode (no NECTAR_DEV): they are given the test database as
DATABASE_URL and the test process's SECRET_KEY and encryption keys, as every replica of a
deployment must be. Each TCP connection through the proxy goes to the next web replica, so
requests on fresh connections alternate between them; the proxy counts where each went.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from urllib.parse import quote

import anyio
import httpx
import httpx2
import pytest
import redis
from django.conf import global_settings, settings
from django.test import Client
from mcp import Client as McpClient
from mcp.client.streamable_http import streamable_http_client

from agents.apps import ensure_schedules
from agents.models import AgentExecution, AgentStatus, ExecutionEvent
from mcpservers.services import mcp_enable
from nectar.management.commands.serve import stop_children
from roles.demo import demo_build_sqlite
from roles.demo.platform import demo_sales_analyst_permissions
from roles.models import Engine, Role, RoleApiKey, Service
from tests.conftest import PASSWORD

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.xdist_group("replicas")]

ROOT = Path(settings.BASE_DIR)
# Bounds of the waits below; each is far above what the step takes on an idle machine.
READY_SECONDS = 120
# A killed worker's run is resumed once its heartbeat is older than EXECUTION_STALE_SECONDS and
# the once-a-minute recovery schedule has run on the surviving worker.
STALE_SECONDS = 10
RESUME_SECONDS = STALE_SECONDS + 60 + 120
REQUIREMENT = "Customers in the EU"
# README, Deployment: a revoked key or changed permission is refused on every replica within 5 s
# (the per-process authorisation cache is trusted only while its NOTIFY listener is fresh).
REVOCATION_BOUND_SECONDS = 5.0


# --- the proxy -----------------------------------------------------------------------------


class RoundRobinProxy:
    """A TCP proxy on 127.0.0.1 that sends each new connection to the next backend in turn."""

    def __init__(self, backends: list[int]):
        self.backends = backends
        self.counts = dict.fromkeys(backends, 0)
        self._next = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="round-robin-proxy", daemon=True)
        self.port = 0

    def __enter__(self) -> RoundRobinProxy:
        self._thread.start()
        assert self._ready.wait(10), "the proxy did not start"
        return self

    def __exit__(self, *exc_info) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            self._loop.close()

    async def _handle(self, client_reader, client_writer) -> None:
        backend = self.backends[self._next % len(self.backends)]
        self._next += 1
        self.counts[backend] += 1
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", backend)
        except OSError:
            client_writer.close()
            return

        async def pipe(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    writer.close()

        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))


# --- the processes -------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    """The test database, as every replica reaches it."""
    db = settings.DATABASES["default"]
    user = quote(db.get("USER") or "postgres")
    password = f":{quote(db['PASSWORD'])}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or (db.get("OPTIONS") or {}).get("host") or ""
    if host.startswith("/"):
        return f"postgresql://{user}{password}@/{db['NAME']}?host={quote(host, safe='/')}"
    return f"postgresql://{user}{password}@{host or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def _redis_url() -> str:
    """A Redis database of this test database's own (0 and 3 are used elsewhere), emptied first."""
    index = 4 + zlib.crc32(settings.DATABASES["default"]["NAME"].encode()) % 12
    url = f"redis://127.0.0.1:6379/{index}"
    redis.Redis.from_url(url).flushdb()
    return url


def _replica_env() -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NECTAR_DEV", "DEBUG", "DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="nectar.settings",
        DATABASE_URL=_database_url(),
        REDIS_URL=_redis_url(),
        SECRET_KEY=settings.SECRET_KEY,
        NECTAR_ENCRYPTION_KEYS=",".join(settings.ENCRYPTION_KEYS),
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        # The suite's opt-in to its own customer databases (tests/conftest.py), for every replica.
        NECTAR_SERVICE_ALLOWED_HOSTS=",".join(settings.SERVICE_ALLOWED_HOSTS),
        NECTAR_SQLITE_DIR=settings.SERVICE_SQLITE_DIR,
        LLM_PROVIDER="offline",
        NECTAR_WORKERS="1",
        EXECUTION_HEARTBEAT_SECONDS="2",
        EXECUTION_STALE_SECONDS=str(STALE_SECONDS),
        PYTHONUNBUFFERED="1",
    )
    return env


class Deployment:
    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.env = _replica_env()
        self.web_ports = [_free_port(), _free_port()]
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(
            argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        process.log = log
        self.processes[name] = process
        return process

    def start_web(self, index: int) -> None:
        port = self.web_ports[index]
        cmd = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "nectar.asgi:application"]
        self.start(f"web{index + 1}", cmd)

    def start_worker(self, index: int) -> None:
        self.start(f"worker{index + 1}", [sys.executable, "manage.py", "qcluster"])

    def kill(self, name: str) -> None:
        """SIGKILL the process and every child it started (a qcluster's sentinel and workers)."""
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        # As `manage.py serve` stops its children; a clean stop is not what is tested here.
        stop_children(self.processes, grace=10)
        for process in self.processes.values():
            process.log.close()

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.log_dir.glob("*.log"))

    def wait_until_serving(self) -> None:
        deadline = time.monotonic() + READY_SECONDS
        for port in self.web_ports:
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, f"web replica on {port} did not start\n{self.logs()}"
                time.sleep(0.5)


@pytest.fixture(autouse=True)
def _production_password_hashing(settings):
    """The owner's password is hashed as production hashes it: a replica upgrades a cheaper hash on login,
    which would end the session the test opened with the old one."""
    settings.PASSWORD_HASHERS = global_settings.PASSWORD_HASHERS


@pytest.fixture(scope="module")
def deployment(django_db_setup, tmp_path_factory):
    deployment = Deployment(tmp_path_factory.mktemp("replicas"))
    try:
        for index in (0, 1):
            deployment.start_web(index)
            deployment.start_worker(index)
        deployment.wait_until_serving()
        with RoundRobinProxy(deployment.web_ports) as proxy:
            deployment.proxy = proxy
            yield deployment
    finally:
        deployment.stop_all()


# --- what the replicas serve -----------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_sqlite(tmp_path_factory) -> str:
    return str(demo_build_sqlite(path=tmp_path_factory.mktemp("demo") / "demo.sqlite3", scale=0.02))


@pytest.fixture
def shop(org, owner, demo_sqlite):
    """An MCP-enabled Role on the demo database with an API key, and the owner's personal token."""
    ensure_schedules(sender=None)  # the recovery schedule (transactional tests empty every table)
    service = Service.objects.create(organization=org, name="demo", engine=Engine.SQLITE, database=demo_sqlite)
    permissions = demo_sales_analyst_permissions(schema="main", routines=False)
    role = Role.objects.create(
        organization=org, service=service, name="Sales analyst", permissions=permissions, created_by=owner
    )
    role.mcp_enabled = True
    role.save()
    instance = mcp_enable(role=role)
    key, secret = RoleApiKey.issue(role=role, name="replicas")
    return {"role": role, "instance": instance, "key": key, "secret": secret}


def _url(port: int, path: str) -> str:
    return f"http://127.0.0.1:{port}{path}"


def _token(port: int, owner) -> str:
    answer = httpx.post(
        _url(port, "/api/v1/auth/token/"), json={"username": owner.username, "password": PASSWORD}, timeout=60
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


def _mcp_call(port: int, instance, secret: str, tool: str, arguments: dict):
    async def scenario():
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}"}, timeout=60)
        async with http, McpClient(streamable_http_client(_url(port, f"/mcp/{instance.pk}/"), http_client=http)) as c:
            return await c.call_tool(tool, arguments)

    return anyio.run(scenario)


def _refused(port: int, instance, secret: str, tool: str, arguments: dict) -> bool:
    """True when the call is refused (an error result, or a protocol error for a tool that is gone)."""
    try:
        return _mcp_call(port, instance, secret, tool, arguments).is_error
    except Exception as exc:  # the client raises McpError (in an exception group) for an unknown tool
        return "McpError" in repr(exc) or "Unknown tool" in str(exc)


def _mcp_status(port: int, instance, secret: str) -> int:
    """The HTTP status of an MCP initialize request with this key."""
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    headers = {"Authorization": f"Bearer {secret}", "Accept": "application/json, text/event-stream"}
    return httpx.post(_url(port, f"/mcp/{instance.pk}/"), json=body, headers=headers, timeout=60).status_code


async def _websocket_events(port: int, path: str, cookie: str, *, until, limit_seconds: float) -> list[dict]:
    """Read a WebSocket's JSON messages until `until(events)` holds (a minimal RFC 6455 client)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
            f"Cookie: sessionid={cookie}\r\n\r\n"
        ).encode()
    )
    status = await reader.readuntil(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 101"), status
    events: list[dict] = []

    async def read_frames():
        while not until(events):
            head = await reader.readexactly(2)
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = int.from_bytes(await reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await reader.readexactly(8), "big")
            payload = await reader.readexactly(length)
            if opcode == 0x8:  # close
                break
            if opcode == 0x1:
                events.append(json.loads(payload)["event"])

    try:
        await asyncio.wait_for(read_frames(), timeout=limit_seconds)
    finally:
        writer.close()
    return events


def _finished(events: list[dict]) -> bool:
    return any(e["kind"] == "status" and e["payload"].get("status") in ("COMPLETED", "FAILED") for e in events)


def _session_cookie(user) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _refused_within_bound(attempt) -> bool:
    """Poll `attempt()` (True once refused); a request started later than the bound must be refused."""
    revoked_at = time.monotonic()
    while True:
        started = time.monotonic()
        if attempt():
            return True
        if started - revoked_at > REVOCATION_BOUND_SECONDS:
            return False
        time.sleep(0.1)


def _worker_of_claim(execution, attempt: int) -> int:
    event = ExecutionEvent.objects.get(execution=execution, kind="status", payload__attempt=attempt)
    return int(event.payload["worker"].rsplit(":", 1)[1])


def _wait_for(condition, seconds: float, what: str, deployment: Deployment):
    deadline = time.monotonic() + seconds
    while not (result := condition()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}\n{deployment.logs()}"
        time.sleep(0.25)
    return result


# --- the tests -------------------------------------------------------------------------------


def test_mcp_calls_and_the_rest_api_answer_alike_on_both_web_replicas(deployment, shop, owner):
    proxy = deployment.proxy
    before = dict(proxy.counts)
    results = [_mcp_call(proxy.port, shop["instance"], shop["secret"], "query_customers", {"limit": 3}) for _ in "ab"]
    token = _token(proxy.port, owner)
    listings = [
        httpx.get(_url(proxy.port, "/api/v1/roles/"), headers={"Authorization": f"Token {token}"}, timeout=60)
        for _ in "ab"
    ]

    assert all(not r.is_error and len(r.structured_content["rows"]) == 3 for r in results)
    assert results[0].structured_content == results[1].structured_content
    assert [a.status_code for a in listings] == [200, 200]
    assert listings[0].json() == listings[1].json()
    assert [r["name"] for r in listings[0].json()["results"]] == ["Sales analyst"]
    served = {port: proxy.counts[port] - before[port] for port in proxy.counts}
    assert all(count >= 2 for count in served.values()), served


def test_a_key_revoked_through_one_replica_is_refused_by_the_other_within_the_bound(deployment, shop, owner):
    first, second = deployment.web_ports
    assert _mcp_status(second, shop["instance"], shop["secret"]) == 200
    token = _token(first, owner)
    role, key = shop["role"], shop["key"]

    revoked = httpx.post(
        _url(first, f"/api/v1/roles/{role.pk}/keys/{key.pk}/revoke/"),
        headers={"Authorization": f"Token {token}"},
        timeout=60,
    )

    assert revoked.status_code == 200, revoked.text
    assert _refused_within_bound(lambda: _mcp_status(second, shop["instance"], shop["secret"]) == 401)


def test_a_grant_removed_through_one_replica_is_enforced_by_the_other_within_the_bound(deployment, shop, owner):
    first, second = deployment.web_ports
    assert not _mcp_call(second, shop["instance"], shop["secret"], "query_customers", {"limit": 1}).is_error
    token = _token(first, owner)
    role = shop["role"]
    remaining = [g for g in role.permissions if g["objectName"] != "customers"]

    changed = httpx.patch(
        _url(first, f"/api/v1/roles/{role.pk}/"),
        json={"permissions": remaining},
        headers={"Authorization": f"Token {token}"},
        timeout=120,
    )

    assert changed.status_code == 200, changed.text
    assert _refused_within_bound(
        lambda: _refused(second, shop["instance"], shop["secret"], "query_customers", {"limit": 1})
    )
    assert not AgentExecution.objects.exists()


def test_a_run_is_executed_by_a_worker_and_its_events_reach_a_websocket_on_either_replica(deployment, shop, owner):
    proxy = deployment.proxy
    token = _token(proxy.port, owner)
    submitted = httpx.post(
        _url(proxy.port, "/api/v1/executions/"),
        json={"requirement": REQUIREMENT, "role": str(shop["role"].pk)},
        headers={"Authorization": f"Token {token}"},
        timeout=60,
    )
    assert submitted.status_code in (200, 201, 202), submitted.text
    execution_id = submitted.json()["id"]
    cookie = _session_cookie(owner)

    async def both():
        return await asyncio.gather(
            *(
                _websocket_events(port, f"/ws/executions/{execution_id}/", cookie, until=_finished, limit_seconds=300)
                for port in deployment.web_ports
            )
        )

    streams = asyncio.run(both())

    execution = AgentExecution.objects.get(pk=execution_id)
    assert execution.status == AgentStatus.COMPLETED, (execution.status_reason, deployment.logs())
    workers = {deployment.processes[f"worker{i}"].pid for i in (1, 2)}
    assert os.getpgid(_worker_of_claim(execution, 1)) in workers
    stored = list(ExecutionEvent.objects.filter(execution=execution).order_by("seq").values_list("seq", flat=True))
    for events in streams:
        assert [e["seq"] for e in events] == stored[: len(events)]
        assert _finished(events)


def test_a_run_whose_worker_is_killed_is_resumed_by_the_other_worker(deployment, shop, owner):
    token = _token(deployment.web_ports[0], owner)
    submitted = httpx.post(
        _url(deployment.web_ports[0], "/api/v1/executions/"),
        json={"requirement": REQUIREMENT, "role": str(shop["role"].pk)},
        headers={"Authorization": f"Token {token}"},
        timeout=60,
    )
    assert submitted.status_code in (200, 201, 202), submitted.text
    execution = AgentExecution.objects.get(pk=submitted.json()["id"])

    _wait_for(
        lambda: ExecutionEvent.objects.filter(execution=execution, kind="status", payload__attempt=1).exists(),
        READY_SECONDS,
        "a worker to claim the run",
        deployment,
    )
    holder = os.getpgid(_worker_of_claim(execution, 1))
    name = next(n for n, p in deployment.processes.items() if p.pid == holder)
    survivor = next(n for n in ("worker1", "worker2") if n != name)
    deployment.kill(name)
    execution.refresh_from_db()
    assert execution.status in (AgentStatus.RUNNING, AgentStatus.LEARNING), "the run ended before its worker died"

    _wait_for(
        lambda: AgentExecution.objects.filter(pk=execution.pk, status=AgentStatus.COMPLETED).exists(),
        RESUME_SECONDS,
        "the surviving worker to finish the run",
        deployment,
    )
    execution.refresh_from_db()
    assert execution.attempts == 2 and execution.success is True
    assert os.getpgid(_worker_of_claim(execution, 2)) == deployment.processes[survivor].pid
    deployment.start_worker(int(name[-1]) - 1)  # back to two workers for any test after this one
