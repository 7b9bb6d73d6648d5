"""MCP over Streamable HTTP with the official client, against a live server and a real PostgreSQL."""

from __future__ import annotations

from contextlib import asynccontextmanager

import anyio
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from mcpservers.models import CallOutcome, MCPServerInstance, ToolCall
from roles.models import RoleApiKey
from tests.mcpservers.conftest import FULL_PERMISSIONS, instance_url, make_role, raw_post, run

pytestmark = pytest.mark.django_db(transaction=True)


@asynccontextmanager
async def mcp_client(url: str, secret: str, *, mode: str = "auto", headers: dict | None = None):
    # A generous read timeout: concurrent calls on a loaded two-core machine (xdist, CI) queue up.
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {secret}", **(headers or {})}, timeout=60)
    async with http, Client(streamable_http_client(url, http_client=http), mode=mode) as client:
        yield client


def list_tools(url: str, secret: str, mode: str = "auto") -> dict:
    async def scenario():
        async with mcp_client(url, secret, mode=mode) as client:
            return {t.name: t for t in (await client.list_tools()).tools}

    return run(scenario)


def call(url: str, secret: str, name: str, arguments: dict | None = None):
    async def scenario():
        async with mcp_client(url, secret) as client:
            return await client.call_tool(name, arguments or {})

    return run(scenario)


def test_analyst_lists_exactly_the_tools_its_permissions_grant(live_mcp, analyst):
    tools = list_tools(instance_url(live_mcp, analyst["instance"]), analyst["secret"])
    assert set(tools) == {
        "search_objects",
        "describe_object",
        "sample_rows",
        "query_customers",
        "analyze_customers_schema",
        "insert_customers",
        "update_customers",
        "delete_customers",
        "query_public__orders",
        "analyze_public__orders_schema",
        "query_sales__orders",
        "analyze_sales__orders_schema",
        "query_region_totals",
        "analyze_region_totals_schema",
        "execute_customers_in_region",
        "analyze_customers_in_region_signature",
    }
    query = tools["query_customers"]
    assert query.annotations.read_only_hint is True
    assert "Columns: id INTEGER pk; name TEXT; email TEXT null; region TEXT; tier tier =basic|gold;" in (
        query.description
    )
    assert "api_token" not in query.description
    assert tools["delete_customers"].annotations.destructive_hint is True
    assert tools["insert_customers"].annotations.destructive_hint is False
    insert_row = tools["insert_customers"].input_schema["properties"]["rows"]["items"]
    assert insert_row["required"] == ["name", "region"]
    assert insert_row["properties"]["tier"]["enum"] == ["basic", "gold"]


def test_legacy_handshake_clients_get_the_same_tools(live_mcp, reader):
    tools = list_tools(instance_url(live_mcp, reader["instance"]), reader["secret"], mode="legacy")
    assert set(tools) == {
        "search_objects",
        "describe_object",
        "sample_rows",
        "query_customers",
        "analyze_customers_schema",
    }


def test_query_with_typed_filters_order_and_total(live_mcp, analyst):
    result = call(
        instance_url(live_mcp, analyst["instance"]),
        analyst["secret"],
        "query_customers",
        {
            "columns": ["name", "balance"],
            "filters": [
                {"column": "region", "op": "in", "value": ["EU", "APAC"]},
                {
                    "or": [
                        {"column": "tier", "op": "eq", "value": "basic"},
                        {"column": "name", "op": "like", "value": "A%"},
                    ]
                },
            ],
            "order_by": "-name",
            "include_total": True,
        },
    )
    assert not result.is_error
    assert [r["name"] for r in result.structured_content["rows"]] == ["Cleo", "Ada"]
    assert result.structured_content["total"] == 2
    assert "Cleo" in result.content[0].text


def test_decimal_columns_filter_by_number(live_mcp, analyst):
    result = call(
        instance_url(live_mcp, analyst["instance"]),
        analyst["secret"],
        "query_customers",
        {"filters": [{"column": "balance", "op": "gte", "value": 50}], "order_by": "id"},
    )
    assert not result.is_error, result.content[0].text
    assert [r["name"] for r in result.structured_content["rows"]] == ["Ada", "Dan"]


def test_row_filter_and_column_allow_list_confine_the_reader(live_mcp, reader):
    result = call(instance_url(live_mcp, reader["instance"]), reader["secret"], "query_customers", {})
    assert not result.is_error
    rows = result.structured_content["rows"]
    assert {r["name"] for r in rows} == {"Ada", "Cleo"}
    assert all(set(r) <= {"id", "name", "region"} for r in rows)


def test_analyze_describes_only_allowed_columns(live_mcp, reader):
    result = call(instance_url(live_mcp, reader["instance"]), reader["secret"], "analyze_customers_schema")
    assert not result.is_error
    assert [c["name"] for c in result.structured_content["columns"]] == ["id", "name", "region"]
    assert result.structured_content["row_filter"] == {"region": "EU"}


def test_insert_update_and_delete_change_the_customer_database(live_mcp, analyst, customer_rows):
    url, secret = instance_url(live_mcp, analyst["instance"]), analyst["secret"]

    async def scenario():
        async with mcp_client(url, secret) as client:
            inserted = await client.call_tool(
                "insert_customers", {"rows": [{"name": "Eve", "region": "EU", "tier": "gold"}]}
            )
            updated = await client.call_tool(
                "update_customers", {"values": {"balance": 42}, "filters": {"name": "Eve"}}
            )
            deleted = await client.call_tool(
                "delete_customers", {"filters": [{"column": "name", "op": "eq", "value": "Bob"}]}
            )
            return inserted, updated, deleted

    inserted, updated, deleted = run(scenario)
    assert not inserted.is_error and inserted.structured_content["row_count"] == 1
    assert not updated.is_error and updated.structured_content["row_count"] == 1
    assert not deleted.is_error and deleted.structured_content["row_count"] == 1
    with customer_rows.connect() as conn:
        names = {r[0]: r[1] for r in conn.exec_driver_sql("SELECT name, balance FROM customers").all()}
    assert "Bob" not in names
    assert float(names["Eve"]) == 42.0


def test_execute_a_function_with_typed_parameters(live_mcp, analyst):
    url, secret = instance_url(live_mcp, analyst["instance"]), analyst["secret"]
    result = call(url, secret, "execute_customers_in_region", {"parameters": {"p_region": "EU"}})
    assert not result.is_error, result.content[0].text
    assert list(result.structured_content["rows"][0].values()) == [2]
    signature = call(url, secret, "analyze_customers_in_region_signature")
    assert signature.structured_content["arguments"][0]["name"] == "p_region"


def test_view_query_tool_reads_the_view(live_mcp, analyst):
    result = call(
        instance_url(live_mcp, analyst["instance"]),
        analyst["secret"],
        "query_region_totals",
        {"order_by": [{"column": "region", "direction": "asc"}]},
    )
    assert [r["region"] for r in result.structured_content["rows"]] == ["APAC", "EU", "US"]


def test_ungranted_tool_is_neither_listed_nor_callable(live_mcp, reader, customer_rows):
    url, secret = instance_url(live_mcp, reader["instance"]), reader["secret"]
    assert "delete_customers" not in list_tools(url, secret)
    result = call(url, secret, "delete_customers", {"filters": {"id": 1}})
    assert result.is_error
    assert "no such tool" in result.content[0].text
    with customer_rows.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM customers").scalar() == 4
    assert ToolCall.objects.get(tool="delete_customers").outcome == CallOutcome.DENIED


def test_bad_arguments_come_back_as_tool_errors_naming_the_field(live_mcp, analyst):
    url, secret = instance_url(live_mcp, analyst["instance"]), analyst["secret"]
    result = call(url, secret, "query_customers", {"filters": [{"column": "api_token", "op": "eq", "value": "x"}]})
    assert result.is_error
    assert "arguments.filters" in result.content[0].text
    missing = call(url, secret, "insert_customers", {"rows": [{"name": "No region"}]})
    assert missing.is_error
    assert "region" in missing.content[0].text


def test_database_refusals_come_back_as_clear_tool_errors(live_mcp, analyst):
    result = call(
        instance_url(live_mcp, analyst["instance"]),
        analyst["secret"],
        "insert_customers",
        {"rows": [{"name": "Dup", "region": "EU", "id": 1}]},
    )
    assert result.is_error
    text = result.content[0].text
    assert text
    assert "Traceback" not in text
    assert "postgresql://" not in text


def test_every_call_is_recorded_with_secrets_redacted(live_mcp, analyst):
    url, secret = instance_url(live_mcp, analyst["instance"]), analyst["secret"]
    call(url, secret, "query_customers", {"filters": {"name": "Ada"}, "limit": 5})
    call(url, secret, "execute_customers_in_region", {"parameters": {"p_region": "US"}})
    record = ToolCall.objects.get(tool="query_customers")
    assert record.outcome == CallOutcome.OK
    assert record.rows == 1
    assert record.api_key_id == analyst["key"].id
    assert record.organization_id == analyst["role"].organization_id
    assert record.arguments == {"filters": {"name": "Ada"}, "limit": 5}
    assert record.duration_ms > 0
    instance = MCPServerInstance.objects.get(pk=analyst["instance"].pk)
    assert instance.request_count == 2
    assert instance.avg_response_time > 0


def test_request_count_is_exact_after_concurrent_calls(live_mcp, analyst):
    url, secret = instance_url(live_mcp, analyst["instance"]), analyst["secret"]
    calls = 24

    async def scenario():
        async with mcp_client(url, secret) as client:
            await client.list_tools()
            async with anyio.create_task_group() as tg:
                for i in range(calls):
                    tg.start_soon(client.call_tool, "query_customers", {"limit": 1 + i % 3})

    run(scenario)
    instance = MCPServerInstance.objects.get(pk=analyst["instance"].pk)
    assert instance.request_count == calls
    assert ToolCall.objects.filter(instance=instance).count() == calls


def test_missing_and_wrong_keys_get_401(live_mcp, analyst):
    url = instance_url(live_mcp, analyst["instance"])
    missing = raw_post(url)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert raw_post(url, secret="nk_wrong_key").status_code == 401


def test_revoked_and_expired_keys_get_401(live_mcp, analyst):
    from datetime import timedelta

    from django.utils import timezone

    url = instance_url(live_mcp, analyst["instance"])
    analyst["key"].revoke()
    assert raw_post(url, secret=analyst["secret"]).status_code == 401
    _, secret = RoleApiKey.issue(role=analyst["role"], name="old", expires_at=timezone.now() - timedelta(minutes=1))
    assert raw_post(url, secret=secret).status_code == 401


def test_another_roles_key_gets_403(live_mcp, analyst, reader):
    response = raw_post(instance_url(live_mcp, analyst["instance"]), secret=reader["secret"])
    assert response.status_code == 403


def test_another_organizations_instance_is_refused(live_mcp, analyst, other_org, service):
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
    _, foreign_secret = RoleApiKey.issue(role=foreign, name="globex")
    assert raw_post(instance_url(live_mcp, analyst["instance"]), secret=foreign_secret).status_code == 403
    assert raw_post(instance_url(live_mcp, foreign.mcp_instance), secret=analyst["secret"]).status_code == 403


def test_unknown_and_disabled_instances_get_404(live_mcp, analyst):
    import uuid

    from mcpservers.services import mcp_disable

    assert raw_post(f"{live_mcp}/mcp/{uuid.uuid4()}/", secret=analyst["secret"]).status_code == 404
    mcp_disable(role=analyst["role"])
    response = raw_post(instance_url(live_mcp, analyst["instance"]), secret=analyst["secret"])
    assert response.status_code == 404
    assert "disabled" in response.json()["error"]["message"]


def test_a_foreign_origin_gets_403_and_a_configured_one_is_served(live_mcp, analyst, settings):
    url = instance_url(live_mcp, analyst["instance"])
    assert raw_post(url, secret=analyst["secret"], headers={"Origin": "http://evil.example"}).status_code == 403
    settings.MCP_ALLOWED_ORIGINS = ["https://app.example"]
    allowed = raw_post(url, secret=analyst["secret"], headers={"Origin": "https://app.example"})
    assert allowed.status_code == 200
    assert allowed.json()["result"]["serverInfo"]["name"] == "nectar-Analyst"


def test_protocol_version_header_is_validated(live_mcp, analyst):
    url = instance_url(live_mcp, analyst["instance"])
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    unsupported = raw_post(url, secret=analyst["secret"], headers={"MCP-Protocol-Version": "1999-01-01"}, body=listing)
    assert unsupported.status_code == 400
    supported = raw_post(url, secret=analyst["secret"], headers={"MCP-Protocol-Version": "2025-06-18"}, body=listing)
    assert supported.status_code == 200
    assert len(supported.json()["result"]["tools"]) == 16  # 13 of the grants, 3 of the fixed toolset
    # Absent: the server assumes the specification's default version and still answers.
    absent = raw_post(url, secret=analyst["secret"], body=listing)
    assert absent.status_code == 200


def test_tools_follow_a_permission_change(live_mcp, analyst):
    role = analyst["role"]
    role.permissions = [p for p in FULL_PERMISSIONS if p["objectName"] != "region_totals"]
    role.save()
    tools = list_tools(instance_url(live_mcp, analyst["instance"]), analyst["secret"])
    assert "query_region_totals" not in tools
    assert "query_customers" in tools


def test_a_dropped_column_disappears_from_the_tools_before_serving(live_mcp, analyst, customer_rows):
    from roles.introspection import service_refresh_schema

    with customer_rows.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE customers ADD COLUMN nickname text")
    service = analyst["role"].service
    service_refresh_schema(service=service)
    url, secret = instance_url(live_mcp, analyst["instance"]), analyst["secret"]
    tools = list_tools(url, secret)
    assert "nickname TEXT null" in tools["query_customers"].description
    with customer_rows.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE customers DROP COLUMN nickname")
    service_refresh_schema(service=service)
    tools = list_tools(url, secret)
    assert "nickname" not in tools["query_customers"].description
