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
from roles.connectors import service_engines_dispose
from roles.models import Role, RoleApiKey
from tests.endpoints.conftest import bearer
from tests.roles.conftest import _make_service, my_database, pg_database  # noqa: F401 (fixtures)
from tests.support.roundtrips import RoundTripProxy

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
PERMISSIONS = [{"objectName": "customers", "path": "/table/customers", "actions": ["SELECT"]}]
PORTS = {"postgresql": 5432, "mysql": 3306}


def _healthy() -> bool:
    deadline = time.monotonic() + 10
    while not invalidation.healthy() and time.monotonic() < deadline:
        time.sleep(0.05)
    return invalidation.healthy()


@pytest.fixture(params=["postgresql", "mysql"])
def proxied(request, org):
    """A Role on a PostgreSQL or MariaDB Service that reaches its server through a counting proxy."""
    engine = request.param
    database = request.getfixturevalue({"postgresql": "pg_database", "mysql": "my_database"}[engine])
    service = _make_service(org, engine, database, name=f"{engine} via proxy")
    proxy = RoundTripProxy("127.0.0.1", PORTS[engine])
    service_engines_dispose(service=service)
    service.port = proxy.port
    service.save()
    role = Role.objects.create(organization=org, service=service, name=f"{engine} reader", permissions=PERMISSIONS)
    key, secret = RoleApiKey.issue(role=role, name="proxied")
    yield {"engine": engine, "role": role, "key": key, "secret": secret, "proxy": proxy}
    service_engines_dispose(service=service)
    proxy.close()


def test_a_warm_endpoint_call_makes_no_platform_query_and_one_customer_round_trip(
    proxied, org, owner, client, settings, django_assert_num_queries
):
    settings.AUDIT_SYNCHRONOUS = False
    settings.ENDPOINT_RATE_LIMIT = "100000/min"  # one lease covers the calls below
    endpoint = endpoint_create_draft(
        organization=org,
        role=proxied["role"],
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
    endpoint_deploy(endpoint=endpoint, user=owner)
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
