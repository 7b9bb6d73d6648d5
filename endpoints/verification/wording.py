"""An interpretation in plain words, for the people who review and use the endpoint."""

from __future__ import annotations

from endpoints.interpretation import Bound, Col, Filter, Interpretation, TimeWindow

_OPS = {
    "eq": "=",
    "ne": "is not",
    "lt": "<",
    "lte": "≤",
    "gt": ">",
    "gte": "≥",
    "in": "is one of",
    "not_in": "is none of",
    "like": "matches",
    "ilike": "matches",
    "contains": "contains",
    "between": "is between",
}
_FUNCS = {
    "count": "number of",
    "count_distinct": "number of distinct",
    "sum": "total",
    "avg": "average",
    "min": "lowest",
    "max": "highest",
}


def _words(name: str) -> str:
    return name.replace("_", " ")


def _col(interp: Interpretation, col: Col) -> str:
    entity = interp.entity(col.entity)
    table = _words(entity.object_name) if entity else col.entity
    return f"{table}.{_words(col.column)}"


def _bound(bound: Bound) -> str:
    if bound.date:
        return bound.date
    if bound.param:
        unit = {"year": "the year", "month": "the month", "days_ago": "days ago"}.get(bound.param_unit, "")
        return f"{{{bound.param}}}" + (f" ({unit})" if unit else "")
    if bound.relative is not None:
        amount, unit = bound.relative.amount, bound.relative.unit
        if amount == 0:
            return "today"
        return f"{abs(amount)} {unit}{'s' if abs(amount) != 1 else ''} {'ago' if amount < 0 else 'from now'}"
    cal = bound.calendar
    if cal is None:
        return "?"
    if cal.offset == 0:
        return f"the start of this {cal.unit}"
    if cal.offset == -1:
        return f"the start of last {cal.unit}"
    return f"the start of the {cal.unit} {abs(cal.offset)} {cal.unit}s {'ago' if cal.offset < 0 else 'ahead'}"


def _window(interp: Interpretation, w: TimeWindow) -> str:
    column = _col(interp, w.column)
    if w.start and w.end:
        return f"{column} from {_bound(w.start)} until before {_bound(w.end)}"
    if w.start:
        return f"{column} since {_bound(w.start)}"
    return f"{column} before {_bound(w.end)}"


def _filter(interp: Interpretation, f: Filter) -> str:
    column = _col(interp, f.column)
    if f.op == "is_null":
        return f"{column} is empty"
    if f.op == "not_null":
        return f"{column} is set"
    if f.other is not None:
        return f"{column} {_OPS.get(f.op, f.op)} {_col(interp, f.other)}"
    if f.param:
        return f"{column} {_OPS.get(f.op, f.op)} {{{f.param}}}"
    value = f.values if f.values is not None else f.value
    return f"{column} {_OPS.get(f.op, f.op)} {value!r}"


def interpretation_describe(interp: Interpretation, *, requirement: str = "") -> str:
    """One paragraph: what rows, filtered how, grouped, measured, ordered and cut, with which columns."""
    parts = [", joined with ".join(_words(e.object_name) for e in interp.entities).capitalize()]
    conditions = [_filter(interp, f) for f in interp.filters] + [_window(interp, w) for w in interp.windows]
    for x in interp.exists:
        chain = " via ".join(_words(e.object_name) for e in reversed(x.entities))
        extra = [_filter(interp, f) for f in x.filters] + ([_window(interp, x.window)] if x.window else [])
        if x.repeated is not None:
            per = ", ".join(_col(interp, c) for c in x.repeated.per)
            extra.append(f"the same {per} {'more than' if x.repeated.op == 'gt' else 'at least'} {x.repeated.value}x")
        condition = f" ({'; '.join(extra)})" if extra else ""
        parts.append(f"{'without' if x.negated else 'with'} any {chain}{condition}")
    if conditions:
        parts.append("where " + " and ".join(conditions))
    if interp.group_by:
        keys = [
            f"{g.bucket} of {_col(interp, g.column)}" if g.bucket else _col(interp, g.column) for g in interp.group_by
        ]
        parts.append("one row per " + ", ".join(keys))
    for m in interp.measures:
        what = (
            _col(interp, m.column)
            if m.column
            else f"{_words(interp.entity(m.entity or interp.root.alias).object_name)} rows"
        )
        if m.times:
            what += f" times {_col(interp, m.times)}"
        if m.until is not None:
            what = f"{m.unit}s from {what} to {_col(interp, m.until)}"
        if m.expression is not None:
            what = f"{m.expression} of {_words(interp.entity(m.column.entity).object_name)}"
        extra = [_filter(interp, f) for f in m.filters] + ([_window(interp, m.window)] if m.window else [])
        parts.append(f"{m.id} = {_FUNCS[m.func]} {what}" + (f" (counting {' and '.join(extra)})" if extra else ""))
    for c in interp.comparisons:
        what = _col(interp, c.column) if c.column else f"{_words(c.entities[-1].object_name)} rows"
        change = "fewer" if c.direction == "down" else "more"
        period = f"{c.amount} {c.unit}{'s' if c.amount != 1 else ''}"
        parts.append(
            f"only where the {_FUNCS[c.func]} {what} in the last {period} ({c.current}) is {change} than in the "
            f"{period} before ({c.previous})"
        )
    for h in interp.having:
        right = h.other if h.other else (f"{{{h.param}}}" if h.param else h.value)
        if h.other and h.factor != 1.0:
            right = f"{h.factor} times {h.other}"
        parts.append(f"only where {h.measure} {_OPS[h.op]} {right}")
    for o in interp.order_by:
        key = o.measure or (f"{o.bucket} of " if o.bucket else "") + _col(interp, o.column)
        parts.append(
            f"ordered by {key}, {'highest or latest first' if o.direction == 'desc' else 'lowest or earliest first'}"
        )
    if interp.limit is not None:
        parts.append(
            f"the first {interp.limit.n}" + (f" (change with {interp.limit.param})" if interp.limit.param else "")
        )
    columns = [s.label or _words(s.column.column) for s in interp.select]
    if columns:
        parts.append("columns " + ", ".join(columns))
    text = "; ".join(parts) + "."
    if interp.parameters:
        given = [
            f"{{{p.name}}}" + (" (required)" if p.required else f" (default {p.default!r})") for p in interp.parameters
        ]
        text += " Caller gives " + ", ".join(given) + "."
    if interp.assumptions:
        text += " Assumed: " + "; ".join(a.text for a in interp.assumptions) + "."
    return text
