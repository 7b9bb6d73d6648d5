"""The structured interpretation of a requirement: what an endpoint means, element by element.

Every design, whoever wrote it (the built-in planner or a language model), carries one. The
platform checks it, not its author: every content phrase of the requirement must be accounted
for by an element (`endpoints.verification.coverage`), the SQL must realize every element
(`endpoints.verification.realization`), and meaning tests derived from it run on live data
(`endpoints.verification.meaning`). `endpoints.compiler` turns an interpretation into SQL, in
more than one shape, so that a second formulation can cross-check the first.

Shapes (JSON, as a model sends it):

    {
      "entities": [{"alias": "c", "object": "customers", "phrase": "customers"},
                   {"alias": "o", "object": "orders", "phrase": "orders",
                    "join": {"to": "c", "on": [["customer_id", "customer_id"]]}}],
      "select": [{"column": {"entity": "c", "column": "first_name"}, "phrase": "names"}],
      "filters": [{"column": {"entity": "c", "column": "country"}, "op": "eq", "param": "country",
                   "phrase": "a given country"},
                  {"column": {"entity": "c", "column": "balance"}, "op": "gt",
                   "other": {"entity": "c", "column": "credit_limit"}, "phrase": "over their credit limit"}],
      "windows": [{"column": {"entity": "o", "column": "order_date"},
                   "start": {"calendar": {"unit": "year", "offset": 0}}, "phrase": "this year"}],
      "group_by": [{"column": {"entity": "o", "column": "order_date"}, "bucket": "month", "phrase": "each month"}],
      "measures": [{"id": "revenue", "func": "sum", "column": {"entity": "o", "column": "total"},
                    "phrase": "revenue"},
                   {"id": "sales", "func": "sum", "column": {"entity": "l", "column": "unit_price"},
                    "expression": "unit_price * quantity * (1 - discount)", "phrase": "sales"},
                   {"id": "average_hours", "func": "avg", "column": {"entity": "o", "column": "ordered_at"},
                    "until": {"entity": "o", "column": "shipped_at"}, "unit": "hour",
                    "phrase": "average time to ship, in hours"}],
      "having": [{"measure": "revenue", "op": "gt", "value": 1000, "phrase": "more than 1000"}],
      "exists": [{"negated": true, "from": "c", "entities": [{"alias": "o2", "object": "orders",
                  "join": {"to": "c", "on": [["customer_id", "customer_id"]]}}], "phrase": "never ordered"}],
      "comparisons": [{"from": "c", "entities": [{"alias": "e", "object": "events", "join": {"to": "c", "on":
                       [["customer_id", "customer_id"]]}}], "func": "count", "date": {"entity": "e", "column":
                       "occurred_at"}, "amount": 90, "unit": "day", "direction": "down", "current": "recent_events",
                       "previous": "previous_events", "phrase": "activity dropped in the last 90 days"}],
      "order_by": [{"measure": "revenue", "direction": "desc", "phrase": "top"}],
      "limit": {"n": 10, "param": "top_n", "phrase": "top 10"},
      "parameters": [{"name": "country", "type": "string", "required": true, "phrase": "a given country"}],
      "assumptions": [{"text": "revenue counts every order status", "phrase": "revenue"}]
    }

Columns are always named through an entity alias, so a table that appears twice (employees and
the manager they report to) is two entities. Joins run along foreign keys: `on` pairs a column of
the joining entity with a column of the entity it joins to. An exists element with `"repeated": {"per":
[{"entity": "i", "column": "film_id"}], "op": "gt", "value": 1, "phrase": "the same film more than once"}` keeps
the rows whose related rows, grouped per film, count more than once.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from learning.arithmetic import ExpressionError, arithmetic_columns, arithmetic_normalize

ALIAS_PATTERN = r"^[a-z][a-z0-9_]{0,29}$"
PARAM_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
# Query parameters a generated endpoint keeps for paging through its rows; a design may not use them.
RESERVED_PARAMETERS = frozenset({"limit", "offset", "page", "cursor", "format", "page_size"})

Op = Literal[
    "eq", "ne", "lt", "lte", "gt", "gte", "in", "not_in", "like", "ilike", "contains", "is_null", "not_null", "between"
]
CompareOp = Literal["eq", "ne", "lt", "lte", "gt", "gte"]
Unit = Literal["day", "week", "month", "quarter", "year"]
DurationUnit = Literal["second", "minute", "hour", "day"]
Func = Literal["count", "count_distinct", "sum", "avg", "min", "max"]
ParamType = Literal["string", "integer", "number", "boolean", "date", "datetime"]
VALUE_OPS = frozenset({"eq", "ne", "lt", "lte", "gt", "gte", "like", "ilike", "contains"})
LIST_OPS = frozenset({"in", "not_in", "between"})
NULL_OPS = frozenset({"is_null", "not_null"})
COMPARE_OPS = frozenset({"eq", "ne", "lt", "lte", "gt", "gte"})

Scalar = str | int | float | bool


def _checked_expression(expression: str, column: str) -> str:
    """An arithmetic of columns (learning.arithmetic), normalized; `column` must be one of its columns."""
    try:
        columns = arithmetic_columns(expression)
    except ExpressionError as exc:
        raise ValueError(str(exc)) from None
    if column not in columns:
        raise ValueError("`column` is one of the expression's columns")
    return arithmetic_normalize(expression)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Col(_Strict):
    """A column of one entity of the query."""

    entity: str = Field(pattern=ALIAS_PATTERN, description="alias of the entity the column belongs to")
    column: str = Field(min_length=1, max_length=128)

    def key(self) -> tuple[str, str]:
        return (self.entity, self.column)

    def __str__(self) -> str:
        return f"{self.entity}.{self.column}"


class Join(_Strict):
    """How an entity connects to an earlier one, along a foreign key."""

    to: str = Field(pattern=ALIAS_PATTERN, description="alias of the entity this one joins to")
    on: list[tuple[str, str]] = Field(
        min_length=1, description="pairs [column of this entity, column of the entity it joins to]"
    )
    kind: Literal["inner", "left"] = "inner"


class Entity(_Strict):
    """One table or view instance in the query."""

    alias: str = Field(pattern=ALIAS_PATTERN)
    object: str = Field(min_length=1, max_length=255, description="table or view name, optionally schema.name")
    phrase: str = Field(default="", description="the words of the requirement that name it")
    join: Join | None = None

    @property
    def object_name(self) -> str:
        return self.object.rsplit(".", 1)[-1]

    @property
    def object_schema(self) -> str | None:
        return self.object.rsplit(".", 1)[0] if "." in self.object else None


class Parameter(_Strict):
    """A value the caller gives (or leaves at its default)."""

    name: str = Field(pattern=PARAM_PATTERN)
    type: ParamType = "string"
    required: bool = False
    default: Scalar | None = None
    enum: list[Scalar] | None = None
    description: str = ""
    phrase: str = ""

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        if name in RESERVED_PARAMETERS:
            raise ValueError(f"'{name}' is reserved for paging through results; name the parameter after what it means")
        return name

    @model_validator(mode="after")
    def _required_has_no_default(self) -> Parameter:
        if self.required and self.default is not None:
            raise ValueError(f"parameter '{self.name}' is required, so it has no default")
        return self


class Filter(_Strict):
    """A condition on a column: a fixed value, a parameter the caller sets, or another column of the same row.

    like/ilike take a pattern (% and _); contains is a case-insensitive substring match; `other`
    compares two columns ("over their credit limit": balance > credit_limit).
    """

    column: Col
    op: Op = "eq"
    value: Scalar | None = None
    values: list[Scalar] | None = None
    param: str | None = Field(default=None, pattern=PARAM_PATTERN)
    other: Col | None = Field(default=None, description="compare with this column (eq, ne, lt, lte, gt, gte)")
    expression: str | None = Field(
        default=None,
        max_length=300,
        description="compare this arithmetic of the columns of `column`'s entity instead of the column itself "
        "('(price - cost) / price' < 0.3); `column` is one of its columns",
    )
    phrase: str = ""

    @model_validator(mode="after")
    def _operand(self) -> Filter:
        if self.expression is not None:
            if self.op not in COMPARE_OPS or self.other is not None or (self.value is None and self.param is None):
                raise ValueError("an expression is compared (eq, ne, lt, lte, gt, gte) with a value or a parameter")
            self.expression = _checked_expression(self.expression, self.column.column)
        if self.other is not None:
            if self.op not in COMPARE_OPS:
                raise ValueError(f"op '{self.op}' cannot compare two columns; use eq, ne, lt, lte, gt or gte")
            if any(x is not None for x in (self.value, self.values, self.param)):
                raise ValueError("a comparison with another column takes no value or parameter")
            if self.other.key() == self.column.key():
                raise ValueError("a column compared with itself says nothing")
            return self
        given = sum(x is not None for x in (self.value, self.values, self.param))
        if self.op in NULL_OPS:
            if given:
                raise ValueError(f"op '{self.op}' takes no value")
        elif self.op in LIST_OPS:
            if self.param is None and not self.values:
                raise ValueError(f"op '{self.op}' needs 'values' (or a 'param')")
            if self.op == "between" and self.values is not None and len(self.values) != 2:
                raise ValueError("op 'between' needs exactly two values")
        elif given != 1 or self.values is not None:
            raise ValueError(f"op '{self.op}' needs exactly one of 'value' or 'param'")
        return self


def filter_expression_columns(f: Filter) -> list[Col]:
    """The columns a filter's expression reads, on the entity of its column."""
    if f.expression is None:
        return []
    return [Col(entity=f.column.entity, column=name) for name in arithmetic_columns(f.expression)]


class Relative(_Strict):
    amount: int = Field(description="negative: in the past (-90 days); positive: in the future")
    unit: Unit


class Calendar(_Strict):
    unit: Unit
    offset: int = Field(default=0, description="0: the current unit (this month), -1: the previous one")


class Bound(_Strict):
    """One edge of a time window; exactly one way of saying when."""

    date: str | None = Field(default=None, description="an ISO date, YYYY-MM-DD")
    param: str | None = Field(default=None, pattern=PARAM_PATTERN)
    param_unit: Literal["date", "year", "month", "days_ago"] = Field(
        default="date",
        description="what the parameter holds: a date, a year (2024), a month (2024-03), or a number of days ago",
    )
    relative: Relative | None = None
    calendar: Calendar | None = None

    @model_validator(mode="after")
    def _one(self) -> Bound:
        given = [name for name in ("date", "param", "relative", "calendar") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("a bound needs exactly one of date, param, relative or calendar")
        if self.date is not None and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", self.date):
            raise ValueError("date must be YYYY-MM-DD")
        return self


class TimeWindow(_Strict):
    """Rows whose date lies in [start, end): either edge may be open."""

    column: Col
    start: Bound | None = None
    end: Bound | None = None
    phrase: str = ""

    @model_validator(mode="after")
    def _bounded(self) -> TimeWindow:
        if self.start is None and self.end is None:
            raise ValueError("a time window needs a start, an end or both")
        return self


class GroupKey(_Strict):
    column: Col
    bucket: Unit | None = Field(default=None, description="group dates by this calendar unit")
    label: str = ""
    phrase: str = ""


class Measure(_Strict):
    id: str = Field(pattern=ALIAS_PATTERN, description="name of the measure's output column")
    func: Func
    column: Col | None = Field(default=None, description="what is aggregated; none for a count of rows")
    times: Col | None = Field(default=None, description="multiplied by this column before summing (price x quantity)")
    until: Col | None = Field(
        default=None,
        description="a duration: the time from `column` (a date) to this date of the same rows, in `unit`",
    )
    unit: DurationUnit | None = Field(default=None, description="the unit of a duration (`until`)")
    expression: str | None = Field(
        default=None,
        max_length=300,
        description="aggregate this arithmetic of the columns of `column`'s entity instead of the column itself: "
        "column names, numbers, + - * / and parentheses ('unit_price * quantity * (1 - discount)')",
    )
    entity: str | None = Field(default=None, pattern=ALIAS_PATTERN, description="count(*) of this entity's rows")
    share: bool = Field(
        default=False,
        description="a count as a percentage: 100 * the rows matching `filters` / every row of the group",
    )
    filters: list[Filter] = Field(default_factory=list, description="only rows matching these count")
    window: TimeWindow | None = Field(default=None, description="only rows in this window count")
    phrase: str = ""

    @model_validator(mode="after")
    def _operand(self) -> Measure:
        if self.func in ("sum", "avg", "min", "max") and self.column is None:
            raise ValueError(f"{self.func} needs a column")
        if self.func == "count_distinct" and self.column is None:
            raise ValueError("count_distinct needs a column")
        if self.times is not None and self.func not in ("sum", "avg"):
            raise ValueError("times applies to sum and avg only")
        if (self.until is None) != (self.unit is None):
            raise ValueError("a duration needs both `until` (its end date) and `unit`")
        if self.until is not None:
            if self.func not in ("sum", "avg", "min", "max") or self.column is None:
                raise ValueError("a duration is summed, averaged or ranked from its start date (`column`)")
            if self.times is not None:
                raise ValueError("a duration takes no `times`")
        if self.share and (self.func != "count" or self.column is not None or not self.filters):
            raise ValueError("a share counts the rows matching its filters among every row of the group")
        if self.expression is not None:
            if self.func not in ("sum", "avg", "min", "max") or self.column is None:
                raise ValueError("an expression is summed, averaged or ranked, with `column` one of its columns")
            if self.times is not None or self.until is not None:
                raise ValueError("an expression takes no `times` or `until`")
            self.expression = _checked_expression(self.expression, self.column.column)
        return self

    def expression_columns(self) -> list[Col]:
        """The columns an expression reads, on the entity of `column`."""
        if self.expression is None or self.column is None:
            return []
        return [Col(entity=self.column.entity, column=name) for name in arithmetic_columns(self.expression)]


class Having(_Strict):
    """A condition on a measure: against a value, a parameter, or another measure (times a factor)."""

    measure: str = Field(pattern=ALIAS_PATTERN)
    op: CompareOp
    value: float | int | None = None
    param: str | None = Field(default=None, pattern=PARAM_PATTERN)
    other: str | None = Field(default=None, pattern=ALIAS_PATTERN, description="compare with another measure")
    factor: float = Field(default=1.0, description="other measure times this factor")
    phrase: str = ""

    @model_validator(mode="after")
    def _operand(self) -> Having:
        if sum(x is not None for x in (self.value, self.param, self.other)) != 1:
            raise ValueError("a having condition needs exactly one of value, param or other")
        return self


class Repeated(_Strict):
    """'the same film more than once': the related rows counted per these columns, one count passing the test."""

    per: list[Col] = Field(min_length=1, description="columns of the chain's entities the related rows share")
    op: Literal["gt", "gte"] = "gt"
    value: int = Field(ge=1)
    phrase: str = ""


class Exists(_Strict):
    """Rows of `from` that have (or, negated, have no) related rows along a chain of joins.

    With `repeated`, the related rows must repeat: some group of them sharing the `per` columns has a
    count passing the test ("customers who rented the same film more than once").
    """

    negated: bool = False
    from_: str = Field(alias="from", pattern=ALIAS_PATTERN)
    entities: list[Entity] = Field(min_length=1, description="the chain; the first joins to `from`")
    filters: list[Filter] = Field(default_factory=list)
    window: TimeWindow | None = None
    repeated: Repeated | None = None
    phrase: str = ""


class PeriodComparison(_Strict):
    """Per row of `from`, a measure of its related rows in the last N units against the N units before.

    The current window is [today - N, ...) and the previous one [today - 2N, today - N), on `date`;
    "down" keeps the rows whose current figure is below the previous one ("activity dropped in the last
    90 days"), "up" those above it ("orders grew"); rows with nothing in either window are neither.
    Both figures are output columns (`current`, `previous`).
    """

    from_: str = Field(alias="from", pattern=ALIAS_PATTERN)
    entities: list[Entity] = Field(min_length=1, description="the chain to the measured rows; the first joins `from`")
    func: Literal["count", "sum"] = "count"
    column: Col | None = Field(default=None, description="what is summed; none for a count of rows")
    date: Col = Field(description="the date that says when a measured row happened")
    amount: int = Field(ge=1, le=3650, description="the length of each window")
    unit: Unit
    direction: Literal["down", "up"]
    filters: list[Filter] = Field(default_factory=list, description="only rows matching these count")
    current: str = Field(pattern=ALIAS_PATTERN, description="output column of the current window's figure")
    previous: str = Field(pattern=ALIAS_PATTERN, description="output column of the previous window's figure")
    phrase: str = ""

    @model_validator(mode="after")
    def _operand(self) -> PeriodComparison:
        if self.func == "sum" and self.column is None:
            raise ValueError("a sum compared across periods needs a column")
        if self.current == self.previous:
            raise ValueError("the two figures of a period comparison need two names")
        return self


class OrderKey(_Strict):
    measure: str | None = Field(default=None, pattern=ALIAS_PATTERN)
    column: Col | None = None
    bucket: Unit | None = None
    direction: Literal["asc", "desc"] = "desc"
    phrase: str = ""

    @model_validator(mode="after")
    def _one(self) -> OrderKey:
        if (self.measure is None) == (self.column is None):
            raise ValueError("order by exactly one of a measure or a column")
        return self


class Limit(_Strict):
    n: int = Field(ge=1, le=10000, description="how many rows the requirement asks for (top 10)")
    param: str | None = Field(default=None, pattern=PARAM_PATTERN, description="lets the caller change n")
    phrase: str = ""


class Assumption(_Strict):
    text: str = Field(min_length=1)
    phrase: str = ""


class Interpretation(_Strict):
    """What the endpoint means; see the module docstring."""

    entities: list[Entity] = Field(min_length=1)
    select: list[OutputColumn] = Field(default_factory=list)
    filters: list[Filter] = Field(default_factory=list)
    windows: list[TimeWindow] = Field(default_factory=list)
    group_by: list[GroupKey] = Field(default_factory=list)
    measures: list[Measure] = Field(default_factory=list)
    having: list[Having] = Field(default_factory=list)
    exists: list[Exists] = Field(default_factory=list)
    comparisons: list[PeriodComparison] = Field(default_factory=list)
    order_by: list[OrderKey] = Field(default_factory=list)
    limit: Limit | None = None
    distinct: bool = False
    parameters: list[Parameter] = Field(default_factory=list)
    assumptions: list[Assumption] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> Interpretation:
        problems = interpretation_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # --- reading it ---
    @property
    def root(self) -> Entity:
        return self.entities[0]

    @property
    def is_aggregate(self) -> bool:
        return bool(self.measures or self.group_by)

    def entity(self, alias: str) -> Entity | None:
        return next((e for e in self.all_entities() if e.alias == alias), None)

    def all_entities(self) -> list[Entity]:
        return [
            *self.entities,
            *(e for x in self.exists for e in x.entities),
            *(e for c in self.comparisons for e in c.entities),
        ]

    def parameter(self, name: str) -> Parameter | None:
        return next((p for p in self.parameters if p.name == name), None)

    def measure(self, measure_id: str) -> Measure | None:
        return next((m for m in self.measures if m.id == measure_id), None)

    def phrases(self) -> list[tuple[str, str]]:
        """(element path, phrase) of every element that says where in the requirement it came from."""
        found: list[tuple[str, str]] = []

        def add(path: str, phrase: str) -> None:
            if phrase and phrase.strip():
                found.append((path, phrase))

        for i, e in enumerate(self.entities):
            add(f"entities[{i}]", e.phrase)
        for i, s in enumerate(self.select):
            add(f"select[{i}]", s.phrase)
        for i, f in enumerate(self.filters):
            add(f"filters[{i}]", f.phrase)
        for i, w in enumerate(self.windows):
            add(f"windows[{i}]", w.phrase)
        for i, g in enumerate(self.group_by):
            add(f"group_by[{i}]", g.phrase)
        for i, m in enumerate(self.measures):
            add(f"measures[{i}]", m.phrase)
            for j, f in enumerate(m.filters):
                add(f"measures[{i}].filters[{j}]", f.phrase)
            if m.window is not None:
                add(f"measures[{i}].window", m.window.phrase)
        for i, h in enumerate(self.having):
            add(f"having[{i}]", h.phrase)
        for i, x in enumerate(self.exists):
            add(f"exists[{i}]", x.phrase)
            for j, e in enumerate(x.entities):
                add(f"exists[{i}].entities[{j}]", e.phrase)
            for j, f in enumerate(x.filters):
                add(f"exists[{i}].filters[{j}]", f.phrase)
            if x.window is not None:
                add(f"exists[{i}].window", x.window.phrase)
            if x.repeated is not None:
                add(f"exists[{i}].repeated", x.repeated.phrase)
        for i, c in enumerate(self.comparisons):
            add(f"comparisons[{i}]", c.phrase)
            for j, e in enumerate(c.entities):
                add(f"comparisons[{i}].entities[{j}]", e.phrase)
            for j, f in enumerate(c.filters):
                add(f"comparisons[{i}].filters[{j}]", f.phrase)
        for i, o in enumerate(self.order_by):
            add(f"order_by[{i}]", o.phrase)
        if self.limit is not None:
            add("limit", self.limit.phrase)
        for i, p in enumerate(self.parameters):
            add(f"parameters[{i}]", p.phrase)
        for i, a in enumerate(self.assumptions):
            add(f"assumptions[{i}]", a.phrase)
        return found

    def output_names(self) -> list[str]:
        """The names of the result's columns, in order."""
        names = [g.label or output_label(g.column, g.bucket) for g in self.group_by]
        names += [s.label or s.column.column for s in self.select]
        names += [m.id for m in self.measures]
        names += [name for c in self.comparisons for name in (c.current, c.previous)]
        return names


class OutputColumn(_Strict):
    column: Col
    label: str = Field(default="", description="the output column's name; the column's own name when empty")
    phrase: str = ""


Interpretation.model_rebuild()


def output_label(column: Col, bucket: str | None) -> str:
    return f"{bucket}" if bucket else column.column


def _filter_params(filters: list[Filter]) -> list[str]:
    return [f.param for f in filters if f.param]


def _window_params(window: TimeWindow | None) -> list[str]:
    if window is None:
        return []
    return [b.param for b in (window.start, window.end) if b is not None and b.param]


def interpretation_parameter_uses(interp: Interpretation) -> list[str]:
    """Every parameter name the elements refer to, with repeats."""
    uses = _filter_params(interp.filters)
    for w in interp.windows:
        uses += _window_params(w)
    for m in interp.measures:
        uses += _filter_params(m.filters) + _window_params(m.window)
    uses += [h.param for h in interp.having if h.param]
    for x in interp.exists:
        uses += _filter_params(x.filters) + _window_params(x.window)
    for c in interp.comparisons:
        uses += _filter_params(c.filters)
    if interp.limit is not None and interp.limit.param:
        uses.append(interp.limit.param)
    return uses


def interpretation_problems(interp: Interpretation) -> list[str]:
    """Internal consistency: aliases, joins, references to measures and parameters."""
    problems: list[str] = []
    seen: list[str] = []
    nested = [*(("exists", x.entities) for x in interp.exists), *(("exists", c.entities) for c in interp.comparisons)]
    for group, entities in [("entities", interp.entities), *nested]:
        local = list(seen) if group == "exists" else seen
        for i, entity in enumerate(entities):
            if entity.alias in local:
                problems.append(f"alias '{entity.alias}' is used twice")
            if group == "entities" and i == 0 and entity.join is not None:
                problems.append("the first entity is the root and joins nothing")
            if (group == "exists" or i > 0) and entity.join is None:
                problems.append(f"entity '{entity.alias}' needs a join to an earlier entity")
            if entity.join is not None and entity.join.to not in local:
                problems.append(f"entity '{entity.alias}' joins '{entity.join.to}', which is not an earlier entity")
            local.append(entity.alias)
    top_aliases = {e.alias for e in interp.entities}
    for x in interp.exists:
        if x.from_ not in top_aliases:
            problems.append(f"exists starts from '{x.from_}', which is not an entity of the query")
        first = x.entities[0]
        if first.join is not None and first.join.to != x.from_:
            problems.append(f"the first entity of an exists joins '{x.from_}' (its `from`)")

    def check_col(col: Col | None, where: str, aliases: set[str]) -> None:
        if col is not None and col.entity not in aliases:
            problems.append(f"{where} names entity '{col.entity}', which the query does not have")

    for i, s in enumerate(interp.select):
        check_col(s.column, f"select[{i}]", top_aliases)
    for i, f in enumerate(interp.filters):
        check_col(f.column, f"filters[{i}]", top_aliases)
        check_col(f.other, f"filters[{i}].other", top_aliases)
    for i, w in enumerate(interp.windows):
        check_col(w.column, f"windows[{i}]", top_aliases)
    for i, g in enumerate(interp.group_by):
        check_col(g.column, f"group_by[{i}]", top_aliases)
    measure_ids = [m.id for m in interp.measures]
    for i, m in enumerate(interp.measures):
        if measure_ids.count(m.id) > 1:
            problems.append(f"measure id '{m.id}' is used twice")
        check_col(m.column, f"measures[{i}].column", top_aliases)
        check_col(m.times, f"measures[{i}].times", top_aliases)
        check_col(m.until, f"measures[{i}].until", top_aliases)
        if m.entity is not None and m.entity not in top_aliases:
            problems.append(f"measures[{i}] counts entity '{m.entity}', which the query does not have")
        for j, f in enumerate(m.filters):
            check_col(f.column, f"measures[{i}].filters[{j}]", top_aliases)
            check_col(f.other, f"measures[{i}].filters[{j}].other", top_aliases)
        if m.window is not None:
            check_col(m.window.column, f"measures[{i}].window", top_aliases)
    for i, h in enumerate(interp.having):
        if h.measure not in measure_ids:
            problems.append(f"having[{i}] names measure '{h.measure}', which is not defined")
        if h.other is not None and h.other not in measure_ids:
            problems.append(f"having[{i}] compares with measure '{h.other}', which is not defined")
    for i, x in enumerate(interp.exists):
        aliases = top_aliases | {e.alias for e in x.entities}
        for j, f in enumerate(x.filters):
            check_col(f.column, f"exists[{i}].filters[{j}]", aliases)
            check_col(f.other, f"exists[{i}].filters[{j}].other", aliases)
        if x.window is not None:
            check_col(x.window.column, f"exists[{i}].window", aliases)
        if x.repeated is not None:
            for j, col in enumerate(x.repeated.per):
                check_col(col, f"exists[{i}].repeated.per[{j}]", {e.alias for e in x.entities})
    for i, c in enumerate(interp.comparisons):
        if c.from_ not in top_aliases:
            problems.append(f"comparisons[{i}] starts from '{c.from_}', which is not an entity of the query")
        first = c.entities[0]
        if first.join is not None and first.join.to != c.from_:
            problems.append(f"the first entity of comparisons[{i}] joins '{c.from_}' (its `from`)")
        aliases = top_aliases | {e.alias for e in c.entities}
        chain = {e.alias for e in c.entities}
        check_col(c.date, f"comparisons[{i}].date", chain)
        check_col(c.column, f"comparisons[{i}].column", chain)
        for j, f in enumerate(c.filters):
            check_col(f.column, f"comparisons[{i}].filters[{j}]", aliases)
            check_col(f.other, f"comparisons[{i}].filters[{j}].other", aliases)
    for i, o in enumerate(interp.order_by):
        if o.measure is not None and o.measure not in measure_ids:
            problems.append(f"order_by[{i}] names measure '{o.measure}', which is not defined")
        check_col(o.column, f"order_by[{i}]", top_aliases)
    if interp.having and not interp.measures:
        problems.append("having needs a measure")
    names = [p.name for p in interp.parameters]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"parameter '{name}' is declared twice")
    used = interpretation_parameter_uses(interp)
    for name in sorted(set(used) - set(names)):
        problems.append(f"parameter '{name}' is used but not declared")
    for name in sorted(set(names) - set(used)):
        problems.append(f"parameter '{name}' is declared but no element uses it")
    if interp.limit is not None and interp.limit.param:
        spec = interp.parameter(interp.limit.param)
        if spec is not None and spec.type != "integer":
            problems.append(f"the limit parameter '{spec.name}' must be an integer")
    outputs = interp.output_names()
    for name in sorted({n for n in outputs if outputs.count(n) > 1}):
        problems.append(f"the output column '{name}' appears twice; give one a label")
    return problems


# --- questions a run asks when it cannot resolve a phrase ----------------------------------------------------


QuestionKind = Literal["entity", "column", "value", "measure", "filter", "window", "confirm", "other"]


class Choice(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    label: str = Field(min_length=1, max_length=300)
    mapping: dict[str, Any] = Field(
        default_factory=dict, description="what choosing it means, as a glossary mapping (learning.glossary)"
    )


class Question(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    phrase: str = Field(description="the words of the requirement the question is about")
    text: str = Field(min_length=1, max_length=500)
    kind: QuestionKind = "other"
    choices: list[Choice] = Field(default_factory=list, max_length=12)
    allow_other: bool = Field(default=False, description="whether a free-text answer is accepted")
    multiple: bool = Field(default=False, description="whether several choices may be picked (their values add up)")

    @model_validator(mode="after")
    def _answerable(self) -> Question:
        if not self.choices and not self.allow_other:
            raise ValueError("a question needs choices or a free-text answer")
        ids = [c.id for c in self.choices]
        if len(set(ids)) != len(ids):
            raise ValueError("choice ids must be unique")
        return self


Questions = Annotated[list[Question], Field(max_length=8)]


def interpretation_parse(data: Any) -> Interpretation:
    """Validate a JSON interpretation (raises pydantic.ValidationError with every problem)."""
    if isinstance(data, Interpretation):
        return data
    return Interpretation.model_validate(data)


def design_fingerprint(interpretation: Interpretation | dict) -> str:
    """The same meaning gives the same fingerprint: phrases, labels, assumptions and defaults aside."""
    data = interpretation.model_dump(by_alias=True) if isinstance(interpretation, Interpretation) else interpretation

    def strip(value):
        if isinstance(value, dict):
            return {
                k: strip(v)
                for k, v in sorted(value.items())
                if k not in ("phrase", "label", "description", "assumptions", "default") and v not in (None, [], {})
            }
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    text = json.dumps(strip(data), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def interpretation_json_schema() -> dict:
    """The JSON Schema sent to a model: enums, patterns and no additional properties."""
    return Interpretation.model_json_schema(by_alias=True)
