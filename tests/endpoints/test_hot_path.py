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
    assert audit_flush() == 2
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
