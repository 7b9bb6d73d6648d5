"""Protocol edges a data server answers, as the MCP conformance suite checks them (bench/mcp_protocol.py runs it)."""

from __future__ import annotations

import httpx
import pytest

from tests.mcpservers.conftest import INITIALIZE, instance_url, raw_post

pytestmark = pytest.mark.django_db(transaction=True)


def _rpc(url: str, secret: str, method: str, params: dict | None = None, **headers) -> dict:
    body = {"jsonrpc": "2.0", "id": 9, "method": method, "params": params or {}}
    response = raw_post(url, secret=secret, headers={"MCP-Protocol-Version": "2025-06-18", **headers}, body=body)
    assert response.status_code == 200, response.text
    return response.json()


def test_initialize_declares_logging_completions_prompts_and_resources(live_mcp, reader):
    response = raw_post(instance_url(live_mcp, reader["instance"]), secret=reader["secret"], body=INITIALIZE)
    capabilities = response.json()["result"]["capabilities"]
    assert {"tools", "prompts", "resources", "logging", "completions"} <= set(capabilities)


def test_prompts_and_resources_list_instead_of_method_not_found(live_mcp, reader):
    url = instance_url(live_mcp, reader["instance"])
    assert _rpc(url, reader["secret"], "prompts/list")["result"]["prompts"] == []
    resources = _rpc(url, reader["secret"], "resources/list")["result"]["resources"]
    assert [r["uri"] for r in resources] == ["nectar://objects/public/customers"]
    templates = _rpc(url, reader["secret"], "resources/templates/list")["result"]["resourceTemplates"]
    assert [t["uriTemplate"] for t in templates] == ["nectar://objects/{schema}/{name}"]


def test_a_logging_level_is_accepted_and_a_wrong_one_is_refused(live_mcp, reader):
    url = instance_url(live_mcp, reader["instance"])
    assert _rpc(url, reader["secret"], "logging/setLevel", {"level": "warning"})["result"] in (
        {},
        {"resultType": "complete"},
    )
    wrong = _rpc(url, reader["secret"], "logging/setLevel", {"level": "loud"})
    assert wrong["error"]["code"] == -32602


def test_object_names_complete_from_what_the_role_may_read(live_mcp, reader, analyst):
    ref = {"type": "ref/resource", "uri": "nectar://objects/{schema}/{name}"}

    def complete(who, argument: str, value: str, context: dict | None = None) -> dict:
        params = {"ref": ref, "argument": {"name": argument, "value": value}}
        if context is not None:
            params["context"] = {"arguments": context}
        return _rpc(instance_url(live_mcp, who["instance"]), who["secret"], "completion/complete", params)["result"]

    assert complete(analyst, "name", "")["completion"]["values"] == [
        "customers",
        "customers_in_region",
        "orders",
        "region_totals",
    ]
    assert complete(analyst, "name", "OR", {"schema": "sales"})["completion"]["values"] == ["orders"]
    assert complete(analyst, "schema", "")["completion"]["values"] == ["public", "sales"]
    # The reader may read customers only: the other objects are not even named.
    assert complete(reader, "name", "")["completion"] == {"values": ["customers"], "total": 1, "hasMore": False}
    prompt = {"ref": {"type": "ref/prompt", "name": "none"}, "argument": {"name": "x", "value": "a"}}
    url = instance_url(live_mcp, reader["instance"])
    assert _rpc(url, reader["secret"], "completion/complete", prompt)["result"]["completion"]["values"] == []


def test_an_origin_on_the_requests_own_host_is_served_and_another_port_is_not(live_mcp, reader):
    url = instance_url(live_mcp, reader["instance"])
    host = live_mcp.removeprefix("http://")
    same = raw_post(url, secret=reader["secret"], headers={"Origin": f"http://{host}"})
    assert same.status_code == 200, same.text
    port = int(host.rsplit(":", 1)[1])
    other = raw_post(url, secret=reader["secret"], headers={"Origin": f"http://127.0.0.1:{port + 1}"})
    assert other.status_code == 403
    rebound = raw_post(url, secret=reader["secret"], headers={"Host": "evil.example", "Origin": "http://evil.example"})
    assert rebound.status_code == 400


def test_get_and_delete_answer_405(live_mcp, reader):
    url = instance_url(live_mcp, reader["instance"])
    for method in ("GET", "DELETE"):
        response = httpx.request(method, url, headers={"Authorization": f"Bearer {reader['secret']}"}, timeout=10)
        assert response.status_code == 405 and response.headers["allow"] == "POST"
