"""What one warm call costs on each server engine: platform queries and customer-database round trips.

The Service reaches its database through a TCP proxy that counts round trips on the wire, so
whatever the driver, the pool or the executor does is counted.
"""

from __future__ import annotations

import time

import pytest

from endpoints.services import endpoint_approve, endpoint_create_draft, endpoint_deploy
from mcpservers.audit import audit_flush
from mcpservers.models import ToolCall
from mcpservers.services import tool_call
from nectar import invalidation
from tests.endpoints.conftest import bearer

SQL = "SELECT id, name, region FROM customers WHERE region = :region ORDER BY id"
PARAMETERS = {
    "type": "object",
    "properties": {"region": {"type": "string", "description": "Sales region"}},
    "required": ["region"],
}
RESPONSE = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "region": {"type": "string"}},
}


def _healthy() -> bool:
    deadline = time.monotonic() + 10
    while not invalidation.healthy() and time.monotonic() < deadline:
        time.sleep(0.05)
    return invalidation.healthy()


def deploy_customers_of_region(*, org, role, owner):
    """/api/v1/x/acme/customers-of-region on the Role's Service, deployed."""
    endpoint = endpoint_create_draft(
        organization=org,
        role=role,
        method="GET",
        slug="customers-of-region",
        description="Customers of a region.",
        parameters=PARAMETERS,
        sql=SQL,
        response_schema=RESPONSE,
        tests=[],
        docs="",
    )
    endpoint_approve(endpoint=endpoint, user=owner, comment="")
    return endpoint_deploy(endpoint=endpoint, user=owner)


def test_a_warm_endpoint_call_makes_no_platform_query_and_one_customer_round_trip(
    proxied, org, owner, client, settings, django_assert_num_queries
):
    settings.AUDIT_SYNCHRONOUS = False
    settings.ENDPOINT_RATE_LIMIT = "100000/min"  # one lease covers the calls below
    endpoint = deploy_customers_of_region(org=org, role=proxied["role"], owner=owner)
    assert _healthy()
    url, secret, proxy = "/api/v1/x/acme/customers-of-region", proxied["secret"], proxied["proxy"]
    assert client.get(url, {"region": "EU"}, **bearer(secret)).status_code == 200
    audit_flush()
    proxy.reset()
    with django_assert_num_queries(0):
        response = client.get(url, {"region": "EU", "limit": 2}, **bearer(secret))
    assert response.status_code == 200, response.content
    assert [row["name"] for row in response.json()["results"]] == ["Ada", "Chloé"]
    assert response.json()["next"] is not None  # paged in the database: the page and one row more
    assert proxy.round_trips == 1
    audit_flush()  # what the background flusher has not written yet (it may have written it already)
    assert ToolCall.objects.filter(tool=endpoint.tool_name).count() == 2


def test_a_tool_call_read_is_one_customer_round_trip(proxied):
    from mcpservers.services import mcp_enable

    role, key, proxy = proxied["role"], proxied["key"], proxied["proxy"]
    instance = mcp_enable(role=role)
    arguments = {"columns": ["id", "name"], "filters": {"region": "EU"}, "order_by": "id", "limit": 5}
    first = tool_call(instance=instance, api_key=key, name="query_customers", arguments=arguments)
    assert not first.is_error, first.text
    proxy.reset()
    result = tool_call(instance=instance, api_key=key, name="query_customers", arguments=arguments)
    assert not result.is_error, result.text
    assert [row["name"] for row in result.structured["rows"]] == ["Ada", "Chloé", "Eve"]
    assert proxy.round_trips == 1


def test_a_read_is_refused_a_write_on_the_read_sessions(proxied):
    """The read sessions are read-only in the server itself, not only by the checker."""
    import sqlalchemy as sa

    from roles.connectors import read_connection

    with pytest.raises(sa.exc.DBAPIError), read_connection(service=proxied["role"].service) as (conn, _):
        conn.execute(sa.text("UPDATE customers SET name = 'x' WHERE id = 1"))
