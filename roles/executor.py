"""The permission-checked executor: the only path from Nectar to customer data.

Every call names a Role; the object, action, columns and row filter are checked against the
Role's grants before anything reaches the database. Statements are built with SQLAlchemy Core
from introspected identifiers (quoted by the dialect) and bound values; reads run in read-only
transactions, writes in one transaction that rolls back entirely on any error.
"""

from __future__ import annotations

import datetime as dt
import decimal
import functools
import logging
import re
from typing import Any

import sqlalchemy as sa
from django.conf import settings

from roles.connectors import (
    ConnectionTestResult,
    ConnectorError,
    connector_for_engine,
    read_connection,
    service_test_connection,
    write_connection,
)
from roles.connectors.base import driver_message
from roles.connectors.direct import read_rows
from roles.connectors.errors import database_error_safe
from roles.introspection import schema_find_object, service_schema
from roles.jsonsafe import json_safe_record, json_safe_row
from roles.permissions import Grant, grant_find, grants_fingerprint, role_grants
from roles.results import CheckedSQL, ExecutorError, QueryResult, WriteResult
from roles.sqlcheck import CHECKER_VERSION, check_sql, internal_binds
from roles.values import coerce_value, value_type_error

logger = logging.getLogger(__name__)

__all__ = [
    "CheckedSQL",
    "ConnectionTestResult",
    "ExecutorError",
    "QueryResult",
    "WriteResult",
    "executor_call",
    "executor_delete",
    "executor_insert",
    "executor_query",
    "executor_run_checked",
    "executor_run_sql",
    "executor_update",
    "service_test_connection",
    "sql_check",
    "sql_check_kept",
    "sql_check_once",
    "sql_check_to_keep",
    "sql_explain_cost",
]

MAX_BATCH = 1000
MAX_IN_VALUES = 1000
MAX_FILTER_DEPTH = 8
MAX_CONDITIONS = 200
OPS = ("eq", "ne", "lt", "lte", "gt", "gte", "in", "like", "ilike", "is_null", "between")


# ---------------------------------------------------------------- grants and identifiers


def _schema_and_grants(role) -> tuple[dict, list[Grant]]:
    if not role.is_active:
        raise ExecutorError("forbidden", f"Role {role.name!r} is inactive.")
    try:
        schema = service_schema(service=role.service)
    except ConnectorError as exc:
        raise _connector_error(exc) from exc
    return schema, role_grants(role=role)


def _resolve(role, object_name, schema_name, *, action: str, kinds: tuple[str, ...]) -> tuple[Grant, dict]:
    if not isinstance(object_name, str) or not object_name:
        raise ExecutorError("invalid_argument", "object_name must be a non-empty string.", field="object_name")
    if schema_name is not None and (not isinstance(schema_name, str) or not schema_name):
        raise ExecutorError("invalid_argument", "schema must be a non-empty string when given.", field="schema")
    schema, grants = _schema_and_grants(role)
    where = f"{schema_name}.{object_name}" if schema_name else object_name
    grant = grant_find(grants, object_name=object_name, schema=schema_name, default_schema=schema["default_schema"])
    if grant is None:
        if schema_find_object(schema, object_name, schema_name) is None:
            raise ExecutorError("unknown_object", f"There is no object named {where!r}.", field="object_name")
        raise ExecutorError("forbidden", f"Role {role.name!r} has no access to {where!r}.", field="object_name")
    if grant.kind not in kinds:
        raise ExecutorError(
            "invalid_argument",
            f"{where!r} is a {grant.kind}; this operation needs a {' or '.join(kinds)}.",
            field="object_name",
        )
    if action not in grant.actions:
        raise ExecutorError("forbidden", f"Role {role.name!r} may not {action} on {where!r}.", field="object_name")
    return grant, schema


def _table(grant: Grant, schema: dict) -> sa.TableClause:
    sa_schema = None if schema["engine"] == "sqlite" else grant.schema
    return sa.table(grant.object_name, *[sa.column(c) for c in grant.column_names], schema=sa_schema)


def _readable_column(grant: Grant, name, field: str) -> dict:
    if not isinstance(name, str):
        raise ExecutorError("invalid_argument", f"{field} must be a column name (a string).", field=field)
    col = grant.column(name)
    if col is None:
        raise ExecutorError("unknown_column", f"{grant.object_name!r} has no column {name!r}.", field=field)
    if grant.allowed_columns is not None and name not in grant.allowed_columns:
        raise ExecutorError("forbidden", f"Column {name!r} of {grant.object_name!r} is not granted.", field=field)
    return col


# ---------------------------------------------------------------- filters and ordering


def _bind(value) -> sa.BindParameter:
    """An untyped bind: the database infers its type from the column (no VARCHAR cast is rendered)."""
    return sa.bindparam(None, value, type_=sa.types.NullType())


def _named(name: str) -> sa.BindParameter:
    """An untyped bind whose value comes with each execution (a cached statement's filter value)."""
    return sa.bindparam(name, type_=sa.types.NullType())


class _FilterBuilder:
    """Checks a caller's filters and turns them into a shape and its values.

    The shape is a hashable tree that names columns, operators and bind names (f0, f1, ...) but no
    values, so that one statement built from it serves every call of that shape; `values` holds
    the checked, coerced value of each bind.
    """

    def __init__(self, grant: Grant, engine: str):
        self.grant, self.engine = grant, engine
        self.count = 0
        self.values: dict[str, Any] = {}

    def _value(self, value) -> str:
        name = f"f{len(self.values)}"
        self.values[name] = value
        return name

    def build(self, filters, field: str = "filters", depth: int = 0) -> tuple | None:
        if depth > MAX_FILTER_DEPTH:
            raise ExecutorError("invalid_argument", f"{field}: filters nest too deeply.", field=field)
        if isinstance(filters, list):
            parts = [self._part(item, f"{field}[{i}]", depth + 1) for i, item in enumerate(filters)]
            return ("and", tuple(parts)) if parts else None
        if not isinstance(filters, dict):
            raise ExecutorError("invalid_argument", f"{field}: a filter must be an object or a list.", field=field)
        if len(filters) == 1 and next(iter(filters)) in ("and", "or"):
            key, items = next(iter(filters.items()))
            if not isinstance(items, list) or not items:
                raise ExecutorError(
                    "invalid_argument", f"{field}.{key} must be a non-empty list.", field=f"{field}.{key}"
                )
            return (key, tuple(self._part(item, f"{field}.{key}[{i}]", depth + 1) for i, item in enumerate(items)))
        if "column" in filters and "op" in filters:
            extra = set(filters) - {"column", "op", "value"}
            if extra:
                raise ExecutorError(
                    "invalid_argument", f"{field}: unexpected key(s) {', '.join(sorted(extra))}.", field=field
                )
            return self.condition(filters["column"], filters["op"], filters.get("value"), field)
        parts = []
        for name, value in filters.items():
            op = "is_null" if value is None else "eq"
            parts.append(self.condition(name, op, True if value is None else value, f"{field}.{name}"))
        return ("and", tuple(parts)) if parts else None

    def _part(self, filters, field: str, depth: int) -> tuple:
        shape = self.build(filters, field, depth)
        if shape is None:
            raise ExecutorError("invalid_argument", f"{field}: an empty filter; leave it out.", field=field)
        return shape

    def condition(self, name, op, value, field: str) -> tuple:
        self.count += 1
        if self.count > MAX_CONDITIONS:
            raise ExecutorError("invalid_argument", f"At most {MAX_CONDITIONS} conditions are allowed.", field=field)
        col = _readable_column(self.grant, name, f"{field}.column" if field.endswith("]") else field)
        if op not in OPS:
            raise ExecutorError(
                "invalid_argument", f"{field}: unknown operator {op!r}; use one of {', '.join(OPS)}.", field=field
            )
        if op == "is_null":
            if not isinstance(value, bool):
                raise ExecutorError("invalid_argument", f"{field}: is_null takes true or false.", field=field)
            return ("is_null", name, value)
        if col["json_type"] in ("object", "array"):
            raise ExecutorError(
                "invalid_argument", f"{field}: {col['json_type']} column {name!r} supports only is_null.", field=field
            )
        if op in ("like", "ilike"):
            if col["json_type"] != "string" or col.get("format") not in (None,):
                raise ExecutorError("invalid_argument", f"{field}: {op} applies to text columns only.", field=field)
            if not isinstance(value, str):
                raise value_type_error(col, field, "a pattern string", value)
            if len(value) > settings.MAX_PATTERN_LENGTH:
                raise ExecutorError(
                    "invalid_argument",
                    f"{field}: a {op} pattern may have at most {settings.MAX_PATTERN_LENGTH} characters "
                    f"(this one has {len(value)}).",
                    field=field,
                )
            return (op, name, self._value(value))
        if op == "in":
            if not isinstance(value, list) or not value or len(value) > MAX_IN_VALUES:
                raise ExecutorError(
                    "invalid_argument", f"{field}: in takes a list of 1 to {MAX_IN_VALUES} values.", field=field
                )
            values = [self._scalar(col, v, f"{field}.value[{i}]") for i, v in enumerate(value)]
            return ("in", name, tuple(self._value(v) for v in values))
        if op == "between":
            if not isinstance(value, list) or len(value) != 2:
                raise ExecutorError("invalid_argument", f"{field}: between takes [low, high].", field=field)
            low, high = (self._scalar(col, v, f"{field}.value[{i}]") for i, v in enumerate(value))
            return ("between", name, self._value(low), self._value(high))
        return (op, name, self._value(self._scalar(col, value, f"{field}.value")))

    def _scalar(self, col, value, field):
        if value is None:
            raise ExecutorError("invalid_argument", f"{field}: use is_null to match null values.", field=field)
        if isinstance(value, str) and len(value) > settings.MAX_VALUE_LENGTH:
            raise ExecutorError(
                "invalid_argument",
                f"{field}: a filter value may have at most {settings.MAX_VALUE_LENGTH} characters "
                f"(this one has {len(value)}).",
                field=field,
            )
        return coerce_value(col, value, field, self.engine)


_COMPARISONS = {
    "eq": lambda column, bound: column == bound,
    "ne": lambda column, bound: column != bound,
    "lt": lambda column, bound: column < bound,
    "lte": lambda column, bound: column <= bound,
    "gt": lambda column, bound: column > bound,
    "gte": lambda column, bound: column >= bound,
    "like": lambda column, bound: column.like(bound),
    "ilike": lambda column, bound: column.ilike(bound),
}


def _filter_clause(shape: tuple, table: sa.TableClause, bind):
    """The SQL condition of a filter shape; `bind(name)` gives the bind parameter of each value."""
    kind = shape[0]
    if kind in ("and", "or"):
        parts = [_filter_clause(part, table, bind) for part in shape[1]]
        return sa.and_(*parts) if kind == "and" else sa.or_(*parts)
    column = table.c[shape[1]]
    if kind == "is_null":
        return column.is_(None) if shape[2] else column.is_not(None)
    if kind == "in":
        return column.in_([bind(name) for name in shape[2]])
    if kind == "between":
        return column.between(bind(shape[2]), bind(shape[3]))
    return _COMPARISONS[kind](column, bind(shape[2]))


def _row_filter_clause(grant: Grant, table: sa.TableClause, engine: str):
    parts = []
    for name, value in grant.row_filter.items():
        col = grant.column(name)
        if value is None:
            parts.append(table.c[name].is_(None))
        else:
            parts.append(table.c[name] == _bind(coerce_value(col, value, f"rowFilter.{name}", engine)))
    return sa.and_(*parts) if parts else None


def _where(grant, table, engine, filters, *, required: bool):
    clauses = []
    row_filter = _row_filter_clause(grant, table, engine)
    if row_filter is not None:
        clauses.append(row_filter)
    builder = _FilterBuilder(grant, engine)
    shape = _filter_shape(builder, filters)
    if required and shape is None:
        raise ExecutorError(
            "invalid_argument", "filters are required: an unfiltered change of every row is refused.", field="filters"
        )
    if shape is not None:
        clauses.append(_filter_clause(shape, table, lambda name: _bind(builder.values[name])))
    return clauses


def _filter_shape(builder: _FilterBuilder, filters) -> tuple | None:
    if filters is None or filters == {} or filters == []:
        return None
    return builder.build(filters)


def _order_shape(grant: Grant, order_by) -> tuple[tuple[str, bool], ...]:
    """The checked ordering as (column, descending) pairs."""
    if order_by is None or order_by == [] or order_by == "":
        return ()
    items = order_by if isinstance(order_by, list) else [order_by]
    out = []
    for i, item in enumerate(items):
        field = f"order_by[{i}]"
        if isinstance(item, str):
            desc = item.startswith("-")
            name = item[1:] if desc else item
        elif isinstance(item, dict) and set(item) <= {"column", "direction"} and "column" in item:
            name = item["column"]
            direction = item.get("direction", "asc")
            if direction not in ("asc", "desc"):
                raise ExecutorError("invalid_argument", f"{field}.direction must be asc or desc.", field=field)
            desc = direction == "desc"
        else:
            raise ExecutorError(
                "invalid_argument", f'{field} must be "col", "-col" or {{"column", "direction"}}.', field=field
            )
        _readable_column(grant, name, field)
        out.append((name, desc))
    return tuple(out)


# Engines whose LIMIT and OFFSET take bind parameters, so that one statement serves every page.
BOUND_LIMIT_ENGINES = frozenset({"postgresql", "mysql", "sqlite"})
LIMIT_BIND, OFFSET_BIND = "nectar_limit", "nectar_offset"
STATEMENTS = "_nectar_statements"
MAX_CACHED_STATEMENTS = 256


def _query_statements(grant: Grant, db_schema: dict, names: tuple, shape, ordering: tuple, page, include_total: bool):
    """The SELECT (and its COUNT) of one query shape on a grant, built once and kept with the grant.

    A statement kept this way is compiled once by SQLAlchemy's cache, and only the filter values
    change between calls. The cache goes with the grant: a change of the Role's permissions or of
    the schema makes new grants, with none.
    """
    cache = grant.__dict__.get(STATEMENTS)
    if cache is None or len(cache) >= MAX_CACHED_STATEMENTS:
        cache = grant.__dict__[STATEMENTS] = {}  # the grant is frozen: its own dict, not setattr
    key = (db_schema["engine"], names, shape, ordering, page, include_total)
    statements = cache.get(key)
    if statements is None:
        table = _table(grant, db_schema)
        where = [_row_filter_clause(grant, table, db_schema["engine"])]
        if shape is not None:
            where.append(_filter_clause(shape, table, _named))
        where = [clause for clause in where if clause is not None]
        columns = [table.c[name].desc() if desc else table.c[name].asc() for name, desc in ordering]
        statement = sa.select(*[table.c[n] for n in names]).where(*where).order_by(*columns)
        if page is None:
            statement = statement.limit(_named_int(LIMIT_BIND)).offset(_named_int(OFFSET_BIND))
        else:
            statement = statement.limit(page[0]).offset(page[1])
        counting = sa.select(sa.func.count()).select_from(table).where(*where) if include_total else None
        statements = cache[key] = (statement, counting)
    return statements


def _named_int(name: str) -> sa.BindParameter:
    return sa.bindparam(name, type_=sa.Integer)


def _limit(limit) -> int:
    cap = settings.QUERY_ROW_CAP
    if limit is None:
        return cap
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ExecutorError("invalid_argument", "limit must be a non-negative integer.", field="limit")
    return min(limit, cap)


def _json_columns(grant: Grant) -> frozenset:
    return frozenset(c["name"] for c in grant.object.get("columns", []) if c.get("json_type") in ("object", "array"))


def _time_columns(grant: Grant) -> frozenset:
    return frozenset(c["name"] for c in grant.object.get("columns", []) if c.get("format") == "time")


def _decimal_scales(grant: Grant) -> dict:
    scales = {}
    for c in grant.object.get("columns", []):
        if c.get("format") == "decimal":
            match = re.search(r"\(\s*\d+\s*,\s*(\d+)\s*\)", c.get("type") or "")
            scales[c["name"]] = int(match.group(1)) if match else None
    return scales


def _boolean_columns(grant: Grant) -> frozenset[str]:
    return frozenset(c["name"] for c in grant.object.get("columns", []) if c.get("json_type") == "boolean")


def _row_shape(grant: Grant) -> tuple[frozenset, frozenset, dict, frozenset]:
    """The columns whose values need converting (JSON, TIME, decimals, booleans), worked out once per grant."""
    shape = grant.__dict__.get("_nectar_row_shape")  # grants are frozen; their __dict__ holds the memo
    if shape is None:
        shape = (_json_columns(grant), _time_columns(grant), _decimal_scales(grant), _boolean_columns(grant))
        grant.__dict__["_nectar_row_shape"] = shape
    return shape


def _safe_rows(grant: Grant, rows: list[dict]) -> list[dict]:
    json_cols, time_cols, scales, bool_cols = _row_shape(grant)
    out = []
    for row in rows:
        for name in bool_cols:
            # SQLite and MySQL store booleans as 0/1; the column's declared type says they are booleans.
            if isinstance(row.get(name), int) and not isinstance(row.get(name), bool):
                row[name] = bool(row[name])
        for name, scale in scales.items():
            value = row.get(name)
            # SQLite hands NUMERIC back as int or float; restore the declared scale as a decimal string.
            if isinstance(value, int | float) and not isinstance(value, bool):
                number = decimal.Decimal(str(value))
                row[name] = number.quantize(decimal.Decimal(1).scaleb(-scale)) if scale is not None else number
        out.append(json_safe_row(row, json_cols, time_cols))
    return out


# ---------------------------------------------------------------- errors from the database


def _connector_error(exc: ConnectorError) -> ExecutorError:
    if exc.reason == "timeout":
        return ExecutorError("timeout", "The database did not answer in time.", retryable=True)
    return ExecutorError("database_unavailable", f"The database is unavailable ({exc.reason}).", retryable=True)


def _db_error(exc: Exception, connector, *, context: str = "") -> ExecutorError:
    """A driver error as an ExecutorError with a safe message (roles.connectors.errors; the driver text is logged)."""
    prefix = f"{context}: " if context else ""
    if isinstance(exc, ExecutorError):
        return exc
    if isinstance(exc, ConnectorError):
        return _connector_error(exc)
    if isinstance(exc, sa.exc.DBAPIError):
        if exc.connection_invalidated:
            logger.warning("customer database connection lost: %s", driver_message(exc))
            return ExecutorError("database_unavailable", "The database connection was lost.", retryable=True)
        reason = connector.classify(exc) if connector is not None else ""
        if reason == "host_unreachable":
            logger.warning("customer database unreachable: %s", driver_message(exc))
            return ExecutorError("database_unavailable", "The database connection was lost.", retryable=True)
        safe = database_error_safe(
            exc,
            classified=reason,
            integrity=isinstance(exc, sa.exc.IntegrityError),
            data=isinstance(exc, sa.exc.DataError),
        )
        field = f"{context}.{safe.field}" if context and safe.field else (safe.field or None)
        return ExecutorError(safe.code, f"{prefix}{safe.message}", field=field, retryable=safe.retryable)
    logger.exception("Unexpected error from a customer database")
    return ExecutorError("database_error", f"{prefix}unexpected database error.")


def _run(service, work, *, write: bool, context: str = "", dry_run: bool = False):
    connector = None
    try:
        if not write:
            return _run_read(service, work)
        with write_connection(service=service, dry_run=dry_run) as (conn, engines):
            connector = engines.connector
            return work(conn, engines)
    except ExecutorError:
        raise
    except ConnectorError as exc:
        raise _connector_error(exc) from exc
    except sa.exc.SQLAlchemyError as exc:
        raise _db_error(exc, connector or _connector_for(service), context=context) from exc


def _run_read(service, work):
    """A read; retried once on a fresh connection when the pooled one turns out to be dead (no pre-ping)."""
    for attempt in (1, 2):
        try:
            with read_connection(service=service) as (conn, engines):
                return work(conn, engines)
        except sa.exc.DBAPIError as exc:
            if attempt == 2 or not exc.connection_invalidated:
                raise


def _connector_for(service):
    return connector_for_engine(service.engine)


# ---------------------------------------------------------------- query / insert / update / delete


def executor_query(
    *,
    role,
    object_name: str,
    schema: str | None = None,
    columns: list[str] | None = None,
    filters: dict | list | None = None,
    order_by: list | str | None = None,
    limit: int | None = None,
    offset: int = 0,
    include_total: bool = False,
) -> QueryResult:
    """Read rows of a granted table or view with typed filters, ordering and a capped limit."""
    grant, db_schema = _resolve(role, object_name, schema, action="SELECT", kinds=("table", "view"))
    engine = db_schema["engine"]
    if columns is None or columns == []:
        names = list(grant.readable_columns)
    else:
        if not isinstance(columns, list):
            raise ExecutorError("invalid_argument", "columns must be a list of column names.", field="columns")
        names = []
        for i, name in enumerate(columns):
            _readable_column(grant, name, f"columns[{i}]")
            if name not in names:
                names.append(name)
    builder = _FilterBuilder(grant, engine)
    shape = _filter_shape(builder, filters)
    ordering = _order_shape(grant, order_by)
    row_limit = _limit(limit)
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise ExecutorError("invalid_argument", "offset must be a non-negative integer.", field="offset")
    if not isinstance(include_total, bool):
        raise ExecutorError("invalid_argument", "include_total must be true or false.", field="include_total")
    values = dict(builder.values)
    if engine in BOUND_LIMIT_ENGINES:
        values.update({LIMIT_BIND: row_limit + 1, OFFSET_BIND: offset})
        page = None
    else:
        page = (row_limit + 1, offset)  # rendered into the statement (SQL Server's TOP, Oracle's FETCH)
    statement, counting = _query_statements(grant, db_schema, tuple(names), shape, ordering, page, include_total)

    def work(conn, _engines):
        keys, found = read_rows(conn, statement, values)
        rows = [dict(zip(keys, r, strict=True)) for r in found]
        total = conn.execute(counting, builder.values).scalar() if counting is not None else None
        return rows, total

    rows, total = _run(role.service, work, write=False, context=f"query {object_name}")
    truncated = len(rows) > row_limit
    rows = _safe_rows(grant, rows[:row_limit])
    return QueryResult(columns=names, rows=rows, row_count=len(rows), total=total, truncated=truncated)


def executor_distinct(
    *, role, object_name: str, schema: str | None = None, column: str, limit: int
) -> tuple[list, bool]:
    """The distinct non-null values of one column of a granted table or view, most frequent first, and
    whether that is all of them (at most `limit` are returned)."""
    grant, db_schema = _resolve(role, object_name, schema, action="SELECT", kinds=("table", "view"))
    table = _table(grant, db_schema)
    _readable_column(grant, column, "column")
    where = _where(grant, table, db_schema["engine"], None, required=False)
    target = table.c[column]
    count = sa.func.count().label("n")
    statement = (
        sa.select(target, count)
        .where(*where, target.is_not(None))
        .group_by(target)
        .order_by(count.desc(), target)
        .limit(_limit(limit) + 1)
    )

    def work(conn, _engines):
        return [{column: r[0]} for r in conn.execute(statement)]

    rows = _run(role.service, work, write=False, context=f"distinct {object_name}.{column}")
    values = [r[column] for r in _safe_rows(grant, rows[:limit])]
    return values, len(rows) <= limit


def _write_values(grant: Grant, values, field: str, engine: str, *, insert: bool) -> dict:
    if not isinstance(values, dict):
        raise ExecutorError("invalid_argument", f"{field} must be an object of column: value.", field=field)
    out = {}
    for name, value in values.items():
        col = grant.column(name) if isinstance(name, str) else None
        if col is None:
            raise ExecutorError(
                "unknown_column", f"{field}: {grant.object_name!r} has no column {name!r}.", field=f"{field}.{name}"
            )
        if grant.allowed_columns is not None and name not in grant.allowed_columns and name not in grant.row_filter:
            raise ExecutorError(
                "forbidden", f"{field}: column {name!r} is not granted for writing.", field=f"{field}.{name}"
            )
        if value is None and not col.get("nullable", True):
            raise ExecutorError(
                "invalid_argument", f"{field}: column {name!r} may not be null.", field=f"{field}.{name}"
            )
        out[name] = coerce_value(col, value, f"{field}.{name}", engine)
    for name, expected in grant.row_filter.items():
        col = grant.column(name)
        wanted = None if expected is None else coerce_value(col, expected, f"rowFilter.{name}", engine)
        if name in values:
            if values[name] != expected and out[name] != wanted:
                raise ExecutorError(
                    "forbidden",
                    f"{field}: {name!r} must be {expected!r} for this role (row filter).",
                    field=f"{field}.{name}",
                )
        elif insert:
            out[name] = wanted
    return out


def _returning_columns(grant: Grant, table) -> list:
    return [table.c[n] for n in grant.readable_columns]


def executor_insert(
    *, role, object_name: str, schema: str | None = None, rows: list[dict], dry_run: bool = False
) -> WriteResult:
    """Insert a batch of rows atomically: a failing row rolls back the whole batch."""
    grant, db_schema = _resolve(role, object_name, schema, action="INSERT", kinds=("table",))
    engine = db_schema["engine"]
    if not isinstance(rows, list) or not rows:
        raise ExecutorError("invalid_argument", "rows must be a non-empty list of objects.", field="rows")
    if len(rows) > MAX_BATCH:
        raise ExecutorError("invalid_argument", f"At most {MAX_BATCH} rows per batch.", field="rows")
    table = _table(grant, db_schema)
    prepared = [_write_values(grant, row, f"rows[{i}]", engine, insert=True) for i, row in enumerate(rows)]

    def work(conn, engines):
        returning = conn.dialect.insert_returning
        out, count = [], 0
        for i, values in enumerate(prepared):
            statement = sa.insert(table).values(values) if values else sa.insert(table)
            if returning:
                statement = statement.returning(*_returning_columns(grant, table))
            try:
                result = conn.execute(statement)
            except sa.exc.SQLAlchemyError as exc:
                raise _db_error(exc, engines.connector, context=f"rows[{i}]") from exc
            if returning:
                out.extend(dict(r) for r in result.mappings())
            count += result.rowcount if result.rowcount and result.rowcount > 0 else 1
        return count, out

    count, returned = _run(role.service, work, write=True, context=f"insert into {object_name}", dry_run=dry_run)
    return WriteResult(row_count=count, rows=_safe_rows(grant, returned))


def executor_update(
    *, role, object_name: str, schema: str | None = None, values: dict, filters, dry_run: bool = False
) -> WriteResult:
    """Update the rows matching filters (mandatory), confined to the Role's row filter."""
    grant, db_schema = _resolve(role, object_name, schema, action="UPDATE", kinds=("table",))
    engine = db_schema["engine"]
    table = _table(grant, db_schema)
    if not isinstance(values, dict) or not values:
        raise ExecutorError("invalid_argument", "values must be a non-empty object of column: value.", field="values")
    prepared = _write_values(grant, values, "values", engine, insert=False)
    where = _where(grant, table, engine, filters, required=True)

    def work(conn, _engines):
        statement = sa.update(table).where(*where).values(prepared)
        returning = conn.dialect.update_returning
        if returning:
            statement = statement.returning(*_returning_columns(grant, table))
        result = conn.execute(statement)
        rows = [dict(r) for r in result.mappings()] if returning else []
        return (len(rows) if returning else result.rowcount), rows

    count, returned = _run(role.service, work, write=True, context=f"update {object_name}", dry_run=dry_run)
    return WriteResult(row_count=count, rows=_safe_rows(grant, returned))


def executor_delete(
    *, role, object_name: str, schema: str | None = None, filters, dry_run: bool = False
) -> WriteResult:
    """Delete the rows matching filters (mandatory), confined to the Role's row filter."""
    grant, db_schema = _resolve(role, object_name, schema, action="DELETE", kinds=("table",))
    engine = db_schema["engine"]
    table = _table(grant, db_schema)
    where = _where(grant, table, engine, filters, required=True)

    def work(conn, _engines):
        statement = sa.delete(table).where(*where)
        returning = conn.dialect.delete_returning
        if returning:
            statement = statement.returning(*_returning_columns(grant, table))
        result = conn.execute(statement)
        rows = [dict(r) for r in result.mappings()] if returning else []
        return (len(rows) if returning else result.rowcount), rows

    count, returned = _run(role.service, work, write=True, context=f"delete from {object_name}", dry_run=dry_run)
    return WriteResult(row_count=count, rows=_safe_rows(grant, returned))


# ---------------------------------------------------------------- procedures and functions

_TYPE_TEXT = re.compile(r"^[A-Za-z_][A-Za-z0-9_ .,()\[\]\"]*$")


def _call_arguments(grant: Grant, parameters) -> list[tuple[dict, Any, bool]]:
    """(argument, bound value, given) for each argument, in declared order."""
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise ExecutorError("invalid_argument", "parameters must be an object of name: value.", field="parameters")
    arguments = grant.object.get("arguments", [])
    inputs = {a["name"]: a for a in arguments if a["mode"] in ("IN", "INOUT", "VARIADIC")}
    for name in parameters:
        if name not in inputs:
            expected = ", ".join(inputs) or "no parameters"
            raise ExecutorError(
                "invalid_argument",
                f"{grant.object_name} has no input parameter {name!r}; expected {expected}.",
                field=f"parameters.{name}",
            )
    out = []
    for arg in arguments:
        given = arg["name"] in parameters
        if arg["mode"] in ("IN", "VARIADIC") and not given and not arg.get("has_default"):
            raise ExecutorError(
                "invalid_argument",
                f"parameters.{arg['name']} is required ({arg['type']}).",
                field=f"parameters.{arg['name']}",
            )
        value = None
        if given:
            value = coerce_value(
                {"name": arg["name"], "type": arg["type"], "json_type": arg["json_type"], "format": arg["format"]},
                parameters[arg["name"]],
                f"parameters.{arg['name']}",
                "",
            )
        out.append((arg, value, given))
    return out


def _call_statement(grant: Grant, engine: str, args, preparer) -> tuple[list, dict]:
    """Statements to run in order (the last returns the result) and their binds."""
    qualified = f"{preparer.quote_identifier(grant.schema)}.{preparer.quote_identifier(grant.object_name)}"
    binds: dict[str, Any] = {}
    if engine == "postgresql":
        parts = []
        for i, (arg, value, given) in enumerate(args):
            if not _TYPE_TEXT.match(arg["type"]):
                raise ExecutorError("database_error", f"Unsupported argument type {arg['type']!r}.")
            name = preparer.quote_identifier(arg["name"])
            if arg["mode"] == "OUT":
                if grant.kind == "procedure":
                    parts.append(f"{name} => NULL")
                continue
            if not given:
                continue
            binds[f"p{i}"] = value
            parts.append(f"{name} => CAST(:p{i} AS {arg['type']})")
        if grant.kind == "procedure":
            return [sa.text(f"CALL {qualified}({', '.join(parts)})")], binds
        return [sa.text(f"SELECT * FROM {qualified}({', '.join(parts)})")], binds
    if engine == "mysql":
        if grant.kind == "function":
            placeholders = []
            for i, (_arg, value, _given) in enumerate(args):
                binds[f"p{i}"] = value
                placeholders.append(f":p{i}")
            return [sa.text(f"SELECT {qualified}({', '.join(placeholders)}) AS result")], binds
        statements, placeholders, outs = [], [], []
        for i, (arg, value, _given) in enumerate(args):
            if arg["mode"] in ("OUT", "INOUT"):
                var = f"@nectar_out_{i}"
                statements.append(sa.text(f"SET {var} = :p{i}").bindparams(sa.bindparam(f"p{i}", value)))
                placeholders.append(var)
                outs.append(f"{var} AS {preparer.quote_identifier(arg['name'])}")
            else:
                binds[f"p{i}"] = value
                placeholders.append(f":p{i}")
        statements.append(sa.text(f"CALL {qualified}({', '.join(placeholders)})"))
        if outs:
            statements.append(sa.text(f"SELECT {', '.join(outs)}"))
        return statements, binds
    raise ExecutorError("invalid_argument", f"Calling routines is not supported on {engine}.")


def executor_call(*, role, object_name: str, schema: str | None = None, parameters: dict) -> QueryResult:
    """Execute a granted procedure or function with named, typed parameters."""
    grant, db_schema = _resolve(role, object_name, schema, action="EXECUTE", kinds=("procedure", "function"))
    args = _call_arguments(grant, parameters)
    cap = settings.QUERY_ROW_CAP

    def work(conn, _engines):
        statements, binds = _call_statement(grant, db_schema["engine"], args, conn.dialect.identifier_preparer)
        rows, columns = [], []
        for statement in statements:
            params = {k: v for k, v in binds.items() if re.search(rf":{k}\b", statement.text)}
            result = conn.execute(statement, params)
            if result.returns_rows:
                columns = list(result.keys())
                rows = [dict(r) for r in result.mappings().fetchmany(cap + 1)]
        return columns, rows

    columns, rows = _run(role.service, work, write=True, context=f"call {object_name}")
    truncated = len(rows) > cap
    rows = _safe_rows(grant, rows[:cap])
    return QueryResult(columns=columns, rows=rows, row_count=len(rows), total=None, truncated=truncated)


# ---------------------------------------------------------------- read-only SQL (generated endpoints)


def sql_check(*, role, sql: str, params: dict | None = None) -> CheckedSQL:
    """Parse and check read-only SQL against the Role's grants; return the SQL that will run."""
    schema, grants = _schema_and_grants(role)
    return check_sql(sql=sql, params=params, schema=schema, grants=grants)


def executor_run_sql(*, role, sql: str, params: dict, limit: int | None = None) -> QueryResult:
    """Run checked read-only SQL with bound parameters in a read-only transaction, capped at the row cap."""
    checked = sql_check(role=role, sql=sql, params=params)
    return executor_run_checked(role=role, checked=checked, params=params, limit=limit)


def sql_check_once(*, role, sql: str, holder) -> CheckedSQL:
    """sql_check without params, remembered on `holder` while the Role's grants are the same objects.

    Generated endpoints check their SQL once per version and process instead of on every call;
    the call's params are then checked against the bind names (executor_run_checked).
    """
    _, grants = _schema_and_grants(role)
    memo = getattr(holder, "_nectar_checked_sql", None)
    if memo is not None and memo[0] is grants and memo[1] == sql:
        return memo[2]
    checked = sql_check(role=role, sql=sql)
    holder._nectar_checked_sql = (grants, sql, checked)
    return checked


def _check_fingerprint(role) -> str:
    schema, grants = _schema_and_grants(role)
    return f"{CHECKER_VERSION}:{grants_fingerprint(grants, schema=schema)}"


_KEPT_TYPES = (str, int, float, bool, type(None))


def sql_check_to_keep(*, role, sql: str) -> dict | None:
    """Check `sql` now and return the result as JSON to keep on a row (a generated endpoint at deploy).

    The stored form names the checker and the Role's grants it was made under (sql_check_kept
    trusts it only while both are the same). None when a value Nectar binds itself has no
    faithful JSON form: such SQL is checked once per process instead. Raises ExecutorError
    when the SQL is refused.
    """
    checked = sql_check(role=role, sql=sql)
    internal = internal_binds(checked)
    if not all(isinstance(v, _KEPT_TYPES) for v in internal.values()):
        return None
    return {
        "fingerprint": _check_fingerprint(role),
        "source": sql,
        "sql": checked.sql,
        "bind_names": list(checked.bind_names),
        "objects": [list(o) for o in checked.objects],
        "internal_params": internal,
    }


def sql_check_kept(*, role, sql: str, kept: dict | None, holder) -> CheckedSQL:
    """The check kept by sql_check_to_keep when it was made for this SQL, checker and grants; else sql_check_once.

    Either way the result is remembered on `holder` while the Role's grants are the same objects,
    so a call decodes or checks nothing once its endpoint is loaded.
    """
    _, grants = _schema_and_grants(role)
    memo = getattr(holder, "_nectar_checked_sql", None)
    if memo is not None and memo[0] is grants and memo[1] == sql:
        return memo[2]
    if isinstance(kept, dict) and kept.get("source") == sql and kept.get("fingerprint") == _check_fingerprint(role):
        checked = CheckedSQL(
            sql=kept["sql"],
            bind_names=tuple(kept["bind_names"]),
            objects=tuple(tuple(o) for o in kept["objects"]),
            internal_params=dict(kept["internal_params"]),
        )
        holder._nectar_checked_sql = (grants, sql, checked)
        return checked
    return sql_check_once(role=role, sql=sql, holder=holder)


def _params_checked(checked: CheckedSQL, params) -> None:
    from roles.sqlcheck import BIND_TYPES

    if not isinstance(params, dict):
        raise ExecutorError("invalid_argument", "params must be an object of name: value.", field="params")
    missing = [n for n in checked.bind_names if n not in params]
    extra = [n for n in params if n not in checked.bind_names]
    if missing:
        raise ExecutorError("invalid_argument", f"Missing value for bind(s): {', '.join(missing)}.", field="params")
    if extra:
        raise ExecutorError(
            "invalid_argument", f"Unknown param(s) not used by the SQL: {', '.join(extra)}.", field="params"
        )
    for name in checked.bind_names:
        value = params[name]
        if not (value is None or isinstance(value, BIND_TYPES)):
            raise ExecutorError(
                "invalid_argument",
                f"params.{name} must be a string, number, boolean, date, time, UUID or null.",
                field=f"params.{name}",
            )


def executor_run_checked(*, role, checked: CheckedSQL, params: dict, limit: int | None = None) -> QueryResult:
    """Run SQL that sql_check accepted for this Role, with its params checked against the bind names."""
    _params_checked(checked, params)
    row_limit = _limit(limit)
    binds = _binds(checked, params, role.service.engine)

    def work(conn, _engines):
        return read_rows(conn, _text_clause(checked.sql), binds, max_rows=row_limit + 1)

    columns, rows = _run(role.service, work, write=False, context="query")
    truncated = len(rows) > row_limit
    rows = [json_safe_record(columns, r) for r in rows[:row_limit]]
    return QueryResult(columns=columns, rows=rows, row_count=len(rows), total=None, truncated=truncated)


@functools.lru_cache(maxsize=1024)
def _text_clause(sql: str) -> sa.TextClause:
    """The statement of checked SQL, parsed for its bind names once per text (deployed endpoints run the same SQL)."""
    return sa.text(sql)


def _binds(checked: CheckedSQL, params: dict | None, engine: str) -> dict:
    out = dict(params or {})
    out.update(internal_binds(checked))
    if engine == "sqlite":
        # sqlite3 stores dates as ISO text; give it text rather than relying on its deprecated adapters.
        out = {k: v.isoformat() if isinstance(v, dt.date | dt.time) else v for k, v in out.items()}
    return out


def sql_explain_cost(*, role, sql: str, params: dict | None) -> float:
    """The planner's estimated total cost of checked read-only SQL (0.0 where the engine has no cost)."""
    checked = sql_check(role=role, sql=sql, params=params)
    binds = _binds(checked, params, role.service.engine)

    def work(conn, engines):
        return engines.connector.explain_cost(conn, checked.sql, binds)

    return float(_run(role.service, work, write=False, context="explain"))
