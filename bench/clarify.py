"""Answering a run's clarification questions like a user who knows what they meant.

A run that cannot resolve a phrase pauses (status WAITING) with `execution.questions`:
[{"id", "phrase", "text", "kind", "choices": [{"id", "label", "mapping": {"kind", "table", "column",
"value", "func", ...}}], "allow_other"}], answered with
agents.services.execution_answer(execution=, user=, answers={question_id: choice_id}).

The oracle knows only the requirement's reference SQL (and its parameter values). It parses the
SQL with sqlglot and picks, per question, the one choice whose mapping names tables, columns,
values and functions the reference uses. When no choice fits, or more than one does, it gives up:
a user who meant what the reference says could not answer either, so the run counts as declined.
Nothing here knows a particular schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp

WAITING = "WAITING"


@dataclass
class ReferenceFacts:
    """What a reference query uses, lower-cased: tables, (table, column) pairs, values, filters, aggregates."""

    tables: set[str] = field(default_factory=set)
    columns: set[tuple[str | None, str]] = field(default_factory=set)
    values: set[str] = field(default_factory=set)
    filters: set[tuple[str | None, str, str]] = field(default_factory=set)
    measures: set[tuple[str, str | None, str | None]] = field(default_factory=set)
    expressions: set[tuple[str, frozenset]] = field(default_factory=set)  # aggregates of expressions
    formulas: set[tuple[str, str]] = field(default_factory=set)  # (func, arithmetic as arithmetic_text writes it)
    comparisons: set[tuple[str, str, str]] = field(default_factory=set)  # (arithmetic, op, value): (a - b) / a < 0.3
    selected: set[tuple[str | None, str]] = field(default_factory=set)  # columns the outer SELECT returns
    words: set[str] = field(default_factory=set)  # every word of the SQL text: names, aliases, literals

    def has_column(self, table: str | None, column: str) -> bool:
        column = column.lower()
        if table is None:
            return any(c == column for _, c in self.columns)
        table = table.lower()
        return (table, column) in self.columns or ((None, column) in self.columns and table in self.tables)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(float(value))
    text = str(value).strip().lower()
    try:
        return str(float(text))
    except ValueError:
        return text


def _bare(name: str | None) -> str | None:
    """A table name without schema or quotes: "public.Customer" -> "customer"."""
    if not name:
        return None
    return str(name).split(".")[-1].strip('"`[]').lower()


def reference_facts(*, sql: str, parameters: dict | None = None, dialect: str = "postgres") -> ReferenceFacts:
    """Parse a reference query (named binds :name take their values from `parameters`)."""
    parameters = {k.lower(): v for k, v in (parameters or {}).items()}
    tree = sqlglot.parse_one(sql, read=dialect)
    facts = ReferenceFacts(words=set(re.findall(r"[a-z0-9]+", sql.lower())))
    aliases: dict[str, str] = {}
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        facts.tables.add(name)
        aliases[(table.alias_or_name or name).lower()] = name
    single = next(iter(facts.tables)) if len(facts.tables) == 1 else None

    def owner(column: exp.Column) -> str | None:
        qualifier = column.table.lower() if column.table else ""
        return aliases.get(qualifier, qualifier or None) if qualifier else single

    for column in tree.find_all(exp.Column):
        facts.columns.add((owner(column), column.name.lower()))
    for expression in tree.expressions if isinstance(tree, exp.Select) else []:
        for column in expression.find_all(exp.Column):
            facts.selected.add((owner(column), column.name.lower()))

    def value_of(node: exp.Expression) -> str | None:
        if isinstance(node, exp.Literal):
            return _text(node.this)
        if isinstance(node, exp.Boolean):
            return _text(node.this)
        if isinstance(node, exp.Placeholder) and node.name and node.name.lower() in parameters:
            return _text(parameters[node.name.lower()])
        if isinstance(node, exp.Parameter):
            name = node.name.lower() if node.name else ""
            if name in parameters:
                return _text(parameters[name])
        if isinstance(node, exp.Cast):
            return value_of(node.this)
        return None

    for node in tree.walk():
        value = value_of(node)
        if value is not None:
            facts.values.add(value)
    for predicate in tree.find_all(exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.ILike):
        left, right = predicate.left, predicate.right
        for col, other in ((left, right), (right, left)):
            if isinstance(col, exp.Column):
                value = value_of(other)
                if value is not None:
                    facts.filters.add((owner(col), col.name.lower(), value))
    for predicate in tree.find_all(exp.In):
        if isinstance(predicate.this, exp.Column):
            for item in predicate.expressions:
                value = value_of(item)
                if value is not None:
                    facts.filters.add((owner(predicate.this), predicate.this.name.lower(), value))
    for aggregate in tree.find_all(exp.AggFunc):
        func = aggregate.key.lower()
        argument = aggregate.this
        if isinstance(argument, exp.Distinct):
            func = f"{func}_distinct"
            argument = argument.expressions[0] if len(argument.expressions) == 1 else argument
        while isinstance(argument, (exp.Cast, exp.Paren)):
            argument = argument.this
        columns = list(aggregate.find_all(exp.Column))
        if not columns:
            facts.measures.add((func, None, None))
        elif isinstance(argument, exp.Column):  # the measure is the column itself: SUM(amount)
            facts.measures.add((func, owner(argument), argument.name.lower()))
        else:  # an expression of columns: SUM(price * quantity * (1 - discount)) is no column's sum
            facts.expressions.add((func, frozenset((owner(c), c.name.lower()) for c in columns)))
            facts.formulas.add((func, arithmetic_text(argument)))
    for predicate in tree.find_all(exp.GT, exp.GTE, exp.LT, exp.LTE, exp.EQ, exp.NEQ):
        if isinstance(predicate.left, exp.Column) or predicate.left.find(exp.AggFunc) is not None:
            continue
        value = value_of(predicate.right)
        if value is not None and predicate.left.find(exp.Column) is not None:
            op = {exp.GT: "gt", exp.GTE: "gte", exp.LT: "lt", exp.LTE: "lte", exp.EQ: "eq", exp.NEQ: "ne"}
            facts.comparisons.add((arithmetic_text(predicate.left), op[type(predicate)], value))
    return facts


def arithmetic_text(node: exp.Expression | str) -> str:
    """An arithmetic of columns in one spelling: casts, parentheses around single terms and table qualifiers
    dropped, names lower-cased ('SUM(CAST(od.unit_price AS numeric) * od.quantity)' -> 'unit_price * quantity')."""
    if isinstance(node, str):
        node = sqlglot.parse_one(node)

    def plain(n: exp.Expression) -> exp.Expression:
        if isinstance(n, exp.Cast):
            return plain(n.this)
        if isinstance(n, exp.Column):
            return exp.column(n.name.lower())
        if isinstance(n, exp.Paren) and isinstance(n.this, (exp.Column, exp.Literal, exp.Cast, exp.Paren)):
            return plain(n.this)
        return n

    tree = node.copy().transform(plain)
    for division in tree.find_all(exp.Div):  # a dialect's reading of '/' (safe, typed) is not the arithmetic
        division.set("safe", None)
        division.set("typed", None)
    return tree.sql().lower()


def _filter_fits(table: str | None, column: str, values: list, facts: ReferenceFacts) -> bool:
    column = column.lower()
    return all(
        any(c == column and v == _text(one) and (table is None or t in (table, None)) for t, c, v in facts.filters)
        for one in values
    )


def choice_fits(mapping: dict, facts: ReferenceFacts) -> bool:
    """Whether every part the mapping names (table, column, value, filters, func) is what the reference uses.

    The table may be given as "table" or "object" (optionally schema-qualified); a mapping that names
    nothing ("leave it out") never fits: the oracle cannot tell that a word adds nothing.
    """
    if not isinstance(mapping, dict) or not mapping:
        return False
    table = _bare(mapping.get("table") or mapping.get("object"))
    column = mapping.get("column")
    column = str(column).lower() if column else None
    value = mapping.get("value", mapping.get("values"))
    func = mapping.get("func")
    filters = mapping.get("filters")
    named = False
    if table is not None:
        named = True
        if table not in facts.tables:
            return False
    if column is not None:
        named = True
        if not facts.has_column(table, column):
            return False
    if mapping.get("expression") and func is None:  # a formula compared: '(price - cost) / price < 0.3'
        try:
            wanted_text = arithmetic_text(str(mapping["expression"]))
        except sqlglot.errors.ParseError:
            return False
        op = str(mapping.get("op") or "")
        return any(e == wanted_text and o == op and v == _text(value) for e, o, v in facts.comparisons)
    if value is not None:
        named = True
        wanted = value if isinstance(value, list) else [value]
        if column is not None:
            if not _filter_fits(table, column, wanted, facts):
                return False
        elif any(_text(one) not in facts.values for one in wanted):
            return False
    if isinstance(filters, list) and filters:
        named = True
        for entry in filters:
            if not isinstance(entry, dict) or not entry.get("column"):
                return False
            values = entry.get("values", entry.get("value"))
            values = values if isinstance(values, list) else [values]
            if not _filter_fits(_bare(entry.get("object")) or table, str(entry["column"]), values, facts):
                return False
    if func is not None:
        named = True
        func = str(func).lower()
        times = mapping.get("times")
        if mapping.get("expression"):  # an arithmetic of columns: the reference aggregates that very arithmetic
            try:
                wanted_text = arithmetic_text(str(mapping["expression"]))
            except sqlglot.errors.ParseError:
                return False
            if (func, wanted_text) not in facts.formulas:
                return False
        elif times:  # price x quantity: an aggregate of exactly those two columns
            wanted = {str(column or "").lower(), str(times).lower()}
            if not any(f == func and {c for _t, c in cols} == wanted for f, cols in facts.expressions):
                return False
        elif not any(
            f == func and (column is None or c == column) and (table is None or t in (table, None))
            for f, t, c in facts.measures
        ):
            return False
    return named


def _no_filter(mapping: dict) -> bool:
    """A filter choice that filters nothing ("every status counts")."""
    return isinstance(mapping, dict) and mapping.get("kind") == "filter" and mapping.get("filters") == []


# Words a user may well say add nothing: how a request is put, not what it asks for. Any other
# word can carry meaning in a way the reference does not spell ("no longer sell" is a flag), so
# the oracle never leaves it out.
FILLER = frozenset(
    {"given", "certain", "specific", "particular", "some", "please", "show", "list", "find", "get", "see",
     "want", "need", "our", "we", "us", "me", "my", "which", "what"}
)  # fmt: skip


def leaving_out_fits(word: str, facts: ReferenceFacts) -> bool:
    """Whether a user who meant the reference would say that `word` adds nothing: filler the reference lacks."""
    tokens = re.findall(r"[a-z0-9]+", str(word).lower())
    return bool(tokens) and all(t in FILLER and t not in facts.words for t in tokens)


def _ignores(mapping: dict) -> bool:
    return isinstance(mapping, dict) and mapping.get("kind") == "ignore"


def _strength(mapping: dict, facts: ReferenceFacts) -> int:
    """How exactly a fitting choice says what the reference does: a value it filters on (4), a column it
    filters on or a measure it computes (3), a column it returns (2), a table or a column it only joins on (1)."""
    if mapping.get("value", mapping.get("values")) is not None or mapping.get("filters"):
        return 4
    if mapping.get("func"):
        return 3
    column = str(mapping.get("column") or "").lower()
    if not column:
        return 1
    table = _bare(mapping.get("table") or mapping.get("object"))
    if any(c == column and (table is None or t in (table, None)) for t, c, _v in facts.filters):
        return 3
    if any(c == column and (table is None or t in (table, None)) for t, c in facts.selected):
        return 2
    return 1


def _strongest(fitting: list[dict], facts: ReferenceFacts) -> dict | None:
    """Among several fitting choices, the one that alone says most exactly what the reference does."""
    if len(fitting) < 2:
        return None
    ranked = sorted(fitting, key=lambda c: -_strength(c.get("mapping") or {}, facts))
    first, second = (_strength(c.get("mapping") or {}, facts) for c in ranked[:2])
    return ranked[0] if first > second else None


def answers_for(*, questions: list[dict], facts: ReferenceFacts) -> tuple[dict, str]:
    """{question_id: choice_id} for every question, or ({}, why the oracle cannot answer).

    A filter question ("which statuses count? choose one or more") is answered with every choice the
    reference filters on, as a list; its "every value counts" choice only when the reference filters
    on none of the others. Any other question needs one fitting choice (of several, the one that
    alone says most exactly what the reference does: _strength), or, when none fits, a "leave it
    out" choice for a filler word such as 'given' (leaving_out_fits).
    """
    answers: dict = {}
    for question in questions or []:
        choices = question.get("choices") or []
        fitting = [
            c for c in choices if not _no_filter(c.get("mapping")) and choice_fits(c.get("mapping") or {}, facts)
        ]
        phrase = question.get("phrase") or question.get("text") or question.get("id")
        several = question.get("kind") == "filter"
        if several and not fitting:
            fitting = [c for c in choices if _no_filter(c.get("mapping"))][:1]
        if len(fitting) == 1:
            answers[question.get("id")] = fitting[0].get("id")
            continue
        if several and fitting:
            answers[question.get("id")] = [c.get("id") for c in fitting]
            continue
        strongest = _strongest(fitting, facts)
        if strongest is not None:
            answers[question.get("id")] = strongest.get("id")
            continue
        leave_out = [c for c in choices if _ignores(c.get("mapping"))]
        term = (leave_out[0].get("mapping") or {}).get("term") or phrase if leave_out else ""
        if not fitting and len(leave_out) == 1 and leaving_out_fits(term, facts):
            answers[question.get("id")] = leave_out[0].get("id")
            continue
        labels = ", ".join(str(c.get("label") or c.get("id")) for c in choices) or "no choices"
        if not fitting:
            return {}, f"asked about '{phrase}' and no choice fits the reference ({labels})"
        return {}, f"asked about '{phrase}' and {len(fitting)} choices fit the reference ({labels})"
    return answers, ""
