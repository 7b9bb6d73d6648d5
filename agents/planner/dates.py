"""When a row of a table happened: the date column that says so, on the table or a parent it belongs to."""

from __future__ import annotations

from typing import TYPE_CHECKING

from learning.grammar import is_grammatical

from .schema_index import Column, SchemaIndex, Table
from .vocabulary import singular, variants

if TYPE_CHECKING:  # pragma: no cover
    from .planner import Analysis


def _named_words(a: Analysis) -> set[str]:
    """The requirement's words that may name a date column: not those of its grammar ("the last 30 days")."""
    return {v for t in a.tokens if not is_grammatical(t.lower) for v in variants(t.lower)}


CHANGE_WORDS = frozenset(["updated", "update", "modified", "deleted", "changed", "birth", "dob", "expires", "expiry"])
# Dates that end a row's life rather than start it: a ticket's age runs from when it was opened, not closed.
END_WORDS = frozenset(["closed", "resolved", "finished", "completed", "cancelled", "canceled", "ended", "end"])
CREATION_WORDS = frozenset(
    ["created", "occurred", "date", "time", "timestamp", "placed", "happened", "logged", "opened", "submitted"]
)


def date_column(table: Table, a: Analysis) -> Column | None:
    ranked = date_candidates(table, a)
    return ranked[0][1] if ranked else None


def date_candidates(table: Table, a: Analysis) -> list[tuple[float, Column]]:
    """The table's dates with how surely each says when a row happened, surest first."""
    words = _named_words(a)
    found = []
    for column in table.columns.values():
        if not column.is_temporal or column.name.lower() in a.avoid_columns:
            continue
        tokens = set(column.tokens)
        score = 0.0
        if tokens & words:
            score += 2.0
        if tokens & set(table.tokens) or tokens & {singular(table.name)}:
            score += 1.0
        if tokens & CREATION_WORDS:
            score += 0.8  # when the row came to be
        elif tokens & {"at", "on", "start", "started"}:
            score += 0.5
        if tokens & (CHANGE_WORDS | {"due", "end", "ended"}):
            score -= 1.5
        elif tokens & END_WORDS and not tokens & words:
            score -= 1.5  # when the row's life ended, unless the requirement names it ("closed last week")
        found.append((score, -list(table.columns).index(column.name), column))
    found.sort(key=lambda c: (c[0], c[1]), reverse=True)
    return [(score, column) for score, _, column in found]


def date_score(table: Table, column: Column, a: Analysis) -> float:
    """How surely a date tells when a row of `table` happened (the same scoring as date_column)."""
    words = _named_words(a)
    tokens = set(column.tokens)
    score = 2.0 if tokens & words else 0.0
    if tokens & set(table.tokens) or tokens & {singular(table.name)}:
        score += 1.0
    if tokens & {"created", "occurred", "date", "time", "timestamp", "placed", "happened", "logged"}:
        score += 0.8
    return score


def fact_date(a: Analysis, index: SchemaIndex, fact: Table) -> tuple[Table, Column] | None:
    """The date of a fact row: its own, else that of a parent it belongs to (an order line's order date)."""
    column = date_column(fact, a)
    if column is not None:
        return fact, column
    # A line's date is its header's: the parent named in the fact's own name (order_items -> orders) first,
    # then the parent date that best says when something happened (an order date over a product's creation).
    frontier = [fact]
    for _ in range(2):
        found, nxt = [], []
        for table in frontier:
            for fk in table.foreign_keys:
                parent = index.tables[fk.parent]
                column = date_column(parent, a)
                nxt.append(parent)
                if column is not None:
                    header = singular(parent.name) in {singular(t) for t in fact.tokens} | set(fact.tokens)
                    found.append((header, date_score(parent, column, a), parent.name, parent, column))
        if found:
            found.sort(key=lambda f: (not f[0], -f[1], f[2]))
            return found[0][3], found[0][4]
        frontier = nxt
    return None
