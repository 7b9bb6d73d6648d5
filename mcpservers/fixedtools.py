"""The fixed toolset of every Role's MCP server: search, describe, sample and try SQL.

Four read-only tools whose definitions do not grow with the Role's catalog, so an agent (or any
MCP client) can explore a database of any size with a few small tool definitions:

search_objects   objects the Role may use whose name, column names or comments match
describe_object  columns, keys to and from readable objects, row count, sample values
sample_rows      a few rows, with the filter language of query_<table>
try_sql          one read-only statement through the SQL check (listed for external clients only
                 when the Role allows it; always available to Nectar's own agents)

Every answer is built from the Role's grants: denied columns are never shown, matched or sampled,
and every read goes through roles.executor, so row filters, the read-only transaction and the
statement timeout apply exactly as for the per-table tools.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from roles.permissions import Grant

READ = {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True, "openWorldHint": False}
SEARCH_LIMIT_MAX = 50
SAMPLE_LIMIT_MAX = 20
TRY_SQL_LIMIT_MAX = 50
# describe_object reads this many rows (inside the row filter) to find low-cardinality columns.
DESCRIBE_SAMPLE_ROWS = 500
LOW_CARDINALITY_MAX = 12
SAMPLE_VALUE_MAX_CHARS = 80

_FILTERS = {
    "description": "As for query_<table>: [{column, op, value}], {and: [...]}, {or: [...]} or {column: value}",
    "anyOf": [{"type": "array", "items": {"type": "object"}}, {"type": "object"}],
}
_OBJECT = {"type": "string", "minLength": 1, "maxLength": 300, "description": "name or schema.name"}

FIXED_TOOLS: list[dict] = [
    {
        "name": "search_objects",
        "title": "Search objects",
        "description": (
            "Tables, views and procedures this role may use whose name, column names or comments match the "
            "query (best first); without a query, all of them, paged."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "query": {"type": "string", "maxLength": 200},
                "kind": {"enum": ["table", "view", "procedure"]},
                "limit": {"type": "integer", "minimum": 1, "maximum": SEARCH_LIMIT_MAX, "default": 20},
                "offset": {"type": "integer", "minimum": 0, "default": 0},
            },
            "additionalProperties": False,
        },
        "annotations": {"title": "Search objects", **READ},
    },
    {
        "name": "describe_object",
        "title": "Describe an object",
        "description": (
            "Columns (type, nullable, primary key, comment), foreign keys to and from readable objects, "
            "estimated row count and sample values of low-cardinality columns of one object."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {"object": _OBJECT},
            "required": ["object"],
            "additionalProperties": False,
        },
        "annotations": {"title": "Describe an object", **READ},
    },
    {
        "name": "sample_rows",
        "title": "Sample rows",
        "description": "A few rows of a table or view, optionally of some columns and matching filters.",
        "inputSchema": {
            "type": "object",
            "properties": {
                "object": _OBJECT,
                "columns": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                "filters": _FILTERS,
                "limit": {"type": "integer", "minimum": 1, "maximum": SAMPLE_LIMIT_MAX, "default": 5},
            },
            "required": ["object"],
            "additionalProperties": False,
        },
        "annotations": {"title": "Sample rows", **READ},
    },
    {
        "name": "try_sql",
        "title": "Try SQL",
        "description": (
            "Run one read-only SELECT over this role's objects (named binds :name with values in params); "
            "checked against the role's grants, row filters applied."
        ),
        "inputSchema": {
            "type": "object",
            "properties": {
                "sql": {"type": "string", "minLength": 1, "maxLength": 20000},
                "params": {"type": "object"},
                "limit": {"type": "integer", "minimum": 1, "maximum": TRY_SQL_LIMIT_MAX, "default": 20},
            },
            "required": ["sql"],
            "additionalProperties": False,
        },
        "annotations": {"title": "Try SQL", **READ},
    },
]
FIXED_NAMES = frozenset(t["name"] for t in FIXED_TOOLS)
FIXED_BY_NAME = {t["name"]: t for t in FIXED_TOOLS}
TRY_SQL = "try_sql"


def fixed_tools_listed(*, try_sql: bool) -> list[dict]:
    return [dict(t) for t in FIXED_TOOLS if try_sql or t["name"] != TRY_SQL]


class FixedToolError(Exception):
    """A refused call of a fixed tool: `denied` when the Role may not see what was asked."""

    def __init__(self, message: str, *, denied: bool = False):
        super().__init__(message)
        self.message = message
        self.denied = denied


@dataclass(frozen=True)
class RoleObjects:
    """The Role's grants with the lookups the fixed tools need."""

    grants: tuple[Grant, ...]
    default_schema: str

    @classmethod
    def of(cls, *, grants, default_schema: str) -> RoleObjects:
        return cls(tuple(grants), default_schema or "")

    def readable(self, grant: Grant) -> bool:
        return grant.kind in ("table", "view") and "SELECT" in grant.actions

    def find(self, ref) -> Grant:
        """The granted object named `ref` ("name" or "schema.name")."""
        if not isinstance(ref, str) or not ref.strip():
            raise FixedToolError(
                "Invalid arguments.object: expected an object name such as 'orders' or 'sales.orders'."
            )
        ref = ref.strip()
        exact = [g for g in self.grants if g.object_name == ref]
        if not exact and "." in ref:
            schema, _, name = ref.partition(".")
            exact = [g for g in self.grants if g.schema == schema and g.object_name == name]
        if len(exact) > 1:
            preferred = [g for g in exact if g.schema == self.default_schema]
            if len(preferred) == 1 and "." not in ref:
                return preferred[0]
            names = ", ".join(sorted(qualified(g) for g in exact))
            raise FixedToolError(f"{ref!r} names several objects ({names}); give schema.name.")
        if not exact:
            raise FixedToolError(
                f"This role has no object named {ref!r}; search_objects lists the ones it may use.", denied=True
            )
        return exact[0]

    def find_readable(self, ref) -> Grant:
        grant = self.find(ref)
        if not self.readable(grant):
            raise FixedToolError(f"This role may not read {qualified(grant)!r}.", denied=True)
        return grant

    def by_key(self, schema: str | None, name: str) -> Grant | None:
        for grant in self.grants:
            if grant.object_name == name and grant.schema == (schema or self.default_schema):
                return grant
        return None


def qualified(grant: Grant) -> str:
    return f"{grant.schema}.{grant.object_name}" if grant.schema else grant.object_name


def _visible_columns(grant: Grant) -> list[dict]:
    columns = (grant.object or {}).get("columns") or []
    if grant.allowed_columns is None:
        return list(columns)
    allowed = set(grant.allowed_columns)
    return [c for c in columns if c["name"] in allowed]


def _kind_label(grant: Grant) -> str:
    return "procedure" if grant.kind in ("procedure", "function") else grant.kind


# --- search_objects ---------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return [w for w in re.split(r"[^0-9a-z]+", (text or "").lower()) if w]


def _stem(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


# Words of a sentence that name nothing: a client may search with the whole requirement.
_QUERY_FILLER = frozenset(
    "a an and any all are as at be by each every for from give how in into is it its me my of "  # noqa: SIM905
    "on or our show that the their them these this those to was what when where which who whose with".split()
)


def _matches(word: str, text: str) -> bool:
    """A word of the query in a name or comment: inside it, or, for a word of one or two letters, as a whole word."""
    if len(word) > 2:
        return word in text
    return word in _words(text)


def search_objects(objects: RoleObjects, arguments: dict) -> dict:
    query = arguments.get("query") or ""
    kind = arguments.get("kind")
    limit = int(arguments.get("limit", 20))
    offset = int(arguments.get("offset", 0))
    words = _words(query)
    wanted = [_stem(w) for w in words if w not in _QUERY_FILLER] or [_stem(w) for w in words]
    found = []
    for grant in objects.grants:
        if kind and _kind_label(grant) != kind:
            continue
        columns = _visible_columns(grant)
        comment = (grant.object or {}).get("comment") or ""
        matched_columns: list[str] = []
        hits = score = 0
        for word in wanted:
            best = 0
            if _matches(word, grant.object_name.lower()):
                best = 3
            for column in columns:
                if _matches(word, column["name"].lower()) or _matches(word, (column.get("comment") or "").lower()):
                    best = max(best, 2)
                    if column["name"] not in matched_columns:
                        matched_columns.append(column["name"])
            if not best and _matches(word, comment.lower()):
                best = 1
            hits += bool(best)
            score += best
        if wanted and not hits:
            continue
        found.append((-hits, -score, qualified(grant), grant, matched_columns))
    found.sort(key=lambda item: item[:3])
    page = found[offset : offset + limit]
    results = [
        {
            "name": grant.object_name,
            "schema": grant.schema,
            "kind": _kind_label(grant),
            "matched_columns": matched,
            "row_count": (grant.object or {}).get("row_count"),
            "comment": (grant.object or {}).get("comment"),
        }
        for *_, grant, matched in page
    ]
    following = offset + limit
    return {
        "objects": results,
        "total": len(found),
        "next_offset": following if following < len(found) else None,
        "row_count_note": "row_count is the database's estimate",
    }


# --- describe_object --------------------------------------------------------------------------


def _foreign_keys(objects: RoleObjects, grant: Grant, visible: set[str]) -> tuple[list[dict], list[dict]]:
    out = []
    for fk in (grant.object or {}).get("foreign_keys") or []:
        if not all(c in visible for c in fk.get("columns", [])):
            continue
        target = objects.by_key(fk.get("ref_schema"), fk.get("ref_table"))
        if target is None or not objects.readable(target):
            continue
        target_visible = {c["name"] for c in _visible_columns(target)}
        if not all(c in target_visible for c in fk.get("ref_columns", [])):
            continue
        out.append({"columns": fk["columns"], "references": qualified(target), "ref_columns": fk["ref_columns"]})
    incoming = []
    for other in objects.grants:
        if not objects.readable(other):
            continue
        other_visible = {c["name"] for c in _visible_columns(other)}
        for fk in (other.object or {}).get("foreign_keys") or []:
            if fk.get("ref_table") != grant.object_name or (fk.get("ref_schema") or objects.default_schema) != (
                grant.schema or objects.default_schema
            ):
                continue
            if not all(c in other_visible for c in fk.get("columns", [])):
                continue
            if not all(c in visible for c in fk.get("ref_columns", [])):
                continue
            incoming.append({"object": qualified(other), "columns": fk["columns"], "ref_columns": fk["ref_columns"]})
    return out, incoming


def _sample_candidates(columns: list[dict]) -> list[str]:
    names = []
    for column in columns:
        if column.get("primary_key"):
            continue
        json_type, fmt = column.get("json_type"), column.get("format")
        if json_type == "boolean" or column.get("enum") or (json_type in ("string", "integer") and not fmt):
            names.append(column["name"])
    return names


def _shown(value: Any) -> Any:
    if isinstance(value, str) and len(value) > SAMPLE_VALUE_MAX_CHARS:
        return value[: SAMPLE_VALUE_MAX_CHARS - 1] + "…"
    return value


def low_cardinality_values(rows: list[dict], names: list[str], *, complete: bool) -> dict[str, list]:
    """Per column, its distinct values by frequency when they are few enough to be categories."""
    out = {}
    for name in names:
        counts = Counter(row.get(name) for row in rows if row.get(name) is not None)
        if not counts or len(counts) > LOW_CARDINALITY_MAX:
            continue
        seen = sum(counts.values())
        # A handful of rows says little: demand repetition unless every row was read.
        if not complete and len(counts) * 4 > seen:
            continue
        if complete and len(counts) == seen and seen > 3:
            continue  # every value distinct: an identifier, not a category
        out[name] = [_shown(value) for value, _ in counts.most_common()]
    return out


def describe_object(objects: RoleObjects, grant: Grant, *, read_sample, read_distinct=None) -> dict:
    """What an agent needs to know of one object; `read_sample(grant, columns, limit)` and
    `read_distinct(grant, column, limit) -> (values, complete)` read through the executor."""
    obj = grant.object or {}
    kind = _kind_label(grant)
    described: dict[str, Any] = {
        "name": grant.object_name,
        "schema": grant.schema,
        "kind": kind,
        "comment": obj.get("comment"),
        "actions": sorted(grant.actions),
    }
    if kind == "procedure":
        described["arguments"] = [
            {k: a.get(k) for k in ("name", "type", "json_type", "mode", "has_default")}
            for a in obj.get("arguments") or []
        ]
        described["returns"] = obj.get("returns")
        described["returns_set"] = bool(obj.get("returns_set"))
        return described
    columns = _visible_columns(grant)
    visible = {c["name"] for c in columns}
    described["columns"] = [
        {
            "name": c["name"],
            "type": c.get("type"),
            "json_type": c.get("json_type"),
            **({"format": c["format"]} if c.get("format") else {}),
            "nullable": bool(c.get("nullable", True)),
            "primary_key": bool(c.get("primary_key")),
            "comment": c.get("comment"),
            **({"enum": c["enum"]} if c.get("enum") else {}),
        }
        for c in columns
    ]
    outgoing, incoming = _foreign_keys(objects, grant, visible)
    described["foreign_keys"] = outgoing
    described["referenced_by"] = incoming
    described["row_count"] = obj.get("row_count")
    described["row_count_is_estimate"] = True
    if grant.row_filter:
        described["row_filter"] = dict(grant.row_filter)
    candidates = _sample_candidates(columns)
    if candidates and objects.readable(grant) and read_sample is not None:
        rows, complete = read_sample(grant, candidates, DESCRIBE_SAMPLE_ROWS)
        values = low_cardinality_values(rows, candidates, complete=complete)
        if not complete and read_distinct is not None:
            # The first rows are a sample: a category seen there may have values only later rows hold (the
            # statuses of rows still under way), and a question about it must offer every one.
            for name in list(values):
                every, all_of_them = read_distinct(grant, name, LOW_CARDINALITY_MAX)
                if all_of_them:
                    values[name] = [_shown(v) for v in every]
        described["sample_values"] = values
        described["sample_values_from_rows"] = len(rows)
    return described
