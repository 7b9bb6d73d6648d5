"""The PostgreSQL channel layer (channels-postgres) made safe for many event loops.

channels-postgres keeps one process-wide psycopg connection pool, bound to the event loop that
happened to create it. Sync code that publishes through `async_to_sync` runs each call in a
fresh loop, so once that first loop is gone the pool can no longer replace a connection, and the
next publish waits forever. Here every event loop gets its own pool, and sync code publishes
through one long-lived loop per process (nectar.publish), so the number of pools stays at one
per serving loop plus one for publishers.

psycopg_pool's workers treat a cancellation that reaches them in the middle of a task (opening a
connection) as a failed task and go on waiting for the next one, so a loop closed while one of its
pools works never finishes closing. A pool is therefore always closed before its loop: when opening
it fails or is cancelled, and by `close_loop`, after which that loop gets no new pool or listener.
"""

from __future__ import annotations

import asyncio
import weakref
from typing import Any

import psycopg
import psycopg_pool
from channels_postgres.core import PostgresChannelLayer
from channels_postgres.db import DatabaseLayer


class LoopClosedError(RuntimeError):
    """The channel layer was released on this event loop (`close_loop`), which is about to close."""


class PerLoopDatabaseLayer(DatabaseLayer):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._pools: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._locks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self.closed_loops: weakref.WeakSet = weakref.WeakSet()

    async def get_db_pool(self, db_params: dict[str, Any]) -> psycopg_pool.AsyncConnectionPool:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is not None:
            return pool
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            if loop in self.closed_loops:
                raise LoopClosedError("the channel layer is closed on this event loop")
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
                try:
                    await pool.open(wait=True)
                except BaseException:
                    # Cancelled (its caller went away) or failed: its workers must not outlive it.
                    await asyncio.shield(pool.close(timeout=1))
                    raise
                self._pools[loop] = pool
        return pool

    async def close_pool(self, timeout: float) -> None:
        """Close the running loop's pool, waiting for one being opened, and open no other on it."""
        loop = asyncio.get_running_loop()
        self.closed_loops.add(loop)
        lock = self._locks.setdefault(loop, asyncio.Lock())
        async with lock:
            pool = self._pools.pop(loop, None)
        if pool is not None:
            await asyncio.wait_for(pool.close(timeout=timeout), timeout + 1)


class NectarPostgresChannelLayer(PostgresChannelLayer):
    """channels-postgres with one connection pool and one listener per event loop.

    channels-postgres also keeps a single "listener is running" event for the whole process, bound
    to the first loop that received. On any later loop that event still reads as set, so a receive
    there went on before its own listener had issued LISTEN (and missed what was sent meanwhile),
    or waited on an event of another loop. Here each loop has its own event and starts its own
    listener once.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.django_db = PerLoopDatabaseLayer(
            kwargs.get("PSYCOPG_OPTIONS", {}), self.db_params, logger=self.django_db.logger
        )
        self._listeners: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._listener_tasks: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _get_or_create_listener_task(self) -> tuple[asyncio.Event, bool]:
        loop = asyncio.get_running_loop()
        if loop in self.django_db.closed_loops:
            raise LoopClosedError("the channel layer is closed on this event loop")
        task = self._listener_tasks.get(loop)
        if task is None or task.done():  # none yet on this loop, or it ended (a lost connection): start one
            running = self._listeners[loop] = asyncio.Event()
            # listen_to_all_channels sets the event this attribute holds once it has issued LISTEN.
            self.listener_task_is_running = running
            self._listener_tasks[loop] = loop.create_task(self.listen_to_all_channels())
        self.listener_task_is_running = self._listeners[loop]
        self.event_loop = loop
        return self._listeners[loop], False  # started here, never by the caller

    async def listening(self, timeout: float = 10.0) -> None:
        """Return once this loop's listener has issued LISTEN: what is published from then on arrives.

        A consumer that replays stored events calls this first, so that nothing committed between
        its replay and the listener's start is lost (the library only picks up messages queued
        before its LISTEN, not those sent while it connects).
        """
        running, _ = self._get_or_create_listener_task()
        await asyncio.wait_for(running.wait(), timeout)

    async def close_loop(self, timeout: float = 5.0) -> None:
        """Release what the running loop holds (its listener and its pool) before the loop is closed.

        For short-lived loops (a test's async_to_sync): cancelled at loop close instead, the
        listener's connection and the pool's workers can keep the loop from finishing.
        """
        loop = asyncio.get_running_loop()
        self.django_db.closed_loops.add(loop)  # from here on, nothing on this loop starts a listener or pool
        self._listeners.pop(loop, None)
        task = self._listener_tasks.pop(loop, None)
        if task is not None:
            task.cancel()
            await asyncio.wait([task], timeout=timeout)
        await self.django_db.close_pool(timeout)
