"""The whole pipeline with the offline provider on the demo database, on SQLite and on PostgreSQL 15.

One requirement per shape the offline planner handles; each endpoint's SQL (run through the
endpoint runtime with its defaults) must return the rows of an independently written query.
Also: the learning effect, a column the Role may not see, and the rounds back to the implementer.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections import Counter
from datetime import date, datetime
from decimal import Decimal

import psycopg
import pytest
from psycopg.rows import dict_row

from agents.models import AgentExecution, AgentStatus
from agents.orchestrator import execution_run
from agents.providers.offline import OfflineProvider
from agents.services import execution_claim, execution_submit
from endpoints.models import GeneratedEndpoint
from endpoints.runtime import endpoint_run
from endpoints.services import endpoint_approve
from mcpservers.services import mcp_enable
from roles.demo import demo_build_postgres
from roles.demo.platform import demo_sales_analyst_permissions
from roles.models import Engine, Role, Service

from .conftest import _sqlite_permissions

PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
SCALE = 0.02
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def demo_pg_database():
    """A small demo database on the machine's PostgreSQL 15, uniquely named and dropped at the end."""
    name = f"nectar_pipeline_test_{uuid.uuid4().hex[:10]}"
    demo_build_postgres(url=f"{PG_SERVER}/{name}", scale=SCALE)
    yield name
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgres"])
def demo(request, org, owner, demo_sqlite_path):
    """(role, run_reference) for the Sales analyst Role on the demo database of one engine."""
    if request.param == "sqlite":
        service = Service.objects.create(organization=org, name="demo", engine=Engine.SQLITE, database=demo_sqlite_path)
        permissions = _sqlite_permissions()

        def reference(sql):
            connection = sqlite3.connect(demo_sqlite_path)
            connection.row_factory = sqlite3.Row
            try:
                return [dict(r) for r in connection.execute(sql.replace("{since_90}", "date('now', '-90 days')"))]
            finally:
                connection.close()

    else:
        name = request.getfixturevalue("demo_pg_database")
        service = Service.objects.create(
            organization=org,
            name="demo",
            engine=Engine.POSTGRESQL,
            host="127.0.0.1",
            port=5432,
            database=name,
            username="postgres",
        )
        permissions = demo_sales_analyst_permissions()

        def reference(sql):
            with psycopg.connect(f"{PG_SERVER}/{name}", row_factory=dict_row) as connection:
                return list(connection.execute(sql.replace("{since_90}", "CURRENT_DATE - 90")))

    role = Role.objects.create(
        organization=org, service=service, name="Sales analyst", permissions=permissions, created_by=owner
    )
    mcp_enable(role=role)
    role.refresh_from_db()
    return role, reference


def _generate(role, user, requirement, provider=None) -> AgentExecution:
    execution = execution_submit(user=user, role=role, requirement=requirement, enqueue=False)
    claimed = execution_claim(execution_id=execution.pk)
    execution_run(execution=claimed, provider=provider)
    claimed.refresh_from_db()
    return claimed


def _endpoint_rows(execution: AgentExecution, values: dict | None = None) -> tuple[GeneratedEndpoint, list[dict]]:
    """Every row of the endpoint's answer, page by page, as a client reads them."""
    assert execution.status == AgentStatus.COMPLETED, execution.status_reason
    endpoint = GeneratedEndpoint.objects.get(pk=execution.result["endpoint"]["id"])
    rows: list[dict] = []
    offset = 0
    while True:
        result = endpoint_run(endpoint=endpoint, values={**(values or {}), "offset": offset}, from_text=True)
        assert result.status == 200, result.body
        rows += result.body["results"]
        assert result.body["truncated"] is False
        if result.body["next_offset"] is None:
            return endpoint, rows
        offset = result.body["next_offset"]


def _norm(value):
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return round(float(value), 2)
    if isinstance(value, str):
        try:
            return round(float(value), 2)
        except ValueError:
            return value
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def _rows(rows: list[dict], columns: list[str]) -> Counter:
    return Counter(tuple(_norm(row[c]) for c in columns) for row in rows)


SHAPES = [
    # (requirement, independent query, columns compared[, parameters]): the endpoint's whole answer, every page
    ("Customers in the EU", "SELECT customer_id FROM customers WHERE region = 'EU'", ["customer_id"]),
    (
        "Order 42 with its items",
        "SELECT order_item_id, product_id, quantity FROM order_items WHERE order_id = 42",
        ["order_item_id", "product_id", "quantity"],
        {"order_id": "42"},
    ),
    (
        "Number of customers by region",
        "SELECT region, count(*) AS customer_count FROM customers GROUP BY region",
        ["region", "customer_count"],
    ),
    (
        "Top 10 products by quantity in the last 90 days",
        "SELECT i.product_id, sum(i.quantity) AS total_quantity FROM order_items i JOIN orders o "
        "ON o.order_id = i.order_id WHERE o.order_date >= {since_90} GROUP BY i.product_id "
        "ORDER BY total_quantity DESC, i.product_id LIMIT 10",
        ["product_id", "total_quantity"],
    ),
    (
        "Orders in the UK since 2026-01-01",
        "SELECT order_id FROM orders WHERE region = 'UK' AND order_date >= '2026-01-01'",
        ["order_id"],
    ),
    (
        "Orders of enterprise customers",
        "SELECT o.order_id FROM orders o JOIN customers c ON c.customer_id = o.customer_id "
        "WHERE c.segment = 'enterprise'",
        ["order_id"],
    ),
    (
        "Customers with no activity in the last 90 days",
        "SELECT c.customer_id FROM customers c WHERE NOT EXISTS (SELECT 1 FROM activity_events e "
        "WHERE e.customer_id = c.customer_id AND e.occurred_at >= {since_90})",
        ["customer_id"],
    ),
]


def test_each_shape_yields_an_endpoint_that_returns_the_rows_of_an_independent_query(demo, owner):
    role, reference = demo
    for requirement, sql, columns, *params in SHAPES:
        endpoint, rows = _endpoint_rows(_generate(role, owner, requirement), *params)
        expected = _rows(reference(sql), columns)
        got = _rows(rows, columns)
        assert expected, f"the independent query for {requirement!r} returned nothing"
        assert got == expected, f"{requirement!r}:\n{endpoint.sql}"
        assert endpoint.verdict == "verified", endpoint.verification


def test_a_second_similar_requirement_takes_fewer_steps_and_llm_calls(analyst_role, owner):
    first = _generate(analyst_role, owner, "Customers in the EU")
    endpoint, _rows_first = _endpoint_rows(first)
    # An approved, verified design is what the platform learns from.
    endpoint_approve(endpoint=endpoint, user=owner)
    second = _generate(analyst_role, owner, "Customers in the UK")
    _endpoint, rows = _endpoint_rows(second)
    assert rows and {r["region"] for r in rows} == {"UK"}
    before, after = first.performance_metrics, second.performance_metrics
    assert after["agent_steps"] < before["agent_steps"]
    assert after["llm_calls"] < before["llm_calls"]
    assert after["tool_calls"] < before["tool_calls"]


def test_a_column_the_role_cannot_see_is_never_silently_dropped_from_a_verified_endpoint(analyst_role, owner):
    execution = _generate(analyst_role, owner, "Customers in the EU with their phone")
    assert not GeneratedEndpoint.objects.filter(source_execution=execution, status="deployed").exists()
    if execution.status == AgentStatus.WAITING:
        assert any("phone" in q["phrase"] for q in execution.questions)
    else:
        assert execution.status == AgentStatus.COMPLETED, execution.status_reason
        endpoint = GeneratedEndpoint.objects.get(pk=execution.result["endpoint"]["id"])
        assert "phone" not in endpoint.sql.lower()
        assert endpoint.verdict == "needs_review"
        assert any("phone" in reason for reason in endpoint.verification["review_reasons"])


def test_revenue_over_orders_with_statuses_is_asked_about_not_guessed(analyst_role, owner):
    execution = _generate(analyst_role, owner, "Top 10 products by revenue in the last 90 days")
    assert execution.status == AgentStatus.WAITING, execution.status_reason
    assert any("revenue" in q["phrase"] for q in execution.questions)
    assert not GeneratedEndpoint.objects.filter(source_execution=execution).exists()


def test_a_requirement_in_words_the_database_does_not_have_is_asked_about_early(analyst_role, owner):
    execution = _generate(analyst_role, owner, "Customers whose favourite colour is teal")
    assert execution.status == AgentStatus.WAITING, execution.status_reason
    asked = " ".join(q["phrase"] for q in execution.questions)
    assert {"favourite", "colour", "teal"} & set(asked.split())
    tool_calls = sum(len(child.tools_invoked or []) for child in execution.children.all())
    assert tool_calls < 60
    assert not GeneratedEndpoint.objects.filter(source_execution=execution).exists()


class StricterTester(OfflineProvider):
    """The offline provider, with a tester that also wants the first page to hold at most 20 rows."""

    def _tester(self, context, messages, tool_names):
        text, structured, calls = super()._tester(context, messages, tool_names)
        case = {"name": "a short first page", "params": {}, "expect": {"status": 200, "max_rows": 20}}
        return text, {**structured, "cases": [*structured["cases"], case]}, calls


class FixingImplementer(StricterTester):
    """...and an implementer that, told about the failure, makes the query fit it."""

    def _implementer(self, context, messages, tool_names):
        text, structured, calls = super()._implementer(context, messages, tool_names)
        if context.get("failures"):
            structured = {**structured, "sql": structured["sql"] + " LIMIT 20", "notes": "fit the first page"}
        return text, structured, calls


def test_a_failing_test_goes_back_to_the_implementer_and_unfixed_stops_the_run_with_the_reason(analyst_role, owner):
    execution = _generate(analyst_role, owner, "Customers in the EU", provider=StricterTester())
    assert execution.status == AgentStatus.FAILED
    assert "a short first page" in execution.status_reason
    retries = [e.payload for e in execution.events.filter(kind="retry")]
    assert retries and all(r["phase"] == "implementation" for r in retries)


def test_an_implementation_that_changes_the_meaning_is_refused_by_the_meaning_tests(analyst_role, owner):
    execution = _generate(analyst_role, owner, "Customers in the EU", provider=FixingImplementer())
    # Cutting the list at 20 rows is not what "customers in the EU" means: the design goes back and stops.
    assert execution.status == AgentStatus.FAILED
    assert not GeneratedEndpoint.objects.filter(source_execution=execution, status="deployed").exists()
