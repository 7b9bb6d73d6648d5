"""The introspected schema (roles.introspection's shape) as the planner sees it: readable tables, columns, FKs."""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from .vocabulary import SECRET_WORDS, SENSITIVE_WORDS, name_tokens

Key = tuple[str, str]


@dataclass
class Column:
    name: str
    type: str
    json_type: str
    format: str | None
    nullable: bool
    primary_key: bool
    enum: list[str] | None
    samples: list[Any]
    tokens: tuple[str, ...]

    @property
    def is_temporal(self) -> bool:
        if self.format in ("date-time", "date"):
            return True
        lowered = self.type.lower()
        return any(word in lowered for word in ("timestamp", "datetime", "date")) and "update" not in lowered

    @property
    def is_numeric(self) -> bool:
        return self.json_type in ("integer", "number") or self.format == "decimal"

    @property
    def is_string(self) -> bool:
        return self.json_type == "string" and self.format in (None, "") and not self.is_temporal

    @property
    def is_secret(self) -> bool:
        joined = "_".join(self.tokens)
        return bool(set(self.tokens) & SECRET_WORDS) or "api_key" in joined

    @property
    def is_sensitive(self) -> bool:
        return self.is_secret or bool(set(self.tokens) & SENSITIVE_WORDS)

    @property
    def known_values(self) -> list[Any]:
        return list(self.enum or []) + [value for value in self.samples if value not in (self.enum or [])]


@dataclass(frozen=True)
class ForeignKey:
    child: Key
    child_columns: tuple[str, ...]
    parent: Key
    parent_columns: tuple[str, ...]


@dataclass
class Table:
    schema: str
    name: str
    kind: str
    columns: dict[str, Column]
    primary_key: tuple[str, ...]
    row_count: int | None
    tokens: tuple[str, ...]
    foreign_keys: list[ForeignKey] = field(default_factory=list)

    @property
    def key(self) -> Key:
        return (self.schema, self.name)

    @property
    def fk_columns(self) -> set[str]:
        return {name for fk in self.foreign_keys for name in fk.child_columns}

    def label_columns(self) -> list[Column]:
        """The columns that name a row for people: a person's first and last name together, else one label."""
        strings = [c for c in self.columns.values() if c.is_string and not c.primary_key and not c.is_sensitive]
        for first_words, last_words in ((("first", "given"), ("last", "family")), (("forename",), ("surname",))):
            first = next((c for c in strings if set(c.tokens) & set(first_words)), None)
            last = next((c for c in strings if set(c.tokens) & set(last_words)), None)
            if first is not None and last is not None and first is not last:
                return [first, last]
        label = self.label_column()
        return [label] if label is not None else []

    def label_column(self) -> Column | None:
        """The column that names a row for people (name, title, label...), if any."""
        strings = [c for c in self.columns.values() if c.is_string and not c.primary_key and not c.is_sensitive]
        for wanted in ("name", "title", "label", "full_name", "display_name", "subject"):
            for column in strings:
                if column.name.lower() == wanted:
                    return column
        for column in strings:
            if set(column.tokens) & {"name", "title", "label"}:
                return column
        return strings[0] if strings else None


class SchemaIndex:
    """Readable tables and views of one schema dict, restricted by the Role's grants when given."""

    def __init__(
        self, schema: dict, *, grants: list | None = None, samples: dict | None = None, dialect: str = "postgres"
    ) -> None:
        self.engine = schema.get("engine") or dialect
        self.default_schema = schema.get("default_schema")
        allowed = _grant_map(grants) if grants is not None else None
        self.tables: dict[Key, Table] = {}
        for obj in schema.get("objects") or []:
            if obj.get("kind", "table") not in ("table", "view"):
                continue
            key = (obj.get("schema") or self.default_schema or "", obj["name"])
            allowed_columns = None
            if allowed is not None:
                if key not in allowed and (None, obj["name"]) not in allowed:
                    continue
                allowed_columns = allowed.get(key, allowed.get((None, obj["name"])))
            table_samples = _samples_for(samples, obj) | dict(obj.get("samples") or {})
            columns = {}
            for col in obj.get("columns") or []:
                if allowed_columns is not None and col["name"] not in allowed_columns:
                    continue
                col_samples = list(col.get("samples") or table_samples.get(col["name"]) or [])
                json_type, fmt = col.get("json_type") or "string", col.get("format")
                if str(col.get("type") or "").upper() in ("", "NULL", "NULLTYPE") and not fmt:
                    json_type, fmt = _untyped(col["name"], col_samples, json_type)
                columns[col["name"]] = Column(
                    name=col["name"],
                    type=str(col.get("type") or ""),
                    json_type=json_type,
                    format=fmt,
                    nullable=bool(col.get("nullable", True)),
                    primary_key=bool(col.get("primary_key")) or col["name"] in (obj.get("primary_key") or []),
                    enum=list(col["enum"]) if col.get("enum") else None,
                    samples=col_samples,
                    tokens=name_tokens(col["name"]),
                )
            if not columns:
                continue
            self.tables[key] = Table(
                schema=key[0],
                name=obj["name"],
                kind=obj.get("kind", "table"),
                columns=columns,
                primary_key=tuple(c for c in (obj.get("primary_key") or []) if c in columns)
                or tuple(c.name for c in columns.values() if c.primary_key),
                row_count=obj.get("row_count"),
                tokens=name_tokens(obj["name"]),
            )
        for obj in schema.get("objects") or []:
            key = (obj.get("schema") or self.default_schema or "", obj["name"])
            child = self.tables.get(key)
            if child is None:
                continue
            for fk in obj.get("foreign_keys") or []:
                parent_key = (fk.get("ref_schema") or key[0], fk["ref_table"])
                parent = self.tables.get(parent_key)
                columns = tuple(fk.get("columns") or ())
                ref_columns = tuple(fk.get("ref_columns") or ())
                if parent is None or not columns or len(columns) != len(ref_columns):
                    continue
                if not all(c in child.columns for c in columns) or not all(c in parent.columns for c in ref_columns):
                    continue  # a join on a column the Role cannot read is not a join the planner may use
                child.foreign_keys.append(ForeignKey(key, columns, parent_key, ref_columns))

    # Relationships --------------------------------------------------------------------------------

    def edges(self) -> list[ForeignKey]:
        return [fk for table in self.tables.values() for fk in table.foreign_keys]

    def neighbors(self, key: Key) -> list[tuple[Key, ForeignKey]]:
        found = []
        for fk in self.edges():
            if fk.child == key and fk.parent != key:
                found.append((fk.parent, fk))
            elif fk.parent == key and fk.child != key:
                found.append((fk.child, fk))
        return found

    def children(self, key: Key) -> list[ForeignKey]:
        """Foreign keys of other tables that point at this one (its items, its events...)."""
        return [fk for fk in self.edges() if fk.parent == key and fk.child != key]

    def path(self, start: Key, goal: Key) -> list[ForeignKey] | None:
        """The shortest chain of foreign keys from start to goal (either direction), or None."""
        if start == goal:
            return []
        seen = {start}
        queue: deque[tuple[Key, list[ForeignKey]]] = deque([(start, [])])
        while queue:
            node, chain = queue.popleft()
            for other, fk in sorted(self.neighbors(node), key=lambda item: (item[0], item[1].child_columns)):
                if other in seen:
                    continue
                if other == goal:
                    return [*chain, fk]
                seen.add(other)
                queue.append((other, [*chain, fk]))
        return None

    def up_path(self, start: Key, goal: Key, *, max_steps: int = 4) -> list[ForeignKey] | None:
        """The shortest chain of child-to-parent foreign keys from start to goal (many-to-one only), or None.

        Every row of `start` meets at most one row of `goal` along it, so joining it never repeats rows.
        """
        if start == goal:
            return []
        seen = {start}
        queue: deque[tuple[Key, list[ForeignKey]]] = deque([(start, [])])
        while queue:
            node, chain = queue.popleft()
            if len(chain) >= max_steps:
                continue
            table = self.tables.get(node)
            for fk in sorted(table.foreign_keys if table else [], key=lambda f: (f.parent, f.child_columns)):
                if fk.parent in seen or fk.parent not in self.tables:
                    continue
                if fk.parent == goal:
                    return [*chain, fk]
                seen.add(fk.parent)
                queue.append((fk.parent, [*chain, fk]))
        return None

    def distance(self, start: Key, goal: Key) -> int | None:
        chain = self.path(start, goal)
        return None if chain is None else len(chain)


def _grant_map(grants: list) -> dict[tuple[str | None, str], set[str] | None]:
    """(schema, name) -> readable column names (None: all) for every grant that can read."""
    out: dict[tuple[str | None, str], set[str] | None] = {}
    for grant in grants:
        if isinstance(grant, dict):
            actions = {str(a).upper() for a in grant.get("actions") or []}
            name = grant.get("objectName") or grant.get("object_name")
            schema = grant.get("schema")
            columns = grant.get("columns") or {}
            allowed: set[str] | None = set(columns["allow"]) if columns.get("allow") else None
            denied = set(columns.get("deny") or [])
            if denied:
                allowed = (allowed - denied) if allowed is not None else _Denied(denied)
        else:
            actions = {str(a).upper() for a in getattr(grant, "actions", ())}
            name = grant.object_name
            schema = grant.schema
            allowed_columns = getattr(grant, "allowed_columns", None)
            allowed = set(allowed_columns) if allowed_columns is not None else None
        if "SELECT" in actions and name:
            out[(schema, name)] = allowed
    return out


class _Denied(set):
    """Column set that contains every name except the denied ones."""

    def __init__(self, denied: set[str]) -> None:
        super().__init__()
        self.denied = denied

    def __contains__(self, name: object) -> bool:
        return name not in self.denied


def _samples_for(samples: dict | None, obj: dict) -> dict:
    if not samples:
        return {}
    found: dict = {}
    # The explorer files what its query tools returned under the tool's name (query_<table>).
    for key in (f"query_{obj['name']}", obj["name"], f"{obj.get('schema')}.{obj['name']}"):
        for column, values in (samples.get(key) or {}).items():
            bucket = found.setdefault(column, [])
            bucket.extend(v for v in values or [] if v not in bucket)
    return found


_MEASURE_TOKENS = frozenset(
    ["revenue", "amount", "total", "count", "value", "sum", "avg", "average", "quantity", "units", "price", "sales"]
)
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _untyped(name: str, samples: list, json_type: str) -> tuple[str, str | None]:
    """JSON type of a column the database declares no type for (SQLite view columns computed by expressions).

    From sampled values when there are any (all numbers: number; ISO dates: date), else from the name.
    """
    values = [v for v in samples if v is not None]
    if values:
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return ("integer" if all(isinstance(v, int) for v in values) else "number"), None
        if all(isinstance(v, str) and _ISO_DATE.match(v) for v in values):
            return "string", "date" if all(len(v) == 10 for v in values) else "date-time"
        return json_type, None
    tokens = set(name_tokens(name))
    if tokens & _MEASURE_TOKENS or name.lower().startswith(("total_", "sum_", "avg_", "num_")):
        return "number", None
    if tokens & {"date", "month", "day", "week", "at", "time"}:
        return "string", "date"
    return json_type, None
