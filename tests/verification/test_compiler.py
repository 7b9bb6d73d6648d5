"""One interpretation, the same rows on SQLite, PostgreSQL and MariaDB, in both shapes, as a hand-written query."""

from __future__ import annotations

from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from endpoints.compiler import Catalog, CompileError, interpretation_compile, measure_check
from endpoints.interpretation import interpretation_parse
from tests.verification.retail_engines import retail_databases, schema_of

ENGINES = ("sqlite", "postgres", "mysql")


@pytest.fixture(scope="module")
def retail(tmp_path_factory):
    with retail_databases(tmp_path_factory.mktemp("retail")) as urls:
        engines = {name: sa.create_engine(url) for name, url in urls.items()}
        catalogs = {name: Catalog(schema_of(url)) for name, url in urls.items()}
        yield {"engines": engines, "catalogs": catalogs}
        for engine in engines.values():
            engine.dispose()


def _rows(engine, sql: str, params: dict | None = None) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.text(sql), params or {})]


def _norm(value):
    if isinstance(value, Decimal | float):
        return round(float(value), 2)
    if hasattr(value, "isoformat"):
        return value.isoformat()[:10]
    return value


def _bag(rows: list[dict], columns: list[str]) -> Counter:
    return Counter(tuple(_norm(r[c]) for c in columns) for r in rows)


CUSTOMERS = {"alias": "c", "object": "customers"}
ORDERS_OF_C = {"alias": "o", "object": "orders", "join": {"to": "c", "on": [["customer_id", "id"]]}}


def _days_ago(days: int):
    """A date the reference binds, taken when the test runs: the database's CURRENT_DATE is read then too
    (a date taken at import would be yesterday's for a run that crosses midnight)."""
    return lambda: date.today() - timedelta(days=days)


CASES = [
    (
        "top customers by revenue, cancelled orders excluded",
        {
            "entities": [CUSTOMERS, ORDERS_OF_C],
            "group_by": [{"column": {"entity": "c", "column": "id"}}],
            "select": [{"column": {"entity": "c", "column": "name"}}],
            "measures": [{"id": "revenue", "func": "sum", "column": {"entity": "o", "column": "total"}}],
            "filters": [{"column": {"entity": "o", "column": "status"}, "op": "ne", "value": "cancelled"}],
            "order_by": [{"measure": "revenue", "direction": "desc"}],
            "limit": {"n": 5},
        },
        "SELECT c.id, c.name, SUM(o.total) AS revenue FROM customers c JOIN orders o ON o.customer_id = c.id "
        "WHERE o.status <> 'cancelled' GROUP BY c.id, c.name ORDER BY revenue DESC, c.id LIMIT 5",
        {},
        ["id", "name", "revenue"],
    ),
    (
        "customers with their number of orders, tickets and spend (two facts, no double counting)",
        {
            "entities": [
                CUSTOMERS,
                {"alias": "o", "object": "orders", "join": {"to": "c", "on": [["customer_id", "id"]], "kind": "left"}},
                {"alias": "t", "object": "tickets", "join": {"to": "c", "on": [["customer_id", "id"]], "kind": "left"}},
            ],
            "group_by": [{"column": {"entity": "c", "column": "id"}}],
            "measures": [
                {"id": "orders", "func": "count", "entity": "o"},
                {"id": "tickets", "func": "count", "entity": "t"},
                {"id": "spend", "func": "sum", "column": {"entity": "o", "column": "total"}},
            ],
        },
        "SELECT c.id, (SELECT COUNT(*) FROM orders o WHERE o.customer_id = c.id) AS orders, "
        "(SELECT COUNT(*) FROM tickets t WHERE t.customer_id = c.id) AS tickets, "
        "(SELECT COALESCE(SUM(o.total), 0) FROM orders o WHERE o.customer_id = c.id) AS spend FROM customers c",
        {},
        ["id", "orders", "tickets", "spend"],
    ),
    (
        "customers who never placed an order",
        {
            "entities": [CUSTOMERS],
            "select": [{"column": {"entity": "c", "column": "id"}}, {"column": {"entity": "c", "column": "name"}}],
            "exists": [
                {
                    "negated": True,
                    "from": "c",
                    "entities": [
                        {"alias": "o", "object": "orders", "join": {"to": "c", "on": [["customer_id", "id"]]}}
                    ],
                }
            ],
        },
        "SELECT id, name FROM customers WHERE id NOT IN (SELECT customer_id FROM orders)",
        {},
        ["id", "name"],
    ),
    (
        "revenue per month and product category in the last 365 days",
        {
            "entities": [
                {"alias": "i", "object": "order_items"},
                {"alias": "o", "object": "orders", "join": {"to": "i", "on": [["id", "order_id"]]}},
                {"alias": "p", "object": "products", "join": {"to": "i", "on": [["id", "product_id"]]}},
            ],
            "group_by": [
                {"column": {"entity": "o", "column": "order_date"}, "bucket": "month"},
                {"column": {"entity": "p", "column": "category"}},
            ],
            "measures": [
                {
                    "id": "revenue",
                    "func": "sum",
                    "column": {"entity": "i", "column": "quantity"},
                    "times": {"entity": "i", "column": "unit_price"},
                }
            ],
            "windows": [
                {
                    "column": {"entity": "o", "column": "order_date"},
                    "start": {"relative": {"amount": -365, "unit": "day"}},
                }
            ],
        },
        None,  # compared across engines and shapes only (month labels are engine functions)
        {},
        ["month", "category", "revenue"],
    ),
    (
        "customers whose activity dropped: the last 90 days against the 90 before",
        {
            "entities": [
                CUSTOMERS,
                {"alias": "e", "object": "events", "join": {"to": "c", "on": [["customer_id", "id"]], "kind": "left"}},
            ],
            "group_by": [{"column": {"entity": "c", "column": "id"}}],
            "measures": [
                {
                    "id": "recent",
                    "func": "count",
                    "entity": "e",
                    "window": {
                        "column": {"entity": "e", "column": "occurred_at"},
                        "start": {"relative": {"amount": -90, "unit": "day"}},
                    },
                },
                {
                    "id": "before",
                    "func": "count",
                    "entity": "e",
                    "window": {
                        "column": {"entity": "e", "column": "occurred_at"},
                        "start": {"relative": {"amount": -180, "unit": "day"}},
                        "end": {"relative": {"amount": -90, "unit": "day"}},
                    },
                },
            ],
            "having": [{"measure": "recent", "op": "lt", "other": "before"}],
        },
        "SELECT c.id, (SELECT COUNT(*) FROM events e WHERE e.customer_id = c.id AND e.occurred_at >= :d90) AS recent, "
        "(SELECT COUNT(*) FROM events e WHERE e.customer_id = c.id AND e.occurred_at >= :d180 "
        "AND e.occurred_at < :d90) AS before_ FROM customers c",
        {"d90": _days_ago(90), "d180": _days_ago(180)},
        ["id", "recent", "before"],
    ),
    (
        "tickets of a given priority created since a date",
        {
            "entities": [{"alias": "t", "object": "tickets"}],
            "select": [{"column": {"entity": "t", "column": "id"}}, {"column": {"entity": "t", "column": "priority"}}],
            "filters": [{"column": {"entity": "t", "column": "priority"}, "op": "eq", "param": "priority"}],
            "windows": [{"column": {"entity": "t", "column": "created_at"}, "start": {"param": "since"}}],
            "parameters": [{"name": "priority", "required": True}, {"name": "since", "type": "date", "required": True}],
        },
        "SELECT id, priority FROM tickets WHERE priority = :priority AND created_at >= :since",
        {"priority": "high", "since": _days_ago(200)},
        ["id", "priority"],
    ),
    (
        "customers with more than 5 orders",
        {
            "entities": [CUSTOMERS, ORDERS_OF_C],
            "group_by": [{"column": {"entity": "c", "column": "id"}}],
            "measures": [{"id": "orders", "func": "count", "entity": "o"}],
            "having": [{"measure": "orders", "op": "gt", "value": 5}],
        },
        "SELECT c.id, COUNT(*) AS orders FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id "
        "HAVING COUNT(*) > 5",
        {},
        ["id", "orders"],
    ),
    (
        "customers who bought the same product more than once",
        {
            "entities": [CUSTOMERS],
            "select": [{"column": {"entity": "c", "column": "id"}}, {"column": {"entity": "c", "column": "name"}}],
            "exists": [
                {
                    "from": "c",
                    "entities": [
                        {"alias": "o", "object": "orders", "join": {"to": "c", "on": [["customer_id", "id"]]}},
                        {"alias": "i", "object": "order_items", "join": {"to": "o", "on": [["order_id", "id"]]}},
                    ],
                    "repeated": {"per": [{"entity": "i", "column": "product_id"}], "op": "gt", "value": 1},
                }
            ],
        },
        "SELECT id, name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o JOIN order_items i ON i.order_id = o.id "
        "WHERE o.customer_id = c.id GROUP BY i.product_id HAVING COUNT(*) > 1)",
        {},
        ["id", "name"],
    ),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("name", "data", "reference", "ref_params", "columns"), CASES, ids=[c[0] for c in CASES])
def test_an_interpretation_returns_the_rows_of_its_hand_written_query_on_every_engine(
    retail, engine, name, data, reference, ref_params, columns
):
    interp = interpretation_parse(data)
    db = retail["engines"][engine]
    ref_params = {k: v() if callable(v) else v for k, v in ref_params.items()}
    shapes = {}
    for shape in ("primary", "alternate"):
        compiled = interpretation_compile(interp, catalog=retail["catalogs"][engine], dialect=engine, shape=shape)
        params = {k: v.get("default") for k, v in compiled.parameters.get("properties", {}).items()}
        params.update({k: v for k, v in ref_params.items() if k in params})
        if engine == "sqlite":
            params = {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in params.items()}
        shapes[shape] = _rows(db, compiled.sql, params)
        assert [c["name"] for c in compiled.columns] == columns
    assert _bag(shapes["primary"], columns) == _bag(shapes["alternate"], columns)
    assert shapes["primary"], "the case must select some rows to mean anything"
    if reference is not None:
        ref_params = {
            k: v.isoformat() if engine == "sqlite" and hasattr(v, "isoformat") else v for k, v in ref_params.items()
        }
        ref_rows = _rows(db, reference, ref_params)
        if "before_" in reference:
            ref_rows = [
                {"id": r["id"], "recent": r["recent"], "before": r["before_"]}
                for r in ref_rows
                if r["recent"] < r["before_"]
            ]
        assert _bag(shapes["primary"], columns) == _bag(ref_rows, columns)


@pytest.mark.parametrize("engine", ENGINES)
def test_the_same_interpretation_gives_the_same_rows_on_every_engine(retail, engine):
    interp = interpretation_parse(CASES[3][1])
    results = {}
    for name in ("sqlite", engine):
        compiled = interpretation_compile(interp, catalog=retail["catalogs"][name], dialect=name)
        results[name] = _bag(_rows(retail["engines"][name], compiled.sql), ["month", "category", "revenue"])
    assert results["sqlite"] == results[engine]


def test_a_ranked_result_is_ordered_by_its_measure_with_stable_ties(retail):
    interp = interpretation_parse(CASES[0][1])
    compiled = interpretation_compile(interp, catalog=retail["catalogs"]["postgres"], dialect="postgres")
    rows = _rows(retail["engines"]["postgres"], compiled.sql)
    revenues = [float(r["revenue"]) for r in rows]
    assert revenues == sorted(revenues, reverse=True)
    assert compiled.order == [("revenue", "desc")]


def test_each_measure_recomputed_for_its_group_agrees_with_the_query(retail):
    for _, data, *_ in CASES[:2]:
        interp = interpretation_parse(data)
        catalog, db = retail["catalogs"]["postgres"], retail["engines"]["postgres"]
        compiled = interpretation_compile(interp, catalog=catalog, dialect="postgres")
        for row in _rows(db, compiled.sql)[:5]:
            for m in interp.measures:
                sql, binds = measure_check(interp, catalog=catalog, dialect="postgres", measure_id=m.id, row=row)
                assert _norm(_rows(db, sql, binds)[0][m.id]) == _norm(row[m.id])


def test_a_sum_that_a_joined_branch_would_multiply_is_refused(retail):
    interp = interpretation_parse(
        {
            "entities": [
                {"alias": "o", "object": "orders"},
                {"alias": "i", "object": "order_items", "join": {"to": "o", "on": [["order_id", "id"]]}},
            ],
            "group_by": [{"column": {"entity": "i", "column": "product_id"}}],
            "measures": [{"id": "value", "func": "sum", "column": {"entity": "o", "column": "total"}}],
        }
    )
    with pytest.raises(CompileError, match="once per matching row of order_items"):
        interpretation_compile(interp, catalog=retail["catalogs"]["sqlite"], dialect="sqlite")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"measures": [{"id": "x", "func": "sum", "column": {"entity": "c", "column": "name"}}]}, "not a number"),
        (
            {
                "windows": [
                    {
                        "column": {"entity": "c", "column": "region"},
                        "start": {"relative": {"amount": -1, "unit": "day"}},
                    }
                ]
            },
            "not a date",
        ),
        ({"select": [{"column": {"entity": "c", "column": "phone_number"}}]}, "no column 'phone_number'"),
    ],
)
def test_a_design_that_cannot_mean_anything_is_refused_in_plain_words(retail, change, message):
    interp = interpretation_parse({"entities": [CUSTOMERS], **change})
    with pytest.raises(CompileError, match=message):
        interpretation_compile(interp, catalog=retail["catalogs"]["sqlite"], dialect="sqlite")


def test_an_object_the_role_cannot_read_is_unknown_to_the_compiler(retail):
    schema = schema_of(str(retail["engines"]["sqlite"].url))
    catalog = Catalog(schema, readable={"orders": None})
    with pytest.raises(CompileError, match="not a table or view this role can read"):
        interpretation_compile(interpretation_parse({"entities": [CUSTOMERS]}), catalog=catalog, dialect="sqlite")


def test_parameters_get_a_json_schema_and_required_keys_have_no_default(retail):
    interp = interpretation_parse(CASES[5][1])
    compiled = interpretation_compile(interp, catalog=retail["catalogs"]["postgres"], dialect="postgres")
    props = compiled.parameters["properties"]
    assert props["since"]["format"] == "date"
    assert "default" not in props["priority"]
    assert compiled.parameters["required"] == ["priority", "since"]
