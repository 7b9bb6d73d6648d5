"""A demo customer database (SQLite) with an MCP-enabled Role, and executions, events and endpoints built directly."""

from __future__ import annotations

import pytest
from django.core.cache import cache

from agents.events import event_append
from agents.models import PHASE_ORDER, AgentStatus
from agents.services import execution_submit
from endpoints.services import endpoint_create_draft, endpoint_run_tests
from mcpservers.services import mcp_enable
from roles.demo import demo_build_sqlite
from roles.demo.platform import demo_sales_analyst_permissions
from roles.models import Engine, Role, Service

CUSTOMERS_SQL = (
    "SELECT customer_id, first_name, last_name, region FROM customers WHERE region = :region ORDER BY customer_id"
)
CUSTOMERS_PARAMETERS = {
    "type": "object",
    "properties": {"region": {"type": "string", "enum": ["EU", "UK", "NA", "APAC", "LATAM"]}},
    "required": ["region"],
}
CUSTOMERS_TESTS = [
    {"name": "eu customers", "params": {"region": "EU"}, "expect": {"status": 200, "min_rows": 1}},
    {"name": "unknown region is refused", "params": {"region": "MARS"}, "expect": {"status": 400}},
]


@pytest.fixture(scope="session")
def demo_sqlite_path(tmp_path_factory):
    return str(demo_build_sqlite(path=tmp_path_factory.mktemp("web-demo") / "demo.sqlite3", scale=0.02))


@pytest.fixture(autouse=True)
def _fresh_cache(django_db_blocker):
    # The cache lives in the platform database unless Redis is configured.
    with django_db_blocker.unblock():
        cache.clear()
    yield
    with django_db_blocker.unblock():
        cache.clear()


@pytest.fixture
def demo_service(org, demo_sqlite_path):
    return Service.objects.create(organization=org, name="Demo shop", engine=Engine.SQLITE, database=demo_sqlite_path)


@pytest.fixture
def analyst_role(org, owner, demo_service):
    role = Role.objects.create(
        organization=org,
        service=demo_service,
        name="Sales analyst",
        permissions=demo_sales_analyst_permissions(schema="main", routines=False),
        created_by=owner,
        mcp_enabled=True,
    )
    mcp_enable(role=role)
    role.refresh_from_db()
    return role


@pytest.fixture
def execution(member, analyst_role):
    """A pending execution of the member, with no worker."""
    return execution_submit(user=member, role=analyst_role, requirement="Customers in the EU", enqueue=False)


def run_phases(execution, *, upto: int = len(PHASE_ORDER)) -> None:
    """Append the events a run writes for its first `upto` phases."""
    event_append(execution=execution, kind="status", payload={"status": AgentStatus.RUNNING, "attempt": 1})
    for name in PHASE_ORDER[:upto]:
        event_append(execution=execution, kind="phase", phase=name, payload={"phase": name, "status": "started"})
        event_append(
            execution=execution,
            kind="thought",
            phase=name,
            agent="EXPLORER",
            payload={"agent": "EXPLORER", "step": "think", "text": f"Thinking about {name} <b>bold?</b>"},
        )
        event_append(
            execution=execution,
            kind="tool_call",
            phase=name,
            agent="EXPLORER",
            payload={"tool": "list_objects", "arguments": {"kind": "table"}},
        )
        event_append(
            execution=execution,
            kind="tool_result",
            phase=name,
            agent="EXPLORER",
            payload={
                "tool": "list_objects",
                "ok": True,
                "error": "",
                "rows": 3,
                "preview": "customers",
                "duration_ms": 4,
            },
        )
        event_append(
            execution=execution,
            kind="phase",
            phase=name,
            payload={"phase": name, "status": "completed", "seconds": 0.4},
        )


@pytest.fixture
def completed(execution, org, analyst_role):
    """A completed execution with its draft endpoint, tests run."""
    run_phases(execution)
    endpoint = endpoint_create_draft(
        organization=org,
        role=analyst_role,
        execution=execution,
        slug="eu-customers",
        description="Customers of one region.",
        parameters=CUSTOMERS_PARAMETERS,
        sql=CUSTOMERS_SQL,
        tests=CUSTOMERS_TESTS,
        docs="Counts <script>alert(1)</script> customers.",
    )
    endpoint_run_tests(endpoint=endpoint)
    execution.status = AgentStatus.COMPLETED
    execution.success = True
    execution.result = {"endpoint": {"id": str(endpoint.pk), "slug": endpoint.slug, "version": 1}}
    from django.utils import timezone

    execution.completed_at = timezone.now()
    execution.save()
    event_append(
        execution=execution,
        kind="status",
        payload={"status": AgentStatus.COMPLETED, "endpoint": {"id": str(endpoint.pk), "slug": endpoint.slug}},
    )
    return execution


@pytest.fixture
def endpoint(completed):
    return completed.endpoints.get()


def login(client, user):
    client.force_login(user)
    return client
