"""Helpers for the learning suite: executions to learn from."""

from __future__ import annotations

import pytest

from agents.models import AgentExecution, AgentStatus


@pytest.fixture
def make_execution(org, owner):
    def make(requirement="top customers by revenue", *, organization=None, user=None, success=True, **fields):
        return AgentExecution.objects.create(
            business_requirement=requirement,
            organization=organization or org,
            user=user or owner,
            status=AgentStatus.COMPLETED if success else AgentStatus.FAILED,
            success=success,
            **fields,
        )

    return make


SUCCESS_RESULTS = {
    "requirement": "Top 10 customers by revenue in the last 90 days",
    "exploration": {
        "objects": [
            {"schema": "public", "name": "customers", "kind": "table"},
            {"schema": "public", "name": "orders", "kind": "table"},
        ]
    },
    "design": {
        "method": "GET",
        "path": "/customers/top-by-revenue",
        "description": "Customers ranked by revenue over a trailing window",
        "parameters": {
            "type": "object",
            "properties": {"days": {"type": "integer"}, "limit": {"type": "integer"}},
            "required": ["days"],
        },
        "shape": "top_n",
    },
    "sql": (
        "SELECT c.id, c.name, SUM(o.total) AS revenue FROM public.customers c "
        "JOIN public.orders o ON o.customer_id = c.id "
        "WHERE o.order_date >= CURRENT_DATE - :days * INTERVAL '1 day' "
        "GROUP BY c.id, c.name ORDER BY revenue DESC LIMIT :limit"
    ),
    "tests": {"passed": 4, "failed": 0, "cases": [{"name": "returns rows", "passed": True}]},
    "performance": {"duration_ms": 820.0, "notes": ["filter on the indexed order_date column"]},
}
