"""The MCP hot path: cached authorisation, one customer round trip per read, batched audit, fair threads, limits."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from django.conf import settings as django_settings
from django.db import connection

from mcpservers.audit import audit_flush, audit_record
from mcpservers.limits import Rate, take
from mcpservers.models import CallOutcome, MCPServerInstance, ToolCall
from mcpservers.services import McpAccessError, cached_caller, instance_authorize_cached, tool_call
from mcpservers.workers import FairPool
from nectar import invalidation
from roles.connectors import service_engines_dispose
from roles.models import Service
from tests.mcpservers.conftest import READER_PERMISSIONS, instance_url, make_role, raw_post
from tests.support.roundtrips import RoundTripProxy

pytestmark = pytest.mark.django_db(transaction=True)

QUERY = {"columns": ["id", "name"], "filters": {"name": "Ada"}, "limit": 5}


def _wait_until(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.fixture
def proxied_reader(org, customer_rows, customer_database):
    """A reader Role whose Service reaches PostgreSQL through a round-trip counting proxy."""
    proxy = RoundTripProxy("127.0.0.1", 5432)
    service = Service.objects.create(
        organization=org,
        name="Shop via proxy",
        engine="postgresql",
        host="127.0.0.1",
        port=proxy.port,
        database=customer_database["name"],
        username="postgres",
    )
    role = make_role(org, service, "Proxied reader", READER_PERMISSIONS)
    from roles.models import RoleApiKey

    key, secret = RoleApiKey.issue(role=role, name="proxied")
    yield {"role": role, "instance": role.mcp_instance, "key": key, "secret": secret, "proxy": proxy}
    service_engines_dispose(service=service)
    proxy.close()


def _warm(instance, secret):
    assert _wait_until(invalidation.healthy)
    caller = instance_authorize_cached(instance_id=str(instance.pk), secret=secret)
    tool_call(instance=caller.instance, api_key=caller.key, name="query_customers", arguments=QUERY)
    return caller


def test_a_cached_tool_call_makes_no_platform_query_and_one_customer_round_trip(
    proxied_reader, settings, django_assert_num_queries
):
    settings.AUDIT_SYNCHRONOUS = False
    instance, secret, proxy = proxied_reader["instance"], proxied_reader["secret"], proxied_reader["proxy"]
    _warm(instance, secret)
    audit_flush()
    proxy.reset()
    with django_assert_num_queries(0):
        caller = instance_authorize_cached(instance_id=str(instance.pk), secret=secret)
        result = tool_call(instance=caller.instance, api_key=caller.key, name="query_customers", arguments=QUERY)
    assert not result.is_error, result.text
    assert result.structured["rows"] == [{"id": 1, "name": "Ada"}]
    assert proxy.round_trips == 1
    audit_flush()  # what the background flusher has not written yet; the counts below are exact either way
    assert ToolCall.objects.filter(api_key=proxied_reader["key"]).count() == 2


def test_the_row_filter_and_column_list_still_hold_on_the_cached_path(proxied_reader):
    instance, secret = proxied_reader["instance"], proxied_reader["secret"]
    caller = _warm(instance, secret)
    assert cached_caller(instance_id=str(instance.pk), secret=secret) is caller
    bob = tool_call(
        instance=caller.instance, api_key=caller.key, name="query_customers", arguments={"filters": {"name": "Bob"}}
    )
    assert bob.structured["rows"] == []  # Bob is in the US, outside the row filter
    denied = tool_call(
        instance=caller.instance, api_key=caller.key, name="query_customers", arguments={"columns": ["email"]}
    )
    assert denied.is_error


def _cached(instance, secret) -> bool:
    """Warm the cache and find the caller in it (warmed again if the listener was briefly late, under load)."""
    _warm(instance, secret)
    return cached_caller(instance_id=str(instance.pk), secret=secret) is not None


def test_a_key_revoked_by_another_process_is_refused_within_the_staleness_bound(proxied_reader):
    instance, secret, key = proxied_reader["instance"], proxied_reader["secret"], proxied_reader["key"]
    assert _wait_until(lambda: _cached(instance, secret))
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params, autocommit=True) as other_replica:
        other_replica.execute("UPDATE roles_roleapikey SET revoked_at = now() WHERE id = %s", [key.pk])
    assert _wait_until(
        lambda: cached_caller(instance_id=str(instance.pk), secret=secret) is None, invalidation.MAX_STALENESS
    )
    with pytest.raises(McpAccessError) as refused:
        instance_authorize_cached(instance_id=str(instance.pk), secret=secret)
    assert refused.value.status == 401


def test_usage_bookkeeping_does_not_empty_the_cache(proxied_reader):
    instance, secret, key = proxied_reader["instance"], proxied_reader["secret"], proxied_reader["key"]
    caller = _warm(instance, secret)
    generation = invalidation.generation()
    type(key).objects.filter(pk=key.pk).update(last_used_at=key.created_at)
    MCPServerInstance.objects.filter(pk=instance.pk).update(request_count=41)
    time.sleep(1.5)  # let a notification, if one were sent, arrive
    assert invalidation.generation() == generation
    assert cached_caller(instance_id=str(instance.pk), secret=secret) is caller


def test_a_batch_adds_exact_counts_and_durations(reader, settings):
    settings.AUDIT_SYNCHRONOUS = False
    instance = reader["instance"]
    audit_flush()
    before = MCPServerInstance.objects.get(pk=instance.pk).request_count
    for i in range(30):
        audit_record(
            organization_id=reader["role"].organization_id,
            instance_id=instance.pk,
            api_key_id=reader["key"].pk,
            tool="query_customers",
            arguments={"i": i},
            outcome=CallOutcome.OK,
            duration_ms=2.0,
        )
    audit_flush()  # what the background flusher has not written yet; the counts below are exact either way
    instance.refresh_from_db()
    assert instance.request_count == before + 30
    assert ToolCall.objects.filter(instance=instance, tool="query_customers").count() == 30


CRASHING = """
import os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "nectar.settings"
import django
django.setup()
from mcpservers.audit import audit_record
for i in range(int(sys.argv[3])):
    audit_record(organization_id=sys.argv[1], instance_id=sys.argv[2], tool="query_customers",
                 arguments={"i": i}, outcome="ok", duration_ms=1.0)
os._exit(9)  # killed before any flush
"""


def test_records_of_a_crashed_process_are_written_once_by_the_next(reader, settings, tmp_path):
    settings.AUDIT_JOURNAL_DIR = str(tmp_path)
    env = {
        **os.environ,
        "NECTAR_AUDIT_JOURNAL_DIR": str(tmp_path),
        "NECTAR_AUDIT_SYNCHRONOUS": "false",
        "NECTAR_AUDIT_FLUSH_MS": "600000",
        "DATABASE_URL": _test_database_url(),
    }
    org_id, instance_id = str(reader["role"].organization_id), str(reader["instance"].pk)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING, org_id, instance_id, "25"],
        cwd=django_settings.BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crashed.returncode == 9, crashed.stderr
    journals = list(Path(tmp_path).glob("*.jsonl"))
    assert len(journals) == 1
    saved = journals[0].read_bytes()
    assert audit_flush() == 25
    # A crash after the batch was written but before its journal was deleted: replaying it adds nothing.
    journals[0].write_bytes(saved)
    assert audit_flush() == 0
    assert ToolCall.objects.filter(instance_id=instance_id).count() == 25
    assert MCPServerInstance.objects.get(pk=instance_id).request_count == 25
    assert not list(Path(tmp_path).glob("*.jsonl"))


def _test_database_url() -> str:
    db = connection.settings_dict
    host = db.get("HOST") or ""
    if host.startswith("/"):
        return f"postgresql://{db['USER']}@/{db['NAME']}?host={host}&port={db.get('PORT') or 5432}"
    return f"postgresql://{db['USER']}@{host}:{db.get('PORT') or 5432}/{db['NAME']}"


def test_one_tenants_slow_calls_leave_threads_to_the_others():
    pool = FairPool(size=4, cap=2)
    release = threading.Event()
    finished: list[str] = []
    lock = threading.Lock()

    def slow(label: str) -> None:
        release.wait(30)
        with lock:
            finished.append(label)

    def quick(label: str) -> None:
        with lock:
            finished.append(label)

    try:
        slow_calls = [pool.submit("org-a", slow, {"label": f"a{i}"}) for i in range(12)]
        other = pool.submit("org-b", quick, {"label": "b"})
        other.result(timeout=30)
        assert finished == ["b"]  # answered while all twelve of org A's calls were still waiting
        assert pool.queued().get("org-a") == 10  # org A holds two threads; the rest of its calls queue
        release.set()
        for future in slow_calls:
            future.result(timeout=30)
        assert sorted(finished[1:]) == sorted(f"a{i}" for i in range(12))
    finally:
        release.set()
        pool.close()


def test_the_shared_limiter_holds_its_limit_under_sixteen_concurrent_clients():
    rate = Rate(200, 3600)
    bucket = f"test:{time.monotonic_ns()}"
    allowed = []

    def client() -> None:
        from django.db import connections

        try:
            for _ in range(25):
                ok, _ = take(bucket, rate)
                allowed.append(ok)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=client) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 400
    assert 190 <= sum(allowed) <= 200


def test_mcp_answers_429_over_the_keys_limit(live_mcp, reader, settings):
    settings.MCP_RATE_LIMIT_PER_KEY = "3/hour"
    url = instance_url(live_mcp, reader["instance"])
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "search_objects", "arguments": {}}}
    statuses = [raw_post(url, secret=reader["secret"], body=call).status_code for _ in range(3)]
    refused = raw_post(url, secret=reader["secret"], body=call)
    assert statuses == [200, 200, 200]
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) >= 1
    assert "Rate limit exceeded for this API key (3 calls per hour)" in refused.json()["error"]["message"]


def test_mcp_answers_429_over_the_organizations_limit(live_mcp, reader, analyst, settings):
    settings.MCP_RATE_LIMIT_PER_ORGANIZATION = "2/hour"
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    assert (
        raw_post(instance_url(live_mcp, reader["instance"]), secret=reader["secret"], body=listing).status_code == 200
    )
    assert (
        raw_post(instance_url(live_mcp, analyst["instance"]), secret=analyst["secret"], body=listing).status_code == 200
    )
    refused = raw_post(instance_url(live_mcp, analyst["instance"]), secret=analyst["secret"], body=listing)
    assert refused.status_code == 429
    assert "this organization" in refused.json()["error"]["message"]


def test_a_foreign_host_header_is_refused(live_mcp, reader):
    response = raw_post(
        instance_url(live_mcp, reader["instance"]), secret=reader["secret"], headers={"Host": "evil.example"}
    )
    assert response.status_code == 400
    assert "Host" in response.json()["error"]["message"]


def test_get_answers_405_instead_of_holding_a_stream(live_mcp, reader):
    import httpx

    response = httpx.get(
        instance_url(live_mcp, reader["instance"]),
        headers={"Authorization": f"Bearer {reader['secret']}", "Accept": "text/event-stream"},
        timeout=10,
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_a_huge_ilike_pattern_is_refused_before_the_database(reader):
    pattern = "%" + "a" * 1_000_000 + "%"
    result = tool_call(
        instance=reader["instance"],
        api_key=reader["key"],
        name="query_customers",
        arguments={"filters": [{"column": "name", "op": "ilike", "value": pattern}]},
    )
    assert result.is_error
    assert "at most 1000 characters" in result.text
    assert ToolCall.objects.get(tool="query_customers").outcome == CallOutcome.ERROR


def test_the_text_content_is_the_json_of_the_result_with_its_notes_inside(reader):
    import json

    result = tool_call(
        instance=reader["instance"], api_key=reader["key"], name="query_customers", arguments={"limit": 1}
    )
    assert result.structured["truncated"] is True
    assert json.loads(result.text) == result.structured
    assert "truncated at 1 rows" in result.structured["note"]


def test_an_unsupported_protocol_version_gets_400_naming_the_supported_ones(live_mcp, reader):
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    response = raw_post(
        instance_url(live_mcp, reader["instance"]),
        secret=reader["secret"],
        headers={"MCP-Protocol-Version": "1999-01-01"},
        body=listing,
    )
    assert response.status_code == 400
    assert "2025-06-18" in response.json()["error"]["message"]
