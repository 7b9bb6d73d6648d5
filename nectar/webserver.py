"""Nectar's production web server: uvicorn serving nectar.asgi with N worker processes on one port.

    python -m nectar.webserver --host 0.0.0.0 --port 8000 --workers 4

The same as `uvicorn nectar.asgi:application --workers N` with one difference that matters for
latency. uvicorn's multi-worker mode creates its listening socket without naming the protocol
(`socket.socket(family)`), and asyncio only turns on TCP_NODELAY for sockets whose protocol is
TCP. On those connections a response written in two parts (headers, then body) waits for the
client's delayed ACK: about 40 ms per keep-alive request. The socket made here names TCP, so every
accepted connection has TCP_NODELAY, as it has with a single worker.
"""

from __future__ import annotations

import argparse
import os
import socket

from uvicorn import Config, Server
from uvicorn.supervisors import Multiprocess

APPLICATION = "nectar.asgi:application"


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
    )
    server = Server(config)
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        server.run()


if __name__ == "__main__":
    main()
