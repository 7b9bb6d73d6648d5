"""The offline planner designs correct SQL from any introspected schema, one requirement per shape."""

from __future__ import annotations

import json

import pytest

from agents.planner import PlanningError, plan_requirement
from agents.planner.sql import sql_parses

from .planner_fixtures import build_library_sqlite, build_retail_sqlite, distinct_samples, introspect, run


@pytest.fixture(scope="module")
def retail(tmp_path_factory):
    path = build_retail_sqlite(tmp_path_factory.mktemp("retail") / "retail.db")
    url = f"sqlite:///{path}"
    schema = introspect(url)
    return url, schema, distinct_samples(url, schema)


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    path = build_library_sqlite(tmp_path_factory.mktemp("library") / "library.db")
    url = f"sqlite:///{path}"
    schema = introspect(url)
    return url, schema, distinct_samples(url, schema)


# Revenue is a business definition: with order statuses in the data, the planner asks, and these are the answers.
ORDER_REVENUE = {"term": "revenue", "kind": "measure", "func": "sum", "object": "orders", "column": "total"}
LINE_REVENUE = {
    "term": "revenue",
    "kind": "measure",
    "func": "sum",
    "object": "order_items",
    "column": "unit_price",
    "times": "quantity",
}


def _plan(db, requirement, **kwargs):
    _, schema, samples = db
    return plan_requirement(requirement=requirement, schema=schema, dialect="sqlite", samples=samples, **kwargs)


def _rows(db, plan, columns):
    rows = run(db[0], plan.sql, plan.defaults())
    return [tuple(row[c] for c in columns) for row in rows]


def _expected(db, sql, params=None):
    return [tuple(row.values()) for row in run(db[0], sql, params)]


def test_list_and_filter_matches_a_sampled_value_to_its_column(retail):
    plan = _plan(retail, "customers in the EU")
    assert plan.shape == ("list",)
    assert plan.defaults()["region"] == "EU"
    assert "email" not in [c["name"] for c in plan.response_columns]  # PII left out unless asked for
    expected = _expected(retail, "SELECT id, name, country FROM customers WHERE region = 'EU' ORDER BY id")
    assert expected and _rows(retail, plan, ["id", "name", "country"]) == expected


def test_a_plain_word_beside_a_column_is_confirmed_before_it_filters(retail):
    _url, schema, _ = retail
    with pytest.raises(PlanningError) as caught:
        plan_requirement(requirement="orders with status shipped", schema=schema, dialect="sqlite")
    [question] = caught.value.questions
    assert question.kind == "confirm" and question.text == "'status shipped': orders.status = 'shipped'?"
    answer = question.choices[0].mapping
    plan = plan_requirement(
        requirement="orders with status shipped", schema=schema, dialect="sqlite", glossary=[answer]
    )
    assert plan.parameters["properties"]["status"]["default"] == "shipped"
    expected = _expected(retail, "SELECT id, total FROM orders WHERE status = 'shipped' ORDER BY id LIMIT 100")
    assert expected and _rows(retail, plan, ["id", "total"]) == expected


def test_lookup_by_key_with_its_items_joins_the_child_table(retail):
    plan = _plan(retail, "order by id with its items")
    assert set(plan.shape) == {"lookup", "join"}
    assert plan.parameters["properties"]["id"]["type"] == "integer"
    expected = _expected(
        retail,
        "SELECT o.id, i.product_id, i.quantity FROM orders o JOIN order_items i ON i.order_id = o.id "
        "WHERE o.id = 1 ORDER BY i.id",
    )
    assert expected and _rows(retail, plan, ["id", "product_id", "quantity"]) == expected


def test_monthly_revenue_by_region_aggregates_along_the_foreign_key(retail):
    plan = _plan(retail, "monthly revenue by region", glossary=[ORDER_REVENUE])
    assert set(plan.shape) == {"aggregate", "join"}
    assert {name for _, name in plan.objects} == {"orders", "customers"}
    expected = _expected(
        retail,
        "SELECT strftime('%Y-%m', o.order_date) AS m, c.region, SUM(o.total) FROM orders o "
        "JOIN customers c ON c.id = o.customer_id GROUP BY m, c.region ORDER BY m, c.region LIMIT 100",
    )
    assert _rows(retail, plan, ["month", "region", "revenue"]) == expected


def test_number_of_tickets_per_priority_counts_by_group(retail):
    plan = _plan(retail, "number of tickets per priority")
    assert plan.shape == ("aggregate",)
    expected = _expected(retail, "SELECT priority, COUNT(*) FROM tickets GROUP BY priority ORDER BY priority")
    assert _rows(retail, plan, ["priority", "ticket_count"]) == expected


def test_top_products_by_revenue_multiplies_price_by_quantity(retail):
    plan = _plan(retail, "top 10 products by revenue", glossary=[LINE_REVENUE])
    assert "top_n" in plan.shape and plan.defaults()["top_n"] == 10
    expected = _expected(
        retail,
        "SELECT p.id, SUM(i.unit_price * i.quantity) AS r FROM order_items i JOIN products p ON p.id = i.product_id "
        "GROUP BY p.id ORDER BY r DESC, p.id LIMIT 10",
    )
    assert _rows(retail, plan, ["product_id", "revenue"]) == expected


@pytest.mark.parametrize(
    ("requirement", "condition"),
    [
        ("orders in the last 90 days", "order_date >= date('now', '-90 days')"),
        ("orders this year", "order_date >= date('now', 'start of year')"),
        ("orders since 2024-01-01", "order_date >= '2024-01-01'"),
        (
            "orders last quarter",
            "order_date >= date('now', 'start of month', '-' || ((CAST(strftime('%m', 'now') AS INTEGER) - 1) % 3) "
            "|| ' months', '-3 months') AND order_date < date('now', 'start of month', '-' || "
            "((CAST(strftime('%m', 'now') AS INTEGER) - 1) % 3) || ' months')",
        ),
    ],
)
def test_time_windows_filter_the_entity_date_column(retail, requirement, condition):
    plan = _plan(retail, requirement)
    assert "time_window" in plan.shape
    expected = _expected(retail, f"SELECT id, order_date FROM orders WHERE {condition} ORDER BY id LIMIT 100")
    assert _rows(retail, plan, ["id", "order_date"]) == expected


def test_join_brings_the_parent_label_onto_each_row(retail):
    plan = _plan(retail, "orders with customer name")
    assert set(plan.shape) == {"list", "join"}
    expected = _expected(
        retail, "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer_id ORDER BY o.id LIMIT 100"
    )
    assert _rows(retail, plan, ["id", "customer_name"]) == expected


def test_no_activity_since_is_an_anti_join_on_the_activity_table(retail):
    plan = _plan(retail, "customers with no activity in the last 90 days")
    assert "no_activity_since" in plan.shape
    assert ("main", "events") in plan.objects
    assert "NOT EXISTS" in plan.sql
    expected = _expected(
        retail,
        "SELECT id FROM customers c WHERE id NOT IN (SELECT customer_id FROM events "
        "WHERE occurred_at >= date('now', '-90 days')) ORDER BY id",
    )
    assert expected and _rows(retail, plan, ["id"]) == expected


def test_every_shape_composes_parsable_sql_for_postgres_and_mysql(retail):
    _, schema, samples = retail
    for requirement in (
        "customers in the EU",
        "order by id with its items",
        "monthly revenue by region",
        "top 10 products by revenue",
        "orders last quarter",
        "orders in the last 6 months",
        "customers with no activity in the last 90 days",
    ):
        for dialect in ("postgres", "mysql"):
            glossary = [LINE_REVENUE if "products" in requirement else ORDER_REVENUE]
            plan = plan_requirement(
                requirement=requirement, schema=schema, dialect=dialect, samples=samples, glossary=glossary
            )
            assert sql_parses(plan.sql, dialect), (requirement, dialect, plan.sql)


def test_a_different_schema_is_planned_from_its_own_names(library):
    plan = _plan(library, "members with no loans in the last 30 days")
    expected = _expected(
        library,
        "SELECT member_no FROM members WHERE member_no NOT IN (SELECT member_no FROM loans "
        "WHERE borrowed_at >= date('now', '-30 days')) ORDER BY member_no",
    )
    assert expected and _rows(library, plan, ["member_no"]) == expected
    assert "phone" not in [c["name"] for c in plan.response_columns]

    plan = _plan(library, "number of loans per genre")
    expected = _expected(
        library,
        "SELECT b.genre, COUNT(*) FROM loans l JOIN books b ON b.isbn = l.isbn GROUP BY b.genre ORDER BY b.genre",
    )
    assert _rows(library, plan, ["genre", "loan_count"]) == expected

    plan = _plan(library, "top 5 books by number of loans")
    expected = _expected(
        library,
        "SELECT b.isbn, COUNT(*) AS n FROM loans l JOIN books b ON b.isbn = l.isbn GROUP BY b.isbn "
        "ORDER BY n DESC, b.isbn LIMIT 5",
    )
    assert _rows(library, plan, ["book_isbn", "loan_count"]) == expected

    plan = _plan(library, "members in Leeds")
    expected = _expected(library, "SELECT member_no FROM members WHERE city = 'Leeds' ORDER BY member_no")
    assert _rows(library, plan, ["member_no"]) == expected


@pytest.mark.parametrize(
    ("requirement", "why"),
    [
        ("predict which customers will churn next month", "it asks for a prediction"),
        ("show me the weather in Paris", "I don't know what 'weather'"),
        ("delete cancelled orders", "it asks for a write"),
    ],
)
def test_a_requirement_beyond_the_planner_is_declined_in_plain_words(retail, requirement, why):
    with pytest.raises(PlanningError) as caught:
        _plan(retail, requirement)
    message = str(caught.value)
    assert why in message
    assert not any(word in message.lower() for word in ("llm", "language model", "architect", "offline planner"))


def test_a_matching_success_pattern_is_reused_in_fewer_steps(retail):
    first = _plan(retail, "customers in the EU")
    memory = {"id": "m-1", "type": "SUCCESS_PATTERN", "content": json.dumps(first.memory_content())}
    second = _plan(retail, "customers in the US", memories=[memory])
    assert second.reused_memory_id == "m-1"
    assert second.steps < first.steps and second.steps_saved >= 1
    assert second.defaults()["region"] == "US"
    expected = _expected(retail, "SELECT id FROM customers WHERE region = 'US' ORDER BY id")
    assert expected and _rows(retail, second, ["id"]) == expected

    unrelated = _plan(retail, "number of tickets per priority", memories=[memory])
    assert unrelated.reused_memory_id is None


def test_an_anti_pattern_steers_the_design_away(retail):
    plain = _plan(retail, "orders with customer name")
    assert plain.defaults()["top_n"] == 100
    warned = _plan(
        retail,
        "orders with customer name",
        memories=[
            {"id": "a-1", "type": "ANTI_PATTERN", "content": "Rejected: unbounded query on table orders"},
            {"id": "a-2", "type": "ANTI_PATTERN", "content": json.dumps({"reason": "exposes column total"})},
        ],
    )
    assert warned.parameters["properties"]["top_n"]["maximum"] < plain.parameters["properties"]["top_n"]["maximum"]
    assert warned.defaults()["top_n"] < 100
    assert "total" in [c["name"] for c in plain.response_columns]
    assert "total" not in [c["name"] for c in warned.response_columns]
    assert any("anti-pattern" in step for step in warned.rationale)


def test_grants_hide_tables_and_columns_the_role_cannot_read(retail):
    _, schema, samples = retail
    grants = [{"objectName": "customers", "schema": "main", "actions": ["SELECT"], "columns": {"deny": ["country"]}}]
    plan = plan_requirement(
        requirement="customers in the EU", schema=schema, grants=grants, dialect="sqlite", samples=samples
    )
    assert "country" not in plan.sql
    with pytest.raises(PlanningError):
        plan_requirement(requirement="orders with status shipped", schema=schema, grants=grants, dialect="sqlite")
