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

from nectar.webserver import HeadWithBody, TcpConfig

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


class _Transport:
    def __init__(self):
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data):
        assert not self.closed
        self.writes.append(bytes(data))

    def is_closing(self):
        return self.closed

    def close(self):
        self.closed = True

    def get_extra_info(self, name, default=None):
        return ("127.0.0.1", 1) if name == "peername" else default


def _written(*steps) -> tuple[list[bytes], bool]:
    """The writes a transport saw when HeadWithBody was given `steps` (bytes to write, 'turn' or 'close')."""

    async def scenario():
        transport = _Transport()
        held = HeadWithBody(transport, asyncio.get_running_loop())
        for step in steps:
            if step == "turn":
                await asyncio.sleep(0)
            elif step == "close":
                held.close()
            else:
                held.write(step)
        await asyncio.sleep(0)
        assert held.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest is the connection's own transport
        return transport.writes, transport.closed

    return asyncio.run(scenario())


def test_a_response_head_leaves_with_its_body_in_one_write():
    assert _written(b"HTTP/1.1 200 OK\r\n\r\n", b"body") == ([b"HTTP/1.1 200 OK\r\n\r\nbody"], False)
    assert _written(b"head", b"chunk 1", b"chunk 2") == ([b"headchunk 1", b"chunk 2"], False)


def test_a_head_alone_leaves_at_the_end_of_the_turn_and_before_a_close():
    assert _written(b"head", "turn", b"later body") == ([b"head", b"later body"], False)
    assert _written(b"head", "close") == ([b"head"], True)


def test_the_server_answers_whole_responses_streams_and_closing_requests():
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await receive()
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
            for part in (b"one ", b"two ", b"three"):
                await send({"type": "http.response.body", "body": part, "more_body": True})
                await asyncio.sleep(0.01)
            await send({"type": "http.response.body", "body": b""})
            return
        body = b'{"path": "%s"}' % scope["path"].encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    import threading

    from uvicorn import Config, Server

    from nectar.webserver import OneWriteHttpProtocol

    port = _free_port()
    server = Server(
        Config(app, host="127.0.0.1", port=port, http=OneWriteHttpProtocol, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:  # one keep-alive connection
            for i in range(5):
                assert client.get(f"/call/{i}").json() == {"path": f"/call/{i}"}
            assert client.get("/stream").text == "one two three"
            assert client.get("/after").json() == {"path": "/after"}
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:  # HTTP/1.0: the server closes
            raw.sendall(b"GET /old HTTP/1.0\r\nHost: x\r\n\r\n")
            received = b""
            while chunk := raw.recv(65536):
                received += chunk
        assert received.startswith(b"HTTP/1.1 200 OK") and received.endswith(b'{"path": "/old"}')
    finally:
        server.should_exit = True
        thread.join(timeout=10)
