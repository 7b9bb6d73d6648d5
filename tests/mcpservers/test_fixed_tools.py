"""The fixed toolset (search_objects, describe_object, sample_rows, try_sql) through the official MCP client."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from mcpservers.fixedtools import DESCRIBE_SAMPLE_ROWS
from mcpservers.models import CallOutcome, ToolCall
from roles import executor
from roles.models import RoleApiKey
from roles.results import ExecutorError
from tests.mcpservers.conftest import FULL_PERMISSIONS, instance_url, make_role, raw_post, run
from tests.mcpservers.test_http import mcp_client

pytestmark = pytest.mark.django_db(transaction=True)

FIXED = ["search_objects", "describe_object", "sample_rows"]


def calls(url: str, secret: str, *requests: tuple[str, dict]):
    async def scenario():
        async with mcp_client(url, secret) as client:
            return [await client.call_tool(name, arguments) for name, arguments in requests]

    return run(scenario)


def listed(url: str, secret: str) -> list[str]:
    async def scenario():
        async with mcp_client(url, secret) as client:
            return [t.name for t in (await client.list_tools()).tools]

    return run(scenario)


def test_every_role_lists_the_fixed_tools_and_try_sql_only_when_its_setting_allows(live_mcp, reader):
    url, secret = instance_url(live_mcp, reader["instance"]), reader["secret"]
    names = listed(url, secret)
    assert names[:3] == FIXED
    assert "try_sql" not in names
    refused = calls(url, secret, ("try_sql", {"sql": "SELECT 1"}))[0]
    assert refused.is_error and "no such tool" in refused.content[0].text
    role = reader["role"]
    role.mcp_allow_try_sql = True
    role.save()
    assert listed(url, secret)[:4] == [*FIXED, "try_sql"]


def test_the_fixed_tools_are_listed_in_compact_mode_too(live_mcp, analyst, settings):
    settings.MCP_COMPACT_THRESHOLD = 5
    names = listed(instance_url(live_mcp, analyst["instance"]), analyst["secret"])
    assert names == [*FIXED, "search_tools", "describe_tool", "call_tool"]


def test_search_objects_matches_names_columns_and_comments(live_mcp, analyst):
    url, secret = instance_url(live_mcp, analyst["instance"]), analyst["secret"]
    by_name, by_column, by_comment, procedures, everything, page = calls(
        url,
        secret,
        ("search_objects", {"query": "orders"}),
        ("search_objects", {"query": "balance"}),
        ("search_objects", {"query": "purchases"}),
        ("search_objects", {"kind": "procedure"}),
        ("search_objects", {}),
        ("search_objects", {"limit": 2, "offset": 2}),
    )
    assert {(o["schema"], o["name"]) for o in by_name.structured_content["objects"]} >= {
        ("public", "orders"),
        ("sales", "orders"),
    }
    customers = next(o for o in by_column.structured_content["objects"] if o["name"] == "customers")
    assert customers["matched_columns"] == ["balance"]
    assert by_comment.structured_content["objects"][0]["name"] == "orders"
    assert by_comment.structured_content["objects"][0]["comment"] == "Purchases made by customers"
    assert [o["name"] for o in procedures.structured_content["objects"]] == ["customers_in_region"]
    assert everything.structured_content["total"] == 5
    assert len(page.structured_content["objects"]) == 2 and page.structured_content["next_offset"] == 4


def test_describe_object_gives_columns_keys_both_ways_and_sample_values(live_mcp, analyst):
    url, secret = instance_url(live_mcp, analyst["instance"]), analyst["secret"]
    customers, orders, function = calls(
        url,
        secret,
        ("describe_object", {"object": "customers"}),
        ("describe_object", {"object": "public.orders"}),
        ("describe_object", {"object": "customers_in_region"}),
    )
    described = customers.structured_content
    columns = {c["name"]: c for c in described["columns"]}
    assert columns["id"]["primary_key"] is True and columns["name"]["nullable"] is False
    assert columns["balance"]["comment"] == "Store credit in euros"
    assert columns["tier"]["enum"] == ["basic", "gold"]
    assert described["referenced_by"] == [
        {"object": "public.orders", "columns": ["customer_id"], "ref_columns": ["id"]}
    ]
    assert set(described["sample_values"]["region"]) == {"EU", "US", "APAC"}
    assert described["row_count_is_estimate"] is True
    assert orders.structured_content["foreign_keys"] == [
        {"columns": ["customer_id"], "references": "public.customers", "ref_columns": ["id"]}
    ]
    assert function.structured_content["arguments"][0]["name"] == "p_region"


def test_a_plain_name_means_the_default_schema_and_schema_name_reaches_the_others(live_mcp, analyst):
    plain, qualified = calls(
        instance_url(live_mcp, analyst["instance"]),
        analyst["secret"],
        ("sample_rows", {"object": "orders"}),
        ("sample_rows", {"object": "sales.orders"}),
    )
    assert plain.structured_content["columns"] == ["id", "customer_id", "total"]
    assert qualified.structured_content["columns"] == ["id", "amount"]


def test_denied_columns_are_refused_or_hidden_by_every_fixed_tool(live_mcp, analyst):
    role = analyst["role"]
    role.mcp_allow_try_sql = True
    role.save()
    url, secret = instance_url(live_mcp, analyst["instance"]), analyst["secret"]
    searched, described, sampled, filtered, tried = calls(
        url,
        secret,
        ("search_objects", {"query": "api_token"}),
        ("describe_object", {"object": "customers"}),
        ("sample_rows", {"object": "customers", "columns": ["name", "api_token"]}),
        ("sample_rows", {"object": "customers", "filters": [{"column": "api_token", "op": "eq", "value": "tok-1"}]}),
        ("try_sql", {"sql": "SELECT name FROM customers WHERE api_token = :t", "params": {"t": "tok-1"}}),
    )
    assert all(
        not o["matched_columns"] or "api_token" not in o["matched_columns"]
        for o in searched.structured_content["objects"]
    )
    assert "customers" not in [o["name"] for o in searched.structured_content["objects"]]
    assert "api_token" not in {c["name"] for c in described.structured_content["columns"]}
    assert "api_token" not in described.structured_content["sample_values"]
    assert "tok-" not in described.content[0].text
    for refused in (sampled, filtered, tried):
        assert refused.is_error, refused.content[0].text
        assert "api_token" in refused.content[0].text
        assert "tok-1" not in refused.content[0].text
    assert set(ToolCall.objects.filter(tool__in=["sample_rows", "try_sql"]).values_list("outcome", flat=True)) == {
        CallOutcome.DENIED
    }


def test_the_row_filter_holds_in_every_fixed_tool(live_mcp, reader):
    role = reader["role"]
    role.mcp_allow_try_sql = True
    role.save()
    url, secret = instance_url(live_mcp, reader["instance"]), reader["secret"]
    described, sampled, other_region, tried, tried_us = calls(
        url,
        secret,
        ("describe_object", {"object": "customers"}),
        ("sample_rows", {"object": "customers", "limit": 20}),
        ("sample_rows", {"object": "customers", "filters": {"region": "US"}}),
        ("try_sql", {"sql": "SELECT name, region FROM customers ORDER BY name"}),
        ("try_sql", {"sql": "SELECT count(*) AS n FROM customers WHERE region = :r", "params": {"r": "US"}}),
    )
    assert described.structured_content["row_filter"] == {"region": "EU"}
    assert described.structured_content["sample_values"].get("region", ["EU"]) == ["EU"]
    assert {c["name"] for c in described.structured_content["columns"]} == {"id", "name", "region"}
    assert {r["region"] for r in sampled.structured_content["rows"]} == {"EU"}
    assert sampled.structured_content["row_count"] == 2
    assert other_region.structured_content["rows"] == []
    assert [r["name"] for r in tried.structured_content["rows"]] == ["Ada", "Cleo"]
    assert tried_us.structured_content["rows"] == [{"n": 0}]


def test_fixed_tool_calls_are_recorded(live_mcp, reader):
    url, secret = instance_url(live_mcp, reader["instance"]), reader["secret"]
    calls(url, secret, ("search_objects", {"query": "customers"}), ("sample_rows", {"object": "nothing_here"}))
    recorded = dict(ToolCall.objects.filter(api_key=reader["key"]).values_list("tool", "outcome"))
    assert recorded == {"search_objects": CallOutcome.OK, "sample_rows": CallOutcome.DENIED}


def test_keys_of_another_role_or_organization_are_refused(live_mcp, analyst, reader, other_org, service):
    from roles.models import Service

    foreign_service = Service.objects.create(
        organization=other_org,
        name="Globex shop",
        engine="postgresql",
        host="127.0.0.1",
        port=5432,
        database=service.database,
        username="postgres",
    )
    foreign = make_role(other_org, foreign_service, "Globex analyst", FULL_PERMISSIONS)
    _, outsider_secret = RoleApiKey.issue(role=foreign, name="globex")
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "search_objects", "arguments": {}}}
    url = instance_url(live_mcp, analyst["instance"])
    assert raw_post(url, secret=outsider_secret, body=call).status_code == 403
    assert raw_post(url, secret=reader["secret"], body=call).status_code == 403
    assert not ToolCall.objects.filter(tool="search_objects").exists()


def test_nectars_own_agents_always_have_try_sql(analyst):
    from agents.toolbox import McpToolbox

    assert analyst["role"].mcp_allow_try_sql is False
    with McpToolbox(instance=analyst["instance"]) as toolbox:
        assert toolbox.tool("try_sql") is not None and toolbox.tool("try_sql").read_only
        outcome = toolbox.call("try_sql", {"sql": "SELECT count(*) AS n FROM customers"})
        assert outcome.ok, outcome.error
        assert outcome.structured["rows"] == [{"n": 4}]


def test_prompts_and_resources_answer_with_the_roles_objects(live_mcp, reader):
    url, secret = instance_url(live_mcp, reader["instance"]), reader["secret"]

    async def scenario():
        async with mcp_client(url, secret) as client:
            prompts = await client.list_prompts()
            resources = await client.list_resources()
            read = await client.read_resource("nectar://objects/public/customers")
            return prompts, resources, read

    prompts, resources, read = run(scenario)
    assert prompts.prompts == []
    assert [r.name for r in resources.resources] == ["public.customers"]
    import json

    described = json.loads(read.contents[0].text)
    assert {c["name"] for c in described["columns"]} == {"id", "name", "region"}
    assert described["row_filter"] == {"region": "EU"}


def _more_customers(engine, *, first: int, regions: list[str]) -> None:
    """Customers beyond the description's 500-row sample, whose regions only later rows hold."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO customers (name, region) SELECT 'Customer ' || n, (CAST(:regions AS text[]))[1 + n % :k] "
                "FROM generate_series(1, :count) AS n"
            ),
            {"regions": regions, "k": len(regions), "count": first},
        )
        conn.execute(sa.text("INSERT INTO customers (name, region) VALUES ('Late', 'LATAM')"))


def test_describe_object_offers_every_value_of_a_category_beyond_its_sample(live_mcp, analyst, customer_rows):
    _more_customers(customer_rows, first=DESCRIBE_SAMPLE_ROWS, regions=["EU", "US"])
    (described,) = calls(
        instance_url(live_mcp, analyst["instance"]), analyst["secret"], ("describe_object", {"object": "customers"})
    )
    regions = described.structured_content["sample_values"]["region"]
    assert set(regions) == {"EU", "US", "APAC", "LATAM"}
    assert regions[:2] in (["EU", "US"], ["US", "EU"])  # most frequent first


def test_a_value_count_that_fails_leaves_the_sampled_values_and_the_description_answers(
    live_mcp, analyst, customer_rows, monkeypatch
):
    _more_customers(customer_rows, first=DESCRIBE_SAMPLE_ROWS, regions=["EU", "US"])

    def timed_out(**_):
        raise ExecutorError("timeout", "The database did not answer in time.", retryable=True)

    monkeypatch.setattr(executor, "executor_distinct", timed_out)
    (described,) = calls(
        instance_url(live_mcp, analyst["instance"]), analyst["secret"], ("describe_object", {"object": "customers"})
    )
    assert not described.is_error
    assert "LATAM" not in described.structured_content["sample_values"]["region"]
    assert {"EU", "US"} <= set(described.structured_content["sample_values"]["region"])
