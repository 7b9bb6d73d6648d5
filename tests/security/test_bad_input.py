"""Bad bytes (NUL, invalid UTF-8, lone surrogates) get a clear 400 or tool error, are audited, leak nothing."""

from __future__ import annotations

import json

import httpx
import pytest

from learning.models import AgentMemory
from learning.services import memory_create
from mcpservers.models import CallOutcome, ToolCall
from roles.models import RoleApiKey, Service
from tests.mcpservers.conftest import instance_url, run
from tests.mcpservers.test_http import mcp_client

pytestmark = pytest.mark.django_db(transaction=True)

INTERNALS = ("SELECT", "INSERT", "psycopg", "Traceback", "mcpservers_toolcall", "learning_", "0x00")


def _no_internals(text: str) -> None:
    for word in INTERNALS[:-1]:
        assert word not in text, text


@pytest.mark.parametrize(
    ("query", "problem"),
    [("region=EU%00", "NUL"), ("region=EU%FF", "UTF-8"), ("region=%ED%A0%80", "UTF-8"), ("reg%00ion=EU", "NUL")],
)
def test_a_generated_endpoint_answers_bad_bytes_with_a_400_naming_the_parameter_and_audits_it(
    client, analyst, deploy, query, problem
):
    endpoint = deploy(analyst["role"])
    response = client.get(
        f"/api/v1/x/{endpoint.organization.slug}/{endpoint.slug}?{query}",
        HTTP_AUTHORIZATION=f"Bearer {analyst['secret']}",
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["error"]["code"] == "invalid_parameters"
    (item,) = body["error"]["errors"]
    assert item["code"] == "invalid_text" and problem in item["message"]
    assert item["field"].startswith("reg")
    _no_internals(response.content.decode())
    record = ToolCall.objects.get(tool=endpoint.tool_name)
    assert record.outcome == CallOutcome.ERROR
    assert "\x00" not in json.dumps(record.arguments) and "invalid_text" not in record.error
    assert problem in record.error


def test_a_generated_endpoint_still_answers_good_text(client, analyst, deploy):
    endpoint = deploy(analyst["role"])
    response = client.get(
        f"/api/v1/x/{endpoint.organization.slug}/{endpoint.slug}?region=EU",
        HTTP_AUTHORIZATION=f"Bearer {analyst['secret']}",
    )
    assert response.status_code == 200, response.content
    assert {row["name"] for row in response.json()["results"]} == {"Ada", "Cleo"}


@pytest.mark.parametrize("query", ["q=ab%00", "q=%FF", "type=%00", "ty%00pe=1"])
def test_the_rest_api_refuses_bad_bytes_in_query_strings_with_the_field(owner_api, query):
    response = owner_api.get(f"/api/v1/memories/?{query}")
    assert response.status_code == 400, response.content
    (item,) = response.json()["errors"]
    assert item["code"] == "invalid_text"
    assert item["field"] in ("q", "type", "ty\\u0000pe")


@pytest.mark.parametrize(
    "body",
    [
        b'{"name": "Shop\\u0000", "engine": "sqlite", "database": "x.db"}',
        b'{"name": "Shop\\ud800", "engine": "sqlite", "database": "x.db"}',
        b'{"name": "Shop", "engine": "sqlite", "database": "x.db", "options": {"sslmode\\u0000": "x"}}',
    ],
)
def test_the_rest_api_refuses_bad_text_in_json_bodies_and_stores_nothing(owner_api, org, body):
    response = owner_api.generic("POST", "/api/v1/services/", body, content_type="application/json")
    assert response.status_code == 400, response.content
    assert response.json()["errors"][0]["code"] == "invalid_text"
    assert not Service.objects.filter(organization=org).exists()


def test_the_rest_api_refuses_a_body_that_is_not_utf8(owner_api, org):
    body = b'{"name": "Caf\xe9", "engine": "sqlite", "database": "x.db"}'
    response = owner_api.generic("POST", "/api/v1/services/", body, content_type="application/json")
    assert response.status_code == 400
    _no_internals(response.content.decode())
    assert not Service.objects.filter(organization=org).exists()


def test_pages_and_admin_refuse_bad_bytes_with_a_400(client, owner):
    client.force_login(owner)
    for url in ("/memories/?q=a%00b", "/admin/roles/service/?q=%00", "/admin/learning/agentmemory/?q=%FF"):
        response = client.get(url)
        assert response.status_code == 400, url
        assert b"text" in response.content
    response = client.post(
        "/admin/roles/service/add/", "name=Shop%00&engine=sqlite", content_type=("application/x-www-form-urlencoded")
    )
    assert response.status_code == 400


def test_an_admin_json_field_with_an_escaped_nul_is_a_form_error(client, owner, org):
    client.force_login(owner)
    response = client.post(
        "/admin/roles/service/add/",
        {
            "organization": str(org.pk),
            "name": "Shop",
            "engine": "postgresql",
            "host": "db.example.com",
            "database": "shop",
            "options": '{"sslmode": "re\\u0000quire"}',
        },
    )
    assert response.status_code == 200
    assert "NUL" in response.content.decode()
    assert not Service.objects.filter(organization=org).exists()


def test_an_mcp_tool_refuses_a_nul_with_a_clear_error_and_records_the_call(live_mcp, analyst):
    async def scenario():
        async with mcp_client(instance_url(live_mcp, analyst["instance"]), analyst["secret"]) as client:
            return await client.call_tool("query_customers", {"filters": {"name": "Ber\x00lin"}})

    result = run(scenario)
    assert result.is_error
    text = result.content[0].text
    assert "arguments.filters.name" in text and "NUL" in text
    _no_internals(text)
    record = ToolCall.objects.get(tool="query_customers")
    assert record.outcome == CallOutcome.ERROR
    assert record.arguments["filters"]["name"] == "Ber\\u0000lin"


def _raw_mcp_call(url: str, secret: str, body: bytes) -> httpx.Response:
    return httpx.post(
        url,
        content=body,
        headers={
            "Authorization": f"Bearer {secret}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            "MCP-Protocol-Version": "2025-06-18",
        },
        timeout=30,
    )


def test_a_lone_surrogate_in_mcp_tool_arguments_is_a_tool_error_and_audited(live_mcp, analyst):
    # The official client cannot even encode a lone surrogate; a raw JSON-RPC request can. The
    # tool refuses the argument by name, as it does a NUL, and the call is in the audit log.
    body = (
        b'{"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": '
        b'{"name": "query_customers", "arguments": {"filters": {"name": "Ber\\ud800lin"}}}}'
    )
    response = _raw_mcp_call(instance_url(live_mcp, analyst["instance"]), analyst["secret"], body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["id"] == 7 and answer["result"]["isError"] is True
    text = answer["result"]["content"][0]["text"]
    assert "arguments.filters.name" in text and "surrogate" in text
    _no_internals(response.text)
    record = ToolCall.objects.get(tool="query_customers")
    assert record.outcome == CallOutcome.ERROR and record.api_key_id == analyst["key"].pk
    assert record.arguments["filters"]["name"] == "Ber\\ud800lin"


def test_a_surrogate_pair_over_mcp_is_ordinary_text(live_mcp, analyst):
    body = (
        b'{"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": '
        b'{"name": "query_customers", "arguments": {"filters": {"name": "Ada \\ud83d\\ude00"}}}}'
    )
    response = _raw_mcp_call(instance_url(live_mcp, analyst["instance"]), analyst["secret"], body)
    assert response.status_code == 200, response.text
    assert response.json()["result"]["isError"] is False
    assert response.json()["result"]["structuredContent"]["rows"] == []
    assert ToolCall.objects.get(tool="query_customers").outcome == CallOutcome.OK


def test_a_lone_surrogate_outside_tool_arguments_is_a_parse_error_not_a_server_error(live_mcp, analyst):
    body = b'{"jsonrpc": "2.0", "id": 9, "method": "resources/read", "params": {"uri": "nectar://\\udc80"}}'
    response = _raw_mcp_call(instance_url(live_mcp, analyst["instance"]), analyst["secret"], body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == -32700
    _no_internals(response.text)


def test_a_lone_surrogate_in_tool_arguments_is_a_tool_error_naming_the_argument(analyst):
    from mcpservers.services import tool_call

    result = tool_call(
        instance=analyst["instance"],
        api_key=analyst["key"],
        name="query_customers",
        arguments={"filters": {"name": "Ber\ud800lin"}},
    )
    assert result.is_error and "arguments.filters.name" in result.text and "surrogate" in result.text
    record = ToolCall.objects.get(tool="query_customers")
    assert record.outcome == CallOutcome.ERROR
    assert record.arguments["filters"]["name"] == "Ber\\ud800lin"


def test_an_mcp_request_body_that_is_not_utf8_is_refused_without_a_server_error(live_mcp, analyst):
    response = httpx.post(
        instance_url(live_mcp, analyst["instance"]),
        content=b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"x": "\xff"}}',
        headers={
            "Authorization": f"Bearer {analyst['secret']}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
        timeout=30,
    )
    assert 400 <= response.status_code < 500, response.text
    _no_internals(response.text)


# --- the memory search is total ----------------------------------------------------------------


@pytest.mark.parametrize("q", ["a", "the", "  a  ", "?!", "of the"])
def test_a_memory_search_with_no_usable_word_is_an_empty_result(owner_api, org, q):
    memory_create(organization=org, type="API_PATTERN", content="Monthly revenue per region")
    response = owner_api.get("/api/v1/memories/", {"q": q})
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 0 and response.json()["results"] == []


def test_a_memory_embedded_as_a_zero_vector_never_yields_nan(owner_api, org):
    memory_create(organization=org, type="API_PATTERN", content="Monthly revenue per region")
    memory_create(organization=org, type="BUSINESS_RULE", content="a")  # no feature: a zero vector
    assert AgentMemory.objects.filter(content="a").exists()
    response = owner_api.get("/api/v1/memories/", {"q": "revenue per region"})
    assert response.status_code == 200
    body = json.loads(response.content, parse_constant=lambda c: pytest.fail(f"{c} in the answer"))
    assert [m["content"] for m in body["results"]] == ["Monthly revenue per region"]


def test_the_platform_mcp_answers_a_stop_word_search_with_valid_json(live_mcp, analyst, org):
    memory_create(organization=org, type="API_PATTERN", content="Monthly revenue per region", role=analyst["role"])
    memory_create(organization=org, type="BUSINESS_RULE", content="a")
    url = f"{live_mcp}/mcp/platform/{org.slug}/pattern-library/"

    async def scenario():
        async with mcp_client(url, analyst["secret"]) as client:
            return [
                await client.call_tool("search_patterns", {"query": q, "k": 5}) for q in ("a", "revenue per region")
            ]

    empty, found = run(scenario)
    for result in (empty, found):
        assert not result.is_error, result.content[0].text
        json.loads(result.content[0].text, parse_constant=lambda c: pytest.fail(f"{c} in the answer"))
    assert empty.structured_content["memories"] == []
    similarities = [m["similarity"] for m in found.structured_content["memories"]]
    assert similarities and all(isinstance(s, float) for s in similarities)
    assert RoleApiKey.objects.filter(role=analyst["role"]).exists()
