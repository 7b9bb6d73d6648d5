"""A read on the event loop, run on psycopg's cursor when SQLAlchemy would hand back the driver's values.

`conn.execute(statement)` builds an execution context, a cursor wrapper and a result with its
row processors for every call. For a read of PostgreSQL on the event loop (roles.connectors.
onloop), where that is about a fifth of a tool call's CPU, `read_rows` sends the statement's
compiled SQL and parameters to the connection's own psycopg cursor instead, when that gives
exactly what SQLAlchemy would:

- the statement is compiled once per dialect, and taken only when SQLAlchemy would send its
  parameters as they are: no bind processors, no expanding (IN) or literal-rendered parameters,
  no escaped bind names;
- the first read of a statement, and any read whose result columns (their types as the server
  describes them) are new, goes through `conn.execute`; the direct way is kept for those columns
  only when SQLAlchemy's result for them had no row processor, so its rows were the driver's own;
- the connection is in autocommit, as the loop's read pools are (nothing to end afterwards).

A driver error is raised as SQLAlchemy would raise it (a DBAPIError, the connection invalidated
when it was lost), so callers see one behaviour either way. Anywhere else (a thread, another
driver) `read_rows` is `conn.execute`.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.util import await_

from roles.connectors.onloop import on_loop

_MEMO = "_nectar_direct_reads"
_lock = threading.Lock()


class _Plan:
    """A statement compiled for one dialect, and the result columns it may be read directly for."""

    __slots__ = ("compiled", "direct")

    def __init__(self, compiled):
        self.compiled = compiled
        # description signature -> the result's keys, for columns SQLAlchemy hands back unchanged
        self.direct: dict[tuple, list[str]] = {}


def _plan(statement, dialect) -> _Plan | None:
    plans = statement.__dict__.get(_MEMO)
    if plans is None:
        with _lock:
            plans = statement.__dict__.setdefault(_MEMO, weakref.WeakKeyDictionary())
    plan = plans.get(dialect, False)
    if plan is False:
        compiled = statement.compile(dialect=dialect)
        plain = (
            not compiled.positional
            and not compiled._bind_processors
            and not compiled.literal_execute_params
            and not compiled.post_compile_params
            and not compiled.escaped_bind_names
        )
        plan = plans[dialect] = _Plan(compiled) if plain else None
    return plan


def _signature(description) -> tuple:
    return tuple((column.name, column.type_code) for column in description)


def read_rows(conn: sa.Connection, statement, values: dict, *, max_rows: int | None = None) -> tuple[list[str], list]:
    """The result's keys and rows (sequences, `max_rows` at most) of a read statement."""
    raw = conn.connection.driver_connection if on_loop() else None
    plan = _plan(statement, conn.dialect) if raw is not None and getattr(raw, "autocommit", False) else None
    if plan is not None and plan.direct:
        params = plan.compiled.construct_params(values)
        driver_error = conn.dialect.loaded_dbapi.Error
        try:
            description, rows = await_(_fetch(raw, plan.compiled.string, params, max_rows))
        except driver_error as exc:
            lost = conn.dialect.is_disconnect(exc, conn.connection.dbapi_connection, None)
            if lost:
                conn.invalidate(exc)
            raise sa.exc.DBAPIError.instance(
                plan.compiled.string, params, exc, driver_error, connection_invalidated=lost, dialect=conn.dialect
            ) from exc
        keys = plan.direct.get(_signature(description))
        if keys is not None:
            return keys, rows
    result = conn.execute(statement, values)
    keys = list(result.keys())
    if plan is not None:
        description = getattr(result.context.cursor, "description", None)  # read before the rows close it
        if description and all(processor is None for processor in result._metadata._processors):
            plan.direct[_signature(description)] = keys
    return keys, (result.fetchmany(max_rows) if max_rows is not None else result.all())


async def _fetch(raw, sql: str, params: dict, max_rows: int | None) -> tuple[Sequence, list[Any]]:
    async with raw.cursor() as cursor:
        await cursor.execute(sql, params)
        rows = await (cursor.fetchmany(max_rows) if max_rows is not None else cursor.fetchall())
        return cursor.description, rows


__all__ = ["read_rows"]
