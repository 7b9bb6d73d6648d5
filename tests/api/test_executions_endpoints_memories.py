"""Executions, generated endpoints, memories and metrics through the API, with their authorization."""

from __future__ import annotations

import io
import zipfile

import pytest

from agents.events import event_append
from agents.models import AgentExecution
from endpoints.models import GeneratedEndpoint
from endpoints.services import endpoint_approve, endpoint_create_draft, endpoint_deploy
from learning.models import AgentMemory
from learning.services import memory_create
from mcpservers.models import ToolCall
from mcpservers.services import mcp_enable
from roles.models import RoleApiKey
from tests.api.conftest import errors_of

pytestmark = pytest.mark.django_db

CUSTOMERS_SQL = "SELECT customer_id, region FROM customers WHERE region = :region ORDER BY customer_id"
CUSTOMERS_PARAMETERS = {
    "type": "object",
    "properties": {"region": {"type": "string", "enum": ["EU", "UK", "NA", "APAC", "LATAM"]}},
    "required": ["region"],
}
CUSTOMERS_TESTS = [{"name": "eu", "params": {"region": "EU"}, "expect": {"status": 200, "min_rows": 1}}]


@pytest.fixture
def mcp_role(role):
    mcp_enable(role=role)
    role.refresh_from_db()
    return role


@pytest.fixture
def execution(mcp_role, member):
    from agents.services import execution_submit

    return execution_submit(user=member, role=mcp_role, requirement="EU customers", enqueue=False)


@pytest.fixture
def draft(org, role):
    def make(slug="eu-customers"):
        return endpoint_create_draft(
            organization=org,
            role=role,
            slug=slug,
            description="Customers of a region.",
            parameters=CUSTOMERS_PARAMETERS,
            sql=CUSTOMERS_SQL,
            response_schema={"type": "object"},
            tests=CUSTOMERS_TESTS,
        )

    return make


# --- Executions ------------------------------------------------------------------------------


def test_a_member_submits_a_requirement_and_gets_202_with_the_executions_urls(member_client, mcp_role, member):
    response = member_client.post(
        "/api/v1/executions/", {"requirement": "EU customers by segment", "role": str(mcp_role.pk)}, format="json"
    )
    assert response.status_code == 202
    body = response.json()
    execution = AgentExecution.objects.get(pk=body["id"])
    assert execution.user == member and execution.status == "PENDING"
    assert body["urls"]["self"].endswith(f"/api/v1/executions/{execution.pk}/")
    assert body["urls"]["events"].endswith(f"/api/v1/executions/{execution.pk}/events/")
    assert body["urls"]["websocket"] == f"ws://testserver/ws/executions/{execution.pk}/"
    assert response["Location"] == body["urls"]["self"]
    detail = member_client.get(f"/api/v1/executions/{execution.pk}/").json()
    assert detail["requirement"] == "EU customers by segment" and detail["status"] == "PENDING"


def test_a_requirement_for_a_role_without_mcp_is_refused_and_nothing_is_created(member_client, role):
    response = member_client.post("/api/v1/executions/", {"requirement": "x", "role": str(role.pk)}, format="json")
    assert response.status_code == 409
    assert errors_of(response)[0] == {
        "field": "role",
        "message": "The role 'Sales analyst' has no MCP server; an admin must enable MCP on it first.",
        "code": "mcp_disabled",
    }
    assert not AgentExecution.objects.exists()


def test_a_blank_requirement_names_the_field(member_client, mcp_role):
    response = member_client.post("/api/v1/executions/", {"requirement": " ", "role": str(mcp_role.pk)}, format="json")
    assert response.status_code == 400
    assert errors_of(response)[0]["field"] == "requirement"


def test_status_fields_of_an_execution_cannot_be_assigned_on_submit(member_client, mcp_role):
    response = member_client.post(
        "/api/v1/executions/",
        {"requirement": "EU customers", "role": str(mcp_role.pk), "status": "COMPLETED", "success": True},
        format="json",
    )
    assert response.status_code == 202
    execution = AgentExecution.objects.get(pk=response.json()["id"])
    assert execution.status == "PENDING" and execution.success is None


def test_events_are_returned_after_a_sequence_number(member_client, execution):
    event_append(execution=execution, kind="thought", agent="explorer", payload={"text": "looking"})
    event_append(execution=execution, kind="phase", phase="exploration", payload={"state": "started"})
    everything = member_client.get(f"/api/v1/executions/{execution.pk}/events/").json()
    assert [e["seq"] for e in everything["events"]] == [1, 2, 3]
    assert everything["last_seq"] == 3 and everything["finished"] is False
    later = member_client.get(f"/api/v1/executions/{execution.pk}/events/?after=1").json()
    assert [e["kind"] for e in later["events"]] == ["thought", "phase"]
    assert later["next_after"] == 3
    bad = member_client.get(f"/api/v1/executions/{execution.pk}/events/?after=-1")
    assert bad.status_code == 400 and errors_of(bad)[0]["field"] == "after"


def test_the_submitter_pauses_resumes_and_cancels_an_execution(member_client, execution):
    assert member_client.post(f"/api/v1/executions/{execution.pk}/pause/").json()["status"] == "PAUSED"
    assert member_client.post(f"/api/v1/executions/{execution.pk}/resume/").json()["status"] == "PENDING"
    cancelled = member_client.post(f"/api/v1/executions/{execution.pk}/cancel/").json()
    assert cancelled["status"] == "FAILED" and cancelled["status_reason"] == "cancelled by the user"
    again = member_client.post(f"/api/v1/executions/{execution.pk}/cancel/")
    assert again.status_code == 409 and errors_of(again)[0]["code"] == "invalid_state"


def test_another_member_may_not_steer_someone_elses_execution_but_an_admin_may(
    execution, org, django_user_model, admin_client
):
    from rest_framework.test import APIClient

    from roles.models import Membership

    colleague = django_user_model.objects.create_user(username="cole", password="x-pw-123456")
    Membership.objects.create(user=colleague, organization=org, role="member")
    client = APIClient()
    client.force_authenticate(colleague)
    assert client.get(f"/api/v1/executions/{execution.pk}/").status_code == 200
    response = client.post(f"/api/v1/executions/{execution.pk}/cancel/")
    assert response.status_code == 403
    assert admin_client.post(f"/api/v1/executions/{execution.pk}/cancel/").status_code == 200


def test_a_member_rates_an_execution(member_client, execution):
    response = member_client.post(
        f"/api/v1/executions/{execution.pk}/rating/", {"up": False, "comment": "wrong region"}, format="json"
    )
    assert response.status_code == 200
    assert response.json() == {"rating": -1, "previous": None, "memories_adjusted": 0}
    execution.refresh_from_db()
    assert execution.rating == -1 and execution.feedback == "wrong region"
    missing = member_client.post(f"/api/v1/executions/{execution.pk}/rating/", {}, format="json")
    assert missing.status_code == 400 and errors_of(missing)[0]["field"] == "up"


def test_another_organizations_executions_are_404(outsider_client, execution):
    for method, url in [
        ("get", f"/api/v1/executions/{execution.pk}/"),
        ("get", f"/api/v1/executions/{execution.pk}/events/"),
        ("post", f"/api/v1/executions/{execution.pk}/pause/"),
        ("post", f"/api/v1/executions/{execution.pk}/cancel/"),
        ("post", f"/api/v1/executions/{execution.pk}/rating/"),
    ]:
        assert getattr(outsider_client, method)(url, {"up": True}, format="json").status_code == 404, url
    assert outsider_client.get("/api/v1/executions/").json()["count"] == 0
    submitted = outsider_client.post(
        "/api/v1/executions/", {"requirement": "x", "role": str(execution.role_id)}, format="json"
    )
    assert submitted.status_code == 400 and errors_of(submitted)[0]["field"] == "role"


def test_executions_are_filtered_by_status(member_client, execution):
    assert member_client.get("/api/v1/executions/?status=PENDING").json()["count"] == 1
    assert member_client.get("/api/v1/executions/?status=COMPLETED").json()["count"] == 0
    assert member_client.get("/api/v1/executions/?mine=true").json()["count"] == 1


# --- Generated endpoints ---------------------------------------------------------------------


def test_an_admin_approves_and_deploys_an_endpoint_that_then_answers_with_the_role_key(
    admin_client, client, draft, role
):
    endpoint = draft()
    approved = admin_client.post(f"/api/v1/endpoints/{endpoint.pk}/approve/", {"comment": "ok"}, format="json")
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    deployed = admin_client.post(f"/api/v1/endpoints/{endpoint.pk}/deploy/")
    assert deployed.status_code == 200, deployed.json()
    assert deployed.json()["status"] == "deployed" and deployed.json()["path"] == "/api/v1/x/acme/eu-customers"
    _, secret = RoleApiKey.issue(role=role, name="integration")
    live = client.get("/api/v1/x/acme/eu-customers", {"region": "EU"}, HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert live.status_code == 200 and live.json()["results"]
    assert {row["region"] for row in live.json()["results"]} == {"EU"}


def test_a_rejection_needs_a_comment(owner_client, draft):
    endpoint = draft()
    response = owner_client.post(f"/api/v1/endpoints/{endpoint.pk}/reject/", {}, format="json")
    assert response.status_code == 400 and errors_of(response)[0]["field"] == "comment"
    rejected = owner_client.post(f"/api/v1/endpoints/{endpoint.pk}/reject/", {"comment": "too wide"}, format="json")
    assert rejected.json()["review_decision"] == "rejected" and rejected.json()["status"] == "draft"


def test_deploying_a_draft_is_a_conflict(owner_client, draft):
    response = owner_client.post(f"/api/v1/endpoints/{draft().pk}/deploy/")
    assert response.status_code == 409 and errors_of(response)[0]["code"] == "not_approved"


def test_rollback_makes_the_previous_version_current_and_retire_takes_it_off_the_air(owner_client, owner, draft):
    first = draft()
    endpoint_approve(endpoint=first, user=owner)
    endpoint_deploy(endpoint=first, user=owner)
    second = draft()
    endpoint_approve(endpoint=second, user=owner)
    endpoint_deploy(endpoint=second, user=owner)
    rolled = owner_client.post(f"/api/v1/endpoints/{second.pk}/rollback/").json()
    assert (rolled["id"], rolled["version"], rolled["status"]) == (str(first.pk), 1, "deployed")
    assert GeneratedEndpoint.objects.get(pk=second.pk).status == "retired"
    retired = owner_client.post(f"/api/v1/endpoints/{first.pk}/retire/").json()
    assert retired["status"] == "retired"


def test_an_endpoint_is_exported_as_a_zip_and_documented(member_client, draft):
    endpoint = draft()
    response = member_client.get(f"/api/v1/endpoints/{endpoint.pk}/export/")
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    assert zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert "eu-customers" in member_client.get(f"/api/v1/endpoints/{endpoint.pk}/docs/").json()["markdown"]


def test_members_may_read_endpoints_but_not_review_or_deploy_them(member_client, draft):
    endpoint = draft()
    assert member_client.get(f"/api/v1/endpoints/{endpoint.pk}/").json()["sql"] == CUSTOMERS_SQL
    for action in ("approve", "reject", "deploy", "retire", "rollback"):
        response = member_client.post(f"/api/v1/endpoints/{endpoint.pk}/{action}/", {"comment": "x"}, format="json")
        assert response.status_code == 403, action
    assert GeneratedEndpoint.objects.get(pk=endpoint.pk).status == "draft"


def test_another_organizations_endpoints_are_404(outsider_client, draft):
    endpoint = draft()
    for method, action in [("get", ""), ("get", "export/"), ("post", "approve/"), ("post", "deploy/")]:
        url = f"/api/v1/endpoints/{endpoint.pk}/{action}"
        assert getattr(outsider_client, method)(url, {}, format="json").status_code == 404, url
    assert outsider_client.get("/api/v1/endpoints/").json()["count"] == 0


# --- Memories and metrics --------------------------------------------------------------------


def test_an_admin_records_a_business_rule_and_finds_it_by_search(admin_client, org):
    memory_create(organization=org, type="SUCCESS_PATTERN", content="Top products by revenue use order_items.")
    created = admin_client.post(
        "/api/v1/memories/",
        {"content": "Revenue excludes cancelled orders.", "tags": ["revenue"], "type": "SUCCESS_PATTERN"},
        format="json",
    )
    assert created.status_code == 201
    assert created.json()["type"] == "BUSINESS_RULE" and "revenue" in created.json()["tags"]
    found = admin_client.get("/api/v1/memories/?q=cancelled orders revenue&type=BUSINESS_RULE").json()
    assert [m["content"] for m in found["results"]] == ["Revenue excludes cancelled orders."]
    assert found["results"][0]["similarity"] is not None
    listed = admin_client.get("/api/v1/memories/?type=SUCCESS_PATTERN").json()
    assert listed["count"] == 1 and listed["results"][0]["similarity"] is None


def test_members_may_search_memories_but_not_create_or_delete_them(member_client, org):
    memory = memory_create(organization=org, type="SUCCESS_PATTERN", content="Something learned.")
    assert member_client.get("/api/v1/memories/").json()["count"] == 1
    assert member_client.post("/api/v1/memories/", {"content": "rule"}, format="json").status_code == 403
    assert member_client.delete(f"/api/v1/memories/{memory.pk}/").status_code == 403
    assert AgentMemory.objects.count() == 1


def test_an_owner_deletes_a_memory_and_an_outsider_cannot_see_it(owner_client, outsider_client, org):
    memory = memory_create(organization=org, type="SUCCESS_PATTERN", content="Something learned.")
    assert outsider_client.get(f"/api/v1/memories/{memory.pk}/").status_code == 404
    assert outsider_client.delete(f"/api/v1/memories/{memory.pk}/").status_code == 404
    assert outsider_client.get("/api/v1/memories/?q=learned").json()["count"] == 0
    assert owner_client.delete(f"/api/v1/memories/{memory.pk}/").status_code == 204
    assert not AgentMemory.objects.exists()


def test_metrics_summarise_executions_and_calls_of_the_organization(member_client, execution, org, other_org):
    AgentExecution.objects.filter(pk=execution.pk).update(status="COMPLETED", success=True)
    for ms in (10.0, 20.0, 30.0):
        ToolCall.objects.create(organization=org, tool="query_customers", outcome="ok", duration_ms=ms)
    ToolCall.objects.create(organization=org, tool="endpoint:eu-customers@v1", outcome="error", duration_ms=5.0)
    ToolCall.objects.create(organization=other_org, tool="query_customers", outcome="ok", duration_ms=999.0)
    body = member_client.get("/api/v1/metrics/?days=7").json()
    assert body["organization"] == "acme" and body["window_days"] == 7
    assert body["executions"]["by_status"]["COMPLETED"] == 1 and body["executions"]["success_rate"] == 1.0
    assert body["tool_calls"]["total"] == 3 and body["tool_calls"]["p50_ms"] == 20.0
    assert body["endpoint_calls"] == {"total": 1, "errors": 1, "error_rate": 1.0, "p50_ms": 5.0, "p95_ms": 5.0}
    assert body["latency"]["total"] == 4
    bad = member_client.get("/api/v1/metrics/?days=0")
    assert bad.status_code == 400 and errors_of(bad)[0]["field"] == "days"
