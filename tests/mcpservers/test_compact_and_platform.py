"""Compact mode for large catalogs, and the platform's own MCP servers, over live HTTP."""

from __future__ import annotations

import pytest

from learning.services import memory_create
from mcpservers.models import ToolCall
from roles.models import RoleApiKey
from tests.mcpservers.conftest import instance_url, raw_post, run
from tests.mcpservers.test_http import mcp_client

pytestmark = pytest.mark.django_db(transaction=True)


def test_above_the_threshold_only_fixed_and_meta_tools_are_listed_and_they_reach_every_tool(
    live_mcp, analyst, settings
):
    settings.MCP_COMPACT_THRESHOLD = 5
    url, secret = instance_url(live_mcp, analyst["instance"]), analyst["secret"]

    async def scenario():
        async with mcp_client(url, secret) as client:
            listed = [t.name for t in (await client.list_tools()).tools]
            found = await client.call_tool("search_tools", {"query": "orders query"})
            described = await client.call_tool("describe_tool", {"name": "query_customers"})
            called = await client.call_tool(
                "call_tool", {"name": "query_customers", "arguments": {"filters": {"name": "Dan"}}}
            )
            unknown = await client.call_tool("call_tool", {"name": "drop_everything", "arguments": {}})
            return listed, found, described, called, unknown

    listed, found, described, called, unknown = run(scenario)
    assert listed == ["search_objects", "describe_object", "sample_rows", "search_tools", "describe_tool", "call_tool"]
    assert {t["name"] for t in found.structured_content["tools"]} == {"query_public__orders", "query_sales__orders"}
    assert "filters" in described.structured_content["inputSchema"]["properties"]
    assert called.structured_content["rows"][0]["name"] == "Dan"
    assert unknown.is_error and "no such tool" in unknown.content[0].text
    assert ToolCall.objects.filter(tool="query_customers").count() == 1


def _platform_url(base: str, slug: str, server: str) -> str:
    return f"{base}/mcp/platform/{slug}/{server}/"


def test_pattern_library_and_compliance_rules_answer_from_the_organizations_memories(live_mcp, analyst, org, other_org):
    # A key sees its own Role's memories (and the organization's business rules it can read).
    memory_create(
        organization=org,
        type="SUCCESS_PATTERN",
        content="Paginate customer lists by id",
        tags=["customers"],
        role=analyst["role"],
    )
    memory_create(organization=org, type="BUSINESS_RULE", content="EU customers' emails are personal data")
    memory_create(organization=other_org, type="BUSINESS_RULE", content="Globex rule about customers")
    secret = analyst["secret"]

    async def scenario():
        async with mcp_client(_platform_url(live_mcp, org.slug, "pattern-library"), secret) as client:
            patterns = await client.call_tool("search_patterns", {"query": "customer lists", "k": 5})
        async with mcp_client(_platform_url(live_mcp, org.slug, "compliance-rules"), secret) as client:
            rules = await client.call_tool("list_business_rules", {})
        return patterns, rules

    patterns, rules = run(scenario)
    assert patterns.structured_content["method"] == "vector"
    assert not patterns.is_error, patterns.content[0].text
    assert "Paginate customer lists by id" in [m["content"] for m in patterns.structured_content["memories"]]
    contents = [m["content"] for m in rules.structured_content["memories"]]
    assert contents == ["EU customers' emails are personal data"]


def test_performance_metrics_report_tool_statistics(live_mcp, analyst, org):
    url, secret = instance_url(live_mcp, analyst["instance"]), analyst["secret"]

    async def scenario():
        async with mcp_client(url, secret) as client:
            for _ in range(3):
                await client.call_tool("query_customers", {"limit": 2})
            await client.call_tool("query_customers", {"limit": 0})
        async with mcp_client(_platform_url(live_mcp, org.slug, "performance-metrics"), secret) as client:
            return await client.call_tool("tool_call_stats", {}), await client.call_tool("instance_stats", {})

    stats, instances = run(scenario)
    row = next(t for t in stats.structured_content["tools"] if t["tool"] == "query_customers")
    assert row["count"] == 4
    assert row["error_rate"] == 0.25
    assert row["p50_ms"] > 0 and row["p95_ms"] >= row["p50_ms"]
    listed = instances.structured_content["instances"]
    assert listed[0]["request_count"] == 4 and listed[0]["role"] == "Analyst"


def test_existing_apis_answers_with_a_note_until_endpoints_exist(live_mcp, analyst, org):
    async def scenario():
        async with mcp_client(_platform_url(live_mcp, org.slug, "existing-apis"), analyst["secret"]) as client:
            return await client.call_tool("list_apis", {})

    result = run(scenario)
    assert not result.is_error
    assert isinstance(result.structured_content["endpoints"], list)


def test_platform_servers_refuse_other_organizations_and_unknown_servers(live_mcp, analyst, other_org, org):
    assert (
        raw_post(_platform_url(live_mcp, other_org.slug, "pattern-library"), secret=analyst["secret"]).status_code
        == 403
    )
    assert raw_post(_platform_url(live_mcp, org.slug, "pattern-library")).status_code == 401
    assert raw_post(_platform_url(live_mcp, org.slug, "no-such-server"), secret=analyst["secret"]).status_code == 404
    analyst["key"].revoke()
    _, fresh = RoleApiKey.issue(role=analyst["role"], name="fresh")
    assert raw_post(_platform_url(live_mcp, org.slug, "compliance-rules"), secret=fresh).status_code == 200
