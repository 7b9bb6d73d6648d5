"""The bare Python stack under Nectar: the same server, driver and query, and no checks at all.

    BARE_STACK_DSN="host=127.0.0.1 dbname=... user=postgres" python -m bench.bare_stack --port 8090 --workers 2

`bench.bench_peers` runs it beside Nectar and the peers as a reference: what this Python stack
costs by itself (nectar.webserver's uvicorn layout with uvloop, httptools and one write per
response; psycopg's asyncio connections from a pool, on the event loop; json for the answer)
for GET /rows?region=EU, which returns the 20 customers of the bench's query as JSON. There is
no key, Role, permission, argument check, row filter, rate limit or audit record: the gap
between this row and Nectar's is what those cost, and the gap between this row and MCP
Toolbox's is what the language and its libraries cost.
"""

from __future__ import annotations

import argparse
import decimal
import json
import os
from urllib.parse import parse_qs

from psycopg_pool import AsyncConnectionPool
from uvicorn import Server
from uvicorn.supervisors import Multiprocess

from nectar.webserver import OneWriteHttpProtocol, TcpConfig

SQL = "SELECT id, name, region, balance FROM customers WHERE region = %s ORDER BY id LIMIT 20"
_pool: dict[str, AsyncConnectionPool] = {}


def _plain(value):
    return str(value) if isinstance(value, decimal.Decimal) else value


async def _send(send, status: int, body: bytes) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                pool = AsyncConnectionPool(os.environ["BARE_STACK_DSN"], min_size=4, max_size=8, open=False)
                await pool.open(wait=True)
                _pool["pool"] = pool
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await _pool["pool"].close()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http" or scope["path"] != "/rows":
        return await _send(send, 404, b'{"error": "not found"}')
    region = parse_qs(scope["query_string"].decode()).get("region", [""])[0]
    async with _pool["pool"].connection() as conn:
        cursor = await conn.execute(SQL, (region,))
        columns = [c.name for c in cursor.description]
        rows = [dict(zip(columns, map(_plain, row), strict=True)) for row in await cursor.fetchall()]
    await _send(send, 200, json.dumps({"results": rows}).encode())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    config = TcpConfig(
        "bench.bare_stack:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
        http=OneWriteHttpProtocol,
    )
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        Server(config).run()


if __name__ == "__main__":
    main()
