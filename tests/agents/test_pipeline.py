"""The whole pipeline with the offline provider on the demo database, on SQLite and on PostgreSQL 15.

One requirement per shape the offline planner handles; each endpoint's SQL (run through the
endpoint runtime with its defaults) must return the rows of an independently written query.
Also: the learning effect, a column the Role may not see, and the implementer's fix round.
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


def _endpoint_rows(execution: AgentExecution) -> tuple[GeneratedEndpoint, list[dict]]:
    assert execution.status == AgentStatus.COMPLETED, execution.status_reason
    endpoint = GeneratedEndpoint.objects.get(pk=execution.result["endpoint"]["id"])
    result = endpoint_run(endpoint=endpoint, values={}, from_text=True)
    assert result.status == 200, result.body
    return endpoint, result.body["results"]


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
    # (requirement, independent query, columns compared, whole answer or a page of a longer list)
    ("Customers in the EU", "SELECT customer_id FROM customers WHERE region = 'EU'", ["customer_id"], "subset"),
    (
        "Order 42 with its items",
        "SELECT order_item_id, product_id, quantity FROM order_items WHERE order_id = 42",
        ["order_item_id", "product_id", "quantity"],
        "all",
    ),
    (
        "Number of customers by region",
        "SELECT region, count(*) AS customer_count FROM customers GROUP BY region",
        ["region", "customer_count"],
        "all",
    ),
    (
        "Top 10 products by quantity in the last 90 days",
        "SELECT i.product_id, sum(i.quantity) AS total_quantity FROM order_items i JOIN orders o "
        "ON o.order_id = i.order_id WHERE o.order_date >= {since_90} GROUP BY i.product_id "
        "ORDER BY total_quantity DESC, i.product_id LIMIT 10",
        ["product_id", "total_quantity"],
        "all",
    ),
    (
        "Orders in the UK since 2026-01-01",
        "SELECT order_id FROM orders WHERE region = 'UK' AND order_date >= '2026-01-01'",
        ["order_id"],
        "subset",
    ),
    (
        "Orders of enterprise customers",
        "SELECT o.order_id FROM orders o JOIN customers c ON c.customer_id = o.customer_id "
        "WHERE c.segment = 'enterprise'",
        ["order_id"],
        "subset",
    ),
    (
        "Customers with no activity in the last 90 days",
        "SELECT c.customer_id FROM customers c WHERE NOT EXISTS (SELECT 1 FROM activity_events e "
        "WHERE e.customer_id = c.customer_id AND e.occurred_at >= {since_90})",
        ["customer_id"],
        "subset",
    ),
]


def test_each_shape_yields_an_endpoint_that_returns_the_rows_of_an_independent_query(demo, owner):
    role, reference = demo
    for requirement, sql, columns, mode in SHAPES:
        endpoint, rows = _endpoint_rows(_generate(role, owner, requirement))
        expected = _rows(reference(sql), columns)
        got = _rows(rows, columns)
        assert expected, f"the independent query for {requirement!r} returned nothing"
        if mode == "all":
            assert got == expected, f"{requirement!r}:\n{endpoint.sql}"
        else:
            top_n = endpoint.parameters["properties"]["top_n"]["default"]
            assert not got - expected, f"{requirement!r} returned rows outside the answer:\n{endpoint.sql}"
            assert sum(got.values()) == min(sum(expected.values()), top_n), f"{requirement!r}:\n{endpoint.sql}"


def test_a_second_similar_requirement_takes_fewer_steps_and_llm_calls(analyst_role, owner):
    first = _generate(analyst_role, owner, "Customers in the EU")
    second = _generate(analyst_role, owner, "Customers in the UK")
    _endpoint_rows(first)
    _endpoint, rows = _endpoint_rows(second)
    assert rows and {r["region"] for r in rows} == {"UK"}
    before, after = first.performance_metrics, second.performance_metrics
    assert after["agent_steps"] < before["agent_steps"]
    assert after["llm_calls"] < before["llm_calls"]
    assert after["tool_calls"] < before["tool_calls"]


def test_a_column_the_role_cannot_see_is_left_out_with_a_note(analyst_role, owner):
    execution = _generate(analyst_role, owner, "Customers in the EU with their phone")
    endpoint, rows = _endpoint_rows(execution)
    assert "phone" not in endpoint.sql.lower()
    assert rows and all("phone" not in row for row in rows)
    rationale = " ".join(execution.result["phases"]["architecture"]["rationale"])
    assert "Left out 'phone'" in rationale


def test_revenue_over_orders_with_statuses_is_asked_about_not_guessed(analyst_role, owner):
    execution = _generate(analyst_role, owner, "Top 10 products by revenue in the last 90 days")
    assert execution.status == AgentStatus.FAILED
    assert "'revenue' is a business definition" in execution.status_reason
    assert not GeneratedEndpoint.objects.filter(source_execution=execution).exists()


def test_a_requirement_the_planner_cannot_read_fails_saying_what_it_did_not_understand(analyst_role, owner):
    execution = _generate(analyst_role, owner, "Customers whose favourite colour is teal")
    assert execution.status == AgentStatus.FAILED
    assert "I don't know what 'favourite', 'colour', 'teal' mean in this database" in execution.status_reason
    assert not GeneratedEndpoint.objects.filter(source_execution=execution).exists()


class StricterTester(OfflineProvider):
    """The offline provider, with a tester that also wants the first page to hold at most 20 rows."""

    def _tester(self, context, messages, tool_names):
        text, structured, calls = super()._tester(context, messages, tool_names)
        case = {"name": "a short first page", "params": {}, "expect": {"status": 200, "max_rows": 20}}
        return text, {**structured, "cases": [*structured["cases"], case]}, calls


def test_a_failing_test_gets_one_fix_round_and_then_passes(analyst_role, owner):
    execution = _generate(analyst_role, owner, "Customers in the EU", provider=StricterTester())
    endpoint, rows = _endpoint_rows(execution)
    kinds = list(execution.events.values_list("kind", flat=True))
    assert "fix_round" in kinds
    assert endpoint.parameters["properties"]["top_n"]["default"] == 20
    assert len(rows) == 20 and endpoint.tests_passed
