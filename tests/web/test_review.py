"""Review with evidence: before approving, the approver sees what the endpoint means, what it rests on,
sample rows for the example parameters and the meaning tests; who approved and deployed it is kept and shown."""

from __future__ import annotations

from html import unescape

import pytest
from django.urls import reverse

from agents.models import AgentStatus
from agents.orchestrator import execution_run
from agents.providers.offline import OfflineProvider
from agents.services import execution_claim, execution_submit
from endpoints.models import EndpointStatus, GeneratedEndpoint
from tests.web.conftest import login

pytestmark = pytest.mark.django_db(transaction=True)

HTMX = {"HTTP_HX_REQUEST": "true"}


class AssumingProvider(OfflineProvider):
    """A model whose design states an assumption about a word of the request (as an LLM's design may)."""

    def _architect(self, context, messages, tool_names):
        text, structured, calls = super()._architect(context, messages, tool_names)
        if structured and structured.get("interpretation"):
            structured["interpretation"]["assumptions"] = [
                {"text": "'EU' means the region code EU, not the shipping country", "phrase": "EU"}
            ]
        return text, structured, calls


def _run(role, user, requirement, provider=None):
    execution = execution_submit(user=user, role=role, requirement=requirement, enqueue=False)
    execution_run(execution=execution_claim(execution_id=execution.pk), provider=provider)
    execution.refresh_from_db()
    assert execution.status == AgentStatus.COMPLETED, execution.status_reason
    return execution, GeneratedEndpoint.objects.get(pk=execution.result["endpoint"]["id"])


def test_the_approver_sees_meaning_sample_rows_and_meaning_tests_then_who_approved_and_deployed(
    client, owner, analyst_role
):
    execution, endpoint = _run(analyst_role, owner, "Customers in the EU")
    assert endpoint.verdict == "verified", endpoint.verification
    page = unescape(login(client, owner).get(reverse("execution-detail", args=[execution.pk])).text)
    assert 'id="verdict"' in page and "Verified against the request" in page
    assert endpoint.verification["meaning"] and endpoint.verification["meaning"] in page
    report = endpoint.verification["meaning_tests"]
    assert report["tests"] and all(t["name"] in page for t in report["tests"])
    assert 'id="sample-rows"' in page
    for name, value in report["example_params"].items():
        assert f"{name} = {value}" in page
    first_row = report["sample_rows"][0]
    assert all(str(column) in page for column in first_row)
    assert "Not reviewed yet." in page

    approved = client.post(reverse("endpoint-approve", args=[endpoint.pk]), **HTMX)
    assert approved.status_code == 200 and f"Approved by <strong>{owner.username}</strong>" in approved.text
    deployed = client.post(reverse("endpoint-deploy", args=[endpoint.pk]), **HTMX)
    assert deployed.status_code == 200 and f"Deployed by <strong>{owner.username}</strong>" in deployed.text
    endpoint.refresh_from_db()
    assert endpoint.status == EndpointStatus.DEPLOYED
    assert endpoint.reviewed_by == owner and endpoint.deployed_by == owner


def test_an_endpoint_resting_on_an_assumption_is_marked_and_never_auto_deployed(client, org, owner, analyst_role):
    org.auto_deploy_read_only = True
    org.save(update_fields=["auto_deploy_read_only"])
    execution, endpoint = _run(analyst_role, owner, "Customers in the EU", provider=AssumingProvider())
    assert endpoint.verdict == "needs_review"
    assert endpoint.status == EndpointStatus.DRAFT and endpoint.deployed_at is None
    assert execution.result["endpoint"]["auto_deployed"] is False
    assert any("region code EU" in r for r in endpoint.verification["review_reasons"])
    page = unescape(login(client, owner).get(reverse("execution-detail", args=[execution.pk])).text)
    assert "It rests on an assumption." in page and "never deployed automatically" in page
    assert "Assumed: 'EU' means the region code EU, not the shipping country" in page
    assert "needs your review" in unescape(client.get(reverse("approvals")).text)

    # Without the assumption the same requirement is verified and the policy deploys it, by nobody.
    _again, plain = _run(analyst_role, owner, "Customers in the EU")
    assert plain.verdict == "verified" and plain.status == EndpointStatus.DEPLOYED
    assert plain.deployed_by is None
    shown = unescape(client.get(reverse("endpoint-detail", args=[plain.pk])).text)
    assert "Deployed automatically (organization policy)" in shown


def test_a_member_sees_the_evidence_but_cannot_approve_and_another_organization_sees_nothing(
    client, member, outsider, endpoint
):
    page = login(client, member).get(reverse("endpoint-detail", args=[endpoint.pk])).text
    assert 'id="verdict"' in page and 'id="approve"' not in page
    assert client.post(reverse("endpoint-approve", args=[endpoint.pk]), **HTMX).status_code == 403
    login(client, outsider)
    assert client.get(reverse("endpoint-detail", args=[endpoint.pk])).status_code == 404
    assert client.post(reverse("endpoint-approve", args=[endpoint.pk]), **HTMX).status_code == 404
    assert client.post(reverse("endpoint-deploy", args=[endpoint.pk]), **HTMX).status_code == 404
    endpoint.refresh_from_db()
    assert endpoint.status == EndpointStatus.DRAFT and endpoint.reviewed_by is None
