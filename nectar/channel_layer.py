"""The PostgreSQL channel layer (channels-postgres) made safe for many event loops.

channels-postgres keeps one process-wide psycopg connection pool, bound to the event loop that
happened to create it. Sync code that publishes through `async_to_sync` runs each call in a
fresh loop, so once that first loop is gone the pool can no longer replace a connection, and the
next publish waits forever. Here every event loop gets its own pool, and sync code publishes
through one long-lived loop per process (nectar.publish), so the number of pools stays at one
per serving loop plus one for publishers.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import psycopg
import psycopg_pool
from channels_postgres.core import PostgresChannelLayer
from channels_postgres.db import DatabaseLayer


class PerLoopDatabaseLayer(DatabaseLayer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    async def get_db_pool(self, db_params: dict[str, Any]) -> psycopg_pool.AsyncConnectionPool:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is not None:
            return pool
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            pool = self._pools.get(loop)
            if pool is None:

                async def configure(conn: psycopg.AsyncConnection) -> None:
                    await conn.set_autocommit(True)
                    conn.prepare_threshold = 0
                    conn.prepared_max = None

                pool = psycopg_pool.AsyncConnectionPool(
                    conninfo=psycopg.conninfo.make_conninfo(conninfo="", **db_params),
                    open=False,
                    configure=configure,
                    **{"min_size": 1, "max_size": 8, **self.psycopg_options},
                )
                await pool.open(wait=True)
                self._pools[loop] = pool
        return pool


class NectarPostgresChannelLayer(PostgresChannelLayer):
    """channels-postgres with one connection pool per event loop."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.django_db = PerLoopDatabaseLayer(
            kwargs.get("PSYCOPG_OPTIONS", {}), self.db_params, logger=self.django_db.logger
        )
