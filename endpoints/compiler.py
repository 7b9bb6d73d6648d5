"""From an interpretation to SQL: the platform's own formulation of what a design means.

`interpretation_compile` writes one read-only SELECT with named binds (:name) for PostgreSQL,
MySQL/MariaDB or SQLite, the JSON schema of its parameters and its response columns. It writes
two shapes of the same meaning:

- "primary": entities joined, aggregates grouped; a measure whose rows another joined branch
  would multiply (fan-out) is pre-aggregated at its own grain first; negations are NOT EXISTS;
- "alternate": negations as LEFT JOIN ... IS NULL (or IN for positive existence) and measures as
  correlated subqueries where the grouping allows it, so that a second formulation can check the
  first on live data.

`measure_check` writes a query that recomputes one measure for one group of a result, straight
from its fact table: the meaning tests use it to check aggregates row by row.

Nothing here trusts the author of the interpretation: unknown objects and columns, type mismatches
(a sum of text, a window on a non-date) and double counting are refused with a CompileError that
says, in plain words, which element is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from endpoints.interpretation import (
    Bound,
    Col,
    Entity,
    Filter,
    Interpretation,
    Measure,
    Parameter,
    PeriodComparison,
    Relative,
    TimeWindow,
    filter_expression_columns,
)
from endpoints.sqldialect import (
    bucket,
    calendar_start,
    contains,
    date_literal,
    date_param,
    duration_sql,
    ilike,
    literal,
    month_start_param,
    normalize_dialect,
    qualified,
    quote,
    shift,
    shift_by_param,
    today,
    year_start_param,
)
from learning.arithmetic import arithmetic_render

DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"
MONTH_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
LIMIT_MAXIMUM = 1000
NUMERIC_TYPES = ("integer", "number")
_OPS = {"eq": "=", "ne": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}


class CompileError(Exception):
    """The interpretation cannot be written as SQL; `element` says which part, the message why."""

    def __init__(self, message: str, *, element: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.element = element


# --- the catalog: objects as the Role sees them -----------------------------------------------------------


@dataclass(frozen=True)
class ColumnInfo:
    name: str
    type: str
    json_type: str
    format: str | None
    nullable: bool

    @property
    def is_temporal(self) -> bool:
        if self.format in ("date", "date-time"):
            return True
        lowered = self.type.lower()
        return any(word in lowered for word in ("date", "time")) and "update" not in lowered

    @property
    def is_numeric(self) -> bool:
        return self.json_type in NUMERIC_TYPES or self.format == "decimal"


@dataclass(frozen=True)
class ForeignKeyInfo:
    columns: tuple[str, ...]
    ref_object: str  # schema.name of the referenced object
    ref_columns: tuple[str, ...]


@dataclass(frozen=True)
class ObjectInfo:
    schema: str
    name: str
    kind: str
    columns: dict[str, ColumnInfo]
    primary_key: tuple[str, ...]
    unique: tuple[tuple[str, ...], ...]
    foreign_keys: tuple[ForeignKeyInfo, ...]

    @property
    def key(self) -> str:
        return f"{self.schema}.{self.name}" if self.schema else self.name

    def is_unique(self, columns: Iterable[str]) -> bool:
        wanted = set(columns)
        return any(key and set(key) <= wanted for key in (self.primary_key, *self.unique))


class Catalog:
    """The introspected schema (roles.introspection's shape), restricted to what the Role may read."""

    def __init__(self, schema: dict, *, readable: dict[str, set[str] | None] | None = None) -> None:
        self.engine = schema.get("engine") or ""
        self.default_schema = schema.get("default_schema")
        self._objects: dict[str, ObjectInfo] = {}
        self._by_name: dict[str, list[ObjectInfo]] = {}
        for obj in schema.get("objects") or []:
            if obj.get("kind", "table") not in ("table", "view"):
                continue
            name, sch = obj["name"], obj.get("schema") or self.default_schema or ""
            allowed = None
            if readable is not None:
                if f"{sch}.{name}" in readable:
                    allowed = readable[f"{sch}.{name}"]
                elif name in readable:
                    allowed = readable[name]
                else:
                    continue
            columns = {
                c["name"]: ColumnInfo(
                    name=c["name"],
                    type=str(c.get("type") or ""),
                    json_type=c.get("json_type") or "string",
                    format=c.get("format"),
                    nullable=bool(c.get("nullable", True)),
                )
                for c in obj.get("columns") or []
                if allowed is None or c["name"] in allowed
            }
            pk = tuple(obj.get("primary_key") or [c["name"] for c in obj.get("columns") or [] if c.get("primary_key")])
            unique = tuple(tuple(ix["columns"]) for ix in obj.get("indexes") or [] if ix.get("unique"))
            fks = tuple(
                ForeignKeyInfo(
                    columns=tuple(fk["columns"]),
                    ref_object=f"{fk.get('ref_schema') or sch}.{fk['ref_table']}",
                    ref_columns=tuple(fk["ref_columns"]),
                )
                for fk in obj.get("foreign_keys") or []
            )
            info = ObjectInfo(sch, name, obj.get("kind", "table"), columns, pk, unique, fks)
            self._objects[info.key] = info
            self._by_name.setdefault(name, []).append(info)

    def get(self, name: str) -> ObjectInfo | None:
        if name in self._objects:
            return self._objects[name]
        schema, _, bare = name.rpartition(".")
        if schema:
            return None
        found = self._by_name.get(bare) or []
        if len(found) == 1:
            return found[0]
        default = [o for o in found if o.schema == self.default_schema]
        return default[0] if len(default) == 1 else None

    def objects(self) -> list[ObjectInfo]:
        return list(self._objects.values())

    def joined_by_foreign_key(self, a: ObjectInfo, a_cols: tuple[str, ...], b: ObjectInfo, b_cols: tuple[str, ...]):
        """Whether a foreign key (either way) pairs these columns."""
        for fk in a.foreign_keys:
            if fk.ref_object == b.key and tuple(fk.columns) == a_cols and tuple(fk.ref_columns) == b_cols:
                return True
        for fk in b.foreign_keys:
            if fk.ref_object == a.key and tuple(fk.columns) == b_cols and tuple(fk.ref_columns) == a_cols:
                return True
        return False


# --- the compiled query ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledQuery:
    sql: str
    parameters: dict
    columns: list[dict]
    order: list[tuple[str, str]]  # (output column, asc|desc) the rows come in
    shape: str
    notes: list[str] = field(default_factory=list)


@dataclass
class _Ctx:
    interp: Interpretation
    catalog: Catalog
    dialect: str
    objects: dict[str, ObjectInfo]  # alias -> object
    notes: list[str]

    def q(self, name: str) -> str:
        return quote(name, self.dialect)

    def col(self, c: Col) -> str:
        return f"{self.q(c.entity)}.{self.q(c.column)}"

    def info(self, c: Col) -> ColumnInfo:
        return self.objects[c.entity].columns[c.column]

    def table(self, entity: Entity) -> str:
        return qualified(self.objects[entity.alias].key, self.dialect, default_schema=self.catalog.default_schema)


def _resolve(interp: Interpretation, catalog: Catalog, dialect: str) -> _Ctx:
    objects: dict[str, ObjectInfo] = {}
    for entity in interp.all_entities():
        info = catalog.get(entity.object)
        if info is None:
            raise CompileError(f"'{entity.object}' is not a table or view this role can read", element=entity.alias)
        objects[entity.alias] = info
    ctx = _Ctx(interp, catalog, dialect, objects, [])
    for path, col in _columns(interp):
        info = objects[col.entity]
        if col.column not in info.columns:
            raise CompileError(f"{info.name} has no column '{col.column}' this role can read", element=path)
    for entity in interp.all_entities():
        if entity.join is None:
            continue
        mine, theirs = objects[entity.alias], objects[entity.join.to]
        for a, b in entity.join.on:
            if a not in mine.columns:
                raise CompileError(f"{mine.name} has no column '{a}' to join on", element=entity.alias)
            if b not in theirs.columns:
                raise CompileError(f"{theirs.name} has no column '{b}' to join on", element=entity.alias)
    _check_types(ctx)
    return ctx


def _columns(interp: Interpretation) -> list[tuple[str, Col]]:
    found: list[tuple[str, Col]] = []
    for i, s in enumerate(interp.select):
        found.append((f"select[{i}]", s.column))
    for i, f in enumerate(interp.filters):
        found.append((f"filters[{i}]", f.column))
        if f.other is not None:
            found.append((f"filters[{i}].other", f.other))
        found += [(f"filters[{i}].expression", col) for col in filter_expression_columns(f)]
    for i, w in enumerate(interp.windows):
        found.append((f"windows[{i}]", w.column))
    for i, g in enumerate(interp.group_by):
        found.append((f"group_by[{i}]", g.column))
    for i, m in enumerate(interp.measures):
        for name, col in (("column", m.column), ("times", m.times), ("until", m.until)):
            if col is not None:
                found.append((f"measures[{i}].{name}", col))
        found += [(f"measures[{i}].expression", col) for col in m.expression_columns()]
        found += [(f"measures[{i}].filters[{j}]", f.column) for j, f in enumerate(m.filters)]
        found += [(f"measures[{i}].filters[{j}].other", f.other) for j, f in enumerate(m.filters) if f.other]
        if m.window is not None:
            found.append((f"measures[{i}].window", m.window.column))
    for i, x in enumerate(interp.exists):
        found += [(f"exists[{i}].filters[{j}]", f.column) for j, f in enumerate(x.filters)]
        found += [(f"exists[{i}].filters[{j}].other", f.other) for j, f in enumerate(x.filters) if f.other]
        if x.window is not None:
            found.append((f"exists[{i}].window", x.window.column))
        if x.repeated is not None:
            found += [(f"exists[{i}].repeated.per[{j}]", col) for j, col in enumerate(x.repeated.per)]
    for i, c in enumerate(interp.comparisons):
        found.append((f"comparisons[{i}].date", c.date))
        if c.column is not None:
            found.append((f"comparisons[{i}].column", c.column))
        found += [(f"comparisons[{i}].filters[{j}]", f.column) for j, f in enumerate(c.filters)]
        found += [(f"comparisons[{i}].filters[{j}].other", f.other) for j, f in enumerate(c.filters) if f.other]
    for i, o in enumerate(interp.order_by):
        if o.column is not None:
            found.append((f"order_by[{i}]", o.column))
    return found


def _check_types(ctx: _Ctx) -> None:
    interp = ctx.interp
    compared = [(f"filters[{i}]", f) for i, f in enumerate(interp.filters)]
    compared += [
        (f"measures[{i}].filters[{j}]", f) for i, m in enumerate(interp.measures) for j, f in enumerate(m.filters)
    ]
    compared += [(f"exists[{i}].filters[{j}]", f) for i, x in enumerate(interp.exists) for j, f in enumerate(x.filters)]
    compared += [
        (f"comparisons[{i}].filters[{j}]", f) for i, c in enumerate(interp.comparisons) for j, f in enumerate(c.filters)
    ]
    for path, f in compared:
        for col in filter_expression_columns(f):
            if not ctx.info(col).is_numeric:
                raise CompileError(f"{col.column} is not a number, so it cannot be computed with", element=path)
        if f.other is None:
            continue
        left, right = ctx.info(f.column), ctx.info(f.other)
        if (left.is_numeric, left.is_temporal) != (right.is_numeric, right.is_temporal):
            raise CompileError(
                f"{f.column.column} and {f.other.column} cannot be compared: one is not the same kind of value",
                element=path,
            )
    windows = [(f"windows[{i}]", w) for i, w in enumerate(interp.windows)]
    windows += [(f"measures[{i}].window", m.window) for i, m in enumerate(interp.measures) if m.window]
    windows += [(f"exists[{i}].window", x.window) for i, x in enumerate(interp.exists) if x.window]
    for path, window in windows:
        info = ctx.info(window.column)
        if not info.is_temporal:
            raise CompileError(f"the time window is on {window.column.column}, which is not a date", element=path)
    for i, g in enumerate(interp.group_by):
        if g.bucket and not ctx.info(g.column).is_temporal:
            raise CompileError(
                f"{g.column.column} is not a date, so it cannot be grouped by {g.bucket}", element=f"group_by[{i}]"
            )
    for i, c in enumerate(interp.comparisons):
        if not ctx.info(c.date).is_temporal:
            raise CompileError(
                f"the periods are compared on {c.date.column}, which is not a date", element=f"comparisons[{i}]"
            )
        if c.column is not None and not ctx.info(c.column).is_numeric:
            raise CompileError(
                f"{c.func} of {c.column.column} is impossible: it is not a number", element=f"comparisons[{i}]"
            )
    for i, m in enumerate(interp.measures):
        if m.until is not None:
            for col in (m.column, m.until):
                if not ctx.info(col).is_temporal:
                    raise CompileError(
                        f"a duration runs from one date to another, and {col.column} is not a date",
                        element=f"measures[{i}]",
                    )
            continue
        if m.func in ("sum", "avg") or m.expression is not None:
            for col in (m.column, m.times, *m.expression_columns()):
                if col is not None and not ctx.info(col).is_numeric:
                    raise CompileError(
                        f"{m.func} of {col.column} is impossible: it is not a number", element=f"measures[{i}]"
                    )


# --- expressions ---------------------------------------------------------------------------------------------


def _bound(ctx: _Ctx, bound: Bound, *, edge: str) -> str:
    d = ctx.dialect
    if bound.date is not None:
        return date_literal(bound.date, d)
    if bound.relative is not None:
        return shift(today(d), bound.relative.amount, bound.relative.unit, d)
    if bound.calendar is not None:
        return calendar_start(bound.calendar.unit, bound.calendar.offset, d)
    name = bound.param or ""
    if bound.param_unit == "year":
        return year_start_param(name, d, plus=1 if edge == "end" else 0)
    if bound.param_unit == "month":
        return month_start_param(name, d, plus=1 if edge == "end" else 0)
    if bound.param_unit == "days_ago":
        return shift_by_param(today(d), name, "day", d)
    return date_param(name, d)


def _window(ctx: _Ctx, window: TimeWindow) -> list[str]:
    column = ctx.col(window.column)
    parts = []
    if window.start is not None:
        parts.append(f"{column} >= {_bound(ctx, window.start, edge='start')}")
    if window.end is not None:
        parts.append(f"{column} < {_bound(ctx, window.end, edge='end')}")
    return parts


def _operand(ctx: _Ctx, f: Filter, value: Any) -> str:
    info = ctx.info(f.column)
    if info.is_temporal and isinstance(value, str):
        return date_literal(value, ctx.dialect)
    return literal(value, ctx.dialect)


def _param_ref(ctx: _Ctx, name: str, column: ColumnInfo) -> str:
    spec = ctx.interp.parameter(name)
    if spec is not None and spec.type == "date" and column.is_temporal:
        return date_param(name, ctx.dialect)
    return f":{name}"


def _filter(ctx: _Ctx, f: Filter) -> str:
    column, info, d = ctx.col(f.column), ctx.info(f.column), ctx.dialect
    if f.op == "is_null":
        return f"{column} IS NULL"
    if f.op == "not_null":
        return f"{column} IS NOT NULL"
    if f.other is not None:
        return f"{column} {_OPS[f.op]} {ctx.col(f.other)}"
    if f.expression is not None:
        right = f":{f.param}" if f.param else literal(f.value, d)
        return f"{_arithmetic(ctx, f.column.entity, f.expression)} {_OPS[f.op]} {right}"
    if f.op in ("in", "not_in"):
        if f.param:
            raise CompileError("a list parameter is not supported; use fixed values", element=f.phrase)
        values = ", ".join(_operand(ctx, f, v) for v in f.values or [])
        return f"{column} {'IN' if f.op == 'in' else 'NOT IN'} ({values})"
    if f.op == "between":
        low, high = (f.values or [None, None])[:2]
        return f"{column} BETWEEN {_operand(ctx, f, low)} AND {_operand(ctx, f, high)}"
    right = _param_ref(ctx, f.param, info) if f.param else _operand(ctx, f, f.value)
    if f.op == "contains":
        return contains(column, right, d)
    if f.op == "ilike":
        return ilike(column, right, d)
    if f.op == "like":
        return f"{column} LIKE {right}"
    return f"{column} {_OPS[f.op]} {right}"


def _condition(ctx: _Ctx, filters: list[Filter], window: TimeWindow | None) -> list[str]:
    parts = [_filter(ctx, f) for f in filters]
    if window is not None:
        parts += _window(ctx, window)
    return parts


def _bucket_expr(ctx: _Ctx, col: Col, unit: str | None) -> str:
    return bucket(ctx.col(col), unit, ctx.dialect) if unit else ctx.col(col)


def _join_clause(ctx: _Ctx, entity: Entity) -> str:
    join = entity.join
    assert join is not None
    on = " AND ".join(f"{ctx.q(entity.alias)}.{ctx.q(a)} = {ctx.q(join.to)}.{ctx.q(b)}" for a, b in join.on)
    kind = "LEFT JOIN" if join.kind == "left" else "JOIN"
    return f"{kind} {ctx.table(entity)} AS {ctx.q(entity.alias)} ON {on}"


# --- fan-out: which measures the joins would multiply ---------------------------------------------------------


def _edges(ctx: _Ctx) -> dict[str, list[tuple[str, bool]]]:
    """alias -> [(neighbour, each row here matches at most one neighbour row)] over the top-level joins."""
    graph: dict[str, list[tuple[str, bool]]] = {e.alias: [] for e in ctx.interp.entities}
    for entity in ctx.interp.entities:
        if entity.join is None:
            continue
        mine, theirs = ctx.objects[entity.alias], ctx.objects[entity.join.to]
        my_cols = [a for a, _ in entity.join.on]
        their_cols = [b for _, b in entity.join.on]
        graph[entity.alias].append((entity.join.to, theirs.is_unique(their_cols)))
        graph[entity.join.to].append((entity.alias, mine.is_unique(my_cols)))
    return graph


def _multipliers(ctx: _Ctx, alias: str) -> set[str]:
    """Entities whose joins repeat each row of `alias` (one-to-many steps outward from it)."""
    graph = _edges(ctx)
    found: set[str] = set()
    seen = {alias}
    stack = [(alias, False)]
    while stack:
        node, multiplied = stack.pop()
        for neighbour, single in graph[node]:
            if neighbour in seen:
                continue
            seen.add(neighbour)
            now = multiplied or not single
            if now:
                found.add(neighbour)
            stack.append((neighbour, now))
    return found


def rows_repeat(interp: Interpretation, *, catalog: Catalog, alias: str) -> bool:
    """Whether the query's joins repeat the rows of entity `alias` (it is joined to one-to-many)."""
    ctx = _resolve(interp, catalog, "postgres")
    return bool(_multipliers(ctx, alias))


def _measure_entity(m: Measure, interp: Interpretation) -> str:
    if m.column is not None:
        return m.column.entity
    return m.entity or interp.root.alias


def _context_aliases(interp: Interpretation) -> set[str]:
    """Entities the result's rows are made of (everything but what only measures read)."""
    used = {interp.root.alias}
    used |= {s.column.entity for s in interp.select}
    used |= {f.column.entity for f in interp.filters}
    used |= {f.other.entity for f in interp.filters if f.other is not None}
    used |= {w.column.entity for w in interp.windows}
    used |= {g.column.entity for g in interp.group_by}
    used |= {o.column.entity for o in interp.order_by if o.column is not None}
    used |= {x.from_ for x in interp.exists}
    used |= {c.from_ for c in interp.comparisons}
    # Entities on the path between used ones are used too.
    parents = {e.alias: e.join.to for e in interp.entities if e.join is not None}
    closure = set(used)
    for alias in list(used):
        node = alias
        while node in parents:
            node = parents[node]
            closure.add(node)
    # An entity is also context when a context entity's join passes through it to the root.
    return closure


def _subtree(interp: Interpretation, alias: str) -> list[str]:
    """`alias` and every entity joined (directly or not) to it, away from the root."""
    children: dict[str, list[str]] = {}
    for e in interp.entities:
        if e.join is not None:
            children.setdefault(e.join.to, []).append(e.alias)
    out, stack = [], [alias]
    while stack:
        node = stack.pop()
        out.append(node)
        stack.extend(children.get(node, []))
    return out


@dataclass
class _PreAggregate:
    alias: str  # the fact entity; its derived table takes this alias's name + "_agg"
    measures: list[Measure]
    members: list[str]  # entities inside the derived table


def _plan_pre_aggregates(ctx: _Ctx) -> dict[str, _PreAggregate]:
    interp = ctx.interp
    context = _context_aliases(interp)
    plans: dict[str, _PreAggregate] = {}
    for i, m in enumerate(interp.measures):
        fact = _measure_entity(m, interp)
        if m.func in ("count_distinct", "min", "max"):
            continue
        multiplied = _multipliers(ctx, fact)
        if not multiplied:
            continue
        members = _subtree(interp, fact)
        if fact in context or any(a in context for a in members) or ctx.interp.entity(fact).join is None:
            if m.func == "count" and m.column is None and ctx.objects[fact].primary_key:
                continue  # counted as COUNT(DISTINCT key)
            names = ", ".join(sorted(ctx.objects[a].name for a in multiplied))
            raise CompileError(
                f"{m.id} would count each {ctx.objects[fact].name} row once per matching row of {names}; "
                f"aggregate at the level of {ctx.objects[fact].name} or use an exists condition",
                element=f"measures[{i}]",
            )
        if m.share:
            raise CompileError(
                f"{m.id} is a share of {ctx.objects[fact].name} rows, which the joins repeat", element=f"measures[{i}]"
            )
        plan = plans.setdefault(fact, _PreAggregate(fact, [], members))
        plan.measures.append(m)
    return plans


# --- the query -------------------------------------------------------------------------------------------------


def _measured(ctx: _Ctx, m: Measure) -> str:
    """What a measure aggregates for each row: a column, a product of two, or a duration between two dates."""
    if m.until is not None and m.unit is not None:
        dates = all(ctx.info(c).format == "date" for c in (m.column, m.until))
        return duration_sql(ctx.col(m.column), ctx.col(m.until), m.unit, ctx.dialect, dates=dates)
    if m.expression is not None and m.column is not None:
        return _arithmetic(ctx, m.column.entity, m.expression)
    value = ctx.col(m.column)
    if m.times is not None:
        value = f"{value} * {ctx.col(m.times)}"
    return value


def _arithmetic(ctx: _Ctx, entity: str, expression: str) -> str:
    """An arithmetic of one entity's columns; PostgreSQL reads floating-point columns as numeric (real * integer
    would stay a float), and a division never truncates to a whole number."""

    def column(name: str) -> str:
        col = Col(entity=entity, column=name)
        info = ctx.info(col)
        if ctx.dialect == "postgres" and info.json_type == "number" and info.format != "decimal":
            return f"CAST({ctx.col(col)} AS numeric)"
        return ctx.col(col)

    def divisible(text: str) -> str:
        kind = {"postgres": "numeric", "sqlite": "REAL"}.get(ctx.dialect)
        return f"CAST({text} AS {kind})" if kind else text

    return arithmetic_render(expression, column, divisible=divisible)


def _aggregate(ctx: _Ctx, m: Measure, *, prefix: str = "") -> str:
    """The aggregate expression of a measure over the joined rows."""
    condition = _condition(ctx, m.filters, m.window)
    if m.func == "count" and m.column is None:
        entity = m.entity or ctx.interp.root.alias
        info = ctx.objects[entity]
        multiplied = bool(_multipliers(ctx, entity)) and bool(info.primary_key)
        if multiplied:
            key = f"{ctx.q(entity)}.{ctx.q(info.primary_key[0])}"
            inner = f"CASE WHEN {' AND '.join(condition)} THEN {key} END" if condition else key
            if m.share:
                return f"100.0 * COUNT(DISTINCT {inner}) / COUNT(DISTINCT {key})"
            return f"COUNT(DISTINCT {inner})"
        if m.share:
            return f"100.0 * SUM(CASE WHEN {' AND '.join(condition)} THEN 1 ELSE 0 END) / COUNT(*)"
        if condition:
            return f"SUM(CASE WHEN {' AND '.join(condition)} THEN 1 ELSE 0 END)"
        joined = ctx.interp.entity(entity)
        if joined is not None and joined.join is not None and joined.join.kind == "left" and info.primary_key:
            # Rows of the outer side with no match must count as zero, not one.
            return f"COUNT({ctx.q(entity)}.{ctx.q(info.primary_key[0])})"
        return "COUNT(*)"
    value = _measured(ctx, m)
    if condition:
        value = f"CASE WHEN {' AND '.join(condition)} THEN {value} END"
    if m.func == "count":
        return f"COUNT({value})"
    if m.func == "count_distinct":
        return f"COUNT(DISTINCT {value})"
    func = m.func.upper()
    expr = f"{func}({value})"
    if m.func == "sum":
        return f"COALESCE({expr}, 0)"
    return expr


def _order_sql(
    ctx: _Ctx, outputs: dict[str, str], measure_exprs: dict[str, str]
) -> tuple[list[str], list[tuple[str, str]]]:
    interp = ctx.interp
    parts: list[str] = []
    order: list[tuple[str, str]] = []
    for o in interp.order_by:
        direction = "DESC" if o.direction == "desc" else "ASC"
        if o.measure is not None:
            parts.append(f"{ctx.q(o.measure)} {direction}")
            order.append((o.measure, o.direction))
            continue
        label = _output_for(interp, o.column, o.bucket)
        if label is not None:
            parts.append(f"{ctx.q(label)} {direction}")
            order.append((label, o.direction))
        elif interp.is_aggregate or interp.distinct:
            raise CompileError(
                f"the result is ordered by {o.column.column}, which it does not show; add it to the columns",
                element="order_by",
            )
        else:
            parts.append(f"{_bucket_expr(ctx, o.column, o.bucket)} {direction}")
    # Ties broken the same way every time, so pages and tests are stable.
    if interp.is_aggregate or interp.distinct:
        for label in outputs:
            if label not in measure_exprs and all(label != name for name, _ in order):
                parts.append(f"{ctx.q(label)} ASC")
    else:
        root = interp.root
        for key in ctx.objects[root.alias].primary_key:
            parts.append(f"{ctx.q(root.alias)}.{ctx.q(key)} ASC")
        if not ctx.objects[root.alias].primary_key:
            parts += [f"{ctx.q(label)} ASC" for label in outputs if all(label != n for n, _ in order)]
    return parts, order


def _output_for(interp: Interpretation, col: Col, unit: str | None) -> str | None:
    for g in interp.group_by:
        if g.column.key() == col.key() and g.bucket == unit:
            return g.label or (g.bucket or g.column.column)
    if unit is None:
        for s in interp.select:
            if s.column.key() == col.key():
                return s.label or s.column.column
    return None


def _exists_sql(ctx: _Ctx, x, *, shape: str) -> tuple[str, str | None]:
    """A WHERE condition for an exists element, and (alternate shape) a LEFT JOIN it needs."""
    first = x.entities[0]
    assert first.join is not None
    correlation = [f"{ctx.q(first.alias)}.{ctx.q(a)} = {ctx.q(x.from_)}.{ctx.q(b)}" for a, b in first.join.on]
    joins = [_join_clause(ctx, e) for e in x.entities[1:]]
    condition = _condition(ctx, x.filters, x.window)
    source = f"{ctx.table(first)} AS {ctx.q(first.alias)}" + "".join(f" {j}" for j in joins)
    inner_keys = ", ".join(f"{ctx.q(first.alias)}.{ctx.q(a)}" for a, _ in first.join.on)
    repeat, repeat_keys = "", ""
    if x.repeated is not None:
        # "the same film more than once": the related rows grouped per film, one group counted past the test.
        per = [ctx.col(c) for c in x.repeated.per]
        repeat = f" HAVING COUNT(*) {_OPS[x.repeated.op]} {literal(x.repeated.value, ctx.dialect)}"
        repeat_keys = ", ".join(per)
    if shape == "alternate":
        keys = [a for a, _ in first.join.on]
        select = ", ".join(f"{ctx.q(first.alias)}.{ctx.q(k)} AS {ctx.q(f'k{i}')}" for i, k in enumerate(keys))
        where = f" WHERE {' AND '.join(condition)}" if condition else ""
        if repeat:
            where += f" GROUP BY {inner_keys}, {repeat_keys}{repeat}"
        sub_alias = f"{first.alias}_x"
        derived = f"(SELECT DISTINCT {select} FROM {source}{where})"
        on = " AND ".join(
            f"{ctx.q(sub_alias)}.{ctx.q(f'k{i}')} = {ctx.q(x.from_)}.{ctx.q(b)}"
            for i, (_, b) in enumerate(first.join.on)
        )
        if x.negated:
            return f"{ctx.q(sub_alias)}.{ctx.q('k0')} IS NULL", f"LEFT JOIN {derived} AS {ctx.q(sub_alias)} ON {on}"
        outer = ", ".join(f"{ctx.q(x.from_)}.{ctx.q(b)}" for _, b in first.join.on)
        in_where = f" WHERE {' AND '.join(condition)}" if condition else ""
        if repeat:
            in_where += f" GROUP BY {inner_keys}, {repeat_keys}{repeat}"
        if len(first.join.on) == 1:
            return f"{outer} IN (SELECT {inner_keys} FROM {source}{in_where})", None
    where = " AND ".join(correlation + condition)
    if repeat:
        where += f" GROUP BY {repeat_keys}{repeat}"
    return f"{'NOT ' if x.negated else ''}EXISTS (SELECT 1 FROM {source} WHERE {where})", None


def _period_figures(ctx: _Ctx, c: PeriodComparison) -> tuple[str, str]:
    """Correlated subqueries: the figure of the current window [today - N, ...) and of the N units before it."""
    first = c.entities[0]
    assert first.join is not None
    correlation = [f"{ctx.q(first.alias)}.{ctx.q(a)} = {ctx.q(c.from_)}.{ctx.q(b)}" for a, b in first.join.on]
    source = f"{ctx.table(first)} AS {ctx.q(first.alias)}" + "".join(f" {_join_clause(ctx, e)}" for e in c.entities[1:])
    base = correlation + [_filter(ctx, f) for f in c.filters]
    if c.func == "sum":
        assert c.column is not None
        value = f"COALESCE(SUM({ctx.col(c.column)}), 0)"
    else:
        value = "COUNT(*)"
    date = ctx.col(c.date)
    cut = _bound(ctx, Bound(relative=Relative(amount=-c.amount, unit=c.unit)), edge="start")
    before = _bound(ctx, Bound(relative=Relative(amount=-2 * c.amount, unit=c.unit)), edge="start")
    current = " AND ".join([*base, f"{date} >= {cut}"])
    previous = " AND ".join([*base, f"{date} >= {before}", f"{date} < {cut}"])
    return (f"(SELECT {value} FROM {source} WHERE {current})", f"(SELECT {value} FROM {source} WHERE {previous})")


def _period_join(ctx: _Ctx, c: PeriodComparison, name: str) -> tuple[str, str, str]:
    """The same figures by conditional aggregation: one derived row per related key, LEFT JOINed to `from`."""
    first = c.entities[0]
    assert first.join is not None
    keys = [a for a, _ in first.join.on]
    source = f"{ctx.table(first)} AS {ctx.q(first.alias)}" + "".join(f" {_join_clause(ctx, e)}" for e in c.entities[1:])
    date = ctx.col(c.date)
    cut = _bound(ctx, Bound(relative=Relative(amount=-c.amount, unit=c.unit)), edge="start")
    before = _bound(ctx, Bound(relative=Relative(amount=-2 * c.amount, unit=c.unit)), edge="start")
    value = ctx.col(c.column) if c.func == "sum" and c.column is not None else "1"
    select = [f"{ctx.q(first.alias)}.{ctx.q(k)} AS {ctx.q(f'k{i}')}" for i, k in enumerate(keys)]
    select += [
        f"SUM(CASE WHEN {date} >= {cut} THEN {value} ELSE 0 END) AS {ctx.q('cur')}",
        f"SUM(CASE WHEN {date} >= {before} AND {date} < {cut} THEN {value} ELSE 0 END) AS {ctx.q('prev')}",
    ]
    where = [_filter(ctx, f) for f in c.filters]
    group = ", ".join(f"{ctx.q(first.alias)}.{ctx.q(k)}" for k in keys)
    on = " AND ".join(
        f"{ctx.q(name)}.{ctx.q(f'k{i}')} = {ctx.q(c.from_)}.{ctx.q(b)}" for i, (_, b) in enumerate(first.join.on)
    )
    derived = f"SELECT {', '.join(select)} FROM {source}"
    if where:
        derived += " WHERE " + " AND ".join(where)
    join = f"LEFT JOIN ({derived} GROUP BY {group}) AS {ctx.q(name)} ON {on}"
    return (f"COALESCE({ctx.q(name)}.{ctx.q('cur')}, 0)", f"COALESCE({ctx.q(name)}.{ctx.q('prev')}, 0)", join)


def interpretation_compile(
    interp: Interpretation, *, catalog: Catalog, dialect: str, shape: str = "primary"
) -> CompiledQuery:
    """One read-only SELECT for the interpretation (see the module docstring for the shapes)."""
    dialect = normalize_dialect(dialect)
    ctx = _resolve(interp, catalog, dialect)
    pre = _plan_pre_aggregates(ctx)
    pre_members = {a for p in pre.values() for a in p.members}

    outputs: dict[str, str] = {}
    group_exprs: list[str] = []
    for g in interp.group_by:
        label = g.label or (g.bucket or g.column.column)
        expr = _bucket_expr(ctx, g.column, g.bucket)
        outputs[label] = expr
        group_exprs.append(expr)
    for s in interp.select:
        label = s.label or s.column.column
        outputs[label] = ctx.col(s.column)
        if interp.is_aggregate:
            group_exprs.append(ctx.col(s.column))

    measure_exprs: dict[str, str] = {}
    derived: list[str] = []
    for fact, plan in pre.items():
        entity = interp.entity(fact)
        assert entity is not None and entity.join is not None
        sub_alias = f"{fact}_agg"
        keys = [a for a, _ in entity.join.on]
        inner_select = [f"{ctx.q(fact)}.{ctx.q(k)} AS {ctx.q(f'k{i}')}" for i, k in enumerate(keys)]
        for m in plan.measures:
            if m.func == "avg":
                value = _aggregate(ctx, m.model_copy(update={"func": "sum"}))
                count = _aggregate(ctx, m.model_copy(update={"func": "count"}))
                inner_select += [f"{value} AS {ctx.q(m.id + '_s')}", f"{count} AS {ctx.q(m.id + '_n')}"]
                measure_exprs[m.id] = (
                    f"SUM({ctx.q(sub_alias)}.{ctx.q(m.id + '_s')}) * 1.0 / "
                    f"NULLIF(SUM({ctx.q(sub_alias)}.{ctx.q(m.id + '_n')}), 0)"
                )
            else:
                inner_select.append(f"{_aggregate(ctx, m)} AS {ctx.q(m.id)}")
                measure_exprs[m.id] = f"COALESCE(SUM({ctx.q(sub_alias)}.{ctx.q(m.id)}), 0)"
        members = [interp.entity(a) for a in plan.members]
        source = f"{ctx.table(entity)} AS {ctx.q(fact)}" + "".join(
            f" {_join_clause(ctx, e)}" for e in members[1:] if e is not None
        )
        group = ", ".join(f"{ctx.q(fact)}.{ctx.q(k)}" for k in keys)
        on = " AND ".join(
            f"{ctx.q(sub_alias)}.{ctx.q(f'k{i}')} = {ctx.q(entity.join.to)}.{ctx.q(b)}"
            for i, (_, b) in enumerate(entity.join.on)
        )
        derived.append(
            f"LEFT JOIN (SELECT {', '.join(inner_select)} FROM {source} GROUP BY {group}) AS {ctx.q(sub_alias)} ON {on}"
        )
    for m in interp.measures:
        if m.id not in measure_exprs:
            measure_exprs[m.id] = _aggregate(ctx, m)
    for m in interp.measures:
        outputs[m.id] = measure_exprs[m.id]
    compared: list[str] = []
    for i, c in enumerate(interp.comparisons):
        if shape == "alternate":
            current, previous, join = _period_join(ctx, c, f"pc{i}")
            derived.append(join)
            wrap = interp.is_aggregate
            outputs[c.current] = f"MAX({current})" if wrap else current
            outputs[c.previous] = f"MAX({previous})" if wrap else previous
        else:
            current, previous = _period_figures(ctx, c)
            outputs[c.current] = current
            outputs[c.previous] = previous
        compared.append(f"{current} {'<' if c.direction == 'down' else '>'} {previous}")

    select_list = ", ".join(f"{expr} AS {ctx.q(label)}" for label, expr in outputs.items())
    root = interp.root
    from_parts = [f"{ctx.table(root)} AS {ctx.q(root.alias)}"]
    from_parts += [_join_clause(ctx, e) for e in interp.entities[1:] if e.alias not in pre_members]
    from_parts += derived
    where = [_filter(ctx, f) for f in interp.filters]
    for w in interp.windows:
        where += _window(ctx, w)
    for x in interp.exists:
        condition, join = _exists_sql(ctx, x, shape=shape)
        where.append(condition)
        if join:
            from_parts.append(join)
    where += compared
    sql = f"SELECT {'DISTINCT ' if interp.distinct and not interp.is_aggregate else ''}{select_list} FROM " + " ".join(
        from_parts
    )
    if where:
        sql += " WHERE " + " AND ".join(where)
    if interp.is_aggregate and group_exprs:
        sql += " GROUP BY " + ", ".join(group_exprs)
    having = []
    for h in interp.having:
        left = measure_exprs[h.measure]
        if h.other is not None:
            right = measure_exprs[h.other] + (f" * {h.factor!r}" if h.factor != 1.0 else "")
        elif h.param is not None:
            right = f":{h.param}"
        else:
            right = literal(h.value, dialect)
        having.append(f"{left} {_OPS[h.op]} {right}")
    if having:
        if not interp.is_aggregate:
            raise CompileError("a condition on a measure needs a measure", element="having")
        sql += " HAVING " + " AND ".join(having)
    order_parts, order = _order_sql(ctx, outputs, measure_exprs)
    if order_parts:
        sql += " ORDER BY " + ", ".join(order_parts)
    if interp.limit is not None:
        sql += f" LIMIT :{interp.limit.param}" if interp.limit.param else f" LIMIT {interp.limit.n}"
    return CompiledQuery(
        sql=sql,
        parameters=parameters_schema(interp, ctx=ctx),
        columns=_response_columns(ctx),
        order=order,
        shape=shape,
        notes=ctx.notes,
    )


def _response_columns(ctx: _Ctx) -> list[dict]:
    interp = ctx.interp
    columns: list[dict] = []
    for g in interp.group_by:
        label = g.label or (g.bucket or g.column.column)
        if g.bucket:
            columns.append({"name": label, "json_type": "string"})
        else:
            columns.append(_column_spec(label, ctx.info(g.column)))
    for s in interp.select:
        columns.append(_column_spec(s.label or s.column.column, ctx.info(s.column)))
    for m in interp.measures:
        if m.func in ("count", "count_distinct") and not m.share:
            columns.append({"name": m.id, "json_type": "integer"})
        elif m.func in ("min", "max") and m.until is None and m.expression is None:
            columns.append(_column_spec(m.id, ctx.info(m.column)))
        else:
            columns.append({"name": m.id, "json_type": "number"})
    for c in interp.comparisons:
        json_type = "integer" if c.func == "count" else "number"
        columns += [{"name": c.current, "json_type": json_type}, {"name": c.previous, "json_type": json_type}]
    return columns


def _column_spec(name: str, info: ColumnInfo) -> dict:
    spec = {"name": name, "json_type": info.json_type}
    if info.format:
        spec["format"] = info.format
    return spec


def _param_schema(p: Parameter, *, ctx: _Ctx | None, uses: list[tuple[str, Any]]) -> dict:
    spec: dict[str, Any] = {}
    units = {u for kind, u in uses if kind == "bound"}
    if "year" in units:
        spec = {"type": "integer", "minimum": 1, "maximum": 9999}
    elif "month" in units:
        spec = {"type": "string", "pattern": MONTH_PATTERN}
    elif "days_ago" in units:
        spec = {"type": "integer", "minimum": 0, "maximum": 36500}
    elif p.type == "date" or "date" in units:
        spec = {"type": "string", "format": "date", "pattern": DATE_PATTERN}
    elif p.type == "datetime":
        spec = {"type": "string", "format": "date-time"}
    else:
        spec = {"type": p.type}
    if any(kind == "limit" for kind, _ in uses):
        spec = {"type": "integer", "minimum": 1, "maximum": LIMIT_MAXIMUM}
    if p.enum:
        spec["enum"] = list(p.enum)
    if p.default is not None:
        spec["default"] = p.default
    if p.description:
        spec["description"] = p.description
    return spec


def _uses(interp: Interpretation) -> dict[str, list[tuple[str, Any]]]:
    uses: dict[str, list[tuple[str, Any]]] = {}

    def windows(window: TimeWindow | None) -> None:
        if window is None:
            return
        for b in (window.start, window.end):
            if b is not None and b.param:
                uses.setdefault(b.param, []).append(("bound", b.param_unit))

    def filters(items: list[Filter]) -> None:
        for f in items:
            if f.param:
                uses.setdefault(f.param, []).append(("filter", f.column))

    filters(interp.filters)
    for w in interp.windows:
        windows(w)
    for m in interp.measures:
        filters(m.filters)
        windows(m.window)
    for x in interp.exists:
        filters(x.filters)
        windows(x.window)
    for c in interp.comparisons:
        filters(c.filters)
    for h in interp.having:
        if h.param:
            uses.setdefault(h.param, []).append(("having", h.measure))
    if interp.limit is not None and interp.limit.param:
        uses.setdefault(interp.limit.param, []).append(("limit", interp.limit.n))
    return uses


def parameters_schema(interp: Interpretation, *, ctx: _Ctx | None = None) -> dict:
    """The JSON schema of the endpoint's query parameters, from the interpretation's parameters."""
    uses = _uses(interp)
    properties = {p.name: _param_schema(p, ctx=ctx, uses=uses.get(p.name, [])) for p in interp.parameters}
    if interp.limit is not None and interp.limit.param:
        properties[interp.limit.param].setdefault("default", interp.limit.n)
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = [p.name for p in interp.parameters if p.required]
    if required:
        schema["required"] = required
    return schema


# --- recomputing one measure for one group --------------------------------------------------------------------


def measure_check(
    interp: Interpretation, *, catalog: Catalog, dialect: str, measure_id: str, row: dict
) -> tuple[str, dict] | None:
    """SQL (and binds) that recompute `measure_id` for the group `row` belongs to, straight from its fact.

    Only the entities the measure's rows need are joined, along many-to-one steps from the fact; None
    when the group cannot be reached that way (then this check does not apply).
    """
    dialect = normalize_dialect(dialect)
    ctx = _resolve(interp, catalog, dialect)
    m = interp.measure(measure_id)
    if m is None:
        return None
    fact = _measure_entity(m, interp)
    graph = _edges(ctx)
    # Entities reachable from the fact through steps that never repeat a fact row.
    reach = {fact: None}
    stack = [fact]
    while stack:
        node = stack.pop()
        for neighbour, single in graph[node]:
            if single and neighbour not in reach:
                reach[neighbour] = node
                stack.append(neighbour)
    needed = {g.column.entity for g in interp.group_by} | {s.column.entity for s in interp.select}
    needed |= {f.column.entity for f in interp.filters} | {w.column.entity for w in interp.windows}
    needed |= {x.from_ for x in interp.exists}
    needed |= {c.from_ for c in interp.comparisons}
    if not needed <= set(reach):
        return None
    chosen: list[str] = []
    for alias in needed | {fact}:
        node = alias
        while node is not None and node not in chosen:
            chosen.append(node)
            node = reach[node]
    joins = []
    for alias in chosen:
        if alias == fact:
            continue
        entity = interp.entity(alias)
        via = reach[alias]
        # Join `alias` to `via`, whichever way the interpretation declared the pair.
        if entity.join is not None and entity.join.to == via:
            on = " AND ".join(f"{ctx.q(alias)}.{ctx.q(a)} = {ctx.q(via)}.{ctx.q(b)}" for a, b in entity.join.on)
        else:
            other = interp.entity(via)
            on = " AND ".join(f"{ctx.q(via)}.{ctx.q(a)} = {ctx.q(alias)}.{ctx.q(b)}" for a, b in other.join.on)
        joins.append((alias, f"JOIN {ctx.table(entity)} AS {ctx.q(alias)} ON {on}"))
    ordered = []
    placed = {fact}
    while len(placed) < len(chosen):
        progressed = False
        for alias, clause in joins:
            if alias not in placed and reach[alias] in placed:
                ordered.append(clause)
                placed.add(alias)
                progressed = True
        if not progressed:
            return None
    binds: dict[str, Any] = {}
    where = [_filter(ctx, f) for f in interp.filters]
    for w in interp.windows:
        where += _window(ctx, w)
    for x in interp.exists:
        where.append(_exists_sql(ctx, x, shape="primary")[0])
    for c in interp.comparisons:
        current, previous = _period_figures(ctx, c)
        where.append(f"{current} {'<' if c.direction == 'down' else '>'} {previous}")
    for i, g in enumerate(interp.group_by):
        label = g.label or (g.bucket or g.column.column)
        if label not in row:
            return None
        value = row[label]
        expr = _bucket_expr(ctx, g.column, g.bucket)
        if value is None:
            where.append(f"{expr} IS NULL")
        else:
            binds[f"nx_g{i}"] = value
            where.append(f"{expr} = :nx_g{i}")
    for i, s in enumerate(interp.select):
        label = s.label or s.column.column
        if label in row and row[label] is not None and not interp.group_by:
            binds[f"nx_s{i}"] = row[label]
            where.append(f"{ctx.col(s.column)} = :nx_s{i}")
    value = _aggregate_direct(ctx, m)
    sql = f"SELECT {value} AS {ctx.q(m.id)} FROM {ctx.table(interp.entity(fact))} AS {ctx.q(fact)}"
    sql += "".join(f" {c}" for c in ordered)
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql, binds


def _aggregate_direct(ctx: _Ctx, m: Measure) -> str:
    condition = _condition(ctx, m.filters, m.window)
    if m.func == "count" and m.column is None:
        if m.share:
            return f"100.0 * SUM(CASE WHEN {' AND '.join(condition)} THEN 1 ELSE 0 END) / COUNT(*)"
        if condition:
            return f"SUM(CASE WHEN {' AND '.join(condition)} THEN 1 ELSE 0 END)"
        return "COUNT(*)"
    value = _measured(ctx, m)
    if condition:
        value = f"CASE WHEN {' AND '.join(condition)} THEN {value} END"
    if m.func == "count_distinct":
        return f"COUNT(DISTINCT {value})"
    if m.func == "sum":
        return f"COALESCE(SUM({value}), 0)"
    return f"{m.func.upper()}({value})"


def interpretation_check_joins(interp: Interpretation, *, catalog: Catalog) -> list[str]:
    """Joins that do not follow a foreign key (or a key of the same name on a view), in plain words."""
    problems = []
    for entity in interp.all_entities():
        if entity.join is None:
            continue
        mine, theirs = catalog.get(entity.object), catalog.get(interp.entity(entity.join.to).object)
        if mine is None or theirs is None:
            continue
        a_cols = tuple(a for a, _ in entity.join.on)
        b_cols = tuple(b for _, b in entity.join.on)
        if catalog.joined_by_foreign_key(mine, a_cols, theirs, b_cols):
            continue
        keyed = (theirs.is_unique(b_cols) or mine.is_unique(a_cols)) and a_cols == b_cols
        if keyed and "view" in (mine.kind, theirs.kind):
            continue
        problems.append(
            f"{mine.name} is joined to {theirs.name} on "
            + ", ".join(f"{a} = {b}" for a, b in entity.join.on)
            + ", which no foreign key declares"
        )
    return problems
