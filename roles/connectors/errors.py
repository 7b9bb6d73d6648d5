"""Customer database errors as codes and safe messages: no constraint names, no driver text, no paths.

A driver's message can hold constraint and index names, values of other rows (DETAIL lines), host
names and socket paths. Callers (REST, MCP clients, endpoint callers, agents) get a code and a
message written here, naming at most a column of their own statement; the driver's full text is
logged server-side. Syntax and name errors of the caller's own (checked) SQL keep the driver's
first line, which only quotes that SQL and helps the caller fix it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

logger = logging.getLogger("nectar.database")


@dataclass(frozen=True)
class SafeError:
    code: str  # constraint_violation, invalid_argument, invalid_sql, forbidden, timeout, database_error, ...
    message: str
    field: str | None = None
    retryable: bool = False


# SQLSTATE class 23 and its kinds (PostgreSQL; MySQL and SQLite are mapped onto the same kinds).
_CONSTRAINT_TEXT = {
    "unique": "A row with the same value in a unique column already exists.",
    "foreign_key": "The row refers to a row that does not exist, or other rows still refer to it.",
    "not_null": "A required value is missing.",
    "check": "A value breaks a rule (CHECK constraint) of the table.",
    "exclusion": "The row conflicts with an existing row (exclusion constraint).",
    "other": "The change breaks a rule (constraint) of the database.",
}
_PG_CONSTRAINT = {
    "23505": "unique",
    "23503": "foreign_key",
    "23502": "not_null",
    "23514": "check",
    "23P01": "exclusion",
}
_MYSQL_CONSTRAINT = {
    1062: "unique",
    1586: "unique",
    1451: "foreign_key",
    1452: "foreign_key",
    1048: "not_null",
    1364: "not_null",
    3819: "check",
    4025: "check",
}
_SQLITE_CONSTRAINT = (
    ("unique constraint failed", "unique"),
    ("primary key", "unique"),
    ("foreign key constraint failed", "foreign_key"),
    ("not null constraint failed", "not_null"),
    ("check constraint failed", "check"),
)

_DATA_TEXT = {
    "too_long": "A text value is longer than its column allows.",
    "out_of_range": "A number is out of its column's range.",
    "format": "A value is not in the format its column expects.",
    "division_by_zero": "The query divides by zero.",
    "other": "A value does not fit its column's type.",
}
_PG_DATA = {
    "22001": "too_long",
    "22003": "out_of_range",
    "22008": "out_of_range",
    "22P02": "format",
    "22007": "format",
    "22023": "format",
    "22012": "division_by_zero",
}
_MYSQL_DATA = {1406: "too_long", 1264: "out_of_range", 1366: "format", 1292: "format", 1365: "division_by_zero"}
_MYSQL_PRIVILEGE = {1142, 1143, 1227, 1044, 1370}
_MYSQL_SYNTAX = {1064, 1054, 1146, 1305, 1109, 1052, 1140, 1111, 1055}
_MYSQL_TIMEOUT = {3024, 1969}
_MYSQL_BUSY = {1205, 1213}

_NOT_NULL_COLUMN = (
    re.compile(r"column '(?P<column>[^']+)' cannot be null", re.I),  # MySQL
    re.compile(r"field '(?P<column>[^']+)' doesn't have a default value", re.I),  # MySQL
    re.compile(r"not null constraint failed: (?:[\w\"]+\.)?(?P<column>[\w\"]+)", re.I),  # SQLite
)


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip()
    return (text.splitlines()[0] if text else type(orig).__name__)[:300]


def _sqlstate(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None) or "")


def _mysql_code(exc: BaseException) -> int | None:
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", None) or ()
    return args[0] if args and isinstance(args[0], int) else None


def _not_null_column(exc: BaseException, first_line: str) -> str | None:
    orig = getattr(exc, "orig", None) or exc
    diag = getattr(orig, "diag", None)
    column = getattr(diag, "column_name", None) if diag is not None else None
    if column:
        return column
    for pattern in _NOT_NULL_COLUMN:
        match = pattern.search(first_line)
        if match:
            return match["column"].strip('"')
    return None


def _constraint_kind(exc: BaseException, state: str, mysql: int | None, lowered: str, integrity: bool) -> str | None:
    if state.startswith("23"):
        return _PG_CONSTRAINT.get(state, "other")
    if mysql in _MYSQL_CONSTRAINT:
        return _MYSQL_CONSTRAINT[mysql]
    for needle, kind in _SQLITE_CONSTRAINT:
        if needle in lowered:
            return kind
    return "other" if integrity else None


def database_error_safe(
    exc: BaseException, *, classified: str = "", integrity: bool = False, data: bool = False
) -> SafeError:
    """The code and safe message for a driver error (`classified`: the connector's reason for it;
    `integrity`, `data`: SQLAlchemy classed it as an IntegrityError, a DataError).

    The full driver text is logged here, at WARNING, under "nectar.database".
    """
    first_line = _first_line(exc)
    lowered = first_line.lower()
    state = _sqlstate(exc)
    mysql = _mysql_code(exc)
    logger.warning("customer database error (sqlstate %s, code %s): %s", state or "-", mysql or "-", first_line)

    kind = _constraint_kind(exc, state, mysql, lowered, integrity)
    if kind is not None:
        field = _not_null_column(exc, first_line) if kind == "not_null" else None
        message = _CONSTRAINT_TEXT[kind]
        if field:
            message = f"A value is required for column {field!r}."
        return SafeError("constraint_violation", message, field=field)
    if (
        classified == "timeout"
        or state == "57014"
        or mysql in _MYSQL_TIMEOUT
        or "statement timeout" in lowered
        or "max_statement_time" in lowered
        or "interrupted" in lowered
    ):
        return SafeError("timeout", "The statement exceeded its time limit.", retryable=True)
    if state in ("40001", "40P01", "55P03") or mysql in _MYSQL_BUSY or "database is locked" in lowered:
        return SafeError("database_busy", "The database was busy (lock or serialization conflict); try again.", True)
    if state == "25006" or "read-only" in lowered or "read only" in lowered or "readonly" in lowered:
        return SafeError("forbidden", "Writes are not allowed in a read-only query.")
    if state == "42501" or mysql in _MYSQL_PRIVILEGE or "permission denied" in lowered:
        return SafeError("forbidden", "The Service's database user lacks a privilege this statement needs.")
    if "nul (0x00)" in lowered or "nul character" in lowered:
        return SafeError("invalid_argument", "A text value contains a NUL character, which the database cannot store.")
    if state.startswith("22") or mysql in _MYSQL_DATA or (data and not state):
        return SafeError("invalid_argument", _DATA_TEXT[_PG_DATA.get(state) or _MYSQL_DATA.get(mysql, "other")])
    if state.startswith("42") or mysql in _MYSQL_SYNTAX or lowered.startswith(("no such ", "near ", "syntax error")):
        # The caller's own statement: its syntax and names are the caller's, and the line helps fix it.
        return SafeError("invalid_sql", f"The database could not run the statement: {first_line}")
    suffix = f" (SQLSTATE {state})" if state else (f" (error {mysql})" if mysql else "")
    return SafeError("database_error", f"The database could not run the statement{suffix}.")


CONNECT_TEXT = {
    "authentication_failed": "The database rejected the user name or password.",
    "host_unreachable": "The database server could not be reached at that host and port.",
    "unknown_database": "The server has no database by that name.",
    "timeout": "The database did not answer in time.",
    "driver_missing": "The database driver is not installed on this server.",
    "target_refused": "This database address is not allowed for Services.",
}


def connect_error_text(reason: str) -> str:
    return CONNECT_TEXT.get(reason, "The database could not be reached.")
