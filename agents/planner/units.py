"""Quantities with a unit and percentages compared with a column ('films that run longer than 3 hours',
'parcels heavier than 2 kg', 'lines with a discount of at least 20%').

A number said in a unit is compared with the numeric column the comparison names (its dimension:
longer -> length, heavier -> weight; or the word before it) in the column's own unit: read from its
name (duration_minutes, weight_kg), else from the glossary (a `column` mapping with `unit`), else asked
("'length': in which unit is it measured?"), each choice carrying the comparison it implies. A
percentage is 0.2 on a column whose known values all lie in [0, 1], 20 on one with values above 1,
and asked otherwise. Nothing here knows a schema: only names, types and values.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from endpoints.interpretation import Question

from .formulas import number_scale
from .questions import question_which
from .schema_index import Column, SchemaIndex, Table
from .vocabulary import STOPWORDS, variants, word_score

# unit word -> (family, canonical unit, how many base units one is)
UNIT_WORDS: dict[str, tuple[str, str, float]] = {
    **dict.fromkeys(("second", "seconds", "sec", "secs"), ("time", "second", 1.0)),
    **dict.fromkeys(("minute", "minutes", "min", "mins"), ("time", "minute", 60.0)),
    **dict.fromkeys(("hour", "hours", "hr", "hrs"), ("time", "hour", 3600.0)),
    **dict.fromkeys(("gram", "grams", "g"), ("mass", "gram", 1.0)),
    **dict.fromkeys(("kilogram", "kilograms", "kg", "kgs", "kilo", "kilos"), ("mass", "kilogram", 1000.0)),
    **dict.fromkeys(("lb", "lbs"), ("mass", "pound", 453.59237)),
    **dict.fromkeys(("millimetre", "millimetres", "millimeter", "millimeters", "mm"), ("length", "millimetre", 0.001)),
    **dict.fromkeys(("centimetre", "centimetres", "centimeter", "centimeters", "cm"), ("length", "centimetre", 0.01)),
    **dict.fromkeys(("metre", "metres", "meter", "meters"), ("length", "metre", 1.0)),
    **dict.fromkeys(("kilometre", "kilometres", "kilometer", "kilometers", "km"), ("length", "kilometre", 1000.0)),
    **dict.fromkeys(("mile", "miles"), ("length", "mile", 1609.344)),
}
# The units a family's question offers, most usual first.
FAMILY_CHOICES = {
    "time": ("minute", "hour", "second"),
    "mass": ("kilogram", "gram", "pound"),
    "length": ("metre", "centimetre", "kilometre", "millimetre"),
}
BASE = {unit: factor for _family, unit, factor in UNIT_WORDS.values()}
FAMILY = {unit: family for family, unit, _factor in UNIT_WORDS.values()}
# Comparatives that name the dimension compared, and the words a column of it is named by.
# The nearest word first: 'longer' is the length before it is a duration.
DIMENSIONS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("longer", "shorter"), ("length", "runtime", "duration", "time")),
    **dict.fromkeys(("heavier", "lighter"), ("weight", "mass")),
    **dict.fromkeys(("taller",), ("height",)),
    **dict.fromkeys(("wider", "narrower"), ("width",)),
    **dict.fromkeys(("farther", "further"), ("distance",)),
}
COMPARISON = re.compile(
    r"\b(?:(longer|shorter|heavier|lighter|taller|wider|narrower|farther|further)\s+than"
    r"|(more than|less than|over|under|above|below|at least|at most|no more than|no less than|exceeding))\s+"
    r"(\d+(?:\.\d+)?)\s*([a-z]+)\b"
)
OPS = {
    "longer": "gt", "heavier": "gt", "taller": "gt", "wider": "gt", "farther": "gt", "further": "gt",
    "shorter": "lt", "lighter": "lt", "narrower": "lt",
    "more than": "gt", "over": "gt", "above": "gt", "exceeding": "gt", "at least": "gte", "no less than": "gte",
    "less than": "lt", "under": "lt", "below": "lt", "at most": "lte", "no more than": "lte",
}  # fmt: skip


class UnitQuestion(Exception):
    """The column's unit is not known: ask it."""

    def __init__(self, message: str, question: Question) -> None:
        super().__init__(message)
        self.question = question


@dataclass
class Quantity:
    op: str
    value: float
    unit: str  # canonical unit
    dimension: str | None  # the comparative ("longer"), when it names the dimension
    span: tuple[int, int]  # the comparison, the number and the unit


def read_quantities(requirement: str) -> list[Quantity]:
    """Comparisons with a number in a unit of time, mass or length ('longer than 3 hours', 'over 2 kg')."""
    out = []
    lowered = requirement.lower()
    for match in COMPARISON.finditer(lowered):
        unit = UNIT_WORDS.get(match.group(4))
        if unit is None or re.match(r"\s+ago\b", lowered[match.end() :]):
            continue
        word = match.group(1) or match.group(2)
        out.append(Quantity(OPS[word], float(match.group(3)), unit[1], match.group(1), match.span()))
    return out


def unit_in_name(column: Column) -> str | None:
    """The unit a column's name states (duration_minutes, weight_kg, length_in_hours), if any."""
    for token in column.tokens:
        if token.lower() in AMBIGUOUS_IN_NAMES:
            continue
        found = UNIT_WORDS.get(token.lower())
        if found is not None:
            return found[1]
    return None


# Short words that name other things in column names (min_price, g for a group, m for a month).
AMBIGUOUS_IN_NAMES = frozenset({"min", "mins", "g", "sec", "secs", "hr", "mm", "lb"})


def _glossary_unit(glossary: list[dict], table: Table, column: Column) -> str | None:
    for mapping in glossary:
        if (
            mapping.get("kind") == "column"
            and mapping.get("unit")
            and mapping.get("column") == column.name
            and str(mapping.get("object") or "").rpartition(".")[2] == table.name
        ):
            return str(mapping["unit"])
    return None


def convert(value: float, unit: str, into: str) -> float:
    number = value * BASE[unit] / BASE[into]
    return round(number) if abs(number - round(number)) < 1e-9 else round(number, 6)


def _object(index: SchemaIndex, table: Table) -> str:
    if table.schema and table.schema != index.default_schema:
        return f"{table.schema}.{table.name}"
    return table.name


def compared_column(a: Any, table: Table, start: int, dimension: str | None) -> tuple[Column, int] | None:
    """The numeric column a comparison at `start` is about: its dimension's name, or the word before it."""
    numbers = [
        c
        for c in table.columns.values()
        if c.is_numeric and not c.primary_key and c.name not in table.fk_columns and not c.name.lower().endswith("_id")
    ]
    before = [t for t in a.tokens if t.end <= start]
    words = [t for t in reversed(before) if t.lower not in STOPWORDS][:2]
    for token in words[:1]:
        hits = [c for c in numbers if any(word_score(token.lower, n) == 1.0 for n in c.tokens)]
        if len(hits) == 1:
            return hits[0], token.start
    for noun in DIMENSIONS.get(dimension or "", ()):
        hits = [c for c in numbers if noun in c.tokens]
        if len(hits) > 1:
            return None
        if hits:
            # the verb before it ("films that run longer than") belongs to the comparison
            verb = words[0] if words and not a.phrases.explains(words[0].start, words[0].end) else None
            mentioned = verb is not None and any(m.start <= a.tokens.index(verb) < m.end for m in a.mentions)
            return hits[0], verb.start if verb is not None and not mentioned else start
    return None


def resolve_quantities(a: Any, index: SchemaIndex, *, make_filter: Callable[..., Any]) -> None:
    """Filters for the quantities of the requirement, in the compared column's unit (asked when not known)."""
    if a.entity is None:
        return
    for quantity in read_quantities(a.requirement):
        if a.phrases.explains(*quantity.span):
            continue
        found = compared_column(a, a.entity, quantity.span[0], quantity.dimension)
        if found is None:
            continue
        column, start = found
        end = quantity.span[1]
        phrase = a.requirement[start:end]
        unit = unit_in_name(column) or _glossary_unit(a.glossary, a.entity, column)
        if unit is not None and FAMILY.get(unit) != FAMILY[quantity.unit]:
            continue
        if unit is None:
            raise UnitQuestion(
                f"'{phrase}': {a.entity.name}.{column.name} does not say in which unit it is measured",
                _unit_question(index, a.entity, column, quantity, phrase),
            )
        value = convert(quantity.value, quantity.unit, unit)
        a.filters.append(make_filter(a.entity.key, column.name, value, phrase=phrase, op=quantity.op, fixed=True))
        a.needs_compiler.append(f"the comparison on {a.entity.name}.{column.name}")
        a.phrases.spans.append((start, end))
        a.steps.append(f"'{phrase}': {a.entity.name}.{column.name} {quantity.op} {value:g} (in {unit}s).")


def _unit_mapping(index: SchemaIndex, table: Table, column: Column, unit: str, op: str, value: float) -> dict:
    """A choice's glossary mapping: the column's unit, with the comparison that unit makes of the number said."""
    return {
        "term": column.name,
        "kind": "column",
        "object": _object(index, table),
        "column": column.name,
        "unit": unit,
        "op": op,
        "value": value,
    }


def _unit_question(index: SchemaIndex, table: Table, column: Column, quantity: Quantity, phrase: str) -> Question:
    options = []
    for unit in FAMILY_CHOICES[FAMILY[quantity.unit]]:
        value = convert(quantity.value, quantity.unit, unit)
        mapping = _unit_mapping(index, table, column, unit, quantity.op, value)
        options.append((f"in {unit}s: {table.name}.{column.name} {_SIGN[quantity.op]} {value:g}", mapping))
    return question_which(
        phrase,
        f"'{column.name}': in which unit is it measured?",
        "column",
        options,
        qid=f"unit_{column.name}"[:40],
    )


_SIGN = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "eq": "=", "ne": "<>"}


# Names of amounts, never a share of something: 20% of them is another shape.
AMOUNT_WORDS = frozenset(
    {"amount", "price", "balance", "total", "cost", "revenue", "salary", "value", "spend", "income", "sum"}
)


def percent_value(
    a: Any, index: SchemaIndex, table: Table, column: Column, value: float, op: str, phrase: str
) -> float | None:
    """20% as the column holds it: 0.2 for a fraction, 20 in percent; asked when neither its name, the glossary
    nor its known values say. None for a column of amounts (a price is no percentage)."""
    if set(column.tokens) & AMOUNT_WORDS:
        return None
    scale = _glossary_unit(a.glossary, table, column)
    if scale not in ("fraction", "percent"):
        scale = None
    if scale is None and set(column.tokens) & {"pct", "percent", "percentage"}:
        scale = "percent"
    if scale is None:
        scale = number_scale(column)
    if scale == "fraction":
        return round(value / 100, 6)
    if scale == "percent":
        return value
    options = []
    for unit, number in (("fraction", round(value / 100, 6)), ("percent", value)):
        mapping = _unit_mapping(index, table, column, unit, op, number)
        how = "as a fraction of 1" if unit == "fraction" else "in percent"
        options.append((f"{how}: {table.name}.{column.name} {_SIGN[op]} {number:g}", mapping))
    raise UnitQuestion(
        f"'{phrase}': {table.name}.{column.name} may hold 20% as 0.2 or as 20, and no value seen says which",
        question_which(
            phrase,
            f"'{column.name}': how does it hold a percentage?",
            "column",
            options,
            qid=f"scale_{column.name}"[:40],
        ),
    )


def is_unit_word(word: str) -> bool:
    return any(form in UNIT_WORDS for form in variants(word.lower()))
