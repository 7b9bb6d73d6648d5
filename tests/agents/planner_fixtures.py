"""Small customer databases for the planner tests: a retail/CRM one and a library one, plus an introspector.

The introspector mirrors roles.introspection's output shape (the contract) with SQLAlchemy's inspector,
so the planner is tested on exactly what the explorer hands it, without a Service row.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from roles.connectors.types import json_type_for_sa_type

RETAIL_DDL = """
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT, region TEXT NOT NULL,
                        country TEXT NOT NULL, created_at DATETIME NOT NULL);
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT NOT NULL, category TEXT NOT NULL, price NUMERIC(10, 2));
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
                     status TEXT NOT NULL, order_date DATETIME NOT NULL, total NUMERIC(12, 2) NOT NULL);
CREATE TABLE order_items (id INTEGER PRIMARY KEY, order_id INTEGER NOT NULL REFERENCES orders(id),
                          product_id INTEGER NOT NULL REFERENCES products(id), quantity INTEGER NOT NULL,
                          unit_price NUMERIC(10, 2) NOT NULL);
CREATE TABLE events (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
                     event_type TEXT NOT NULL, occurred_at DATETIME NOT NULL);
CREATE TABLE tickets (id INTEGER PRIMARY KEY, customer_id INTEGER NOT NULL REFERENCES customers(id),
                      priority TEXT NOT NULL, status TEXT NOT NULL, subject TEXT NOT NULL,
                      created_at DATETIME NOT NULL);
"""

LIBRARY_DDL = """
CREATE TABLE members (member_no INTEGER PRIMARY KEY, full_name TEXT NOT NULL, phone TEXT, city TEXT NOT NULL,
                      joined_on DATE NOT NULL);
CREATE TABLE books (isbn TEXT PRIMARY KEY, title TEXT NOT NULL, genre TEXT NOT NULL, pages INTEGER NOT NULL);
CREATE TABLE loans (loan_id INTEGER PRIMARY KEY, member_no INTEGER NOT NULL REFERENCES members(member_no),
                    isbn TEXT NOT NULL REFERENCES books(isbn), borrowed_at DATETIME NOT NULL, returned_at DATETIME,
                    fee NUMERIC(6, 2) NOT NULL);
"""


def _stamp(now: datetime, days_ago: float) -> str:
    return (now - timedelta(days=days_ago)).strftime("%Y-%m-%d %H:%M:%S")


def build_retail_sqlite(path: Path) -> Path:
    rng = random.Random(7)
    now = datetime.now(UTC).replace(tzinfo=None)
    conn = sqlite3.connect(path)
    conn.executescript(RETAIL_DDL)
    regions = {"EU": ["DE", "FR", "ES"], "US": ["US"], "APAC": ["JP", "AU"]}
    for cid in range(1, 41):
        region = rng.choice(sorted(regions))
        conn.execute(
            "INSERT INTO customers VALUES (?, ?, ?, ?, ?, ?)",
            (
                cid,
                f"Customer {cid}",
                f"c{cid}@example.com",
                region,
                rng.choice(regions[region]),
                _stamp(now, rng.randint(200, 900) + 0.5),
            ),
        )
    categories = ["books", "garden", "toys", "kitchen"]
    for pid in range(1, 21):
        conn.execute(
            "INSERT INTO products VALUES (?, ?, ?, ?)", (pid, f"Product {pid}", rng.choice(categories), 5 + pid)
        )
    item_id = 0
    for oid in range(1, 151):
        customer = rng.randint(1, 30)  # customers 31-40 never order
        status = rng.choice(["pending", "shipped", "delivered", "cancelled"])
        total = 0
        items = []
        for _ in range(rng.randint(1, 4)):
            item_id += 1
            product, quantity = rng.randint(1, 20), rng.randint(1, 5)
            price = 5 + product
            total += price * quantity
            items.append((item_id, oid, product, quantity, price))
        conn.execute(
            "INSERT INTO orders VALUES (?, ?, ?, ?, ?)",
            (oid, customer, status, _stamp(now, rng.randint(1, 700) + 0.5), total),
        )
        conn.executemany("INSERT INTO order_items VALUES (?, ?, ?, ?, ?)", items)
    for eid in range(1, 201):
        # customers 1-20 are active recently; 21-40 only long ago
        customer = rng.randint(1, 40)
        days = rng.randint(1, 60) if customer <= 20 else rng.randint(120, 400)
        conn.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?)",
            (eid, customer, rng.choice(["login", "page_view", "support_chat"]), _stamp(now, days + 0.5)),
        )
    for tid in range(1, 61):
        conn.execute(
            "INSERT INTO tickets VALUES (?, ?, ?, ?, ?, ?)",
            (
                tid,
                rng.randint(1, 40),
                rng.choice(["low", "medium", "high"]),
                rng.choice(["open", "closed"]),
                f"Ticket {tid}",
                _stamp(now, rng.randint(1, 500) + 0.5),
            ),
        )
    conn.commit()
    conn.close()
    return path


def build_library_sqlite(path: Path) -> Path:
    rng = random.Random(11)
    now = datetime.now(UTC).replace(tzinfo=None)
    conn = sqlite3.connect(path)
    conn.executescript(LIBRARY_DDL)
    for no in range(100, 125):
        conn.execute(
            "INSERT INTO members VALUES (?, ?, ?, ?, ?)",
            (
                no,
                f"Member {no}",
                f"555-{no}",
                rng.choice(["Leeds", "York", "Hull"]),
                (now - timedelta(days=rng.randint(100, 2000))).strftime("%Y-%m-%d"),
            ),
        )
    genres = ["fantasy", "history", "science", "poetry"]
    isbns = [f"978-{n:06d}" for n in range(30)]
    for isbn in isbns:
        conn.execute(
            "INSERT INTO books VALUES (?, ?, ?, ?)", (isbn, f"Book {isbn}", rng.choice(genres), rng.randint(80, 900))
        )
    for loan in range(1, 121):
        member = rng.randint(100, 124)
        days = rng.randint(1, 25) if member < 112 else rng.randint(45, 300)
        conn.execute(
            "INSERT INTO loans VALUES (?, ?, ?, ?, ?, ?)",
            (loan, member, rng.choice(isbns), _stamp(now, days + 0.5), None, rng.choice([0, 0.5, 1.0, 2.5])),
        )
    conn.commit()
    conn.close()
    return path


def introspect(url: str) -> dict:
    """The contract's schema shape for a database, read with SQLAlchemy's inspector."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            dialect = conn.dialect.name
            default_schema = {"sqlite": "main"}.get(dialect) or inspector.default_schema_name
            objects = []
            for name in inspector.get_table_names():
                pk = list(inspector.get_pk_constraint(name).get("constrained_columns") or [])
                columns = []
                for col in inspector.get_columns(name):
                    json_type, fmt = json_type_for_sa_type(col["type"])
                    columns.append(
                        {
                            "name": col["name"],
                            "type": str(col["type"]),
                            "json_type": json_type,
                            "format": fmt,
                            "nullable": bool(col.get("nullable", True)),
                            "default": None,
                            "primary_key": col["name"] in pk,
                            "enum": None,
                        }
                    )
                fks = [
                    {
                        "columns": list(fk["constrained_columns"]),
                        "ref_schema": fk.get("referred_schema") or default_schema,
                        "ref_table": fk["referred_table"],
                        "ref_columns": list(fk["referred_columns"]),
                    }
                    for fk in inspector.get_foreign_keys(name)
                ]
                count = conn.execute(sa.select(sa.func.count()).select_from(sa.table(name))).scalar()
                objects.append(
                    {
                        "schema": default_schema,
                        "name": name,
                        "kind": "table",
                        "columns": columns,
                        "primary_key": pk,
                        "foreign_keys": fks,
                        "indexes": [],
                        "row_count": count,
                    }
                )
            return {"engine": dialect, "default_schema": default_schema, "objects": objects}
    finally:
        engine.dispose()


def distinct_samples(url: str, schema: dict, *, limit: int = 20) -> dict:
    """What the explorer samples: distinct values of short text columns, per table."""
    engine = sa.create_engine(url)
    samples: dict[str, dict[str, list]] = {}
    try:
        with engine.connect() as conn:
            for obj in schema["objects"]:
                for col in obj["columns"]:
                    if col["json_type"] != "string" or col["format"] or col["primary_key"]:
                        continue
                    values = [
                        r[0]
                        for r in conn.execute(
                            sa.text(
                                f'SELECT DISTINCT "{col["name"]}" FROM "{obj["name"]}" ORDER BY 1 LIMIT {limit + 1}'
                            )
                        )
                    ]
                    if len(values) <= limit:
                        samples.setdefault(obj["name"], {})[col["name"]] = values
    finally:
        engine.dispose()
    return samples


def run(url: str, sql: str, params: dict | None = None) -> list[dict]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            result = conn.execute(sa.text(sql), params or {})
            return [dict(row._mapping) for row in result]
    finally:
        engine.dispose()
