"""The business pages through Django's test client: who sees what, and what each action changes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from agents.consumers import render_event_html
from agents.events import event_serialize
from agents.models import AgentExecution, AgentStatus
from endpoints.models import EndpointStatus
from mcpservers.models import ToolCall
from roles.models import Membership, MembershipRole
from tests.web.conftest import login, run_phases

pytestmark = pytest.mark.django_db


def test_anonymous_visitor_is_sent_to_the_login_page(client):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_member_logs_in_and_out(client, member):
    response = client.post(reverse("login"), {"username": member.username, "password": "correct-horse-battery-staple"})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    page = client.get(reverse("home"))
    assert "Acme Retail" in page.text and "Log out" in page.text
    client.post(reverse("logout"))
    assert client.get(reverse("home")).status_code == 302


def test_wrong_password_shows_an_error(client, member):
    response = client.post(reverse("login"), {"username": member.username, "password": "nope"})
    assert response.status_code == 200
    assert "correct username and password" in response.text


@pytest.mark.parametrize("name", ["home", "requirement-new", "apis", "mcp", "memories"])
def test_each_page_renders_for_a_member(client, member, completed, name):
    response = login(client, member).get(reverse(name))
    assert response.status_code == 200
    assert "Acme Retail" in response.text
    # Every page leads to the member's API tokens, from their name in the header.
    assert f'href="{reverse("tokens")}" id="nav-tokens"' in response.text


def test_requirement_page_offers_examples_and_only_mcp_roles_of_the_organization(
    client, member, analyst_role, org, demo_service
):
    from roles.models import Role

    Role.objects.create(organization=org, service=demo_service, name="No MCP role", permissions=[])
    page = login(client, member).get(reverse("requirement-new")).text
    assert "Top 10 products by revenue in the last 90 days" in page
    assert "Sales analyst" in page
    assert "No MCP role" not in page


def test_submitting_a_requirement_creates_an_execution_and_opens_its_page(client, member, analyst_role):
    response = login(client, member).post(
        reverse("requirement-new"), {"requirement": "Monthly revenue by region", "role": analyst_role.pk}
    )
    execution = AgentExecution.objects.get(business_requirement="Monthly revenue by region")
    assert execution.user == member and execution.role == analyst_role and execution.status == AgentStatus.PENDING
    assert response.status_code == 302
    assert response["Location"] == reverse("execution-detail", args=[execution.pk])


def test_an_empty_requirement_is_refused_with_a_field_error_and_nothing_is_created(client, member, analyst_role):
    response = login(client, member).post(reverse("requirement-new"), {"requirement": "  ", "role": analyst_role.pk})
    assert response.status_code == 400
    assert "Describe the API you need" in response.text
    assert not AgentExecution.objects.exists()


def test_a_role_of_another_organization_cannot_be_chosen(client, member, other_org, demo_sqlite_path):
    from roles.models import Engine, Role, Service

    service = Service.objects.create(organization=other_org, name="x", engine=Engine.SQLITE, database=demo_sqlite_path)
    foreign = Role.objects.create(organization=other_org, service=service, name="Foreign", mcp_enabled=True)
    response = login(client, member).post(reverse("requirement-new"), {"requirement": "Orders", "role": foreign.pk})
    assert response.status_code == 400
    assert "not available to you" in response.text
    assert not AgentExecution.objects.exists()


def test_execution_page_replays_stored_events_and_connects_after_the_last_one(client, member, execution):
    run_phases(execution, upto=3)
    last = execution.events.order_by("-seq").first().seq
    page = login(client, member).get(reverse("execution-detail", args=[execution.pk])).text
    assert f'ws-connect="/ws/executions/{execution.pk}/?after={last}&amp;format=html"' in page
    assert page.count('data-kind="thought"') == 3
    assert 'id="phase-security" class="phase done"' in page
    assert 'id="phase-implementation" class="phase pending"' in page
    assert "3</strong> / 7 phases" in page
    # The agents' text is escaped, never interpreted.
    assert "&lt;b&gt;bold?&lt;/b&gt;" in page


def test_live_events_render_as_out_of_band_swaps(execution):
    run_phases(execution, upto=1)
    events = [event_serialize(e) for e in execution.events.order_by("seq")]
    phase_started = next(e for e in events if e["kind"] == "phase")
    started = render_event_html(phase_started)
    assert 'hx-swap-oob="beforeend:#events"' in started
    assert f'data-seq="{phase_started["seq"]}"' in started
    assert 'id="phase-exploration" class="phase running" hx-swap-oob="true"' in started
    completed = render_event_html(events[-1])
    assert 'id="phase-exploration" class="phase done" hx-swap-oob="true"' in completed
    thought = render_event_html(next(e for e in events if e["kind"] == "thought"))
    assert 'hx-swap-oob="true"' not in thought and "Thinking about exploration" in thought


def test_outsider_gets_404_for_executions_and_endpoints_of_another_organization(client, outsider, endpoint):
    execution = endpoint.source_execution
    login(client, outsider)
    for name in ("execution-detail", "execution-summary", "execution-results"):
        assert client.get(reverse(name, args=[execution.pk])).status_code == 404
    for name in ("execution-pause", "execution-cancel", "execution-rate"):
        assert client.post(reverse(name, args=[execution.pk])).status_code == 404
    assert client.get(reverse("endpoint-detail", args=[endpoint.pk])).status_code == 404
    for name in ("endpoint-try", "endpoint-approve", "endpoint-deploy", "endpoint-reject", "endpoint-rollback"):
        assert client.post(reverse(name, args=[endpoint.pk]), {"region": "EU", "comment": "x"}).status_code == 404
    endpoint.refresh_from_db()
    assert endpoint.status == EndpointStatus.DRAFT and endpoint.call_count == 0


def test_pause_resume_and_cancel_change_the_state(client, member, execution):
    login(client, member)
    response = client.post(reverse("execution-pause", args=[execution.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Resume" in response.text
    execution.refresh_from_db()
    assert execution.status == AgentStatus.PAUSED
    client.post(reverse("execution-resume", args=[execution.pk]), HTTP_HX_REQUEST="true")
    execution.refresh_from_db()
    assert execution.status == AgentStatus.PENDING
    client.post(reverse("execution-cancel", args=[execution.pk]), HTTP_HX_REQUEST="true")
    execution.refresh_from_db()
    assert execution.status == AgentStatus.FAILED and execution.status_reason == "cancelled by the user"


def test_resuming_a_run_that_is_not_paused_says_why(client, member, execution):
    response = login(client, member).post(reverse("execution-resume", args=[execution.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    assert "Only a paused execution can be resumed" in response.text


def test_another_member_cannot_control_someone_elses_run(client, execution, org):
    from tests.conftest import _person

    colleague = _person("cole", org, MembershipRole.MEMBER)
    response = login(client, colleague).post(reverse("execution-cancel", args=[execution.pk]))
    assert response.status_code == 403
    execution.refresh_from_db()
    assert execution.status == AgentStatus.PENDING


def test_results_panel_shows_endpoint_sql_tests_docs_and_curl(client, member, endpoint):
    page = login(client, member).get(reverse("execution-detail", args=[endpoint.source_execution_id])).text
    assert "/api/v1/x/acme/eu-customers" in page
    assert "WHERE region = :region" in page
    assert "eu customers" in page and "unknown region is refused" in page
    assert "curl -H" in page
    assert reverse("endpoints:export", args=[endpoint.pk]) in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    # Members do not get review buttons.
    assert 'id="approve"' not in page


def test_approve_by_a_member_is_refused(client, member, endpoint):
    response = login(client, member).post(reverse("endpoint-approve", args=[endpoint.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 403
    endpoint.refresh_from_db()
    assert endpoint.status == EndpointStatus.DRAFT


def test_owner_approves_then_deploys_then_the_member_tries_it(client, owner, member, endpoint):
    login(client, owner)
    page = client.get(reverse("execution-detail", args=[endpoint.source_execution_id])).text
    assert 'id="approve"' in page
    response = client.post(reverse("endpoint-approve", args=[endpoint.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and 'id="deploy"' in response.text
    response = client.post(reverse("endpoint-deploy", args=[endpoint.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "the endpoint is live" in response.text
    endpoint.refresh_from_db()
    assert endpoint.status == EndpointStatus.DEPLOYED

    client.logout()
    login(client, member)
    response = client.post(reverse("endpoint-try", args=[endpoint.pk]), {"region": "EU", "limit": "5"})
    assert response.status_code == 200
    assert 'id="try-rows"' in response.text and "<td>EU</td>" in response.text
    call = ToolCall.objects.get(tool=endpoint.tool_name)
    assert call.rows == 5 and call.api_key is None
    apis = client.get(reverse("apis")).text
    assert "eu-customers" in apis and "1 calls in the last 14 days" in apis.replace("1 call ", "1 calls ")


def test_try_it_reports_bad_parameters_by_field(client, member, endpoint):
    response = login(client, member).post(reverse("endpoint-try", args=[endpoint.pk]), {"region": "MARS"})
    assert response.status_code == 200
    assert "HTTP 400" in response.text and "<code>region</code>" in response.text


def test_reject_needs_a_reason_and_keeps_the_draft(client, owner, endpoint):
    login(client, owner)
    response = client.post(reverse("endpoint-reject", args=[endpoint.pk]), {"comment": ""}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "Say why" in response.text
    response = client.post(
        reverse("endpoint-reject", args=[endpoint.pk]), {"comment": "Wrong region list"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    endpoint.refresh_from_db()
    assert endpoint.review_decision == "rejected" and endpoint.review_comment == "Wrong region list"


def test_rollback_brings_back_the_previous_version(client, owner, endpoint, org, analyst_role):
    from endpoints.services import endpoint_approve, endpoint_create_draft, endpoint_deploy

    endpoint_approve(endpoint=endpoint, user=owner)
    endpoint_deploy(endpoint=endpoint, user=owner)
    second = endpoint_create_draft(
        organization=org,
        role=analyst_role,
        slug=endpoint.slug,
        parameters=endpoint.parameters,
        sql=endpoint.sql,
        tests=endpoint.tests,
    )
    endpoint_approve(endpoint=second, user=owner)
    endpoint_deploy(endpoint=second, user=owner)
    response = login(client, owner).post(reverse("endpoint-rollback", args=[second.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    second.refresh_from_db()
    endpoint.refresh_from_db()
    assert second.status == EndpointStatus.RETIRED and endpoint.status == EndpointStatus.DEPLOYED


def test_rating_is_stored_on_the_execution(client, member, completed):
    response = login(client, member).post(
        reverse("execution-rate", args=[completed.pk]), {"up": "1", "comment": "Spot on"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200
    completed.refresh_from_db()
    assert completed.rating == 1 and completed.feedback == "Spot on"


def test_failed_run_shows_why(client, member, execution):
    client = login(client, member)
    client.post(reverse("execution-cancel", args=[execution.pk]))
    page = client.get(reverse("execution-detail", args=[execution.pk])).text
    assert "The run stopped" in page and "cancelled by the user" in page


def test_organization_switcher_changes_the_current_organization(client, member, other_org):
    Membership.objects.create(user=member, organization=other_org, role=MembershipRole.MEMBER)
    login(client, member)
    assert "Runs in Acme Retail" in client.get(reverse("home")).text
    response = client.post(reverse("organization-switch"), {"organization": other_org.pk, "next": "/apis/"})
    assert response.status_code == 302 and response["Location"] == "/apis/"
    assert "Runs in Globex" in client.get(reverse("home")).text


def test_organization_switcher_refuses_an_organization_the_user_is_not_in(client, member, other_org):
    response = login(client, member).post(reverse("organization-switch"), {"organization": other_org.pk})
    assert response.status_code == 404
    assert "Runs in Acme Retail" in client.get(reverse("home")).text


def test_mcp_page_lists_tools_keys_and_client_configuration(client, owner, analyst_role):
    from roles.models import RoleApiKey

    RoleApiKey.issue(role=analyst_role, name="laptop")
    page = login(client, owner).get(reverse("mcp")).text
    assert "Sales analyst" in page and "laptop" in page
    assert "mcpServers" in page and "Cursor" in page
    assert reverse("mcpservers:client-config", args=[analyst_role.mcp_instance.pk]) in page


def test_memory_browser_searches_and_shows_where_a_memory_came_from(client, member, completed, org):
    from learning.models import MemoryUse
    from learning.services import memory_create

    memory = memory_create(
        organization=org,
        type="SUCCESS_PATTERN",
        content="Customers of a region: filter customers.region with a bound parameter",
        source_execution=completed,
    )
    MemoryUse.objects.create(memory=memory, execution=completed, kind="retrieved", agent="ARCHITECT", similarity=0.9)
    client = login(client, member)
    page = client.get(reverse("memories"), {"q": "customers by region"}).text
    assert "filter customers.region" in page
    assert reverse("execution-detail", args=[completed.pk]) in page
    assert "by designer" in page
    filtered = client.get(reverse("memories"), {"type": "ANTI_PATTERN"}).text
    assert "filter customers.region" not in filtered
    bad = client.get(reverse("memories"), {"type": "NOPE"})
    assert bad.status_code == 200 and "Select a valid choice" in bad.text


def test_memory_browser_shows_tags_as_chips_sql_as_code_and_fields_not_raw_json(client, member, completed, org):
    from learning.services import memory_create

    memory_create(
        organization=org,
        type="API_PATTERN",
        content="GET eu-customers: customers of a region.\n\n```json\n"
        '{"dialect": "sqlite", "objects": ["main.customers"], '
        '"parameters": {"type": "object", "properties": {"region": {"type": "string"}}}, "sql": "SELECT 1"}\n```',
        tags=["api", "object:main.customers"],
        source_execution=completed,
    )
    memory_create(
        organization=org, type="CODE_SNIPPET", content="-- EU customers\nSELECT * FROM customers", tags=["sql"]
    )
    page = login(client, member).get(reverse("memories")).text
    assert '<span class="chip static tag">object:main.customers</span>' in page
    assert "[&#x27;api&#x27;" not in page and '{"dialect"' not in page
    assert "<dt>dialect</dt><dd>sqlite</dd>" in page
    assert '<span class="chip static">region</span>' in page
    assert '<pre class="code sql small">-- EU customers\nSELECT * FROM customers</pre>' in page


def test_memory_browser_marks_rejected_patterns_and_filters_by_database(client, member, execution, org, demo_service):
    from learning.services import learn_from_failure, memory_create
    from roles.models import Service

    learn_from_failure(
        execution=execution,
        reason="the security review rejected the design: reads the email column",
        phase="security",
        attempted={"design": {"method": "GET", "path": "/eu"}, "avoid": {"columns": ["customers.email"]}},
    )
    other = Service.objects.create(organization=org, name="Warehouse", engine="sqlite", database="/tmp/w.db")
    memory_create(organization=org, type="BUSINESS_RULE", content="Warehouse rule about pallets", service=other)
    client = login(client, member)
    page = client.get(reverse("memories")).text
    assert "Rejected: avoid" in page and "Steer away from" in page and "customers.email" in page
    only_warehouse = client.get(reverse("memories"), {"service": str(other.pk)}).text
    assert "Warehouse rule about pallets" in only_warehouse and "Rejected: avoid" not in only_warehouse
    searched = client.get(reverse("memories"), {"service": str(other.pk), "q": "pallets rule"}).text
    assert "Warehouse rule about pallets" in searched
    assert client.get(reverse("memories"), {"service": "not-a-uuid"}).status_code == 200


def test_mcp_page_shows_one_role_at_a_time_with_the_remote_configuration_first(client, owner, analyst_role, org):
    from mcpservers.services import mcp_enable
    from roles.models import Role

    support = Role.objects.create(
        organization=org, service=analyst_role.service, name="Support desk", permissions=[], mcp_enabled=True
    )
    mcp_enable(role=support)
    client = login(client, owner)
    page = client.get(reverse("mcp")).text
    assert page.count('<section class="card server"') == 1
    assert 'id="mcp-role"' in page and "Support desk" in page and "Sales analyst" in page
    assert page.index('data-config="cursor"') < page.index('data-config="claude_desktop"')
    assert "on the Nectar server host only" in page
    picked = client.get(reverse("mcp"), {"role": str(support.pk)}).text
    assert "<h2>Support desk" in picked and "<h2>Sales analyst" not in picked
    # A role of another organization cannot be picked: the page shows one of the user's own.
    assert client.get(reverse("mcp"), {"role": "00000000-0000-0000-0000-000000000000"}).status_code == 200
