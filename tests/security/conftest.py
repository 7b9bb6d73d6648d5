"""The security suite: a real PostgreSQL customer database, Roles with MCP, a live ASGI server, API clients.

Fixtures of the MCP suite are reused (customer database, Roles and their keys, the live server);
API clients authenticate with personal tokens as integrators do.
"""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from api.models import PersonalToken
from endpoints.services import endpoint_approve, endpoint_create_draft, endpoint_deploy
from tests.agents.conftest import analyst_role, demo_service, demo_sqlite_path  # noqa: F401 - fixtures
from tests.mcpservers.conftest import (  # noqa: F401 - fixtures
    analyst,
    customer_database,
    customer_rows,
    live_mcp,
    reader,
    service,
)


@pytest.fixture(autouse=True)
def _fresh_cache(django_db_blocker):
    # Throttles and lock-outs live in the cache (the platform database unless Redis is configured).
    with django_db_blocker.unblock():
        cache.clear()
    yield
    with django_db_blocker.unblock():
        cache.clear()


def api_client(user) -> APIClient:
    client = APIClient()
    _, secret = PersonalToken.issue(user=user, name="security suite")
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    client.user = user
    return client


@pytest.fixture
def owner_api(owner):
    return api_client(owner)


@pytest.fixture
def member_api(member):
    return api_client(member)


@pytest.fixture
def outsider_api(outsider):
    return api_client(outsider)


CUSTOMERS_BY_REGION = {
    "slug": "customers-by-region",
    "method": "GET",
    "description": "Customers of a region.",
    "sql": "SELECT id, name, region FROM customers WHERE region = :region ORDER BY id",
    "parameters": {
        "type": "object",
        "properties": {"region": {"type": "string", "description": "Sales region"}},
        "required": ["region"],
    },
    "response_schema": {
        "type": "object",
        "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "region": {"type": "string"}},
    },
    "tests": [{"name": "eu", "params": {"region": "EU"}, "expect": {"status": 200, "min_rows": 1}}],
    "docs": "",
}


@pytest.fixture
def deploy(org, owner):
    """Create, approve and deploy an endpoint of a Role (CUSTOMERS_BY_REGION unless overridden)."""

    def make(role, **overrides):
        fields = {**CUSTOMERS_BY_REGION, **overrides}
        endpoint = endpoint_create_draft(organization=org, role=role, **fields)
        endpoint_approve(endpoint=endpoint, user=owner, comment="ok")
        return endpoint_deploy(endpoint=endpoint, user=owner)

    return make
