"""Measures computed from a row's columns: a line's amount ('unit_price * quantity * (1 - discount)').

A business word such as revenue on a table of lines that carries a price, a quantity and a discount but
no total is offered as that arithmetic among the choices of "the sum of which column?"; the answer is a
glossary `measure` with an `expression` (learning.arithmetic), which the planner then sums with no
question. Whether a discount is a fraction (0.2) or a percentage (20) is read from its known values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from learning.arithmetic import arithmetic_render

from .schema_index import Column, SchemaIndex, Table

PRICE_WORDS = frozenset({"price", "rate", "amount", "fee"})
QUANTITY_WORDS = frozenset({"quantity", "qty", "quantities"})
DISCOUNT_WORDS = frozenset({"discount", "rebate"})


def _plain_numbers(table: Table) -> list[Column]:
    return [
        c
        for c in table.columns.values()
        if c.is_numeric and not c.primary_key and c.name not in table.fk_columns and not c.name.lower().endswith("_id")
    ]


def _one(columns: list[Column], words: frozenset[str]) -> Column | None:
    found = [c for c in columns if set(c.tokens) & words]
    return found[0] if len(found) == 1 else None


def number_scale(column: Column) -> str | None:
    """'fraction' when every known value lies in [0, 1], 'percent' when one exceeds 1, None when nothing is known."""
    values = [v for v in column.known_values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not values:
        return None
    if any(v > 1 for v in values):
        return "percent"
    return "fraction" if all(0 <= v <= 1 for v in values) else None


def line_amounts(table: Table) -> list[tuple[str, str]]:
    """(expression, its first column) for a line's amount: price x quantity, less a discount when there is one."""
    numbers = _plain_numbers(table)
    price = _one([c for c in numbers if c.format == "decimal" or c.json_type == "number"], PRICE_WORDS)
    quantity = _one(numbers, QUANTITY_WORDS)
    if price is None or quantity is None or price is quantity:
        return []
    out = [(f"{price.name} * {quantity.name}", price.name)]
    discount = _one([c for c in numbers if c is not price and c is not quantity], DISCOUNT_WORDS)
    if discount is not None:
        scale = number_scale(discount)
        if scale in (None, "fraction"):
            out.insert(0, (f"{price.name} * {quantity.name} * (1 - {discount.name})", price.name))
        if scale in (None, "percent"):
            out.insert(1, (f"{price.name} * {quantity.name} * (1 - {discount.name} / 100)", price.name))
    return out


def expression_choices(term: str, index: SchemaIndex, table: Table, *, object_name: str) -> list[tuple[str, dict]]:
    """Choices of 'the sum of which column?' that compute a line's amount."""
    return [
        (
            f"the sum of {expression} on {table.name}",
            {
                "term": term,
                "kind": "measure",
                "func": "sum",
                "object": object_name,
                "column": first,
                "expression": expression,
            },
        )
        for expression, first in line_amounts(table)
    ]


def expression_sql(expression: str, table: Table, column: Callable[[Table, str], str], dialect: str) -> str:
    """The expression as the dialect computes it: floats as numeric on PostgreSQL, divisions never whole-number."""

    def one(name: str) -> str:
        info = table.columns[name]
        if dialect.startswith("postg") and info.json_type == "number" and info.format != "decimal":
            return f"CAST({column(table, name)} AS numeric)"
        return column(table, name)

    def divisible(text: str) -> str:
        if dialect.startswith("postg"):
            return f"CAST({text} AS numeric)"
        return f"CAST({text} AS REAL)" if dialect == "sqlite" else text

    return arithmetic_render(expression, one, divisible=divisible)


# Words for a row's margin over its cost; the definition is the business's, so it is asked once.
MARGIN_WORDS = frozenset({"margin", "margins", "markup", "markups"})
SALE_WORDS = frozenset({"price", "sale", "sales", "selling", "revenue", "amount"})
COST_WORDS = frozenset({"cost", "costs", "cogs"})
_SIGN = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "=", "ne": "<>"}


class FormulaQuestion(Exception):
    """A business word computed from a row's columns is not defined yet: ask how."""

    def __init__(self, message: str, options: list[tuple[str, dict]], phrase: str) -> None:
        super().__init__(message)
        self.options = options
        self.phrase = phrase


def margin_ratios(table: Table) -> list[tuple[str, str]]:
    """(expression, first column) of a row's margin as a share: over its price, then over its cost."""
    money = [c for c in _plain_numbers(table) if c.format == "decimal" or c.json_type in ("number", "integer")]
    price = _one(money, SALE_WORDS)
    cost = _one([c for c in money if c is not price], COST_WORDS)
    if price is None or cost is None:
        return []
    return [
        (f"({price.name} - {cost.name}) / {price.name}", price.name),
        (f"({price.name} - {cost.name}) / {cost.name}", price.name),
    ]


def percent_formula(
    a: Any, index: SchemaIndex, table: Table, word_index: int, op: str, percent: float, end: int
) -> tuple[str, str, float, int] | None:
    """'a margin below 30%': (expression, first column, 0.3, phrase start) from the glossary's formula for the word
    before the comparison; FormulaQuestion when the word is a margin nobody has defined; None otherwise."""
    token = a.tokens[word_index]
    for mapping, (start, stop) in a.terms:
        if mapping.get("kind") != "formula" or not (start <= token.start < stop):
            continue
        expression, first = str(mapping.get("expression") or ""), str(mapping.get("column") or "")
        if str(mapping.get("object") or "").rpartition(".")[2] != table.name or "/" not in expression:
            return None  # a difference is an amount, not a share
        return expression, first, round(percent / 100, 6), start
    if token.lower not in MARGIN_WORDS:
        return None
    ratios = margin_ratios(table)
    if not ratios:
        return None
    phrase = a.requirement[token.start : end]
    options = []
    for expression, first in ratios:
        mapping = {
            "term": token.text,
            "kind": "formula",
            "object": table.name
            if not table.schema or table.schema == index.default_schema
            else table.key[0] + "." + table.name,
            "column": first,
            "expression": expression,
            "op": op,
            "value": round(percent / 100, 6),
        }
        options.append((f"{expression}: {table.name} where it is {_SIGN[op]} {percent / 100:g}", mapping))
    raise FormulaQuestion(
        f"'{token.text}' is a business definition this database does not spell out",
        options,
        phrase,
    )
