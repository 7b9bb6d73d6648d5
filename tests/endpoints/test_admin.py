"""The GeneratedEndpoint admin: scoped lists and the review and deployment actions."""

from __future__ import annotations

from endpoints.models import EndpointStatus

CHANGELIST = "/admin/endpoints/generatedendpoint/"


def _act(client, action, endpoint):
    return client.post(CHANGELIST, {"action": action, "_selected_action": [str(endpoint.pk)]}, follow=True)


def test_an_owner_approves_and_deploys_from_the_admin(client, make_draft, owner):
    endpoint = make_draft()
    client.force_login(owner)
    listing = client.get(CHANGELIST)
    assert listing.status_code == 200 and b"customers-by-region" in listing.content
    _act(client, "approve", endpoint)
    _act(client, "deploy", endpoint)
    endpoint.refresh_from_db()
    assert endpoint.status == EndpointStatus.DEPLOYED and endpoint.reviewed_by == owner


def test_retire_and_rollback_actions_switch_the_live_version(client, deployed, owner):
    first = deployed()
    second = deployed()
    client.force_login(owner)
    _act(client, "rollback", second)
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == (EndpointStatus.DEPLOYED, EndpointStatus.RETIRED)
    _act(client, "retire", first)
    first.refresh_from_db()
    assert first.status == EndpointStatus.RETIRED


def test_a_member_sees_endpoints_but_cannot_approve_them(client, make_draft, member):
    endpoint = make_draft()
    client.force_login(member)
    assert client.get(CHANGELIST).status_code == 200
    _act(client, "approve", endpoint)
    endpoint.refresh_from_db()
    assert endpoint.status == EndpointStatus.DRAFT


def test_an_outsider_does_not_see_the_organizations_endpoints(client, make_draft, outsider):
    make_draft()
    client.force_login(outsider)
    response = client.get(CHANGELIST)
    assert b"customers-by-region" not in response.content
