"""Reads of customer databases run on the event loop, without a worker thread.

A tool call or an endpoint call is synchronous code (checks, the executor, the audit record).
In a worker thread it costs a thread hop each way and contends for the GIL with the event loop;
on a two-core machine that is about as much CPU as the rest of the call. `run_on_loop` runs the
same code in a greenlet on the event loop's own thread instead (SQLAlchemy's greenlet bridge):
when the executor reads, it takes a connection of the Service's asyncio pool (`read_on_loop`),
and the greenlet waits for the database while the loop serves other requests.

Only reads of a connector with an asyncio driver can run there (PostgreSQL through psycopg).
Anything that would block the loop is refused before it starts: a write, a read of another
connector, a multi-statement read (introspection), a platform query (Django raises
SynchronousOnlyOperation), a shared rate counter. Such a refusal (BlockingOnLoop) or any
unexpected error makes the caller run the whole call again in a worker thread, where it behaves
as it always did; a read leaves nothing behind before its audit record, so running it again is
safe.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy.util import greenlet_spawn

T = TypeVar("T")

_ON_LOOP: contextvars.ContextVar[bool] = contextvars.ContextVar("nectar_on_loop", default=False)


class BlockingOnLoop(BaseException):
    """Work that would block the event loop was asked for in a call run there (see the module's text).

    A BaseException, so that the `except Exception` of a tool or an endpoint does not turn it
    into the call's error: it reaches run_on_loop's caller, which runs the call in a thread.
    """


def on_loop() -> bool:
    """Whether this code runs inside run_on_loop (on the event loop's thread)."""
    return _ON_LOOP.get()


def refuse_on_loop(what: str) -> None:
    """Raise BlockingOnLoop when called inside run_on_loop: `what` would block the event loop."""
    if _ON_LOOP.get():
        raise BlockingOnLoop(what)


def unexpected_on_loop(exc: BaseException) -> None:
    """In a call run on the loop, an unexpected error is not answered: the call runs again in a thread.

    That is where it always ran; the same error there is logged and answered as before, and
    errors that only the loop causes (SynchronousOnlyOperation) do not reach the caller.
    """
    if _ON_LOOP.get():
        raise BlockingOnLoop(type(exc).__name__) from exc


def _entered(function: Callable[..., T], kwargs: dict) -> T:
    token = _ON_LOOP.set(True)  # inside the greenlet, which has a context of its own
    try:
        return function(**kwargs)
    except Exception as exc:
        raise BlockingOnLoop(type(exc).__name__) from exc  # see unexpected_on_loop
    finally:
        _ON_LOOP.reset(token)


async def run_on_loop(function: Callable[..., T], /, **kwargs: Any) -> T:
    """`function(**kwargs)` on the event loop's thread, its database reads awaited (BlockingOnLoop: see above)."""
    return await greenlet_spawn(_entered, function, kwargs)


__all__ = ["BlockingOnLoop", "on_loop", "refuse_on_loop", "run_on_loop", "unexpected_on_loop"]
