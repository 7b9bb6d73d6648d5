"""The admin of agent executions shows a readable timeline, not raw JSON."""

from __future__ import annotations

import pytest
from django.urls import reverse

from agents.models import AgentExecution, AgentStatus, AgentType
from tests.web.conftest import login, run_phases

pytestmark = pytest.mark.django_db


def test_execution_change_page_renders_thoughts_tools_events_and_child_runs(client, owner, execution):
    run_phases(execution, upto=2)
    AgentExecution.objects.create(
        business_requirement="Explore customers",
        agent_type=AgentType.EXPLORER,
        status=AgentStatus.COMPLETED,
        organization=execution.organization,
        user=execution.user,
        role=execution.role,
        parent=execution,
        thought_process=[{"step": "think", "iteration": 1, "text": "Look for a customers table", "at": ""}],
        tools_invoked=[{"tool": "describe_table", "arguments": {"table": "customers"}, "ok": True, "rows": 8}],
    )
    login(client, owner)
    page = client.get(reverse("admin:agents_agentexecution_change", args=[execution.pk])).text
    assert 'class="timeline"' in page and 'data-kind="tool_call"' in page
    assert "Agent runs of this orchestration" in page and "Explorer" in page
    child = execution.children.get()
    child_page = client.get(reverse("admin:agents_agentexecution_change", args=[child.pk])).text
    assert "Look for a customers table" in child_page
    assert "<code>describe_table</code>" in child_page


def test_execution_list_filters_orchestrations_from_agent_runs(client, owner, execution):
    login(client, owner)
    response = client.get(reverse("admin:agents_agentexecution_changelist"), {"run": "orchestration"})
    assert response.status_code == 200 and "Customers in the EU" in response.text


def test_outsider_staff_cannot_open_an_execution_in_the_admin(client, outsider, execution):
    login(client, outsider)
    response = client.get(reverse("admin:agents_agentexecution_change", args=[execution.pk]))
    assert response.status_code in (302, 403, 404)
    assert "Customers in the EU" not in response.text


def test_mcp_instance_page_shows_tools_as_a_table_and_latency_with_units(client, owner, analyst_role):
    from mcpservers.models import MCPServerInstance

    instance = MCPServerInstance.objects.get(role=analyst_role)
    MCPServerInstance.objects.filter(pk=instance.pk).update(avg_response_time=7.575291274750267)
    login(client, owner)
    page = client.get(reverse("admin:mcpservers_mcpserverinstance_change", args=[instance.pk])).text
    assert "7.6 ms" in page and "7.575291274750267" not in page
    assert 'class="nectar-rows"' in page and "<code>query_customers</code>" in page
    assert '"inputSchema"' not in page
    listing = client.get(reverse("admin:mcpservers_mcpserverinstance_changelist")).text
    assert "7.6 ms" in listing


def test_endpoint_admin_shows_test_results_and_parameters_as_tables(client, owner, endpoint):
    login(client, owner)
    page = client.get(reverse("admin:endpoints_generatedendpoint_change", args=[endpoint.pk])).text
    assert "2 of 2 passed" in page and "eu customers" in page
    assert "<code>region</code>" in page and '"cases"' not in page
