"""Does the SQL do what the interpretation says? Checked on its syntax tree (sqlglot), for any author.

For every element of the interpretation there must be a node of the statement that realizes it:
entities are read; filters are predicates on their column with their value or parameter;
parameters are bound in a condition (WHERE, HAVING, ON or a CASE inside an aggregate), never only
selected; time windows are comparisons of their date column with a date expression; negations are
NOT EXISTS, NOT IN or LEFT JOIN ... IS NULL over the related table; measures are aggregates of
their column; the grain is the GROUP BY (nothing more, nothing less); rankings are ORDER BY on
their measure in their direction; a limit of N is LIMIT N (or a parameter defaulting to N).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify

from endpoints.compiler import Catalog
from endpoints.interpretation import Bound, Col, Filter, Interpretation, Measure, PeriodComparison, Relative, TimeWindow
from endpoints.verification.findings import Finding

_COMPARE = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.ILike, exp.In, exp.Is, exp.Between)
_ORDERED = (exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between)
_AGG = {"sum": exp.Sum, "avg": exp.Avg, "min": exp.Min, "max": exp.Max, "count": exp.Count, "count_distinct": exp.Count}
_OP_NODES = {
    "eq": (exp.EQ, exp.In),
    "ne": (exp.NEQ, exp.Not),
    "lt": (exp.LT,),
    "lte": (exp.LTE,),
    "gt": (exp.GT,),
    "gte": (exp.GTE,),
    "in": (exp.In, exp.EQ),
    "not_in": (exp.In, exp.NEQ, exp.Not),
    "like": (exp.Like, exp.ILike),
    "ilike": (exp.ILike, exp.Like),
    "contains": (exp.ILike, exp.Like),
    "is_null": (exp.Is,),
    "not_null": (exp.Is, exp.Not),
    "between": (exp.Between, exp.GTE, exp.LTE),
}
# Bucketing functions and the units their arguments say.
_FLIP = {"lt": "gt", "lte": "gte", "gt": "lt", "gte": "lte"}


@dataclass
class _Tree:
    ast: exp.Expression
    aliases: dict[str, str]  # alias (lower) -> table name (lower)
    dialect: str

    def ref(self, column: exp.Column) -> tuple[str | None, str]:
        table = (column.table or "").lower()
        return (self.aliases.get(table, table) or None, column.name.lower())


def _parse(sql: str, dialect: str, catalog: Catalog) -> _Tree:
    ast = sqlglot.parse_one(sql, read=dialect)
    schema: dict[str, dict[str, str]] = {}
    for obj in catalog.objects():
        schema[obj.name] = {c: info.type or "text" for c, info in obj.columns.items()}
    try:
        ast = qualify(ast, schema=schema, dialect=dialect, validate_qualify_columns=False, quote_identifiers=False)
    except Exception:  # an unqualifiable statement is still checked, column by column name
        ast = sqlglot.parse_one(sql, read=dialect)
    aliases: dict[str, str] = {}
    for table in ast.find_all(exp.Table):
        name = table.name.lower()
        aliases[(table.alias_or_name or name).lower()] = name
    return _Tree(ast, aliases, dialect)


def _object(interp: Interpretation, col: Col) -> str:
    entity = interp.entity(col.entity)
    return (entity.object_name if entity else col.entity).lower()


def _refers(tree: _Tree, node: exp.Expression, obj: str, column: str) -> bool:
    for c in node.find_all(exp.Column):
        table, name = tree.ref(c)
        if name == column.lower() and (table is None or table == obj or table not in tree.aliases.values()):
            return True
    return False


def _columns_in(node: exp.Expression) -> list[exp.Column]:
    return list(node.find_all(exp.Column))


def _placeholders(node: exp.Expression) -> set[str]:
    return {p.name for p in node.find_all(exp.Placeholder) if p.name}


def _literal_values(node: exp.Expression) -> list[Any]:
    values = []
    for lit in node.find_all(exp.Literal):
        values.append(lit.this if lit.is_string else _num(lit.this))
    for b in node.find_all(exp.Boolean):
        values.append(bool(b.this))
    return values


def _num(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return bool(a) == bool(b) and (a in (0, 1, True, False)) and (b in (0, 1, True, False))
    if isinstance(a, int | float) and isinstance(b, int | float):
        return abs(float(a) - float(b)) < 1e-9
    return str(a).strip().lower() == str(b).strip().lower()


def _in_condition(node: exp.Expression) -> bool:
    """Whether the node sits in a condition: WHERE, HAVING, JOIN ... ON, or CASE WHEN / FILTER."""
    parent = node.parent
    child = node
    while parent is not None:
        if isinstance(parent, exp.Where | exp.Having | exp.Filter):
            return True
        if isinstance(parent, exp.Join) and child is parent.args.get("on"):
            return True
        if isinstance(parent, exp.If) and child is parent.args.get("this"):
            return True
        if isinstance(parent, exp.Select | exp.Limit | exp.Order):
            return False
        child, parent = parent, parent.parent
    return False


def _comparisons(tree: _Tree) -> list[exp.Expression]:
    return [n for n in tree.ast.find_all(*_COMPARE)]


def _negated(node: exp.Expression) -> bool:
    """NOT x, and the forms sqlglot keeps as one node with `negate` ('IS NOT NULL' on PostgreSQL, 'NOT LIKE')."""
    return isinstance(node.parent, exp.Not) or bool(node.args.get("negate"))


MIRRORED = {"lt": "gt", "lte": "gte", "gt": "lt", "gte": "lte", "eq": "eq", "ne": "ne"}


def _columns_compared(tree: _Tree, interp: Interpretation, f: Filter) -> bool:
    """balance > credit_limit: a comparison with one column on each side, the right way round."""
    left, right = (_object(interp, f.column), f.column.column), (_object(interp, f.other), f.other.column)
    for node in _comparisons(tree):
        if _negated(node):
            continue
        for op, (first, second) in ((f.op, (left, right)), (MIRRORED[f.op], (right, left))):
            if not isinstance(node, _OP_NODES[op][:1]):
                continue
            a, b = node.args.get("this"), node.args.get("expression")
            if a is None or b is None:
                continue
            if _is_column(tree, a, *first) and _is_column(tree, b, *second):
                return True
    return False


def _is_column(tree: _Tree, node: exp.Expression, obj: str, column: str) -> bool:
    while isinstance(node, exp.Paren | exp.Cast):
        node = node.this
    return isinstance(node, exp.Column) and _refers(tree, node, obj, column)


def _filter_realized(tree: _Tree, interp: Interpretation, f: Filter) -> bool:
    if f.other is not None:
        return _columns_compared(tree, interp, f)
    obj = _object(interp, f.column)
    wanted = _OP_NODES.get(f.op, ())
    for node in _comparisons(tree):
        if not isinstance(node, wanted):
            continue
        if not _refers(tree, node, obj, f.column.column):
            continue
        negative_form = isinstance(node, exp.In | exp.Is | exp.Like | exp.ILike)
        if f.op in ("ne", "not_in", "not_null") and negative_form and not _negated(node):
            continue
        if f.op in ("in", "eq", "is_null", "like", "ilike", "contains") and _negated(node):
            continue
        if f.op in ("is_null", "not_null"):
            return True
        if f.param is not None:
            if f.param in _placeholders(node):
                return True
            continue
        expected = f.values if f.values is not None else [f.value]
        found = _literal_values(node)
        if all(any(_same(v, x) for x in found) or _date_like_match(v, node) for v in expected):
            return True
    return False


def _date_like_match(value: Any, node: exp.Expression) -> bool:
    if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", value):
        return any(isinstance(v, str) and v.startswith(value[:10]) for v in _literal_values(node))
    return False


def _window_realized(tree: _Tree, interp: Interpretation, w: TimeWindow) -> list[str]:
    """What is missing of a window: its start, its end, or nothing."""
    obj = _object(interp, w.column)
    lower = upper = False
    for node in tree.ast.find_all(*_ORDERED):
        if isinstance(node, exp.Between):
            if _refers(tree, node.this, obj, w.column.column) and not _columns_in(node.args["low"]):
                lower = upper = True
            continue
        left, right = node.this, node.expression
        direction = type(node).__name__.lower()
        if _refers(tree, left, obj, w.column.column) and not _foreign_columns(right):
            side = direction
        elif _refers(tree, right, obj, w.column.column) and not _foreign_columns(left):
            side = _FLIP.get(direction, direction)
        else:
            continue
        if side in ("gt", "gte"):
            lower = True
        else:
            upper = True
    missing = []
    if w.start is not None and not lower:
        missing.append("start")
    if w.end is not None and not upper:
        missing.append("end")
    return missing


def _comparison_realized(tree: _Tree, interp: Interpretation, c: PeriodComparison) -> bool:
    """Both windows on the comparison's date, and a condition that compares two computed figures that way round."""
    window = TimeWindow(column=c.date, start=Bound(relative=Relative(amount=-c.amount, unit=c.unit)), end=None)
    previous = window.model_copy(update={"end": window.start})
    if _window_realized(tree, interp, window) or _window_realized(tree, interp, previous):
        return False
    obj = _object(interp, c.date)

    def dated(side: exp.Expression) -> int:
        return sum(
            1
            for n in side.find_all(*_ORDERED)
            if any(_refers(tree, part, obj, c.date.column) for part in (n.this, n.args.get("expression")) if part)
        )

    for node in tree.ast.find_all(exp.LT, exp.GT):
        left, right = node.this, node.expression
        if not all(s.find(exp.Subquery, exp.AggFunc, exp.Coalesce) is not None for s in (left, right)):
            continue
        smaller, larger = (left, right) if isinstance(node, exp.LT) else (right, left)
        current, previous = (smaller, larger) if c.direction == "down" else (larger, smaller)
        if dated(current) <= dated(previous):  # the previous window has two edges, the current one
            return True
    return False


def _foreign_columns(node: exp.Expression) -> bool:
    """Whether an expression reads a column (a date expression of the window reads none)."""
    return any(True for _ in node.find_all(exp.Column))


def _subquery_tables(tree: _Tree, node: exp.Expression) -> set[str]:
    return {t.name.lower() for t in node.find_all(exp.Table)}


def _exists_realized(tree: _Tree, interp: Interpretation, x) -> bool:
    chain = {e.object_name.lower() for e in x.entities}
    for node in tree.ast.find_all(exp.Exists):
        negated = _negated(node)
        if negated == x.negated and _subquery_tables(tree, node) & chain:
            return True
    for node in tree.ast.find_all(exp.In):
        if node.args.get("query") is None:
            continue
        negated = _negated(node)
        if negated == x.negated and _subquery_tables(tree, node.args["query"]) & chain:
            return True
    joins = [j for j in tree.ast.find_all(exp.Join) if _subquery_tables(tree, j) & chain]
    if not x.negated:
        return bool(joins)
    for join in joins:
        if (join.args.get("side") or "").upper() != "LEFT":
            continue
        aliases = {(t.alias_or_name or t.name).lower() for t in join.find_all(exp.Table)}
        if join.this is not None and join.this.alias:
            aliases.add(join.this.alias.lower())
        for node in tree.ast.find_all(exp.Is):
            if _negated(node):
                continue
            if any((c.table or "").lower() in aliases for c in _columns_in(node)):
                return True
    return False


def _repeat_realized(tree: _Tree, x) -> bool:
    """A GROUP BY over the repeated columns with a HAVING condition, inside a query of the related rows."""
    chain = {e.object_name.lower() for e in x.entities}
    per = {c.column.lower() for c in x.repeated.per}
    for select in tree.ast.find_all(exp.Select):
        group, having = select.args.get("group"), select.args.get("having")
        if group is None or having is None or select is tree.ast:
            continue
        grouped = {c.name.lower() for c in group.find_all(exp.Column)}
        if per <= grouped and {t.name.lower() for t in select.find_all(exp.Table)} & chain:
            return True
    return False


def _counts_rows(node: exp.Expression) -> bool:
    """SUM(CASE WHEN ... THEN 1 ELSE 0 END): a conditional count of rows."""
    case = node.this
    if not isinstance(case, exp.Case):
        return False
    thens = [i.args.get("true") for i in case.args.get("ifs") or []]
    return bool(thens) and all(isinstance(t, exp.Literal) and t.this == "1" for t in thens)


def _aggregates(tree: _Tree, m: Measure, interp: Interpretation) -> list[exp.Expression]:
    kind = _AGG[m.func]
    found = []
    if m.func == "count" and m.column is None:
        found += [n for n in tree.ast.find_all(exp.Sum) if _counts_rows(n)]
    for node in tree.ast.find_all(kind):
        inner = node.this
        distinct = isinstance(inner, exp.Distinct)
        if m.func == "count_distinct" and not distinct:
            continue
        if m.column is None:
            found.append(node)
            continue
        if _refers(tree, node, _object(interp, m.column), m.column.column):
            found.append(node)
    return found


def _projection_for(tree: _Tree, name: str) -> exp.Expression | None:
    select = tree.ast if isinstance(tree.ast, exp.Select) else tree.ast.find(exp.Select)
    for projection in select.expressions if select is not None else []:
        if projection.alias_or_name.lower() == name.lower():
            return projection
    return None


def _bucket_unit(node: exp.Expression) -> set[str]:
    """Units a grouping expression buckets dates by, read from its functions and format strings."""
    if isinstance(node, exp.Column):
        return set()
    text = node.sql().lower()
    for unit in ("day", "week", "month", "quarter", "year"):
        if re.search(rf"(date_trunc|trunc|datetrunc)\(\s*'?{unit}", text) or f"start of {unit}" in text:
            return {unit}
    formats = " ".join(re.findall(r"'([^']*)'", text))
    if re.search(r"%d|dd|%j", formats):
        return {"day"}
    if re.search(r"%w|%v|%u|iw|ww", formats) or re.search(r"\b(week|weekofyear|yearweek)\(", text):
        return {"week"}
    if re.search(r"%m|mm", formats) or re.search(r"\bmonth\b", text):
        return {"month"}
    if re.search(r'"q"q|-q|quarter', text):
        return {"quarter"}
    if re.search(r"%y|yyyy|\byear\b", text + " " + formats):
        return {"year"}
    return set()


def _group_exprs(tree: _Tree) -> list[exp.Expression]:
    select = tree.ast if isinstance(tree.ast, exp.Select) else tree.ast.find(exp.Select)
    group = select.args.get("group") if select is not None else None
    if group is None:
        return []
    out = []
    for e in group.expressions:
        if isinstance(e, exp.Literal) and e.is_int:
            index = int(e.this) - 1
            out.append(select.expressions[index].unalias() if 0 <= index < len(select.expressions) else e)
        elif isinstance(e, exp.Column) and not e.table:
            projection = _projection_for(tree, e.name)
            out.append(projection.unalias() if projection is not None else e)
        else:
            out.append(e)
    return out


def realization_check(*, sql: str, dialect: str, interpretation: Interpretation, catalog: Catalog) -> list[Finding]:
    """Findings, one per element: realized or not (see the module docstring)."""
    interp = interpretation
    findings: list[Finding] = []

    def report(ok: bool, element: str, message: str, *, phrase: str = "") -> None:
        findings.append(Finding("realization", ok, message if not ok else f"{element} is realized", element, phrase))

    try:
        tree = _parse(sql, dialect, catalog)
    except Exception as exc:
        return [Finding("realization", False, f"the SQL cannot be read: {str(exc).splitlines()[0][:200]}")]
    tables = set(tree.aliases.values())
    for i, e in enumerate(interp.all_entities()):
        report(
            e.object_name.lower() in tables, f"entities[{i}]", f"the SQL does not read {e.object_name}", phrase=e.phrase
        )
    for i, f in enumerate(interp.filters):
        report(
            _filter_realized(tree, interp, f),
            f"filters[{i}]",
            f"the condition on {f.column.column} ({f.phrase or f.op}) is not in the SQL",
            phrase=f.phrase,
        )
    for i, m in enumerate(interp.measures):
        for j, f in enumerate(m.filters):
            report(
                _filter_realized(tree, interp, f),
                f"measures[{i}].filters[{j}]",
                f"the condition on {f.column.column} of {m.id} is not in the SQL",
                phrase=f.phrase,
            )
        if m.window is not None:
            missing = _window_realized(tree, interp, m.window)
            report(
                not missing,
                f"measures[{i}].window",
                f"the time window of {m.id} is not in the SQL",
                phrase=m.window.phrase,
            )
        report(
            bool(_aggregates(tree, m, interp)),
            f"measures[{i}]",
            f"{m.id} ({m.func} of {m.column.column if m.column else 'rows'}) is not computed by the SQL",
            phrase=m.phrase,
        )
    for i, x in enumerate(interp.exists):
        for j, f in enumerate(x.filters):
            report(
                _filter_realized(tree, interp, f),
                f"exists[{i}].filters[{j}]",
                f"the condition on {f.column.column} is not in the SQL",
            )
        if x.window is not None:
            missing = _window_realized(tree, interp, x.window)
            report(not missing, f"exists[{i}].window", "the time window of the related rows is not in the SQL")
        if x.repeated is not None:
            report(
                _repeat_realized(tree, x),
                f"exists[{i}].repeated",
                f"'{x.repeated.phrase}' needs the related rows counted per "
                + ", ".join(c.column for c in x.repeated.per),
                phrase=x.repeated.phrase,
            )
        what = x.entities[0].object_name
        report(
            _exists_realized(tree, interp, x),
            f"exists[{i}]",
            (f"'{x.phrase or 'no related rows'}' needs an anti-join on {what} (NOT EXISTS or LEFT JOIN ... IS NULL)")
            if x.negated
            else f"'{x.phrase}' needs the related rows of {what}",
            phrase=x.phrase,
        )
    for i, c in enumerate(interp.comparisons):
        report(
            _comparison_realized(tree, interp, c),
            f"comparisons[{i}]",
            f"'{c.phrase or 'the change between periods'}' needs the {c.func} of {c.entities[-1].object_name} in the "
            f"last {c.amount} {c.unit}s compared with the {c.amount} {c.unit}s before",
            phrase=c.phrase,
        )
    for i, w in enumerate(interp.windows):
        missing = _window_realized(tree, interp, w)
        report(
            not missing,
            f"windows[{i}]",
            f"the time window '{w.phrase or w.column.column}' is not a date condition of the SQL "
            f"({', '.join(missing)} missing)",
            phrase=w.phrase,
        )
    # Parameters: bound in a condition (or LIMIT for the limit parameter).
    placeholders = {p.name: p for p in tree.ast.find_all(exp.Placeholder) if p.name}
    limit_param = interp.limit.param if interp.limit is not None else None
    for i, p in enumerate(interp.parameters):
        nodes = [n for n in tree.ast.find_all(exp.Placeholder) if n.name == p.name]
        if p.name == limit_param:
            ok = any(n.find_ancestor(exp.Limit) is not None for n in nodes)
            report(ok, f"parameters[{i}]", f"the parameter {p.name} does not limit the rows", phrase=p.phrase)
        else:
            ok = any(_in_condition(n) for n in nodes)
            report(ok, f"parameters[{i}]", f"the parameter {p.name} is not used to filter the rows", phrase=p.phrase)
    extra = sorted(set(placeholders) - {p.name for p in interp.parameters})
    if extra:
        report(False, "parameters", f"the SQL uses parameters the design does not declare: {', '.join(extra)}")
    # Grain: the GROUP BY is exactly the group keys (and the columns shown with them).
    groups = _group_exprs(tree)
    if interp.is_aggregate:
        for i, g in enumerate(interp.group_by):
            obj = _object(interp, g.column)
            matching = [e for e in groups if _refers(tree, e, obj, g.column.column)]
            if g.bucket:
                ok = any(g.bucket in _bucket_unit(e) for e in matching)
                report(
                    ok,
                    f"group_by[{i}]",
                    f"'{g.phrase or g.bucket}' needs one row per {g.bucket}: the SQL does not group by it",
                    phrase=g.phrase,
                )
            else:
                report(
                    bool(matching), f"group_by[{i}]", f"the SQL does not group by {g.column.column}", phrase=g.phrase
                )
        allowed = [g.column for g in interp.group_by] + [s.column for s in interp.select]
        for e in groups:
            if not any(_refers(tree, e, _object(interp, c), c.column) for c in allowed):
                report(
                    False,
                    "group_by",
                    f"the SQL groups by {e.sql(dialect=dialect)[:80]}, which the requirement does not ask for",
                )
    elif groups and not interp.distinct:
        report(False, "group_by", "the SQL groups rows, but the design returns them one by one")
    # Outputs.
    select = tree.ast if isinstance(tree.ast, exp.Select) else tree.ast.find(exp.Select)
    projections = list(select.expressions) if select is not None else []
    for i, s in enumerate(interp.select):
        obj = _object(interp, s.column)
        ok = any(_refers(tree, p, obj, s.column.column) for p in projections) or any(
            isinstance(p, exp.Star) for p in projections
        )
        report(ok, f"select[{i}]", f"the SQL does not return {s.column.column}", phrase=s.phrase)
    # Having.
    having = select.args.get("having") if select is not None else None
    for i, h in enumerate(interp.having):
        m = interp.measure(h.measure)
        ok = having is not None and any(having is a.find_ancestor(exp.Having) for a in _aggregates(tree, m, interp))
        if ok and h.param:
            ok = h.param in _placeholders(having)
        report(
            ok,
            f"having[{i}]",
            f"the condition '{h.phrase or h.measure}' on {h.measure} is not in the SQL's HAVING",
            phrase=h.phrase,
        )
    # Ordering.
    order = select.args.get("order") if select is not None else None
    keys = list(order.expressions) if order is not None else []
    for i, o in enumerate(interp.order_by):
        wanted_desc = o.direction == "desc"
        ok = False
        for key in keys:
            node = key.this
            if isinstance(node, exp.Column) and not node.table:
                projection = _projection_for(tree, node.name)
                node = projection.unalias() if projection is not None else node
            if isinstance(node, exp.Literal) and node.is_int and 0 < int(node.this) <= len(projections):
                node = projections[int(node.this) - 1].unalias()
            if o.measure is not None:
                m = interp.measure(o.measure)
                matches = any(a is node or node.find(type(a)) is not None for a in _aggregates(tree, m, interp))
                matches = matches and bool(_aggregates(tree, m, interp))
                if isinstance(node, exp.Column) and node.name.lower() == o.measure.lower():
                    matches = True
            else:
                matches = _refers(tree, node, _object(interp, o.column), o.column.column)
            if matches and bool(key.args.get("desc")) == wanted_desc:
                ok = True
                break
        what = o.measure or (o.column.column if o.column else "")
        report(
            ok,
            f"order_by[{i}]",
            f"the SQL does not order by {what} {'descending' if wanted_desc else 'ascending'}",
            phrase=o.phrase,
        )
    # Limit.
    if interp.limit is not None:
        limit = select.args.get("limit") if select is not None else None
        value = limit.expression if limit is not None else None
        ok = False
        if isinstance(value, exp.Literal):
            ok = _num(value.this) == interp.limit.n
        elif isinstance(value, exp.Placeholder):
            spec = interp.parameter(value.name)
            ok = value.name == interp.limit.param and (spec is None or spec.default in (None, interp.limit.n))
        report(
            ok,
            "limit",
            f"the SQL does not return {interp.limit.n} rows as '{interp.limit.phrase or 'the limit'}' asks",
            phrase=interp.limit.phrase,
        )
    return findings
