"""When a table's rows happen, when two of its dates could say so: asked once, then known.

"Payments that failed last month" does not say whether the window is on `created_at` or `paid_at`, and
both say about as well when a payment happened. The planner asks, with those dates as the choices; the
answer is a glossary `column` mapping whose term is the table's own word ("payments") and whose column is
a date of that table. Such a term does not take the word (it still names the table) and it applies only
where the requirement does not name the date itself: "paid last month" still windows on `paid_at`.
Nothing here knows a particular database.
"""

from __future__ import annotations

from .schema_index import Column, Key, SchemaIndex, Table
from .vocabulary import tokenize, variants


def names_table(term: str, table: Table) -> bool:
    """Whether the words are the table's own name ("payments" for payments, "support tickets")."""
    words = [t.lower for t in tokenize(term)]
    name = list(table.tokens)
    return len(words) == len(name) and all(variants(w) & variants(n) for w, n in zip(words, name, strict=True))


def row_date_of(mapping: dict, key: Key | None, index: SchemaIndex) -> Column | None:
    """The date a glossary mapping says the rows of its table happen at, when its term is the table's own word."""
    table = index.tables.get(key) if key else None
    if mapping.get("kind") != "column" or table is None:
        return None
    column = table.columns.get(str(mapping.get("column") or ""))
    if column is None or not column.is_temporal or not names_table(str(mapping.get("term") or ""), table):
        return None
    return column
