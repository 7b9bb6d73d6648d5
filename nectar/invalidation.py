"""Cache invalidation across replicas: PostgreSQL LISTEN/NOTIFY on the platform database.

Caches of the hot path (MCP authorisation and compiled tools, generated endpoints and their
keys) live in each process. Triggers on the rows they are built from (organizations, services,
roles, API keys, MCP instances, generated endpoints; see the mcpservers and endpoints
migrations) send `NOTIFY nectar_invalidate, '<organization id>'` when such a row changes, at
commit. Each process keeps one connection LISTENing in a daemon thread and tells its
subscribers which organization changed. Changes made in this process are announced at once as
well (`changed()`), so a process never waits for its own notification.

Bounded staleness: a notification arrives within milliseconds of the commit. The listener
checks its connection every HEARTBEAT seconds (TCP user timeout on top); a cache may be used
only while the listener is `healthy()`, that is connected with a heartbeat younger than
MAX_STALENESS seconds. When the connection is lost, every subscriber is told to drop
everything, and again after the reconnection (notifications sent in between are lost), so an
entry is never more than MAX_STALENESS seconds older than the database.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

CHANNEL = "nectar_invalidate"
EVERYTHING = "*"
HEARTBEAT = 1.0
MAX_STALENESS = 5.0

_subscribers: list[Callable[[str], None]] = []
_lock = threading.Lock()
_state = {"thread": None, "alive_at": 0.0, "connected": False, "pid": None, "stop": None, "generation": 0}


def subscribe(callback: Callable[[str], None]) -> None:
    """Call `callback(organization_id or "*")` whenever something an organization's caches hold changed."""
    with _lock:
        if callback not in _subscribers:
            _subscribers.append(callback)


def generation() -> int:
    """A counter that moves on every change: read it before building an entry, store the entry only if unchanged."""
    return _state["generation"]


def changed(organization_id) -> None:
    """Tell this process's subscribers at once (the database trigger tells the other processes at commit)."""
    _dispatch(str(organization_id) if organization_id else EVERYTHING)


def _dispatch(scope: str) -> None:
    _state["generation"] += 1
    for callback in list(_subscribers):
        try:
            callback(scope)
        except Exception:
            logger.exception("cache invalidation subscriber failed")


def healthy() -> bool:
    """True while caches may be trusted: the listener runs here and heard from the database recently."""
    ensure_listening()
    return _state["connected"] and time.monotonic() - _state["alive_at"] < MAX_STALENESS


def ensure_listening() -> None:
    """Start the listener thread of this process (once; again in a forked child)."""
    pid = os.getpid()
    if _state["pid"] == pid and _state["thread"] is not None:
        return
    with _lock:
        if _state["pid"] == pid and _state["thread"] is not None:
            return
        stop = threading.Event()
        thread = threading.Thread(target=_listen_forever, args=(stop,), name="nectar-invalidation", daemon=True)
        _state.update(pid=pid, thread=thread, stop=stop, connected=False, alive_at=0.0)
        thread.start()


def stop_listening() -> None:
    """Stop the listener (tests, shutdown); caches are untrusted until it starts again."""
    with _lock:
        stop, thread = _state["stop"], _state["thread"]
        _state.update(thread=None, pid=None, connected=False)
    if stop is not None:
        stop.set()
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout=HEARTBEAT * 3)


def _connect():
    import psycopg
    from django.db import connections

    params = connections["default"].get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    params.setdefault("connect_timeout", 5)
    # A silently broken link errors within seconds instead of hanging the heartbeat.
    params.setdefault("tcp_user_timeout", 3000)
    params.setdefault("keepalives", 1)
    params.setdefault("keepalives_idle", 5)
    params["application_name"] = "nectar-invalidation"
    conn = psycopg.connect(**params, autocommit=True)
    conn.execute(f"LISTEN {CHANNEL}")
    return conn


def _listen_forever(stop: threading.Event) -> None:
    while not stop.is_set():
        conn = None
        try:
            conn = _connect()
            _state["alive_at"] = time.monotonic()
            _state["connected"] = True
            _dispatch(EVERYTHING)  # anything may have changed while no one listened
            while not stop.is_set():
                for notify in conn.notifies(timeout=HEARTBEAT, stop_after=256):
                    _dispatch(notify.payload or EVERYTHING)
                conn.execute("SELECT 1")
                _state["alive_at"] = time.monotonic()
        except Exception as exc:
            if not stop.is_set():
                logger.warning("cache invalidation listener lost its connection (%s); reconnecting", exc)
        finally:
            was_connected = _state["connected"]
            _state["connected"] = False
            if was_connected:
                _dispatch(EVERYTHING)
            if conn is not None:
                with contextlib.suppress(Exception):
                    conn.close()
        stop.wait(0.5)


def _forget_after_fork() -> None:
    _state.update(thread=None, pid=None, connected=False, alive_at=0.0)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
