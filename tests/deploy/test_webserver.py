"""The production web server (nectar.webserver): several workers on one port, TCP_NODELAY on every connection."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from nectar.webserver import TcpConfig

ROOT = Path(__file__).resolve().parents[2]


def _nodelay_of_accepted_connection(sock: socket.socket) -> int:
    """Serve `sock` with asyncio as uvicorn does and report TCP_NODELAY on the connection it accepts."""

    async def scenario() -> int:
        seen: asyncio.Future = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport):
                accepted = transport.get_extra_info("socket")
                seen.set_result(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        async with server:
            _reader, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            value = await asyncio.wait_for(seen, 10)
            writer.close()
            return value

    return asyncio.run(scenario())


def test_the_listening_socket_names_tcp_so_every_accepted_connection_has_nodelay():
    config = TcpConfig("nectar.asgi:application", host="127.0.0.1", port=0, workers=2)
    sock = config.bind_socket()
    try:
        assert sock.proto == socket.IPPROTO_TCP
        assert sock.get_inheritable()
        assert _nodelay_of_accepted_connection(sock) != 0
    finally:
        sock.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_serve_one_port_and_stop_on_sigterm(tmp_path):
    port = _free_port()
    env = {**os.environ, "NECTAR_DEV": "1", "LOG_LEVEL": "WARNING"}
    log = open(tmp_path / "web.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "nectar.webserver", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        answered = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                answered = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        assert answered is not None, (tmp_path / "web.log").read_text(errors="replace")
        assert answered.status_code in (200, 503), answered.text  # 503: a dependency is down, still served
        with httpx.Client(timeout=10) as client:  # keep-alive: the same connection, answered again and again
            again = [client.get(f"http://127.0.0.1:{port}/healthz").status_code for _ in "abc"]
        assert again == [answered.status_code] * 3
        # WebSockets are served (the live pages): an anonymous client's handshake reaches the consumer,
        # which refuses it (403), rather than the server answering that it cannot upgrade at all.
        with pytest.raises(InvalidStatus) as refused:
            ws_connect(f"ws://127.0.0.1:{port}/ws/executions/{uuid.uuid4()}/", open_timeout=30).close()
        assert refused.value.response.status_code == 403
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        log.close()
    assert process.returncode == 0
