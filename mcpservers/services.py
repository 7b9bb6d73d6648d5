"""MCP server instances: lifecycle, regeneration, tool calls, metrics and health.

Everything that touches a customer database goes through roles.executor; nothing here holds a
transaction across such a call.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import logging
import re
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from mcpservers import fixedtools
from mcpservers.audit import audit_record
from mcpservers.fixedtools import FIXED_BY_NAME, FIXED_NAMES, FixedToolError, RoleObjects
from mcpservers.models import CallOutcome, MCPServerInstance, MCPServerStatus
from mcpservers.toolgen import (
    COMPACT_NAMES,
    is_compact,
    role_generate_tools,
    schema_fingerprint,
    tool_public,
    tools_listed,
    tools_search,
)
from nectar import invalidation
from nectar.text import data_text_problem, text_printable
from roles import executor
from roles.connectors import ConnectorError, connector_reads_on_loop
from roles.connectors.onloop import unexpected_on_loop
from roles.executor import ExecutorError, service_test_connection
from roles.introspection import service_schema
from roles.models import API_KEY_PREFIX, RoleApiKey, hash_api_key
from roles.permissions import role_grants

logger = logging.getLogger(__name__)


def instance_server_url(instance: MCPServerInstance) -> str:
    return f"{settings.PUBLIC_BASE_URL}/mcp/{instance.id}/"


# --- Lifecycle --------------------------------------------------------------------------------


def role_schema_fingerprint(*, role, refresh: bool = False) -> str:
    """Fingerprint of what the Role's tools are generated from (its cached schema, no network)."""

    service = role.service
    schema = service_schema(service=service, refresh=refresh) if refresh or not service.schema_cache else None
    return schema_fingerprint(permissions=role.permissions, schema=schema or service.schema_cache)


def instance_regenerate(*, instance: MCPServerInstance) -> MCPServerInstance:
    """Generate the instance's tools: GENERATING, then ACTIVE with the tools, or ERROR with the reason."""
    role = instance.role
    instance.server_url = instance_server_url(instance)
    instance.status, instance.status_reason = MCPServerStatus.GENERATING, ""
    instance.save(update_fields=["server_url", "status", "status_reason", "updated_at"])
    try:
        fingerprint = role_schema_fingerprint(role=role)
        tools = role_generate_tools(role=role)
    except Exception as exc:
        reason = _error_text(exc, "Tool generation failed")
        logger.warning("MCP tool generation for role %s failed: %s", role.pk, reason)
        instance.set_status(MCPServerStatus.ERROR, reason)
        return instance
    now = timezone.now()
    instance.tools = tools
    instance.schema_fingerprint = fingerprint
    instance.status, instance.status_reason = MCPServerStatus.ACTIVE, ""
    instance.save(update_fields=["tools", "schema_fingerprint", "status", "status_reason", "updated_at"])
    # A queryset update so that saving the Role's timestamp does not re-trigger its signals.
    type(role).objects.filter(pk=role.pk).update(mcp_tools_generated=now)
    role.mcp_tools_generated = now
    return instance


def mcp_enable(*, role) -> MCPServerInstance:
    """Create (or revive) the Role's MCP server and generate its tools."""
    instance, _ = MCPServerInstance.objects.get_or_create(
        role=role, defaults={"status": MCPServerStatus.GENERATING, "server_url": ""}
    )
    instance.role = role
    if not role.mcp_enabled:
        type(role).objects.filter(pk=role.pk).update(mcp_enabled=True)
        role.mcp_enabled = True
    return instance_regenerate(instance=instance)


def mcp_disable(*, role) -> MCPServerInstance | None:
    """Retire the Role's MCP server: it stops answering (INACTIVE) but keeps its history."""
    if role.mcp_enabled:
        type(role).objects.filter(pk=role.pk).update(mcp_enabled=False)
        role.mcp_enabled = False
    instance = MCPServerInstance.objects.filter(role=role).first()
    if instance is not None and instance.status != MCPServerStatus.INACTIVE:
        instance.set_status(MCPServerStatus.INACTIVE, "MCP was disabled for this role.")
    return instance


def role_sync_mcp(*, role) -> MCPServerInstance | None:
    """Bring the Role's MCP server in line with the Role: create, regenerate when stale, or retire."""
    if not (role.mcp_enabled and role.is_active):
        return mcp_disable(role=role) if not role.mcp_enabled else _retire_inactive_role(role)
    instance = MCPServerInstance.objects.filter(role=role).first()
    if instance is None or instance.status in (MCPServerStatus.INACTIVE, MCPServerStatus.GENERATING):
        return mcp_enable(role=role)
    instance.role = role
    return instance_refresh_if_stale(instance=instance)


def _retire_inactive_role(role) -> MCPServerInstance | None:
    instance = MCPServerInstance.objects.filter(role=role).first()
    if instance is not None and instance.status != MCPServerStatus.INACTIVE:
        instance.set_status(MCPServerStatus.INACTIVE, "The role is inactive.")
    return instance


def instance_refresh_if_stale(*, instance: MCPServerInstance) -> MCPServerInstance:
    """Regenerate when the permissions or the cached schema no longer match the stored tools."""
    try:
        current = role_schema_fingerprint(role=instance.role)
    except Exception as exc:
        logger.warning("cannot fingerprint the schema of role %s: %s", instance.role_id, exc)
        return instance
    if current != instance.schema_fingerprint or instance.status == MCPServerStatus.GENERATING:
        return instance_regenerate(instance=instance)
    return instance


def tools_regenerate_for_service(*, service) -> int:
    """Regenerate every enabled MCP server of a Service (call after its schema was refreshed)."""
    count = 0
    instances = MCPServerInstance.objects.filter(role__service=service, role__mcp_enabled=True).exclude(
        status=MCPServerStatus.INACTIVE
    )
    for instance in instances.select_related("role", "role__service"):
        instance_refresh_if_stale(instance=instance)
        count += 1
    return count


# --- Tool calls -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolResult:
    structured: dict | None
    text: str
    is_error: bool
    outcome: str = CallOutcome.OK
    rows: int | None = None
    # The text is strict JSON of `structured` (a tool's payload of JSON values): answers may carry it as both.
    text_is_structured: bool = False


SECRET_PARTS = {"password", "passwd", "pwd", "secret", "token", "key", "apikey", "credential", "credentials"}
REDACTED = "[redacted]"


@functools.lru_cache(maxsize=4096)  # argument names repeat from call to call
def _is_secret_name(name: str) -> bool:
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", str(name))
    parts = [p for p in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if p]
    return any(p in SECRET_PARTS for p in parts) or "password" in spaced.lower() or "secret" in spaced.lower()


def redact(value: Any) -> Any:
    """Arguments as stored in the audit log: values of secret-looking keys replaced, bad text escaped."""
    if isinstance(value, dict):
        return {text_printable(k): (REDACTED if _is_secret_name(str(k)) else redact(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v) for v in value]
    return text_printable(value)


def _error_text(exc: Exception, fallback: str) -> str:
    if isinstance(exc, ExecutorError):
        return str(exc)
    if isinstance(exc, ConnectorError):
        return f"{fallback}: {exc.message}"
    return f"{fallback} ({type(exc).__name__})."


_NO_VALIDATOR = object()

# Compiled argument validators, by (owner, tool name): jsonschema_rs checks a call in microseconds;
# the schema is kept beside it and compared, so a regenerated tool never meets a stale validator.
_VALIDATORS: OrderedDict[tuple, tuple[dict, Any]] = OrderedDict()
_VALIDATORS_MAX = 1024
_validators_lock = threading.Lock()


def _compiled_validator(schema: dict, cache_key: tuple | None):
    import jsonschema_rs

    if cache_key is not None:
        with _validators_lock:
            cached = _VALIDATORS.get(cache_key)
            if cached is not None and cached[0] == schema:
                _VALIDATORS.move_to_end(cache_key)
                return cached[1]
    try:
        validator = jsonschema_rs.validator_for(schema, validate_formats=False)
    except Exception:  # a schema the fast validator does not take: jsonschema alone decides
        validator = None
    if cache_key is not None:
        with _validators_lock:
            _VALIDATORS[cache_key] = (copy.deepcopy(schema), validator)
            if len(_VALIDATORS) > _VALIDATORS_MAX:
                _VALIDATORS.popitem(last=False)
    return validator


def _validate_arguments(
    schema: dict, arguments: dict, *, cache_key: tuple | None = None, validator: Any = _NO_VALIDATOR
) -> str | None:
    """None when `arguments` satisfy `schema`, else which argument is wrong and why.

    Valid calls are decided by a cached compiled validator; a refused one is explained by
    jsonschema's best match, so the messages stay those of jsonschema.
    """
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    if bad := data_text_problem(arguments, "arguments"):
        return f"Invalid {bad[0]}: {bad[1]}"
    if validator is _NO_VALIDATOR:
        validator = _compiled_validator(schema, cache_key)
    if validator is not None:
        with contextlib.suppress(Exception):  # a value the fast validator cannot represent: jsonschema decides
            if validator.is_valid(arguments):
                return None
    error = best_match(Draft202012Validator(schema).iter_errors(arguments))
    if error is None:
        return None
    where = "arguments" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"Invalid {where}: {error.message}"


def _query_payload(result) -> dict:
    return {
        "columns": list(result.columns),
        "rows": list(result.rows),
        "row_count": result.row_count,
        "total": result.total,
        "truncated": bool(result.truncated),
    }


# Tool actions whose calls may run on the event loop: reads (query) and answers kept in the tool (no database).
LOOP_ACTIONS = frozenset({"query", "analyze", "signature"})


def _run_binding(*, role, binding: dict, arguments: dict) -> tuple[dict, int | None]:
    action = binding["action"]
    target = {"role": role, "object_name": binding["object"], "schema": binding.get("schema")}
    if action in ("analyze", "signature"):
        return dict(binding["result"]), None
    if action == "query":
        result = executor.executor_query(
            **target,
            columns=arguments.get("columns"),
            filters=arguments.get("filters"),
            order_by=arguments.get("order_by"),
            limit=arguments.get("limit", min(100, settings.QUERY_ROW_CAP)),
            offset=arguments.get("offset", 0),
            include_total=bool(arguments.get("include_total", False)),
        )
        return _query_payload(result), result.row_count
    if action == "execute":
        result = executor.executor_call(**target, parameters=arguments.get("parameters") or {})
        return _query_payload(result), result.row_count
    if action == "insert":
        result = executor.executor_insert(**target, rows=arguments["rows"])
    elif action == "update":
        result = executor.executor_update(**target, values=arguments["values"], filters=arguments["filters"])
    elif action == "delete":
        result = executor.executor_delete(**target, filters=arguments["filters"])
    else:
        raise ValueError(f"unknown tool action {action!r}")
    return {"row_count": result.row_count, "rows": list(result.rows)}, result.row_count


def _result_text(payload: dict) -> str:
    """The text content: the same JSON as structuredContent (notes travel inside it, never after it)."""
    return _result_json(payload)[0]


def _result_json(payload: dict) -> tuple[str, bool]:
    """The text content, and whether it is strict JSON of the payload as it stands (no value turned to text)."""
    if payload.get("truncated") and "note" not in payload:
        payload["note"] = f"Results were truncated at {payload.get('row_count')} rows; narrow the filters or page on."
    try:
        return _STRICT_JSON.encode(payload), True
    except (TypeError, ValueError):
        return json.dumps(payload, default=str, ensure_ascii=False), False


# json.dumps with options builds an encoder per call: the one for every result is kept.
_STRICT_JSON = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


def _find_tool(tools: list[dict], name: str) -> dict | None:
    for tool in tools:
        if tool["name"] == name:
            return tool
    return None


class CompiledInstance:
    """What serving an instance needs, built once per instance version (the instance object carries it).

    Tools by name, compact mode, lazily compiled argument validators and listed definitions,
    and the Role's objects for the fixed tools: nothing per call grows with the catalog.
    """

    def __init__(self, instance: MCPServerInstance):
        self.tools = list(instance.tools or [])
        self.by_name = {t["name"]: t for t in self.tools}
        self.compact = is_compact(self.tools)
        self._validators: dict[str, Any] = {}
        self._listed: dict[bool, list[dict]] = {}
        self._objects: RoleObjects | None = None
        self._lock = threading.Lock()

    def validator(self, name: str, schema: dict):
        validator = self._validators.get(name, _NO_VALIDATOR)
        if validator is _NO_VALIDATOR:
            import jsonschema_rs

            try:
                validator = jsonschema_rs.validator_for(schema, validate_formats=False)
            except Exception:  # a schema the fast validator does not take: jsonschema alone decides
                validator = None
            self._validators[name] = validator
        return validator

    def validate(self, name: str, schema: dict, arguments: dict) -> str | None:
        return _validate_arguments(schema, arguments, validator=self.validator(name, schema))

    def reads_on_loop(self, name: str, engine: str, arguments: dict | None = None) -> bool:
        """Whether a call of the tool `name` is a read that can run on the event loop (roles.connectors.onloop).

        In compact mode, `call_tool` of such a tool is one too (its other meta-tools read no database).
        """
        if name == "call_tool" and self.compact and isinstance(arguments, dict):
            name = arguments.get("name")
            if not isinstance(name, str) or name == "call_tool":
                return False
        if name in FIXED_NAMES or (name in COMPACT_NAMES and self.compact):
            return False
        tool = self.by_name.get(name)
        if tool is None or (tool.get("binding") or {}).get("action") not in LOOP_ACTIONS:
            return False
        return settings.READS_ON_LOOP and connector_reads_on_loop(engine)

    def listed(self, *, try_sql: bool) -> list[dict]:
        listed = self._listed.get(try_sql)
        if listed is None:
            listed = self._listed[try_sql] = tools_listed(self.tools, try_sql=try_sql)
        return listed

    def objects(self, role) -> RoleObjects:
        if self._objects is None:
            with self._lock:
                if self._objects is None:
                    self._objects = _role_objects(role)
        return self._objects


def instance_compiled(instance: MCPServerInstance) -> CompiledInstance:
    """The instance's compiled form, kept on the instance object (rebuilt when its tools list is replaced)."""
    compiled = getattr(instance, "_nectar_compiled", None)
    if compiled is None or compiled.source is not instance.tools:
        compiled = CompiledInstance(instance)
        compiled.source = instance.tools
        instance._nectar_compiled = compiled
    return compiled


def tool_invoke(*, instance: MCPServerInstance, name: str, arguments: dict | None, try_sql: bool = False) -> ToolResult:
    """Run one tool of the instance (not recorded). Errors come back as ToolResult(is_error=True).

    `try_sql` makes try_sql callable whatever the Role's setting (Nectar's own agents).
    """

    arguments = arguments or {}
    compiled = instance_compiled(instance)
    if name in FIXED_NAMES:
        return _invoke_fixed(instance=instance, name=name, arguments=arguments, try_sql=try_sql)
    if name in COMPACT_NAMES and compiled.compact:
        return _invoke_meta(instance=instance, name=name, arguments=arguments, try_sql=try_sql)
    tool = compiled.by_name.get(name)
    if tool is None:
        return ToolResult(None, f"Unknown tool '{name}': this role has no such tool.", True, CallOutcome.DENIED)
    problem = compiled.validate(name, tool.get("inputSchema") or {}, arguments)
    if problem:
        return ToolResult(None, problem, True, CallOutcome.ERROR)
    try:
        payload, rows = _run_binding(role=instance.role, binding=tool["binding"], arguments=arguments)
    except ExecutorError as exc:
        outcome = CallOutcome.DENIED if exc.code == "forbidden" else CallOutcome.ERROR
        return ToolResult(None, _executor_error_text(exc), True, outcome)
    except Exception as exc:
        unexpected_on_loop(exc)  # on the event loop: run again in a worker thread, which answers it
        logger.exception("MCP tool %s of instance %s failed", name, instance.pk)
        return ToolResult(None, "Internal error while running the tool; it has been logged.", True, CallOutcome.ERROR)
    text, strict = _result_json(payload)
    return ToolResult(payload, text, False, CallOutcome.OK, rows, text_is_structured=strict)


def _executor_error_text(exc) -> str:
    """The executor's message, led by the argument it is about (the schemas no longer list columns)."""
    field = exc.field
    if field and exc.code in ("invalid_argument", "unknown_column", "forbidden") and field != "object_name":
        return f"Invalid arguments.{field}: {exc}"
    return str(exc)


def try_sql_allowed(*, role, try_sql: bool) -> bool:
    return bool(try_sql or getattr(role, "mcp_allow_try_sql", False))


def _role_objects(role) -> RoleObjects:
    schema = service_schema(service=role.service)
    return RoleObjects.of(grants=role_grants(role=role), default_schema=schema.get("default_schema") or "")


def _fixed_payload(*, instance, name: str, arguments: dict) -> tuple[dict, int | None]:
    role = instance.role
    objects = instance_compiled(instance).objects(role)
    if name == "search_objects":
        payload = fixedtools.search_objects(objects, arguments)
        return payload, len(payload["objects"])
    if name == "try_sql":
        result = executor.executor_run_sql(
            role=role, sql=arguments["sql"], params=arguments.get("params") or {}, limit=arguments.get("limit", 20)
        )
        return _query_payload(result), result.row_count
    grant = objects.find_readable(arguments["object"]) if name == "sample_rows" else objects.find(arguments["object"])
    if name == "sample_rows":
        result = executor.executor_query(
            role=role,
            object_name=grant.object_name,
            schema=grant.schema,
            columns=arguments.get("columns"),
            filters=arguments.get("filters"),
            limit=arguments.get("limit", 5),
        )
        return _query_payload(result), result.row_count

    def read_sample(grant, columns, limit):
        result = executor.executor_query(
            role=role, object_name=grant.object_name, schema=grant.schema, columns=columns, limit=limit
        )
        return result.rows, not result.truncated

    def read_distinct(grant, column, limit):
        try:
            return executor.executor_distinct(
                role=role, object_name=grant.object_name, schema=grant.schema, column=column, limit=limit
            )
        except ExecutorError as exc:
            # A count that times out on a large table leaves the sampled values as they are: the
            # description still answers, and says its values come from a sample.
            logger.info("describe_object %s: values of %s not counted (%s)", grant.object_name, column, exc.code)
            return [], False

    return fixedtools.describe_object(objects, grant, read_sample=read_sample, read_distinct=read_distinct), None


def _invoke_fixed(*, instance: MCPServerInstance, name: str, arguments: dict, try_sql: bool) -> ToolResult:
    role = instance.role
    if name == fixedtools.TRY_SQL and not try_sql_allowed(role=role, try_sql=try_sql):
        return ToolResult(None, f"Unknown tool '{name}': this role has no such tool.", True, CallOutcome.DENIED)
    schema = FIXED_BY_NAME[name]["inputSchema"]
    problem = instance_compiled(instance).validate(name, schema, arguments)
    if problem:
        return ToolResult(None, problem, True, CallOutcome.ERROR)
    try:
        payload, rows = _fixed_payload(instance=instance, name=name, arguments=arguments)
    except FixedToolError as exc:
        return ToolResult(None, exc.message, True, CallOutcome.DENIED if exc.denied else CallOutcome.ERROR)
    except ExecutorError as exc:
        outcome = CallOutcome.DENIED if exc.code == "forbidden" else CallOutcome.ERROR
        return ToolResult(None, str(exc), True, outcome)
    except Exception:
        logger.exception("MCP tool %s of instance %s failed", name, instance.pk)
        return ToolResult(None, "Internal error while running the tool; it has been logged.", True, CallOutcome.ERROR)
    return ToolResult(payload, _result_text(payload), False, CallOutcome.OK, rows)


def _invoke_meta(*, instance: MCPServerInstance, name: str, arguments: dict, try_sql: bool) -> ToolResult:
    compiled = instance_compiled(instance)
    tools = compiled.tools
    if name == "search_tools":
        limit = arguments.get("limit", 20)
        if not isinstance(limit, int) or limit < 1:
            return ToolResult(None, "Invalid arguments.limit: expected a positive integer.", True, CallOutcome.ERROR)
        payload = tools_search(tools, str(arguments.get("query", "")), limit)
        return ToolResult(payload, _result_text(payload), False, rows=len(payload["tools"]))
    target = arguments.get("name")
    if not isinstance(target, str) or not target:
        return ToolResult(None, "Invalid arguments.name: expected a tool name.", True, CallOutcome.ERROR)
    if name == "describe_tool":
        fixed = FIXED_BY_NAME.get(target)
        if fixed is not None and (target != fixedtools.TRY_SQL or try_sql_allowed(role=instance.role, try_sql=try_sql)):
            return ToolResult(dict(fixed), _result_text(fixed), False)
        tool = compiled.by_name.get(target)
        if tool is None:
            return ToolResult(None, f"Unknown tool '{target}': this role has no such tool.", True, CallOutcome.DENIED)
        payload = tool_public(tool)
        return ToolResult(payload, _result_text(payload), False)
    inner = arguments.get("arguments") or {}
    if not isinstance(inner, dict):
        return ToolResult(None, "Invalid arguments.arguments: expected an object.", True, CallOutcome.ERROR)
    if target in COMPACT_NAMES:
        return ToolResult(None, "call_tool cannot call a meta-tool.", True, CallOutcome.ERROR)
    return tool_invoke(instance=instance, name=target, arguments=inner, try_sql=try_sql)


def tool_call(
    *, instance: MCPServerInstance, api_key, name: str, arguments: dict | None, try_sql: bool = False
) -> ToolResult:
    """Run one tool call and record it (ToolCall row and the instance's counters)."""
    started = time.perf_counter()
    result = tool_invoke(instance=instance, name=name, arguments=arguments, try_sql=try_sql)
    duration_ms = (time.perf_counter() - started) * 1000.0
    recorded = name
    inner = arguments or {}
    if name == "call_tool" and instance_compiled(instance).compact and isinstance(inner.get("name"), str):
        recorded, inner = inner["name"], inner.get("arguments") or {}
    audit_record(
        organization_id=instance.role.organization_id,
        instance_id=instance.pk,
        api_key_id=getattr(api_key, "pk", None),
        tool=recorded,
        arguments=redact(inner if isinstance(inner, dict) else {}),
        outcome=result.outcome,
        error=text_printable(result.text) if result.is_error else "",
        rows=result.rows,
        duration_ms=duration_ms,
    )
    return result


# --- Access by API key ----------------------------------------------------------------------


class McpAccessError(Exception):
    """A request refused before MCP handles it, with its HTTP status."""

    def __init__(self, status: int, message: str, *, headers: list | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


def _key_lookup(secret: str, queryset):
    """The key whose hash matches, found through the unique `prefix` index when the secret carries one."""

    key_hash = hash_api_key(secret)
    if secret.startswith(API_KEY_PREFIX):
        prefix, sep, _ = secret[len(API_KEY_PREFIX) :].partition("_")
        if sep and prefix:
            key = queryset.filter(prefix=prefix, key_hash=key_hash).first()
            if key is not None:
                return key
    return queryset.filter(key_hash=key_hash).first()


def _key_checked(key):
    if key is None:
        raise McpAccessError(401, "Invalid API key.")
    if not key.is_usable:
        raise McpAccessError(401, "This API key has been revoked or has expired.")
    if key.last_used_at is None or key.last_used_at < timezone.now() - timedelta(minutes=1):
        # At most one write a minute per key, whatever the request rate.
        type(key).objects.filter(pk=key.pk).update(last_used_at=timezone.now())
    return key


def api_key_authenticate(secret: str | None):
    """The usable RoleApiKey for a bearer secret, or McpAccessError(401)."""

    if not secret:
        raise McpAccessError(401, "Missing API key: send 'Authorization: Bearer <key>'.")
    return _key_checked(_key_lookup(secret, RoleApiKey.objects.select_related("role", "role__organization")))


# (service id, digest of its cached schema, permissions) -> schema fingerprint, so that checking an
# instance's freshness does not hash the whole cached schema on every request.
_FINGERPRINTS: dict[tuple, str] = {}
_FINGERPRINTS_MAX = 1024
# Digests of cached schemas that count as "no schema yet" (those take the full path every time).
_EMPTY_SCHEMA_DIGESTS = frozenset(
    hashlib.md5(text.encode(), usedforsecurity=False).hexdigest() for text in ("{}", "[]", "null", '""', "false", "0")
)


# (service id, digest of its cached schema) -> the parsed schema, shared read-only by the requests of
# this process: the executor reads it for every call, and parsing it is the cost of a large schema.
_SCHEMAS: OrderedDict[tuple, Any] = OrderedDict()
_SCHEMAS_MAX = 64
_schemas_lock = threading.Lock()


def _attach_cached_schema(*, service, schema_digest: str | None) -> None:
    """Give `service` its cached schema without loading it again when this process has parsed it."""
    if not schema_digest or schema_digest in _EMPTY_SCHEMA_DIGESTS:
        return  # the deferred field loads on first use, as usual
    key = (service.pk, schema_digest)
    with _schemas_lock:
        schema = _SCHEMAS.get(key)
        if schema is not None:
            _SCHEMAS.move_to_end(key)
    if schema is None:
        schema = service.schema_cache  # one query, this time only
        with _schemas_lock:
            _SCHEMAS[key] = schema
            if len(_SCHEMAS) > _SCHEMAS_MAX:
                _SCHEMAS.popitem(last=False)
    service.schema_cache = schema


def _instance_is_fresh(*, instance: MCPServerInstance, schema_digest: str | None) -> bool:
    role = instance.role
    if not schema_digest or schema_digest in _EMPTY_SCHEMA_DIGESTS or instance.status == MCPServerStatus.GENERATING:
        return False
    memo = (role.service_id, schema_digest, json.dumps(role.permissions, sort_keys=True, default=str))
    fingerprint = _FINGERPRINTS.get(memo)
    if fingerprint is None:
        try:
            fingerprint = role_schema_fingerprint(role=role)  # loads the deferred schema once
        except Exception:
            return False
        if len(_FINGERPRINTS) >= _FINGERPRINTS_MAX:
            _FINGERPRINTS.clear()
        _FINGERPRINTS[memo] = fingerprint
    return fingerprint == instance.schema_fingerprint


def instance_authorize(*, instance_id: str, secret: str | None) -> tuple[MCPServerInstance, Any]:
    """The instance and key for one MCP request, fresh against the schema, or McpAccessError.

    One query in the common case: the key with its role, organization, service and instance.
    """
    from django.db.models import TextField
    from django.db.models.functions import MD5, Cast

    if not secret:
        raise McpAccessError(401, "Missing API key: send 'Authorization: Bearer <key>'.")
    try:
        wanted = uuid.UUID(str(instance_id))
    except ValueError:
        wanted = None
    keys = (
        RoleApiKey.objects.select_related("role__organization", "role__service", "role__mcp_instance")
        .defer("role__service__schema_cache")
        .annotate(schema_digest=MD5(Cast("role__service__schema_cache", output_field=TextField())))
    )
    key = _key_checked(_key_lookup(secret, keys))
    role = key.role
    instance = getattr(role, "mcp_instance", None)  # None when the role has no MCP server
    if instance is None or wanted is None or instance.pk != wanted:
        if wanted is None or not MCPServerInstance.objects.filter(pk=wanted).exists():
            raise McpAccessError(404, "No such MCP server.")
        raise McpAccessError(403, "This API key belongs to another role; it cannot use this MCP server.")
    instance.role = role
    if not (role.mcp_enabled and role.is_active) or instance.status == MCPServerStatus.INACTIVE:
        raise McpAccessError(404, "This MCP server is disabled.")
    _attach_cached_schema(service=role.service, schema_digest=key.schema_digest)
    if not _instance_is_fresh(instance=instance, schema_digest=key.schema_digest):
        instance = instance_refresh_if_stale(instance=instance)
    if instance.status == MCPServerStatus.GENERATING:
        raise McpAccessError(503, "This MCP server is generating its tools; retry shortly.")
    if instance.status == MCPServerStatus.ERROR and not instance.tools:
        raise McpAccessError(503, f"This MCP server is unavailable: {instance.status_reason}")
    return instance, key


# --- Authorisation from a cache keyed by the key's hash ----------------------------------------


@dataclass
class CachedCaller:
    """One key's authorisation for one instance, as served until something of its organization changes."""

    instance_id: uuid.UUID
    organization_id: str
    expires_at: Any
    instance: MCPServerInstance
    key: Any
    extra: dict


_callers: dict[str, CachedCaller] = {}
_callers_lock = threading.Lock()
CALLERS_MAX = 10_000


def _drop_callers(scope: str) -> None:
    with _callers_lock:
        if scope == invalidation.EVERYTHING:
            _callers.clear()
            return
        for key_hash in [h for h, c in _callers.items() if c.organization_id == scope]:
            _callers.pop(key_hash, None)


invalidation.subscribe(_drop_callers)


def cached_caller(*, instance_id: str, secret: str | None) -> CachedCaller | None:
    """The cached authorisation of this key for this instance, when it can be trusted (no database access)."""
    if not secret:
        return None
    from roles.models import hash_api_key

    caller = _callers.get(hash_api_key(secret))
    if caller is None or not invalidation.healthy():
        return None
    if str(caller.instance_id) != str(instance_id).lower() and caller.instance_id != _as_uuid(instance_id):
        return None  # the full path says why (403 or 404)
    if caller.expires_at is not None and caller.expires_at <= timezone.now():
        return None  # the full path refuses it (401)
    return caller


def _as_uuid(value) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def instance_authorize_cached(*, instance_id: str, secret: str | None) -> CachedCaller:
    """instance_authorize through the cache: a hit touches no database; a miss takes the full path and fills it."""
    caller = cached_caller(instance_id=instance_id, secret=secret)
    if caller is not None:
        return caller
    from roles.models import hash_api_key

    generation = invalidation.generation()
    instance, key = instance_authorize(instance_id=instance_id, secret=secret)
    caller = CachedCaller(
        instance_id=instance.pk,
        organization_id=str(instance.role.organization_id),
        expires_at=key.expires_at,
        instance=instance,
        key=key,
        extra={},
    )
    if invalidation.healthy() and generation == invalidation.generation():
        with _callers_lock:
            if len(_callers) >= CALLERS_MAX:
                _callers.clear()
            _callers[hash_api_key(secret)] = caller
    return caller


# --- Health ---------------------------------------------------------------------------------


def instance_health_check(*, instance: MCPServerInstance) -> bool:
    """Test the instance's database connection and record the outcome (ERROR when unreachable)."""

    try:
        result = service_test_connection(service=instance.role.service)
        healthy = bool(result.ok)
        reason = "" if healthy else f"Database unreachable ({result.reason}): {result.detail}"
    except Exception as exc:
        healthy, reason = False, _error_text(exc, "Health check failed")
    instance.mark_health(healthy=healthy, reason=reason)
    return healthy


def health_check_all() -> dict:
    checked = healthy = 0
    instances = MCPServerInstance.objects.servable().select_related("role", "role__service")
    for instance in instances:
        checked += 1
        healthy += instance_health_check(instance=instance)
    return {"checked": checked, "healthy": healthy}
