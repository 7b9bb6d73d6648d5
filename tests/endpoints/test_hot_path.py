"""Generated endpoints on the hot path: cached key and endpoint, SQL checked once, no platform query per call."""

from __future__ import annotations

import time

from endpoints.cache import _endpoints
from mcpservers.audit import audit_flush
from mcpservers.models import ToolCall
from nectar import invalidation
from tests.endpoints.conftest import bearer

URL = "/api/v1/x/acme/customers-by-region"
QUERY = {"region": "EU", "segment": "consumer", "limit": 5}


def _healthy() -> bool:
    deadline = time.monotonic() + 10
    while not invalidation.healthy() and time.monotonic() < deadline:
        time.sleep(0.05)
    return invalidation.healthy()


def test_a_warm_endpoint_call_makes_no_platform_query(client, deployed, api_key, settings, django_assert_num_queries):
    settings.AUDIT_SYNCHRONOUS = False
    settings.ENDPOINT_RATE_LIMIT = "100000/min"  # one lease covers the calls below
    endpoint = deployed()
    assert _healthy()
    assert client.get(URL, QUERY, **bearer(api_key)).status_code == 200
    with django_assert_num_queries(0):
        response = client.get(URL, QUERY, **bearer(api_key))
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 5
    audit_flush()  # what the background flusher has not written yet; the counts below are exact either way
    endpoint.refresh_from_db()
    assert endpoint.call_count == 2
    assert ToolCall.objects.filter(tool=endpoint.tool_name).count() == 2


def test_retiring_a_version_reaches_the_cache_at_once(client, deployed, api_key):
    from endpoints.services import endpoint_retire

    endpoint = deployed()
    assert _healthy()
    assert client.get(URL, QUERY, **bearer(api_key)).status_code == 200
    assert any(name[1] == "customers-by-region" for name in _endpoints)
    endpoint_retire(endpoint=endpoint)
    assert client.get(URL, QUERY, **bearer(api_key)).status_code == 410


def test_a_revoked_key_is_refused_at_once_although_it_was_cached(client, deployed, api_key, role):
    from roles.models import RoleApiKey, hash_api_key

    deployed()
    assert _healthy()
    assert client.get(URL, QUERY, **bearer(api_key)).status_code == 200
    RoleApiKey.objects.get(key_hash=hash_api_key(api_key)).revoke()
    assert client.get(URL, QUERY, **bearer(api_key)).status_code == 401


def test_a_deployed_endpoint_runs_the_sql_checked_at_deploy_without_parsing_it(
    client, deployed, api_key, demo_sql, monkeypatch
):
    endpoint = deployed()
    kept = endpoint.checked_sql
    assert kept["read"]["source"] == endpoint.sql
    assert set(kept["paged"]["bind_names"]) == {"region", "segment", "_page_limit", "_page_offset"}

    def parsed(*args, **kwargs):
        raise AssertionError("the SQL was parsed on a call")

    # A process that never saw the endpoint before: it loads the row and trusts the deploy-time check.
    monkeypatch.setattr("roles.executor.check_sql", parsed)
    monkeypatch.setattr("endpoints.runtime.paged_sql", parsed)
    response = client.get(URL, QUERY, **bearer(api_key))
    assert response.status_code == 200, response.content
    expected = demo_sql(
        "SELECT customer_id FROM customers WHERE region = 'EU' AND segment = 'consumer' ORDER BY customer_id LIMIT 5"
    )
    assert [row["customer_id"] for row in response.json()["results"]] == [row["customer_id"] for row in expected]


def test_a_row_filter_added_after_deploy_applies_to_the_next_call(client, deployed, api_key, role):
    deployed()
    assert client.get(URL, QUERY, **bearer(api_key)).json()["count"] == 5
    role.permissions = [
        {**role.permissions[0], "rowFilter": {"region": "UK"}},
        *role.permissions[1:],
    ]
    role.save()
    response = client.get(URL, QUERY, **bearer(api_key))
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 0  # EU customers are outside the new filter


def test_a_column_denied_after_deploy_refuses_the_next_call(client, deployed, api_key, role):
    deployed()
    assert client.get(URL, QUERY, **bearer(api_key)).status_code == 200
    role.permissions = [
        {**role.permissions[0], "columns": {"deny": ["last_name"]}},
        *role.permissions[1:],
    ]
    role.save()
    response = client.get(URL, QUERY, **bearer(api_key))
    assert response.status_code == 403, response.content
    assert "last_name" in response.json()["error"]["message"]


def test_a_check_kept_by_another_checker_is_not_trusted(client, deployed, api_key):
    from endpoints.models import GeneratedEndpoint

    endpoint = deployed()
    kept = endpoint.checked_sql
    # A check whose SQL differs from what the checker makes now, as if an older release had stored it.
    forged = {**kept["paged"], "fingerprint": "old:" + kept["paged"]["fingerprint"], "sql": "SELECT 1 AS customer_id"}
    GeneratedEndpoint.objects.filter(pk=endpoint.pk).update(checked_sql={**kept, "paged": forged})
    invalidation.changed(endpoint.organization_id)
    response = client.get(URL, QUERY, **bearer(api_key))
    assert response.status_code == 200, response.content
    assert response.json()["columns"] == ["customer_id", "first_name", "last_name", "region", "segment"]
