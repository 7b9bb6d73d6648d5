"""The platform's own MCP servers, scoped to one organization (the spec's MCP server stack).

pattern-library       search the organization's learned memories
compliance-rules      the organization's business rules (BUSINESS_RULE memories)
performance-metrics   tool-call statistics per tool and per MCP server instance
existing-apis         deployed generated endpoints (read through the reader the endpoints app registers)

Served at /mcp/platform/<org slug>/<server>/ with a bearer RoleApiKey of any active Role of that
organization; a key of another organization gets 403.
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable
from datetime import timedelta

from django.db.models import Avg, Count, FloatField, Q
from django.db.models.aggregates import Aggregate
from django.utils import timezone

from learning.models import AgentMemory
from learning.services import memory_retrieve
from mcpservers.audit import audit_record
from mcpservers.models import CallOutcome, MCPServerInstance, ToolCall
from mcpservers.server import Served
from mcpservers.services import McpAccessError, ToolResult, _validate_arguments, api_key_authenticate, redact
from nectar.text import text_printable

logger = logging.getLogger(__name__)

READ = {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True, "openWorldHint": False}
MEMORY_TYPES = ["SUCCESS_PATTERN", "ANTI_PATTERN", "BUSINESS_RULE", "OPTIMIZATION", "CODE_SNIPPET", "API_PATTERN"]


class PercentileCont(Aggregate):
    function = "percentile_cont"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression, fraction: float, **extra):
        super().__init__(expression, fraction=float(fraction), **extra)


def _memory_payload(memory, similarity: float | None = None) -> dict:
    return {
        "id": str(memory.id),
        "type": memory.type,
        "content": memory.content,
        "tags": list(memory.tags or []),
        "relevance_score": memory.relevance_score,
        "similarity": round(similarity, 4) if similarity is not None and math.isfinite(similarity) else None,
        "created_at": memory.created_at.isoformat() if memory.created_at else None,
    }


class RoleView:
    """What one Role may read, for filtering platform answers to that Role's keys."""

    def __init__(self, role):
        from roles.permissions import role_grants

        self.role = role
        try:
            grants = role_grants(role=role)
        except Exception:  # the Service's schema cannot be read: nothing is known readable
            logger.warning("grants of role %s could not be resolved", role.pk, exc_info=True)
            grants = []
        self.objects = {}
        for grant in grants:
            if "SELECT" in grant.actions or "EXECUTE" in grant.actions:
                columns = None if grant.allowed_columns is None else {c.lower() for c in grant.allowed_columns}
                for key in (f"{grant.schema}.{grant.object_name}".lower(), grant.object_name.lower()):
                    self.objects.setdefault(key, (columns, grant))

    def can_read_object(self, name: str) -> bool:
        return name.lower() in self.objects

    def can_read_column(self, obj: str, column: str) -> bool:
        found = self.objects.get(obj.lower())
        if found is None:
            return False
        columns, _grant = found
        return columns is None or column.lower() in columns

    def memory_visible(self, memory) -> bool:
        """A memory of this Role (or, for business rules, of its Service or the organization) over objects it reads."""
        if memory.type == "BUSINESS_RULE":
            if memory.role_id not in (None, self.role.pk):
                return False
            if memory.service_id not in (None, self.role.service_id):
                return False
        elif memory.role_id != self.role.pk:
            return False
        for tag in memory.tags or []:
            if tag.startswith("object:") and not self.can_read_object(tag.removeprefix("object:")):
                return False
        for obj, column in _mapped_columns(memory.content):
            if not (
                self.can_read_column(obj, column)
                if obj
                else any(self.can_read_column(name, column) for name in self.objects)
            ):
                return False
        for obj, column, value in _mapped_values(memory.content):
            if not self.value_visible(obj, column, value):
                return False
        return all(self.can_read_object(obj) for obj in _mapped_objects(memory.content))

    def value_visible(self, obj: str, column: str, value) -> bool:
        """A value of a column is outside the Role's rows when its row filter fixes that column to another value."""
        grants = [self.objects[obj.lower()][1]] if obj and obj.lower() in self.objects else [
            grant for _, grant in self.objects.values()
        ]  # fmt: skip
        for grant in grants:
            fixed = {k.lower(): v for k, v in (grant.row_filter or {}).items()}
            if column.lower() in fixed and str(fixed[column.lower()]) != str(value):
                return False
        return True


_FENCED_JSON = re.compile(r"```json\s*(\{.*?\})\s*```", re.S)


def _mapping_blocks(content: str) -> list[dict]:
    blocks = []
    for match in _FENCED_JSON.finditer(content or ""):
        try:
            data = json.loads(match.group(1))
        except ValueError:
            continue
        if isinstance(data, dict):
            blocks.append(data)
    return blocks


def _walk_mapping(value, found_objects: list, found_columns: list) -> None:
    if isinstance(value, dict):
        obj = value.get("object") or value.get("table")
        if isinstance(obj, str):
            found_objects.append(obj)
        column = value.get("column")
        if isinstance(column, str):
            found_columns.append((obj if isinstance(obj, str) else "", column.split(".")[-1]))
        for key in ("objects", "tables"):
            for item in value.get(key) or []:
                if isinstance(item, str):
                    found_objects.append(item)
        for key in ("columns",):
            for item in value.get(key) or []:
                if isinstance(item, str):
                    parts = item.rsplit(".", 1)
                    found_columns.append((parts[0] if len(parts) == 2 else "", parts[-1]))
        for item in value.values():
            if isinstance(item, dict | list):
                _walk_mapping(item, found_objects, found_columns)
    elif isinstance(value, list):
        for item in value:
            _walk_mapping(item, found_objects, found_columns)


def _mapped_values(content: str) -> list[tuple[str, str, object]]:
    """(object, column, value) of every mapping entry that names a column and a value."""
    found: list = []

    def walk(value) -> None:
        if isinstance(value, dict):
            column = value.get("column")
            obj = value.get("object") or value.get("table") or ""
            if isinstance(column, str) and isinstance(obj, str):
                for key in ("value", "equals"):
                    if key in value and isinstance(value[key], str | int | float):
                        found.append((obj, column.split(".")[-1], value[key]))
                for item in value.get("values") or []:
                    if isinstance(item, str | int | float):
                        found.append((obj, column.split(".")[-1], item))
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for block in _mapping_blocks(content):
        walk(block)
    return found


def _mapped_objects(content: str) -> list[str]:
    objects: list = []
    for block in _mapping_blocks(content):
        _walk_mapping(block, objects, [])
    return objects


def _mapped_columns(content: str) -> list[tuple[str, str]]:
    columns: list = []
    for block in _mapping_blocks(content):
        _walk_mapping(block, [], columns)
    return columns


def memories_search(
    *, organization, text: str, types: list[str] | None, k: int, view: RoleView | None = None
) -> tuple[list[dict], str]:
    """Memories most relevant to `text` (or, without a text, the best rated), for a Role's key when `view` is given.

    A key sees the memories of its own Role, and business rules of its Role, its Service or the
    whole organization, and only those over objects and columns the Role can read now.
    """
    if (text or "").strip():
        if view is None:
            pool = memory_retrieve(organization=organization, text=text, types=types or None, k=k)
        else:
            # A Role's own memories through the Role filter in SQL; business rules (of the organization,
            # the Service or the Role) apart, both filtered below by what the Role can read now.
            wanted = list(types or MEMORY_TYPES)
            own = [t for t in wanted if t != "BUSINESS_RULE"]
            pool = []
            if own:
                pool += memory_retrieve(
                    organization=organization, text=text, types=own, k=min(100, 2 * k), role=view.role
                )
            if "BUSINESS_RULE" in wanted:
                pool += memory_retrieve(
                    organization=organization, text=text, types=["BUSINESS_RULE"], k=min(100, 3 * k)
                )
            pool.sort(key=lambda found: -found.score)
        items = [
            _memory_payload(found.memory, found.similarity)
            for found in pool
            if view is None or view.memory_visible(found.memory)
        ]
        return items[:k], "vector"
    queryset = AgentMemory.objects.for_organization(organization).active()
    if types:
        queryset = queryset.filter(type__in=types)
    memories = queryset.order_by("-relevance_score", "-created_at")
    chosen = []
    for memory in memories.iterator(chunk_size=200):
        if view is None or view.memory_visible(memory):
            chosen.append(memory)
            if len(chosen) >= k:
                break
    return [_memory_payload(m) for m in chosen], "text"


def _memories_output() -> dict:
    return {
        "type": "object",
        "properties": {
            "memories": {"type": "array", "items": {"type": "object"}},
            "method": {"type": "string"},
        },
        "required": ["memories"],
    }


def _pattern_library_tools() -> list[dict]:
    return [
        {
            "name": "search_patterns",
            "title": "Search learned patterns",
            "description": "The organization's learned memories (success patterns, anti-patterns, business rules, "
            "optimizations, code snippets, API patterns) most relevant to a text.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "minLength": 1},
                    "types": {"type": "array", "items": {"enum": MEMORY_TYPES}, "uniqueItems": True},
                    "k": {"type": "integer", "minimum": 1, "maximum": 50, "default": 5},
                },
                "required": ["query"],
                "additionalProperties": False,
            },
            "outputSchema": _memories_output(),
            "annotations": {"title": "Search learned patterns", **READ},
        }
    ]


def _compliance_tools() -> list[dict]:
    return [
        {
            "name": "list_business_rules",
            "title": "Business rules",
            "description": "The organization's business rules (optionally those relevant to a text).",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "default": ""},
                    "k": {"type": "integer", "minimum": 1, "maximum": 100, "default": 50},
                },
                "additionalProperties": False,
            },
            "outputSchema": _memories_output(),
            "annotations": {"title": "Business rules", **READ},
        }
    ]


def _metrics_tools() -> list[dict]:
    return [
        {
            "name": "tool_call_stats",
            "title": "Tool-call statistics",
            "description": "Per tool: calls, error rate, p50 and p95 duration (ms) over the last `hours` hours.",
            "inputSchema": {
                "type": "object",
                "properties": {
                    "hours": {"type": "integer", "minimum": 1, "maximum": 24 * 90, "default": 24},
                    "instance_id": {"type": "string", "format": "uuid"},
                },
                "additionalProperties": False,
            },
            "outputSchema": {
                "type": "object",
                "properties": {"tools": {"type": "array", "items": {"type": "object"}}, "hours": {"type": "integer"}},
                "required": ["tools"],
            },
            "annotations": {"title": "Tool-call statistics", **READ},
        },
        {
            "name": "instance_stats",
            "title": "MCP server statistics",
            "description": "Per MCP server instance of the organization: status, request count, average response "
            "time (ms), tool count and last health check.",
            "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
            "outputSchema": {
                "type": "object",
                "properties": {"instances": {"type": "array", "items": {"type": "object"}}},
                "required": ["instances"],
            },
            "annotations": {"title": "MCP server statistics", **READ},
        },
    ]


def _apis_tools() -> list[dict]:
    return [
        {
            "name": "list_apis",
            "title": "Deployed APIs",
            "description": "The organization's deployed generated REST endpoints (method, path, description, version).",
            "inputSchema": {
                "type": "object",
                "properties": {"query": {"type": "string", "default": ""}},
                "additionalProperties": False,
            },
            "outputSchema": {
                "type": "object",
                "properties": {"endpoints": {"type": "array", "items": {"type": "object"}}, "note": {"type": "string"}},
                "required": ["endpoints"],
            },
            "annotations": {"title": "Deployed APIs", **READ},
        }
    ]


def tool_stats(*, organization, hours: int = 24, instance_id: str | None = None, role=None) -> list[dict]:
    since = timezone.now() - timedelta(hours=hours)
    calls = ToolCall.objects.filter(organization=organization, created_at__gte=since)
    if role is not None:
        calls = calls.filter(api_key__role=role)  # a Role's key sees the calls made with its Role's keys
    if instance_id:
        calls = calls.filter(instance_id=instance_id)
    rows = (
        calls.values("tool")
        .annotate(
            count=Count("id"),
            errors=Count("id", filter=~Q(outcome=CallOutcome.OK)),
            p50=PercentileCont("duration_ms", 0.5),
            p95=PercentileCont("duration_ms", 0.95),
            avg=Avg("duration_ms"),
        )
        .order_by("-count", "tool")
    )
    return [
        {
            "tool": r["tool"],
            "count": r["count"],
            "error_rate": round(r["errors"] / r["count"], 4) if r["count"] else 0.0,
            "p50_ms": round(r["p50"], 3) if r["p50"] is not None else None,
            "p95_ms": round(r["p95"], 3) if r["p95"] is not None else None,
            "avg_ms": round(r["avg"], 3) if r["avg"] is not None else None,
        }
        for r in rows
    ]


def instance_stats(*, organization, role=None) -> list[dict]:
    instances = MCPServerInstance.objects.filter(role__organization=organization).select_related("role")
    if role is not None:
        instances = instances.filter(role=role)
    return [
        {
            "id": str(i.id),
            "role": i.role.name,
            "status": i.status,
            "server_url": i.server_url,
            "request_count": i.request_count,
            "avg_response_time_ms": i.avg_response_time,
            "tools": len(i.tools or []),
            "last_health_check": i.last_health_check.isoformat() if i.last_health_check else None,
        }
        for i in instances.order_by("role__name")
    ]


# The existing-apis server lists what the endpoints app (above this one) deploys: that app
# registers the reader when it loads, so this module never imports it.
_existing_apis: list[Callable[..., list[dict]]] = []


def existing_apis_register(reader: Callable[..., list[dict]]) -> None:
    """Install the reader of deployed APIs: reader(*, organization, query, role) -> [{id, method, path, ...}]."""
    _existing_apis[:] = [reader]


def endpoints_list(*, organization, query: str = "", role=None) -> dict:
    """Deployed endpoints of the organization; with a `role` (a Role's key asks), that Role's only."""
    if not _existing_apis:
        return {"endpoints": [], "note": "No generated endpoints can be listed: the endpoints app is not installed."}
    return {"endpoints": _existing_apis[0](organization=organization, query=query, role=role), "note": ""}


def _dispatch(organization, server_name: str, name: str, arguments: dict, role=None) -> dict:
    view = RoleView(role) if role is not None and server_name in ("pattern-library", "compliance-rules") else None
    if server_name == "pattern-library" and name == "search_patterns":
        memories, method = memories_search(
            organization=organization,
            text=arguments["query"],
            types=arguments.get("types"),
            k=arguments.get("k", 5),
            view=view,
        )
        return {"memories": memories, "method": method}
    if server_name == "compliance-rules" and name == "list_business_rules":
        memories, method = memories_search(
            organization=organization,
            text=arguments.get("query", ""),
            types=["BUSINESS_RULE"],
            k=arguments.get("k", 50),
            view=view,
        )
        return {"memories": memories, "method": method}
    if server_name == "performance-metrics" and name == "tool_call_stats":
        hours = arguments.get("hours", 24)
        return {
            "tools": tool_stats(
                organization=organization, hours=hours, instance_id=arguments.get("instance_id"), role=role
            ),
            "hours": hours,
        }
    if server_name == "performance-metrics" and name == "instance_stats":
        return {"instances": instance_stats(organization=organization, role=role)}
    if server_name == "existing-apis" and name == "list_apis":
        return endpoints_list(organization=organization, query=arguments.get("query", ""), role=role)
    raise KeyError(name)


PLATFORM_SERVERS = {
    "pattern-library": _pattern_library_tools,
    "compliance-rules": _compliance_tools,
    "performance-metrics": _metrics_tools,
    "existing-apis": _apis_tools,
}


def platform_tool_call(*, organization, api_key, server_name: str, name: str, arguments: dict) -> ToolResult:
    """Run and record one call of a platform server's tool."""

    started = time.perf_counter()
    tools = {t["name"]: t for t in PLATFORM_SERVERS[server_name]()}
    if name not in tools:
        result = ToolResult(None, f"Unknown tool '{name}' on the {server_name} server.", True, CallOutcome.DENIED)
    elif problem := _validate_arguments(
        tools[name]["inputSchema"], arguments, cache_key=("platform", server_name, name)
    ):
        result = ToolResult(None, problem, True, CallOutcome.ERROR)
    else:
        try:
            payload = _dispatch(organization, server_name, name, arguments, role=api_key.role if api_key else None)
            rows = next((len(v) for v in payload.values() if isinstance(v, list)), None)
            # allow_nan=False: the answer is JSON as the MCP clients parse it (no NaN or Infinity).
            result = ToolResult(payload, json.dumps(payload, default=str, allow_nan=False), False, CallOutcome.OK, rows)
        except ValueError as exc:
            # learning's input errors (LearningInputError is a ValueError) name the field and are safe to show.
            result = ToolResult(None, f"Invalid arguments: {exc}", True, CallOutcome.ERROR)
        except Exception:
            logger.exception("platform MCP tool %s/%s failed", server_name, name)
            result = ToolResult(None, "Internal error while running the tool; it has been logged.", True, "error")
    audit_record(
        organization_id=organization.pk,
        api_key_id=getattr(api_key, "pk", None),
        tool=f"{server_name}/{name}",
        arguments=redact(arguments),
        outcome=result.outcome,
        error=text_printable(result.text) if result.is_error else "",
        rows=result.rows,
        duration_ms=(time.perf_counter() - started) * 1000.0,
    )
    return result


def platform_authorize(*, org_slug: str, server_name: str, secret: str | None):
    key = api_key_authenticate(secret)
    organization = key.role.organization
    if server_name not in PLATFORM_SERVERS:
        raise McpAccessError(404, "No such platform MCP server.")
    if organization.slug != org_slug:
        raise McpAccessError(403, "This API key belongs to another organization.")
    if not key.role.is_active:
        raise McpAccessError(403, "The role of this API key is inactive.")
    return organization, key


def platform_served_for_key(*, org_slug: str, server_name: str, secret: str | None):
    organization, key = platform_authorize(org_slug=org_slug, server_name=server_name, secret=secret)

    def list_tools() -> list[dict]:
        return PLATFORM_SERVERS[server_name]()

    def call(*, name: str, arguments: dict) -> ToolResult:
        return platform_tool_call(
            organization=organization, api_key=key, server_name=server_name, name=name, arguments=arguments
        )

    return Served(
        name=f"nectar-{server_name}",
        instructions=f"Nectar's {server_name} server for the organization '{organization.name}'.",
        list_tools=list_tools,
        call=call,
        organization_id=str(organization.pk),
        key_id=str(key.pk),
    )
