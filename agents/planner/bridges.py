"""Rows of another table counted through the entity's own lines: "orders with more than four different products".

The products of an order are not its children: they are the parents of its lines (order -> order lines ->
product). Counting them per order counts the distinct product keys of the order's lines, so a product on
two lines counts once. The entity must have exactly one child table with a key to the counted table;
two such tables (an order's lines and its returns) could each be meant, and the reading is declined.
Nothing here knows a particular database: only foreign keys.
"""

from __future__ import annotations

from .schema_index import ForeignKey, SchemaIndex, Table


def bridge_to(index: SchemaIndex, entity: Table, far: Table) -> tuple[Table, ForeignKey] | None:
    """The one child table of `entity` with a single-column key to `far`, and that key; None when not one."""
    found = []
    for down in index.children(entity.key):
        child = index.tables.get(down.child)
        if child is None or child is far:
            continue
        ups = [fk for fk in child.foreign_keys if fk.parent == far.key and len(fk.child_columns) == 1]
        if len(ups) == 1:
            found.append((child, ups[0]))
    return found[0] if len(found) == 1 else None
