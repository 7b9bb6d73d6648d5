"""Keys see what their Role may see: the platform MCP servers answer a Role's key with that Role's
memories and endpoints only, with business rules over what the Role can read, and with the
statistics of its own calls; users (not keys) keep seeing their organization's."""

from __future__ import annotations

import json

import pytest

from learning.services import memory_create
from mcpservers.services import tool_call
from tests.mcpservers.conftest import run
from tests.mcpservers.test_http import mcp_client

pytestmark = pytest.mark.django_db(transaction=True)


def _platform(live_mcp, org, server, secret, tool, arguments):
    async def scenario():
        async with mcp_client(f"{live_mcp}/mcp/platform/{org.slug}/{server}/", secret) as client:
            return await client.call_tool(tool, arguments)

    result = run(scenario)
    assert not result.is_error, result.content[0].text
    return result.structured_content


def _rule(mapping: dict) -> str:
    return "Rule.\n\n```json\n" + json.dumps(mapping) + "\n```"


@pytest.fixture
def memories(org, analyst, reader):
    made = {
        "analyst": memory_create(
            organization=org,
            type="API_PATTERN",
            content="Top customers by balance with their email",
            role=analyst["role"],
            tags=["object:public.customers"],
        ),
        "reader": memory_create(
            organization=org,
            type="API_PATTERN",
            content="EU customers by name",
            role=reader["role"],
            tags=["object:public.customers"],
        ),
        "rule_plain": memory_create(organization=org, type="BUSINESS_RULE", content="Customers are people who buy."),
        "rule_token": memory_create(
            organization=org,
            type="BUSINESS_RULE",
            content=_rule({"term": "token", "object": "public.customers", "column": "api_token"}),
        ),
        "rule_email": memory_create(
            organization=org,
            type="BUSINESS_RULE",
            content=_rule({"term": "contact", "object": "public.customers", "column": "email"}),
        ),
        "rule_us": memory_create(
            organization=org,
            type="BUSINESS_RULE",
            content=_rule({"term": "american", "object": "public.customers", "column": "region", "value": "US"}),
        ),
        "rule_sales": memory_create(
            organization=org,
            type="BUSINESS_RULE",
            content=_rule({"term": "invoice", "objects": ["sales.orders"]}),
        ),
    }
    return made


def _ids(payload) -> set[str]:
    return {m["id"] for m in payload["memories"]}


def test_a_role_key_finds_only_its_own_roles_patterns(live_mcp, org, analyst, reader, memories):
    for who, other in (("analyst", "reader"), ("reader", "analyst")):
        secret = {"analyst": analyst, "reader": reader}[who]["secret"]
        found = _platform(live_mcp, org, "pattern-library", secret, "search_patterns", {"query": "customers", "k": 10})
        ids = _ids(found)
        assert str(memories[who].pk) in ids
        assert str(memories[other].pk) not in ids


def test_business_rules_are_shown_only_over_what_the_key_can_read(live_mcp, org, analyst, reader, memories):
    analyst_rules = _ids(_platform(live_mcp, org, "compliance-rules", analyst["secret"], "list_business_rules", {}))
    reader_rules = _ids(_platform(live_mcp, org, "compliance-rules", reader["secret"], "list_business_rules", {}))
    expected_analyst = {"rule_plain", "rule_email", "rule_us", "rule_sales"}  # api_token is denied to it
    expected_reader = {"rule_plain"}  # no email column, row filter EU, no sales.orders
    assert analyst_rules == {str(memories[k].pk) for k in expected_analyst}
    assert reader_rules == {str(memories[k].pk) for k in expected_reader}


def test_a_role_key_lists_only_its_own_roles_endpoints(live_mcp, org, analyst, reader, deploy):
    endpoint = deploy(analyst["role"])
    mine = _platform(live_mcp, org, "existing-apis", analyst["secret"], "list_apis", {})
    theirs = _platform(live_mcp, org, "existing-apis", reader["secret"], "list_apis", {})
    assert [e["id"] for e in mine["endpoints"]] == [str(endpoint.pk)]
    assert theirs["endpoints"] == []


def test_performance_metrics_show_a_key_only_its_roles_calls_and_server(live_mcp, org, analyst, reader):
    tool_call(instance=analyst["instance"], api_key=analyst["key"], name="query_customers", arguments={"limit": 1})
    mine = _platform(live_mcp, org, "performance-metrics", analyst["secret"], "tool_call_stats", {})
    theirs = _platform(live_mcp, org, "performance-metrics", reader["secret"], "tool_call_stats", {})
    assert "query_customers" in {t["tool"] for t in mine["tools"]}
    assert "query_customers" not in {t["tool"] for t in theirs["tools"]}
    instances = _platform(live_mcp, org, "performance-metrics", reader["secret"], "instance_stats", {})["instances"]
    assert [i["role"] for i in instances] == [reader["role"].name]


def test_users_still_see_every_memory_of_their_organization(owner_api, memories):
    listed = owner_api.get("/api/v1/memories/", {"page_size": 50}).json()["results"]
    assert {m["id"] for m in listed} == {str(m.pk) for m in memories.values()}


def test_an_outsiders_key_reaches_no_platform_server_of_the_organization(live_mcp, org, other_org, memories):
    from roles.models import Role, RoleApiKey, Service

    service = Service.objects.create(organization=other_org, name="theirs", engine="sqlite", database="x.db")
    role = Role.objects.create(organization=other_org, service=service, name="theirs")
    _, secret = RoleApiKey.issue(role=role, name="k")
    from tests.mcpservers.conftest import raw_post

    for server in ("pattern-library", "compliance-rules", "performance-metrics", "existing-apis"):
        assert raw_post(f"{live_mcp}/mcp/platform/{org.slug}/{server}/", secret=secret).status_code == 403
