"""Nectar's production web server: uvicorn serving nectar.asgi with N worker processes on one port.

    python -m nectar.webserver --host 0.0.0.0 --port 8000 --workers 4

The same as `uvicorn nectar.asgi:application --workers N` with two differences that matter for
latency. uvicorn's multi-worker mode creates its listening socket without naming the protocol
(`socket.socket(family)`), and asyncio only turns on TCP_NODELAY for sockets whose protocol is
TCP. On those connections a response written in two parts (headers, then body) waits for the
client's delayed ACK: about 40 ms per keep-alive request. The socket made here names TCP, so every
accepted connection has TCP_NODELAY, as it has with a single worker. And uvicorn writes a
response's head and its body apart: on a TCP_NODELAY socket two segments, two wake-ups of the
client, two system calls. Here a head is held until the body that follows it in the same turn of
the event loop (OneWriteHttpProtocol), so a small response leaves in one write.
"""

from __future__ import annotations

import argparse
import os
import socket

from uvicorn import Config, Server
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors import Multiprocess

APPLICATION = "nectar.asgi:application"


class HeadWithBody:
    """A response cycle's transport that holds the response's head until its body comes.

    The head is the cycle's first write. The next write (the body, or its first chunk) goes out
    joined to it; a head with nothing after it in the same turn of the event loop (a stream
    whose body comes later) goes out alone at the end of that turn, and before any close.
    Everything else is the connection's own transport.
    """

    def __init__(self, transport, loop):
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None
        self._head_seen = False

    def write(self, data: bytes) -> None:
        if not self._head_seen:
            self._head_seen = True
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
            return
        if self._held is not None:
            data, self._held = self._held + data, None
        self._transport.write(data)

    def flush(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def __getattr__(self, name: str):
        return getattr(self._transport, name)


class OneWriteHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, each response's head and body in one write (HeadWithBody)."""

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is not None and not isinstance(cycle.transport, HeadWithBody):
            cycle.transport = HeadWithBody(cycle.transport, self.loop)


class TcpConfig(Config):
    """uvicorn's configuration, with a listening socket whose protocol is TCP."""

    def bind_socket(self) -> socket.socket:
        sock = super().bind_socket()
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto != socket.IPPROTO_TCP:
            sock = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
            sock.set_inheritable(True)
        return sock


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve Nectar (web UI, REST API, WebSocket, MCP).")
    parser.add_argument("--host", default=os.environ.get("NECTAR_HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("NECTAR_PORT", "8000")))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "1")))
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--access-log", action="store_true", help="log every request (off by default)")
    parser.add_argument(
        "--loop", choices=["auto", "asyncio", "uvloop"], default="auto", help="event loop (auto: uvloop when installed)"
    )
    args = parser.parse_args(argv)
    config = TcpConfig(
        APPLICATION,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        access_log=args.access_log,
        loop=args.loop,
        http=OneWriteHttpProtocol,
    )
    server = Server(config)
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        server.run()


if __name__ == "__main__":
    main()
