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

The threads are shared fairly by organizations (FairPool): each has its own queue and at most
MCP_TENANT_SHARE of the threads, so one tenant's slow calls cannot stall another's.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from django.conf import settings
from django.db import connections
from sqlalchemy.util import await_only

from nectar.connections import transaction_left_open
from roles.connectors.onloop import BlockingOnLoop, on_loop, run_on_loop

_state = threading.local()
_lock = threading.Lock()
_pool = None


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
        if conn.in_atomic_block or transaction_left_open(conn):
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


class FairPool:
    """A fixed set of threads shared fairly by tenants (organizations).

    Each tenant has its own queue; free threads take tasks from the tenants in turn, and no
    tenant holds more than `cap` threads at once, so one organization's slow calls leave the
    other threads to everyone else.
    """

    def __init__(self, size: int, cap: int):
        self.size = size
        self.cap = max(1, min(cap, size))
        self._queues: OrderedDict[str, deque] = OrderedDict()
        self._running: Counter = Counter()
        self._cond = threading.Condition()
        self._closing = False
        self._threads = [threading.Thread(target=self._work, name=f"mcp-worker-{i}", daemon=True) for i in range(size)]
        for thread in self._threads:
            thread.start()

    def submit(self, tenant: str | None, function: Callable[..., Any], kwargs: dict) -> Future:
        future: Future = Future()
        with self._cond:
            if self._closing:
                raise RuntimeError("the MCP worker pool is closed")
            self._queues.setdefault(tenant or "", deque()).append((future, function, kwargs))
            self._cond.notify()
        return future

    def queued(self) -> dict[str, int]:
        with self._cond:
            return {tenant: len(queue) for tenant, queue in self._queues.items()}

    def _take(self):
        with self._cond:
            while True:
                for tenant in list(self._queues):
                    if self._running[tenant] < self.cap:
                        queue = self._queues.pop(tenant)
                        task = queue.popleft()
                        if queue:
                            self._queues[tenant] = queue  # to the back: the others go first next time
                        self._running[tenant] += 1
                        return tenant, task
                if self._closing and not self._queues:
                    return None, None
                self._cond.wait()

    def _work(self) -> None:
        while True:
            tenant, task = self._take()
            if task is None:
                _close_thread_connections()
                return
            future, function, kwargs = task
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(_run(function, kwargs))
                    except BaseException as exc:
                        future.set_exception(exc)
            finally:
                with self._cond:
                    self._running[tenant] -= 1
                    if self._queues:
                        # A task may have waited for this tenant's share: one thread is enough to take it.
                        self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(timeout=30)


def worker_pool() -> FairPool:
    global _pool
    with _lock:
        if _pool is None:
            size = max(1, int(getattr(settings, "MCP_WORKER_THREADS", 8)))
            share = float(getattr(settings, "MCP_TENANT_SHARE", 0.5))
            _pool = FairPool(size, math.ceil(size * share))
        return _pool


async def run_in_worker(function: Callable[..., Any], /, _tenant: str | None = None, **kwargs) -> Any:
    """Run `function(**kwargs)` in the pool, in `_tenant`'s share, and await its result.

    The task keeps running if the caller is cancelled.
    """
    future = worker_pool().submit(_tenant, function, kwargs)
    return await asyncio.wrap_future(future)


async def run_on_loop_or_in_worker(
    function: Callable[..., Any], /, _tenant: str | None = None, *, loop_first: bool, **kwargs
) -> Any:
    """`function(**kwargs)` on the event loop when `loop_first` and nothing on its way would block it
    (roles.connectors.onloop), else in the pool, in `_tenant`'s share."""
    if loop_first:
        try:
            return await run_on_loop(function, **kwargs)
        except BlockingOnLoop:
            pass  # something on its way would block the loop: the worker threads run it, as always
    return await run_in_worker(function, _tenant=_tenant, **kwargs)


def run_blocking(function: Callable[..., Any], /, **kwargs) -> Any:
    """`function(**kwargs)`, which may block: here and now, or, inside a call run on the event loop
    (roles.connectors.onloop), in the pool while that call's greenlet waits and the loop goes on."""
    if not on_loop():
        return function(**kwargs)
    return await_only(asyncio.wrap_future(worker_pool().submit(None, function, kwargs)))


def worker_pool_close() -> None:
    """Close every worker's platform connections and stop the threads (tests, shutdown)."""
    global _pool
    with _lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close()


__all__ = ["FairPool", "run_blocking", "run_in_worker", "run_on_loop_or_in_worker", "worker_pool", "worker_pool_close"]
