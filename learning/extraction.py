"""Turn what an execution did (requirement, exploration, design, SQL, tests) into memory texts and tags."""

from __future__ import annotations

import re
from collections.abc import Iterable

import sqlglot
from sqlglot import exp

# Parameter names and SQL words that mean "a time window".
_TIME_WORDS = re.compile(
    r"\b(interval|now\(\)|current_date|current_timestamp|date_trunc|date_sub|date_add|since|days|from_date|to_date"
    r"|start_date|end_date|order_date|created_at)\b",
    re.IGNORECASE,
)


def object_tag(schema: str | None, name: str) -> str:
    return f"object:{schema}.{name}".lower() if schema else f"object:{name}".lower()


def objects_of(exploration: dict | None) -> list[dict]:
    objects = (exploration or {}).get("objects") or []
    return [o for o in objects if isinstance(o, dict) and o.get("name")]


def sql_tables(sql: str) -> list[tuple[str | None, str]]:
    """Tables a statement reads, as (schema, name); empty when it does not parse."""
    try:
        tree = sqlglot.parse_one(sql)
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return []
    if tree is None:
        return []
    seen = []
    for table in tree.find_all(exp.Table):
        key = (table.db or None, table.name)
        if table.name and key not in seen:
            seen.append(key)
    return seen


def query_shapes(sql: str | None, *, parameters: Iterable[str] = ()) -> list[str]:
    """Shape tags of a query: aggregate, top_n, time_window, join, filter, paginated."""
    if not sql:
        return []
    shapes: list[str] = []
    try:
        tree = sqlglot.parse_one(sql)
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        tree = None
    if tree is not None:
        if tree.find(exp.Group) or tree.find(exp.AggFunc):
            shapes.append("aggregate")
        has_order = tree.find(exp.Order) is not None
        has_limit = tree.find(exp.Limit) is not None
        if has_order and has_limit:
            shapes.append("top_n")
        if tree.find(exp.Join):
            shapes.append("join")
        if tree.find(exp.Where):
            shapes.append("filter")
        if tree.find(exp.Offset):
            shapes.append("paginated")
    if _TIME_WORDS.search(sql) or any(_TIME_WORDS.search(p) for p in parameters):
        shapes.append("time_window")
    return shapes


def parameter_names(schema: dict | None) -> list[str]:
    if not isinstance(schema, dict):
        return []
    props = schema.get("properties")
    return list(props) if isinstance(props, dict) else []


def describe_parameters(schema: dict | None) -> str:
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
        return "none"
    parts = []
    required = set(schema.get("required") or [])
    for name, spec in schema["properties"].items():
        kind = spec.get("type", "any") if isinstance(spec, dict) else "any"
        parts.append(f"{name} ({kind}{', required' if name in required else ''})")
    return ", ".join(parts) or "none"


def dedupe(tags: Iterable[str]) -> list[str]:
    out: list[str] = []
    for tag in tags:
        tag = str(tag).strip()[:100]
        if tag and tag not in out:
            out.append(tag)
    return out
