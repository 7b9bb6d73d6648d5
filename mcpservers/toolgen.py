"""Role permissions -> MCP tool definitions (the spec's MCPServerGenerator).

A tool definition is a JSON-serialisable dict stored in MCPServerInstance.tools:
the MCP fields (name, title, description, inputSchema, outputSchema, annotations) plus a
"binding" that says which executor call serves it. The binding never leaves the server.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from typing import Any

from django.conf import settings

from mcpservers.fixedtools import fixed_tools_listed
from roles.permissions import role_grants

TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
MAX_TOOL_NAME = 128
# Fields of a stored definition that are MCP's; everything else stays on the server.
MCP_FIELDS = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")


READ = {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True, "openWorldHint": False}
# destructiveHint and idempotentHint only mean something for tools that write.
READ_SHORT = {"readOnlyHint": True}


# --- Names -------------------------------------------------------------------------------


def sanitize_identifier(text: str) -> str:
    """Map a database identifier onto MCP's tool-name alphabet ([A-Za-z0-9_.-])."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", text or "").strip("_")
    return cleaned or "object"


def _fit(name: str) -> str:
    if len(name) <= MAX_TOOL_NAME:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{name[: MAX_TOOL_NAME - 9]}_{digest}"


def _object_labels(grants) -> dict[tuple[str, str], str]:
    """The name part of each object's tools: plain, or schema-qualified where plain names collide."""
    plain = {(g.schema, g.object_name): sanitize_identifier(g.object_name) for g in grants}
    counts = Counter(plain.values())
    labels = {}
    for key, label in plain.items():
        if counts[label] > 1:
            label = f"{sanitize_identifier(key[0] or 'default')}__{label}"
        labels[key] = label
    return labels


# --- JSON Schema pieces ------------------------------------------------------------------


def _value_branches(column: dict) -> list[dict]:
    """One schema per JSON type a column's value may take, each with a single `type` (portable)."""
    json_type = column.get("json_type") or "string"
    fmt = column.get("format")
    if json_type in ("object", "array"):
        return [{}]
    if fmt == "decimal" or json_type == "number":
        # Exact decimals travel as strings or numbers.
        branches = [{"type": "number"}, {"type": "string"}]
    else:
        branches = [{"type": json_type}]
        if fmt in ("date-time", "date", "time", "uuid"):
            branches[0]["format"] = fmt
    if column.get("enum"):
        for branch in branches:
            branch["enum"] = list(column["enum"])
    return branches


def value_schema(column: dict, *, nullable: bool = False) -> dict:
    """JSON Schema of one value of a column (or procedure argument).

    Never a list of types (Inspector --strict: single-type dialects such as Gemini's reject it):
    several types, null included, are `anyOf` branches of one type each.
    """
    branches = _value_branches(column)
    if nullable and branches != [{}]:
        branches.append({"type": "null"})
    schema: dict[str, Any] = dict(branches[0]) if len(branches) == 1 else {"anyOf": branches}
    db_type = column.get("type")
    if db_type:
        schema["description"] = f"{db_type}{' (may be null)' if column.get('nullable') else ''}"
    return schema


def _no_description(schema: dict) -> dict:
    return {k: v for k, v in schema.items() if k != "description"}


def _row_output_schema(columns: list[dict]) -> dict:
    props = {}
    for column in columns:
        types = [{"type": b["type"]} for b in _value_branches(column) if "type" in b]
        props[column["name"]] = {"anyOf": [*types, {"type": "null"}]} if types else {}
    return {"type": "object", "properties": props}


def query_output_schema(columns: list[dict] | None) -> dict:
    rows = _row_output_schema(columns) if columns is not None else {"type": "object"}
    return {
        "type": "object",
        "properties": {
            "columns": {"type": "array", "items": {"type": "string"}},
            "rows": {"type": "array", "items": rows},
            "row_count": {"type": "integer"},
            "total": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
            "truncated": {"type": "boolean"},
        },
        "required": ["columns", "rows", "row_count", "truncated"],
    }


def _write_values_schema(columns: list[dict]) -> dict:
    """Each writable column typed once (type, format, allowed values); no per-column prose."""
    return {c["name"]: _no_description(value_schema(c, nullable=bool(c.get("nullable")))) for c in columns}


# Writes take the same filters as reads (checked by the executor), and must have at least one.
WRITE_FILTERS = {
    "description": "[{column,op,value}] ANDed, op: eq ne lt lte gt gte in between like ilike is_null; "
    "{or:[...]}; or {col:value}",
    "anyOf": [{"type": "array", "minItems": 1}, {"type": "object", "minProperties": 1}],
}


ANALYZE_OUTPUT = {"type": "object", "properties": {"name": {"type": "string"}, "schema": {"type": "string"}}}


# --- Per-object tools -----------------------------------------------------------------------


def _allowed_columns(grant) -> list[dict]:
    columns = (grant.object or {}).get("columns") or []
    if grant.allowed_columns is None:
        return list(columns)
    allowed = set(grant.allowed_columns)
    return [c for c in columns if c["name"] in allowed]


def _qualified(grant) -> str:
    return f"{grant.schema}.{grant.object_name}" if grant.schema else grant.object_name


def _row_filter_note(grant) -> str:
    if not grant.row_filter:
        return ""
    conditions = ", ".join(f"{k} = {v!r}" for k, v in sorted(grant.row_filter.items()))
    return f" Only rows where {conditions} (enforced)."


def _binding(grant, action: str) -> dict:
    return {"action": action, "schema": grant.schema, "object": grant.object_name, "kind": grant.kind}


def _column_note(column: dict, hints: dict[str, str]) -> str:
    """One column as the description lists it: name, type, and what says more (pk, null, values, link, comment)."""
    parts = [column["name"], column.get("type") or column.get("json_type") or "text"]
    if column.get("primary_key"):
        parts.append("pk")
    elif column.get("nullable"):
        parts.append("null")
    if column.get("enum"):
        parts.append("=" + "|".join(str(v) for v in column["enum"]))
    if column["name"] in hints:
        parts.append("->" + hints[column["name"]])
    note = " ".join(parts)
    if column.get("comment"):
        note += f" ({column['comment'][:80]})"
    return note


def _link_hints(grant, readable: set | None) -> dict[str, str]:
    """Foreign-key hints (column -> table.column), only towards objects the Role may read."""
    hints = {}
    for fk in (grant.object or {}).get("foreign_keys") or []:
        if len(fk.get("columns") or []) != 1:
            continue
        target = (fk.get("ref_schema") or grant.schema, fk.get("ref_table"))
        if readable is not None and target not in readable:
            continue
        hints[fk["columns"][0]] = f"{fk['ref_table']}.{fk['ref_columns'][0]}"
    return hints


QUERY_OPS = "eq ne lt lte gt gte in between like ilike is_null"


def _query_tool(grant, label: str, columns: list[dict], noun: str, readable: set | None = None) -> dict:
    """The read tool of a table or view: the columns and their meanings once, in the description.

    The schema stays small and portable (no $ref, no per-column copies); the executor checks
    column names, operators and value types and answers a wrong one with a clear error.
    """
    cap = settings.QUERY_ROW_CAP
    hints = _link_hints(grant, readable)
    listed = "; ".join(_column_note(c, hints) for c in columns)
    return {
        "name": _fit(f"query_{label}"),
        "description": (
            f"Read the {noun} {_qualified(grant)} (max {cap} rows). Columns: {listed}.{_row_filter_note(grant)}"
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "columns": {"type": "array", "items": {"type": "string"}},
                "filters": {
                    "description": f"[{{column,op,value}}] ANDed, op: {QUERY_OPS}; {{or:[...]}}; or {{col:value}}",
                    "anyOf": [{"type": "array"}, {"type": "object"}],
                },
                "order_by": {
                    "description": "col, -col or [{column,direction}]",
                    "anyOf": [{"type": "string"}, {"type": "array"}],
                },
                "limit": {"type": "integer", "minimum": 1, "maximum": cap},
                "offset": {"type": "integer", "minimum": 0},
                "include_total": {"type": "boolean"},
            },
            "additionalProperties": False,
        },
        "annotations": dict(READ_SHORT),
        "binding": _binding(grant, "query"),
    }


def _analysis(grant, columns: list[dict]) -> dict:
    obj = grant.object or {}
    visible = {c["name"] for c in columns}
    return {
        "schema": grant.schema,
        "name": grant.object_name,
        "kind": grant.kind,
        "columns": [
            {k: c.get(k) for k in ("name", "type", "json_type", "format", "nullable", "default", "primary_key", "enum")}
            for c in columns
        ],
        "primary_key": [c for c in obj.get("primary_key") or [] if c in visible],
        "foreign_keys": [
            fk for fk in obj.get("foreign_keys") or [] if all(col in visible for col in fk.get("columns", []))
        ],
        "indexes": [ix for ix in obj.get("indexes") or [] if all(col in visible for col in ix.get("columns", []))],
        "row_count": obj.get("row_count"),
        "row_filter": dict(grant.row_filter or {}),
        "actions": sorted(grant.actions),
    }


def _analyze_tool(grant, label: str, columns: list[dict], noun: str) -> dict:
    return {
        "name": _fit(f"analyze_{label}_schema"),
        "description": f"Columns, keys, indexes and estimated row count of the {noun} {_qualified(grant)}.",
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
        "annotations": dict(READ_SHORT),
        "binding": {**_binding(grant, "analyze"), "result": _analysis(grant, columns)},
    }


def _is_required_for_insert(column: dict) -> bool:
    return not column.get("nullable", True) and column.get("default") in (None, "")


def _insert_tool(grant, label: str, columns: list[dict]) -> dict:
    required = [c["name"] for c in columns if _is_required_for_insert(c)]
    row = {
        "type": "object",
        "properties": _write_values_schema(columns),
        "required": required,
        "additionalProperties": False,
    }
    return {
        "name": _fit(f"insert_{label}"),
        "description": (
            f"Insert rows into {_qualified(grant)}, all or none. "
            f"Required: {', '.join(required) or 'none'}.{_row_filter_note(grant)}"
            + (" New rows must satisfy that condition." if grant.row_filter else "")
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "rows": {"type": "array", "items": row, "minItems": 1, "maxItems": settings.QUERY_ROW_CAP},
            },
            "required": ["rows"],
            "additionalProperties": False,
        },
        "annotations": {
            "destructiveHint": False,
            "idempotentHint": False,
            "openWorldHint": False,
        },
        "binding": _binding(grant, "insert"),
    }


def _update_tool(grant, label: str, columns: list[dict]) -> dict:
    values = {
        "type": "object",
        "properties": _write_values_schema(columns),
        "minProperties": 1,
        "additionalProperties": False,
        "description": "New values",
    }
    return {
        "name": _fit(f"update_{label}"),
        "description": (
            f"Set columns of the rows of {_qualified(grant)} matching the filters, atomically; answers row_count "
            f"and the rows.{_row_filter_note(grant)}"
        ),
        "inputSchema": {
            "type": "object",
            "properties": {"values": values, "filters": dict(WRITE_FILTERS)},
            "required": ["values", "filters"],
            "additionalProperties": False,
        },
        "annotations": {
            "destructiveHint": True,
            "idempotentHint": True,
            "openWorldHint": False,
        },
        "binding": _binding(grant, "update"),
    }


def _delete_tool(grant, label: str, columns: list[dict]) -> dict:
    return {
        "name": _fit(f"delete_{label}"),
        "description": (
            f"Delete the rows of {_qualified(grant)} matching the filters, atomically; answers row_count and "
            f"the rows.{_row_filter_note(grant)}"
        ),
        "inputSchema": {
            "type": "object",
            "properties": {"filters": dict(WRITE_FILTERS)},
            "required": ["filters"],
            "additionalProperties": False,
        },
        "annotations": {
            "destructiveHint": True,
            "idempotentHint": True,
            "openWorldHint": False,
        },
        "binding": _binding(grant, "delete"),
    }


def _input_arguments(grant) -> list[dict]:
    arguments = (grant.object or {}).get("arguments") or []
    return [a for a in arguments if (a.get("mode") or "IN").upper() in ("IN", "INOUT", "VARIADIC")]


def _execute_tool(grant, label: str) -> dict:
    arguments = _input_arguments(grant)
    props = {}
    for index, argument in enumerate(arguments):
        name = argument.get("name") or f"arg{index + 1}"
        schema = value_schema({**argument, "nullable": True}, nullable=True)
        if (argument.get("mode") or "").upper() == "VARIADIC":
            schema = {"type": "array", "items": _no_description(schema), "description": argument.get("type", "")}
        props[name] = schema
    required = [
        a.get("name") or f"arg{i + 1}"
        for i, a in enumerate(arguments)
        if not a.get("has_default") and (a.get("mode") or "IN").upper() != "VARIADIC"
    ]
    noun = "function" if grant.kind == "function" else "procedure"
    obj = grant.object or {}
    returns = obj.get("returns")
    return {
        "name": _fit(f"execute_{label}"),
        "title": f"Execute {_qualified(grant)}",
        "description": (
            f"Call the {noun} {_qualified(grant)} with named, typed parameters"
            + (f"; returns {returns}{' (a set of rows)' if obj.get('returns_set') else ''}" if returns else "")
            + ". It may change data."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "parameters": {
                    "type": "object",
                    "properties": props,
                    "required": required,
                    "additionalProperties": False,
                }
            },
            "required": ["parameters"] if required else [],
            "additionalProperties": False,
        },
        "outputSchema": query_output_schema(None),
        "annotations": {
            "title": f"Execute {_qualified(grant)}",
            "readOnlyHint": False,
            "destructiveHint": True,
            "idempotentHint": False,
            "openWorldHint": False,
        },
        "binding": _binding(grant, "execute"),
    }


def _signature_tool(grant, label: str) -> dict:
    obj = grant.object or {}
    signature = {
        "schema": grant.schema,
        "name": grant.object_name,
        "kind": grant.kind,
        "arguments": [
            {k: a.get(k) for k in ("name", "type", "json_type", "format", "mode", "has_default")}
            for a in obj.get("arguments") or []
        ],
        "returns": obj.get("returns"),
        "returns_set": bool(obj.get("returns_set")),
    }
    return {
        "name": _fit(f"analyze_{label}_signature"),
        "title": f"Signature of {_qualified(grant)}",
        "description": f"Parameter names, types and modes and the return type of {_qualified(grant)}.",
        "inputSchema": {"type": "object", "properties": {}, "additionalProperties": False},
        "outputSchema": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "kind": {"type": "string"},
                "arguments": {"type": "array", "items": {"type": "object"}},
                "returns": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                "returns_set": {"type": "boolean"},
            },
            "required": ["name", "arguments"],
        },
        "annotations": {"title": f"Signature of {_qualified(grant)}", **READ},
        "binding": {**_binding(grant, "signature"), "result": signature},
    }


def grant_tools(grant, label: str, readable: set | None = None) -> list[dict]:
    """Tools for one granted object: only the actions the grant allows."""
    actions = {a.upper() for a in grant.actions}
    kind = (grant.kind or "").lower()
    tools: list[dict] = []
    if kind in ("procedure", "function"):
        if "EXECUTE" in actions:
            tools += [_execute_tool(grant, label), _signature_tool(grant, label)]
        return tools
    columns = _allowed_columns(grant)
    noun = "view" if kind == "view" else "table"
    if "SELECT" in actions:
        tools += [_query_tool(grant, label, columns, noun, readable), _analyze_tool(grant, label, columns, noun)]
    if kind == "view":
        return tools
    if "INSERT" in actions:
        tools.append(_insert_tool(grant, label, columns))
    if "UPDATE" in actions:
        tools.append(_update_tool(grant, label, columns))
    if "DELETE" in actions:
        tools.append(_delete_tool(grant, label, columns))
    return tools


def tools_from_grants(grants) -> list[dict]:
    """Tool definitions for a list of grants, with valid and unique names."""
    labels = _object_labels(grants)
    readable = {(g.schema, g.object_name) for g in grants if "SELECT" in g.actions}
    tools: list[dict] = []
    for grant in grants:
        tools += grant_tools(grant, labels[(grant.schema, grant.object_name)], readable)
    seen: set[str] = set()
    for tool in tools:
        name = tool["name"]
        if name in seen:
            suffix = hashlib.sha256(json.dumps(tool["binding"], sort_keys=True).encode()).hexdigest()[:6]
            name = _fit(f"{name[: MAX_TOOL_NAME - 7]}_{suffix}")
            tool["name"] = name
        assert TOOL_NAME_RE.match(name), name
        seen.add(name)
    return tools


def role_generate_tools(*, role) -> list[dict]:
    """Every tool the Role may use, from its grants and the introspected schema."""

    return tools_from_grants(role_grants(role=role))


# --- Listing, compact mode and fingerprints ---------------------------------------------------


def tool_public(tool: dict) -> dict:
    """The MCP part of a stored definition (without the server-side binding)."""
    return {k: tool[k] for k in MCP_FIELDS if k in tool and tool[k] is not None}


COMPACT_TOOLS = [
    {
        "name": "search_tools",
        "title": "Search tools",
        "description": (
            "This server has many tools; search them by words of their name, title or description "
            "(e.g. 'orders query'). Then use describe_tool for the input schema and call_tool to run one."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "description": "Words to look for; empty lists every tool"},
                "limit": {"type": "integer", "minimum": 1, "maximum": 200, "default": 20},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
        "outputSchema": {
            "type": "object",
            "properties": {
                "tools": {"type": "array", "items": {"type": "object"}},
                "total": {"type": "integer"},
            },
            "required": ["tools", "total"],
        },
        "annotations": {"title": "Search tools", **READ},
    },
    {
        "name": "describe_tool",
        "title": "Describe a tool",
        "description": "The full definition of one tool: description, inputSchema, outputSchema and annotations.",
        "inputSchema": {
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"],
            "additionalProperties": False,
        },
        "outputSchema": {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
        "annotations": {"title": "Describe a tool", **READ},
    },
    {
        "name": "call_tool",
        "title": "Call a tool",
        "description": "Call one tool of this server by name with its arguments (see describe_tool).",
        "inputSchema": {
            "type": "object",
            "properties": {"name": {"type": "string"}, "arguments": {"type": "object", "default": {}}},
            "required": ["name"],
            "additionalProperties": False,
        },
        "annotations": {
            "title": "Call a tool",
            "readOnlyHint": False,
            "destructiveHint": True,
            "idempotentHint": False,
            "openWorldHint": False,
        },
    },
]
COMPACT_NAMES = frozenset(t["name"] for t in COMPACT_TOOLS)


def is_compact(tools: list[dict]) -> bool:
    return len(tools) > settings.MCP_COMPACT_THRESHOLD


def tools_listed(tools: list[dict], *, try_sql: bool = False) -> list[dict]:
    """What tools/list answers: the fixed toolset, then every tool or, above the compact threshold, the meta-tools.

    `try_sql` lists the try_sql tool (the Role allows it, or the caller is Nectar's own agent).
    """

    fixed = fixed_tools_listed(try_sql=try_sql)
    if is_compact(tools):
        meta = [dict(t) for t in COMPACT_TOOLS]
        if all((t.get("annotations") or {}).get("readOnlyHint") for t in tools):
            # The Role only reads: call_tool can do nothing else, and clients that gate writes may use it freely.
            meta[-1]["annotations"] = {"title": "Call a tool", **READ}
        return [*fixed, *meta]
    return [*fixed, *(tool_public(t) for t in tools)]


def tools_search(tools: list[dict], query: str, limit: int = 20) -> dict:
    words = [w for w in re.split(r"[\s_.,-]+", (query or "").lower()) if w]
    scored = []
    for tool in tools:
        haystack = f"{tool['name']} {tool.get('title', '')} {tool.get('description', '')}".lower()
        name = tool["name"].lower()
        if all(w in haystack for w in words):
            score = sum(3 if w in name else 1 for w in words)
            scored.append((-score, tool["name"], tool))
    scored.sort(key=lambda item: (item[0], item[1]))
    found = [
        {"name": t["name"], "title": t.get("title", ""), "description": t.get("description", "")}
        for _, _, t in scored[:limit]
    ]
    return {"tools": found, "total": len(scored)}


_STRUCTURAL_KEYS = ("name", "type", "json_type", "format", "nullable", "default", "primary_key", "enum")


def schema_fingerprint(*, permissions, schema: dict | None) -> str:
    """A digest of what the tools are built from: the permissions and the structure of the schema."""
    objects = []
    for obj in (schema or {}).get("objects") or []:
        objects.append(
            {
                "schema": obj.get("schema"),
                "name": obj.get("name"),
                "kind": obj.get("kind"),
                "columns": [{k: c.get(k) for k in _STRUCTURAL_KEYS} for c in obj.get("columns") or []],
                "arguments": obj.get("arguments"),
                "returns": obj.get("returns"),
            }
        )
    payload = json.dumps({"permissions": permissions, "objects": objects}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()
