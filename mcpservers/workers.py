"""A bounded pool of threads for the MCP servers' synchronous work (ORM, customer databases).

Every MCP request needs the platform database twice (authorise, then call and record). Running
that work in anyio's default thread pool (up to 40 threads that come and go) with
DB_CONN_MAX_AGE=0 paid a new PostgreSQL connection per hop; with a positive max age each of
those threads kept its own connection, so concurrent clients could exhaust the server's
connections ("too many clients already").

Here a fixed number of threads (MCP_WORKER_THREADS) does that work, so the MCP servers of one
process hold at most that many platform connections. Each thread keeps its connection between
tasks for MCP_DB_CONN_MAX_AGE seconds, whatever DB_CONN_MAX_AGE says, with Django's safety
rules: a connection left inside a transaction, or one that saw an error and no longer answers,
is closed after the task; one idle for longer than MCP_DB_HEALTH_CHECK_IDLE seconds is checked
(SELECT 1) before its next task. `worker_pool_close()` closes the connections and stops the threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import connections

_state = threading.local()
_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _max_age() -> float:
    return float(getattr(settings, "MCP_DB_CONN_MAX_AGE", 60))


def _idle_check_after() -> float:
    return float(getattr(settings, "MCP_DB_HEALTH_CHECK_IDLE", 5))


def _before_task() -> None:
    """Drop connections that sat idle long enough to have been closed by the server."""
    now = time.monotonic()
    idle_since = getattr(_state, "idle_since", now)
    if now - idle_since < _idle_check_after():
        return
    for conn in connections.all(initialized_only=True):
        if conn.connection is not None and not conn.is_usable():
            conn.close()


def _after_task() -> None:
    """Keep each healthy connection for the next task; close broken, leaked or old ones."""
    now = time.monotonic()
    opened = getattr(_state, "opened", None)
    if opened is None:
        opened = _state.opened = {}
    for conn in connections.all(initialized_only=True):
        raw = conn.connection
        if raw is None:
            opened.pop(conn.alias, None)
            continue
        seen = opened.get(conn.alias)
        if seen is None or seen[0] is not raw:
            seen = opened[conn.alias] = (raw, now)
        if conn.in_atomic_block or conn.get_autocommit() != conn.settings_dict["AUTOCOMMIT"]:
            conn.close()  # a transaction was left open: never hand it to the next caller
        elif (conn.errors_occurred and not conn.is_usable()) or now - seen[1] >= _max_age():
            conn.close()  # broken, or old enough to be replaced
        else:
            conn.errors_occurred = False
            # Django's own request cycle (close_old_connections) must not retire it under CONN_MAX_AGE=0.
            conn.close_at = None
        if conn.connection is None:
            opened.pop(conn.alias, None)
    _state.idle_since = now


def _run(function: Callable[..., Any], kwargs: dict) -> Any:
    _before_task()
    try:
        return function(**kwargs)
    finally:
        _after_task()


def _close_thread_connections() -> None:
    for conn in connections.all(initialized_only=True):
        conn.close()
    _state.opened = {}


def worker_pool() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            size = max(1, int(getattr(settings, "MCP_WORKER_THREADS", 8)))
            _pool = ThreadPoolExecutor(max_workers=size, thread_name_prefix="mcp-worker")
            _pool.size = size  # type: ignore[attr-defined]
        return _pool


async def run_in_worker(function: Callable[..., Any], /, **kwargs) -> Any:
    """Run `function(**kwargs)` in the pool and await its result (it keeps running if the caller is cancelled)."""
    future: Future = worker_pool().submit(_run, function, kwargs)
    return await asyncio.wrap_future(future)


def worker_pool_close() -> None:
    """Close every worker's platform connections and stop the threads (tests, shutdown)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is None:
        return
    size = getattr(pool, "size", 1)
    barrier = threading.Barrier(size)

    def close_here() -> None:
        # The barrier makes each of the `size` tasks land on a different thread.
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout=5)
        _close_thread_connections()

    futures = [pool.submit(close_here) for _ in range(size)]
    for future in futures:
        future.exception(timeout=30)
    pool.shutdown(wait=True)


__all__ = ["run_in_worker", "worker_pool", "worker_pool_close"]
