"""The one path by which a generated endpoint runs: live calls and its tests alike.

Reads go through roles.executor.executor_run_sql (read-only transaction, bound parameters,
statement timeout, row cap); writes through the executor's insert/update/delete where the Role
grants them. Live calls are logged as ToolCall rows and counted on the endpoint.
"""

from __future__ import annotations

import inspect
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from types import SimpleNamespace
from typing import Any

import sqlglot
from django.conf import settings
from sqlglot import exp

from endpoints.models import GeneratedEndpoint
from endpoints.numbers import numeric_columns, rows_with_numbers
from endpoints.params import parameters_json_safe, parameters_parse
from endpoints.sqldialect import ENGINE_DIALECTS
from mcpservers.audit import audit_record
from mcpservers.models import CallOutcome
from nectar.text import text_printable
from roles import executor
from roles.connectors import ConnectorError
from roles.connectors.onloop import unexpected_on_loop
from roles.executor import ExecutorError

logger = logging.getLogger(__name__)

# Executor error codes -> HTTP status of a live call.
STATUS_BY_CODE = {
    "invalid_argument": 400,
    "unknown_column": 400,
    "constraint_violation": 409,
    "forbidden": 403,
    "unknown_object": 500,
    "invalid_sql": 500,
    "timeout": 504,
    "database_unavailable": 503,
    "database_busy": 503,
    "database_error": 502,
}
SECRET_WORDS = ("password", "passwd", "secret", "token", "apikey", "api_key", "credential")
REDACTED = "[redacted]"


@dataclass(frozen=True)
class EndpointResult:
    """The outcome of one run: an HTTP status and a JSON body."""

    status: int
    body: dict
    rows: int | None = None
    error: str = ""
    headers: dict = field(default_factory=dict)


def error_body(status: int, message: str, *, code: str, errors: list[dict] | None = None) -> dict:
    body = {"error": {"status": status, "code": code, "message": message}}
    if errors:
        body["error"]["errors"] = errors
    return body


def page_size_default() -> int:
    return min(getattr(settings, "ENDPOINT_PAGE_SIZE", 100), settings.QUERY_ROW_CAP)


def _bind_value(value: Any, engine: str) -> Any:
    # SQLite keeps dates as ISO text; compare against the same text rather than a driver adaptation.
    if engine == "sqlite" and isinstance(value, date | datetime):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    if isinstance(value, list):
        return [_bind_value(v, engine) for v in value]
    return value


def bind_params(*, endpoint: GeneratedEndpoint, params: dict) -> dict:
    engine = endpoint.role.service.engine
    return {k: _bind_value(v, engine) for k, v in params.items()}


def _supports(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _mapped(mapping: dict, params: dict) -> dict:
    return {column: params.get(param) for column, param in (mapping or {}).items()}


def endpoint_execute(*, endpoint: GeneratedEndpoint, params: dict, limit: int | None = None, dry_run: bool = False):
    """Run the endpoint with parsed parameters: a QueryResult for reads, a WriteResult for writes.

    Raises roles.executor.ExecutorError. `dry_run` (tests) performs writes in a rolled-back transaction.
    """

    bound = bind_params(endpoint=endpoint, params=params)
    if not endpoint.write_action:
        checked = executor.sql_check_kept(
            role=endpoint.role, sql=endpoint.sql, kept=_kept(endpoint, "read"), holder=endpoint
        )
        return executor.executor_run_checked(role=endpoint.role, checked=checked, params=bound, limit=limit)
    action = endpoint.write_action
    mapping = action.get("mapping") or {}
    target = {"role": endpoint.role, "object_name": action["object"], "schema": action.get("schema")}
    fn = {
        "insert": executor.executor_insert,
        "update": executor.executor_update,
        "delete": executor.executor_delete,
    }[action["action"]]
    if dry_run:
        if not _supports(fn, "dry_run"):
            raise NotImplementedError("The executor cannot run this write in a rolled-back transaction.")
        target["dry_run"] = True
    values = _mapped(mapping.get("values", {}), bound)
    filters = _mapped(mapping.get("filters", {}), bound)
    if action["action"] == "insert":
        return fn(**target, rows=[values])
    if action["action"] == "update":
        return fn(**target, values=values, filters=filters)
    return fn(**target, filters=filters)


def _is_secret(name: str) -> bool:
    lowered = re.sub(r"[^a-z]", "", str(name).lower())
    return any(word.replace("_", "") in lowered for word in SECRET_WORDS)


def redact(values: dict) -> dict:
    """Arguments as stored in the audit log: secret-looking names hidden, long texts shortened."""
    out = {}
    for key, value in text_printable(parameters_json_safe(values)).items():
        if _is_secret(key):
            out[key] = REDACTED
        elif isinstance(value, str) and len(value) > 200:
            out[key] = value[:200] + "…"
        else:
            out[key] = value
    return out


def _int_arg(raw: Any, name: str, *, minimum: int, maximum: int, default: int) -> tuple[int, dict | None]:
    if isinstance(raw, list):
        raw = raw[-1] if raw else None
    if raw in (None, ""):
        return default, None
    try:
        value = int(str(raw))
    except ValueError:
        return default, {
            "field": name,
            "message": f"Expected an integer, got {str(raw)[:40]!r}.",
            "code": "invalid_type",
        }
    if value < minimum or value > maximum:
        return default, {
            "field": name,
            "message": f"Must be between {minimum} and {maximum}.",
            "code": "out_of_range",
        }
    return value, None


MAX_OFFSET = 1_000_000_000


def pagination_parse(values: dict) -> tuple[int, int, list[dict]]:
    """limit/offset (or page with limit as page size) from the query; removes them from `values`."""
    cap = settings.QUERY_ROW_CAP
    problems = []
    limit, problem = _int_arg(values.pop("limit", None), "limit", minimum=1, maximum=cap, default=page_size_default())
    problems += [problem] if problem else []
    offset, problem = _int_arg(values.pop("offset", None), "offset", minimum=0, maximum=MAX_OFFSET, default=0)
    problems += [problem] if problem else []
    page, problem = _int_arg(values.pop("page", None), "page", minimum=1, maximum=MAX_OFFSET, default=0)
    problems += [problem] if problem else []
    if page:
        offset = (page - 1) * limit
    return limit, offset, problems


PAGE_LIMIT, PAGE_OFFSET = "_page_limit", "_page_offset"


@lru_cache(maxsize=4096)
def paged_sql(sql: str, engine: str) -> str | None:
    """The endpoint's SQL with the page pushed into it (LIMIT/OFFSET binds), or None when it has its own LIMIT.

    A query with its own LIMIT (top N, at most the row cap) is read whole and paged in memory;
    any other result is read a page at a time, so paging reaches every row however many there are.
    """
    dialect = ENGINE_DIALECTS.get(engine, "postgres")
    try:
        ast = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.ParseError:
        return None
    if not isinstance(ast, exp.Query) or ast.args.get("limit") is not None or ast.args.get("offset") is not None:
        return None
    return f"{sql.rstrip().rstrip(';')} LIMIT :{PAGE_LIMIT} OFFSET :{PAGE_OFFSET}"


def _kept(endpoint: GeneratedEndpoint, name: str) -> dict | None:
    """The check of the endpoint's SQL ("read") or of its paged form ("paged") made at deploy, if any."""
    kept = endpoint.checked_sql
    if not isinstance(kept, dict) or not isinstance(kept.get("read"), dict):
        return None
    if kept["read"].get("source") != endpoint.sql:
        return None
    return kept.get(name)


def _paged_source(endpoint: GeneratedEndpoint) -> str | None:
    kept = endpoint.checked_sql
    if _kept(endpoint, "read") is not None and "paged" in kept:
        return (kept["paged"] or {}).get("source")
    return paged_sql(endpoint.sql, endpoint.role.service.engine)


def endpoint_checked_for_calls(*, endpoint: GeneratedEndpoint) -> dict | None:
    """The read SQL and its paged form as the checker accepts them now, to keep on the deployed row.

    None for writes, and when the SQL cannot be checked now (refused, database unreachable):
    calls then check it themselves, and refuse it, as before deploy-time checks existed.
    """
    if not endpoint.is_read_only or not endpoint.sql:
        return None
    paged = paged_sql(endpoint.sql, endpoint.role.service.engine)
    try:
        read = executor.sql_check_to_keep(role=endpoint.role, sql=endpoint.sql)
        paged_kept = executor.sql_check_to_keep(role=endpoint.role, sql=paged) if paged is not None else None
    except (ExecutorError, ConnectorError):
        return None
    if read is None or (paged is not None and paged_kept is None):
        return None
    return {"read": read, "paged": paged_kept}


def _run_read(endpoint: GeneratedEndpoint, params: dict, limit: int, offset: int) -> EndpointResult:
    paged = _paged_source(endpoint)
    if paged is not None:
        bound = {**bind_params(endpoint=endpoint, params=params), PAGE_LIMIT: limit + 1, PAGE_OFFSET: offset}
        # Checked at deploy (or once per version and process when that check no longer holds).
        holder = endpoint.__dict__.setdefault("_nectar_paged", SimpleNamespace())
        checked = executor.sql_check_kept(role=endpoint.role, sql=paged, kept=_kept(endpoint, "paged"), holder=holder)
        # The SQL asks for one row more than the page; the executor keeps the page and says whether more came.
        result = executor.executor_run_checked(role=endpoint.role, checked=checked, params=bound, limit=limit)
        page, has_next = list(result.rows)[:limit], bool(result.truncated)
        page = rows_with_numbers(page, numeric_columns(endpoint.response_schema))
        total = None if has_next else offset + len(page)
        truncated = False
    else:
        result = endpoint_execute(endpoint=endpoint, params=params, limit=settings.QUERY_ROW_CAP)
        rows = rows_with_numbers(list(result.rows), numeric_columns(endpoint.response_schema))
        page, has_next = rows[offset : offset + limit], len(rows) > offset + limit
        # A query whose own LIMIT asks for more rows than the row cap is cut at the cap: say so.
        truncated = bool(result.truncated)
        total = None if truncated else len(rows)
    body = {
        "endpoint": endpoint.slug,
        "version": endpoint.version,
        "count": len(page),
        "total": total,
        "limit": limit,
        "offset": offset,
        "has_next": has_next,
        "next_offset": offset + limit if has_next else None,
        "truncated": truncated,
        "columns": list(result.columns),
        "results": page,
    }
    return EndpointResult(200, body, rows=len(page))


def _run_write(endpoint: GeneratedEndpoint, params: dict) -> EndpointResult:
    result = endpoint_execute(endpoint=endpoint, params=params)
    status = 201 if endpoint.write_action.get("action") == "insert" else 200
    body = {"endpoint": endpoint.slug, "version": endpoint.version, "row_count": result.row_count, "rows": result.rows}
    return EndpointResult(status, body, rows=result.row_count)


def endpoint_run(*, endpoint: GeneratedEndpoint, values: dict, from_text: bool) -> EndpointResult:
    """Parse, check and run one call (not logged). Every failure becomes a clear 4xx/5xx result."""

    values = dict(values)
    limit, offset, problems = pagination_parse(values) if endpoint.is_read_only else (0, 0, [])
    params, param_problems = parameters_parse(schema=endpoint.parameters, values=values, from_text=from_text)
    problems += param_problems
    if problems:
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
        return EndpointResult(
            400,
            error_body(400, f"Invalid parameters. {summary}", code="invalid_parameters", errors=problems),
            error=summary,
        )
    try:
        if endpoint.is_read_only:
            return _run_read(endpoint, params, limit, offset)
        return _run_write(endpoint, params)
    except ExecutorError as exc:
        status = STATUS_BY_CODE.get(exc.code, 500)
        body = error_body(status, str(exc), code=exc.code)
        if exc.field:
            body["error"]["field"] = exc.field
        return EndpointResult(status, body, error=str(exc))
    except ConnectorError as exc:
        return EndpointResult(
            503,
            error_body(503, f"The database is unavailable: {exc.message}", code="database_unavailable"),
            error=exc.message,
        )


def endpoint_call(
    *, endpoint: GeneratedEndpoint, api_key, values: dict, from_text: bool, invalid_body: str = ""
) -> EndpointResult:
    """One live call by an API key: refused unless the key belongs to the endpoint's Role; logged and counted.

    `invalid_body` says why the request's body could not be read (the call is refused and logged).
    """

    started = time.perf_counter()
    if api_key.role_id != endpoint.role_id:
        result = EndpointResult(
            403,
            error_body(403, "This API key belongs to another role; it cannot call this endpoint.", code="forbidden"),
            error="API key of another role",
        )
    elif invalid_body:
        result = EndpointResult(400, error_body(400, invalid_body, code="invalid_body"), error=invalid_body)
    else:
        try:
            result = endpoint_run(endpoint=endpoint, values=values, from_text=from_text)
        except Exception as exc:
            unexpected_on_loop(exc)  # on the event loop: run again in a worker thread, which answers it
            logger.exception("Generated endpoint %s failed", endpoint.pk)
            result = EndpointResult(
                500, error_body(500, "Internal error; it has been logged.", code="internal_error"), error="internal"
            )
    duration_ms = (time.perf_counter() - started) * 1000.0
    if result.status < 400:
        outcome = CallOutcome.OK
    elif result.status == 403:
        outcome = CallOutcome.DENIED
    else:
        outcome = CallOutcome.ERROR
    # Batched off the request path (mcpservers.audit): the ToolCall row and the endpoint's counters.
    audit_record(
        organization_id=endpoint.organization_id,
        endpoint_id=endpoint.pk,
        api_key_id=api_key.pk,
        tool=endpoint.tool_name,
        arguments=redact({k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in values.items()}),
        outcome=outcome,
        error=text_printable(result.error[:2000]),
        rows=result.rows,
        duration_ms=duration_ms,
    )
    return result
