"""Cross-organization and cross-Role matrices through every door: REST, MCP (official client),
generated endpoints, pages and the WebSocket. Every pair of (caller, object) outside the caller's
reach is refused, and nothing of the object leaks into the answer."""

from __future__ import annotations

import httpx
import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from agents.consumers import ExecutionEventsConsumer
from agents.events import event_append
from agents.models import AgentExecution
from learning.services import memory_create
from roles.models import Role, RoleApiKey, Service
from tests.mcpservers.conftest import instance_url, raw_post, run
from tests.mcpservers.test_http import mcp_client
from tests.security.conftest import api_client

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(org, owner, analyst, reader, deploy, other_org, outsider):
    """Objects of the organization (two Roles) and an outsider's own Role and key."""
    endpoint = deploy(analyst["role"])
    execution = AgentExecution.objects.create(
        organization=org, user=owner, role=analyst["role"], business_requirement="customers of the EU"
    )
    event_append(execution=execution, kind="thought", payload={"text": "secret plan"})
    memory = memory_create(organization=org, type="API_PATTERN", content="acme memory", role=analyst["role"])
    theirs = Service.objects.create(organization=other_org, name="globex", engine="sqlite", database="g.db")
    outsider_role = Role.objects.create(organization=other_org, service=theirs, name="globex role")
    _, outsider_key = RoleApiKey.issue(role=outsider_role, name="globex key")
    return {
        "endpoint": endpoint,
        "execution": execution,
        "memory": memory,
        "outsider_key": outsider_key,
        "service": analyst["role"].service,
    }


def _object_urls(world, analyst) -> list[str]:
    role = analyst["role"]
    return [
        f"/api/v1/services/{world['service'].pk}/",
        f"/api/v1/services/{world['service'].pk}/schema/",
        f"/api/v1/roles/{role.pk}/",
        f"/api/v1/roles/{role.pk}/keys/",
        f"/api/v1/roles/{role.pk}/keys/{analyst['key'].pk}/",
        f"/api/v1/mcp-servers/{role.mcp_instance.pk}/",
        f"/api/v1/executions/{world['execution'].pk}/",
        f"/api/v1/executions/{world['execution'].pk}/events/",
        f"/api/v1/endpoints/{world['endpoint'].pk}/",
        f"/api/v1/memories/{world['memory'].pk}/",
    ]


def test_an_outsider_gets_404_for_every_rest_object_of_the_organization(outsider, world, analyst):
    api = api_client(outsider)
    for url in _object_urls(world, analyst):
        response = api.get(url)
        assert response.status_code == 404, (url, response.status_code)
        assert "acme" not in response.content.decode().lower()
    for url in (
        "/api/v1/services/",
        "/api/v1/roles/",
        "/api/v1/endpoints/",
        "/api/v1/memories/",
        "/api/v1/executions/",
    ):
        body = api.get(url).content.decode()
        assert "acme" not in body.lower() and str(world["service"].pk) not in body


def test_an_outsider_cannot_change_or_delete_any_rest_object(outsider, world, analyst):
    api = api_client(outsider)
    for url in _object_urls(world, analyst):
        for method in ("patch", "delete"):
            response = getattr(api, method)(url, {}, format="json")
            assert response.status_code in (404, 405), (method, url, response.status_code)
    assert Service.objects.filter(pk=world["service"].pk).exists()


def test_a_member_reads_but_cannot_manage(member, world, analyst):
    api = api_client(member)
    assert api.get(f"/api/v1/services/{world['service'].pk}/").status_code == 200
    assert api.delete(f"/api/v1/services/{world['service'].pk}/").status_code == 403
    assert api.post(f"/api/v1/roles/{analyst['role'].pk}/keys/", {"name": "x"}, format="json").status_code == 403


def test_role_keys_are_refused_on_other_roles_and_other_organizations_mcp_servers(live_mcp, analyst, reader, world):
    assert raw_post(instance_url(live_mcp, analyst["instance"]), secret=reader["secret"]).status_code == 403
    assert raw_post(instance_url(live_mcp, reader["instance"]), secret=analyst["secret"]).status_code == 403
    response = raw_post(instance_url(live_mcp, analyst["instance"]), secret=world["outsider_key"])
    assert response.status_code in (403, 404) and "acme" not in response.text.lower()

    async def scenario():
        async with mcp_client(instance_url(live_mcp, reader["instance"]), reader["secret"]) as client:
            tools = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("query_customers", {"limit": 50})
        return tools, result

    tools, result = run(scenario)
    assert "insert_customers" not in tools
    regions = {row["region"] for row in result.structured_content["rows"]}
    assert regions == {"EU"}, "the reader's row filter holds"
    assert all(set(row) <= {"id", "name", "region"} for row in result.structured_content["rows"])


def test_generated_endpoints_refuse_other_roles_and_other_organizations(client, analyst, reader, world):
    endpoint = world["endpoint"]
    url = f"/api/v1/x/{endpoint.organization.slug}/{endpoint.slug}?region=EU"
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {analyst['secret']}").status_code == 200
    assert client.get(url, HTTP_AUTHORIZATION=f"Bearer {reader['secret']}").status_code == 403
    foreign = client.get(url, HTTP_AUTHORIZATION=f"Bearer {world['outsider_key']}")
    assert foreign.status_code == 404 and "Ada" not in foreign.content.decode()
    assert client.get(url).status_code == 401


def test_pages_of_another_organization_are_not_found(client, outsider, world):
    client.force_login(outsider)
    for url in (f"/executions/{world['execution'].pk}/", f"/apis/{world['endpoint'].pk}/"):
        response = client.get(url)
        assert response.status_code == 404, url
        assert b"secret plan" not in response.content
    for url in ("/", "/apis/", "/memories/", "/mcp-servers/"):
        assert "acme" not in client.get(url).content.decode().lower(), url


@pytest.mark.django_db(transaction=True, databases=["default", "channels_postgres"])
def test_the_websocket_of_another_organizations_execution_is_refused(world, outsider, owner):
    execution = world["execution"]

    async def connect(user):
        communicator = WebsocketCommunicator(
            ExecutionEventsConsumer.as_asgi(), f"/ws/executions/{execution.pk}/?after=0"
        )
        communicator.scope["user"] = user
        communicator.scope["url_route"] = {"kwargs": {"execution_id": execution.pk}}
        communicator.scope["query_string"] = b"after=0"
        connected, code = await communicator.connect()
        first = await communicator.receive_json_from(timeout=10) if connected else None
        await communicator.disconnect()
        return connected, code, first

    async def scenario():
        try:
            return await connect(outsider), await connect(owner)
        finally:
            close = getattr(get_channel_layer(), "close_loop", None)  # the PostgreSQL layer (nectar.channel_layer)
            if close is not None:
                await close()

    (refused, code, _), (connected, _, first) = async_to_sync(scenario)()
    assert not refused and code == 4404
    assert connected and first["event"]["payload"]["text"] == "secret plan"


def test_the_platform_servers_refuse_keys_of_another_organization(live_mcp, org, world):
    for server in ("pattern-library", "compliance-rules", "performance-metrics", "existing-apis"):
        response = httpx.post(
            f"{live_mcp}/mcp/platform/{org.slug}/{server}/",
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={
                "Authorization": f"Bearer {world['outsider_key']}",
                "Accept": "application/json, text/event-stream",
            },
            timeout=30,
        )
        assert response.status_code == 403, server
