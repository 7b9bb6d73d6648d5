"""A plain tools/call is answered without the SDK's per-request session, exactly as the SDK answers it."""

from __future__ import annotations

import json

import pytest
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager

from mcpservers import http as mcp_http
from mcpservers.audit import audit_flush
from mcpservers.models import ToolCall
from tests.mcpservers.conftest import instance_url, raw_post
from tests.mcpservers.test_hot_path import proxied_reader  # noqa: F401 (fixture)
from tests.support.clock import one_rate_window
from tests.support.platform_queries import platform_queries

pytestmark = pytest.mark.django_db(transaction=True)

QUERY = {"columns": ["id", "name", "balance"], "filters": {"region": "EU"}, "order_by": "id", "limit": 5}


def _tools_call(name: str, arguments=None, request_id=7) -> dict:
    params = {"name": name} if arguments is None else {"name": name, "arguments": arguments}
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": params}


def _answer(url: str, secret: str, body: dict, version: str) -> tuple[int, str, dict]:
    response = raw_post(url, secret=secret, headers={"MCP-Protocol-Version": version}, body=body)
    return response.status_code, response.headers["content-type"], response.json()


@pytest.mark.parametrize("version", ["2025-03-26", "2025-06-18", "2025-11-25"])
@pytest.mark.parametrize(
    "body",
    [
        _tools_call("query_customers", QUERY),
        _tools_call("query_customers", QUERY, request_id="call-1"),
        _tools_call("query_customers", {"filters": {"no_such_column": 1}}),  # a tool error naming the field
        _tools_call("no_such_tool", {}),
        _tools_call("describe_object", {"name": "customers"}),
        _tools_call("list_objects"),  # no arguments at all
    ],
)
def test_a_plain_call_answers_as_the_sdk_does(live_mcp, analyst, monkeypatch, body, version):
    url = instance_url(live_mcp, analyst["instance"])
    assert mcp_http._plain_tools_call(_scope(version), _encoded(body)) is not None
    plain = _answer(url, analyst["secret"], body, version)
    monkeypatch.setattr(mcp_http, "_plain_tools_call", lambda scope, body: None)
    through_sdk = _answer(url, analyst["secret"], body, version)
    assert plain == through_sdk
    assert plain[0] == 200


def test_plain_calls_skip_the_sdk_and_are_audited(live_mcp, analyst, monkeypatch):
    async def refuse(*args, **kwargs):
        raise AssertionError("the SDK served a plain tool call")

    monkeypatch.setattr(StreamableHTTPSessionManager, "handle_request", refuse)
    url = instance_url(live_mcp, analyst["instance"])
    for request_id in range(3):
        status, _, answer = _answer(
            url, analyst["secret"], _tools_call("query_customers", QUERY, request_id), "2025-06-18"
        )
        assert status == 200
        assert answer["id"] == request_id
        assert [row["name"] for row in answer["result"]["structuredContent"]["rows"]] == ["Ada", "Cleo"]
    audit_flush()
    assert ToolCall.objects.filter(instance=analyst["instance"], tool="query_customers").count() == 3


def _scope(version: str | None, **headers) -> dict:
    sent = {"content-type": "application/json", "accept": "application/json, text/event-stream", **headers}
    if version is not None:
        sent["mcp-protocol-version"] = version
    return {"type": "http", "headers": [(k.encode(), v.encode()) for k, v in sent.items() if v is not None]}


def _encoded(body) -> bytes:
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("scope", "body"),
    [
        (_scope(None), _tools_call("query_customers", QUERY)),  # no version: the SDK's default applies
        (_scope("2026-07-28"), _tools_call("query_customers", QUERY)),  # the stateless protocol's own rules
        (_scope("2025-06-18", **{"content-type": "text/plain"}), _tools_call("query_customers", QUERY)),
        (_scope("2025-06-18", accept="text/event-stream"), _tools_call("query_customers", QUERY)),
        (_scope("2025-06-18"), [_tools_call("query_customers", QUERY)]),  # a batch
        (_scope("2025-06-18"), {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}),
        (_scope("2025-06-18"), {**_tools_call("query_customers", QUERY), "params": {"name": "x", "_meta": {}}}),
        (_scope("2025-06-18"), _tools_call("query_customers", [1, 2])),
        (_scope("2025-06-18"), _tools_call("query_customers", QUERY, request_id=True)),
        (_scope("2025-06-18"), _tools_call("query_customers", QUERY, request_id=None)),
        (_scope("2025-06-18"), {"jsonrpc": "2.0", "method": "tools/call", "params": {"name": "x"}}),
    ],
)
def test_anything_else_goes_to_the_sdk(scope, body):
    assert mcp_http._plain_tools_call(scope, _encoded(body)) is None


def test_json_the_sdk_refuses_goes_to_the_sdk():
    assert mcp_http._plain_tools_call(_scope("2025-06-18"), b'{"jsonrpc": "2.0", "id": NaN}') is None
    assert mcp_http._plain_tools_call(_scope("2025-06-18"), b"{not json") is None


def test_a_plain_call_over_http_is_one_customer_round_trip_and_no_platform_query(
    live_mcp, request, settings, monkeypatch
):
    proxied = request.getfixturevalue("proxied_reader")  # a fixture of the MCP hot-path tests
    settings.AUDIT_SYNCHRONOUS = False  # batched off the request path, as in production
    url, secret, proxy = instance_url(live_mcp, proxied["instance"]), proxied["secret"], proxied["proxy"]
    body = _tools_call("query_customers", {"columns": ["id", "name"], "filters": {"name": "Ada"}, "limit": 5})
    assert _answer(url, secret, body, "2025-06-18")[0] == 200  # authorises and caches the caller
    audit_flush()
    proxy.reset()
    with platform_queries(monkeypatch) as queries:
        status, _, answer = _answer(url, secret, body, "2025-06-18")
    assert status == 200
    assert answer["result"]["structuredContent"]["rows"] == [{"id": 1, "name": "Ada"}]
    assert queries == []
    assert proxy.round_trips == 1


def test_a_postgresql_read_runs_on_the_event_loop_and_in_a_thread_when_it_must(live_mcp, analyst, monkeypatch):
    from mcpservers import workers
    from roles.models import Service

    one_rate_window(monkeypatch)  # no new lease (taken in a thread) in the middle of the test
    url, secret = instance_url(live_mcp, analyst["instance"]), analyst["secret"]
    body = _tools_call("query_customers", QUERY)
    first = _answer(url, secret, body, "2025-06-18")  # authorises and caches the caller, builds the pools
    in_threads = []
    run_in_worker = workers.run_in_worker
    monkeypatch.setattr(
        workers, "run_in_worker", lambda *a, **kw: in_threads.append(kw["name"]) or run_in_worker(*a, **kw)
    )
    before = ToolCall.objects.filter(tool="query_customers").count()
    assert _answer(url, secret, body, "2025-06-18") == first
    assert in_threads == []  # on the event loop
    # An edited Service gets new pools on its next use, which is not done on the loop: that call runs in a thread.
    service = Service.objects.get(pk=analyst["role"].service_id)
    service.save()
    assert _answer(url, secret, body, "2025-06-18") == first
    assert in_threads == ["query_customers"]
    assert _answer(url, secret, body, "2025-06-18") == first
    assert in_threads == ["query_customers"]  # back on the loop
    assert ToolCall.objects.filter(tool="query_customers").count() == before + 3  # each call recorded once


def test_which_calls_may_run_on_the_event_loop(analyst, settings):
    from mcpservers.services import instance_compiled

    compiled = instance_compiled(analyst["instance"])
    names = {t["binding"]["action"]: t["name"] for t in compiled.tools if t.get("binding")}
    assert compiled.reads_on_loop(names["query"], "postgresql")
    assert not compiled.reads_on_loop(names["query"], "mysql")  # no asyncio driver
    assert not compiled.reads_on_loop(names["insert"], "postgresql")  # writes run in the worker threads
    assert not compiled.reads_on_loop("describe_object", "postgresql")  # a fixed tool
    assert not compiled.reads_on_loop("no_such_tool", "postgresql")
    compiled.compact = True
    assert compiled.reads_on_loop("call_tool", "postgresql", {"name": names["query"], "arguments": {}})
    assert not compiled.reads_on_loop("call_tool", "postgresql", {"name": names["insert"]})
    assert not compiled.reads_on_loop("call_tool", "postgresql", {"name": "call_tool"})
    compiled.compact = False
    settings.READS_ON_LOOP = False
    assert not compiled.reads_on_loop(names["query"], "postgresql")
