"""A demo customer database (SQLite), a Role on it with API keys, and helpers to build endpoints."""

from __future__ import annotations

import sqlite3

import pytest
from django.core.cache import cache

from endpoints.services import endpoint_approve, endpoint_create_draft, endpoint_deploy
from roles.connectors import service_engines_dispose
from roles.demo import demo_build_sqlite
from roles.models import Role, RoleApiKey, Service
from tests.roles.conftest import _make_service, my_database, pg_database  # noqa: F401 (fixtures)
from tests.support.roundtrips import RoundTripProxy

CUSTOMERS_SQL = (
    "SELECT customer_id, first_name, last_name, region, segment FROM customers "
    "WHERE region = :region AND (:segment IS NULL OR segment = :segment) ORDER BY customer_id"
)
CUSTOMERS_PARAMETERS = {
    "type": "object",
    "properties": {
        "region": {"type": "string", "enum": ["EU", "UK", "NA", "APAC", "LATAM"], "description": "Sales region"},
        "segment": {"type": "string", "enum": ["consumer", "small_business", "enterprise"]},
    },
    "required": ["region"],
}
CUSTOMERS_RESPONSE = {
    "type": "object",
    "properties": {
        "customer_id": {"type": "integer"},
        "first_name": {"type": "string"},
        "last_name": {"type": "string"},
        "region": {"type": "string"},
        "segment": {"type": "string"},
    },
}
CUSTOMERS_TESTS = [
    {
        "name": "eu customers",
        "params": {"region": "EU"},
        "expect": {"status": 200, "min_rows": 1, "columns": ["customer_id", "region"], "sample": {"region": "EU"}},
    },
    {"name": "unknown region is refused", "params": {"region": "MARS"}, "expect": {"status": 400}},
]
SALES_PERMISSIONS = [
    {"objectName": "customers", "path": "/table/customers", "actions": ["SELECT"]},
    {"objectName": "orders", "path": "/table/orders", "actions": ["SELECT"]},
]


@pytest.fixture(scope="session")
def demo_path(tmp_path_factory):
    return demo_build_sqlite(path=tmp_path_factory.mktemp("endpoints-demo") / "demo.sqlite", scale=0.02)


@pytest.fixture
def demo_sql(demo_path):
    """Run an independent query on the demo database, rows as dicts."""

    def run(sql: str, params: tuple = ()) -> list[dict]:
        with sqlite3.connect(demo_path) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute(sql, params).fetchall()]

    return run


@pytest.fixture(autouse=True)
def _fresh_throttle_cache(django_db_blocker):
    # The cache lives in the platform database unless Redis is configured.
    with django_db_blocker.unblock():
        cache.clear()
    yield
    with django_db_blocker.unblock():
        cache.clear()


_introspected: dict = {}


@pytest.fixture
def service(org, demo_path):
    """The demo database as a Service; its schema is introspected once per session, then reused."""
    from roles.introspection import service_schema

    service = Service.objects.create(
        organization=org,
        name="Demo shop",
        engine="sqlite",
        database=str(demo_path),
        schema_cache=_introspected.get("schema"),
    )
    _introspected["schema"] = service_schema(service=service)
    return service


@pytest.fixture
def role(org, service):
    return Role.objects.create(organization=org, service=service, name="Sales analyst", permissions=SALES_PERMISSIONS)


@pytest.fixture
def other_role(org, service):
    return Role.objects.create(
        organization=org,
        service=service,
        name="Support",
        permissions=[{"objectName": "customers", "path": "/table/customers", "actions": ["SELECT"]}],
    )


@pytest.fixture
def api_key(role):
    return RoleApiKey.issue(role=role, name="integration")[1]


@pytest.fixture
def other_role_key(other_role):
    return RoleApiKey.issue(role=other_role, name="support")[1]


@pytest.fixture
def make_draft(org, role):
    def make(**overrides):
        fields = {
            "organization": org,
            "role": role,
            "method": "GET",
            "slug": "customers-by-region",
            "description": "Customers of a region, optionally of one segment.",
            "parameters": CUSTOMERS_PARAMETERS,
            "sql": CUSTOMERS_SQL,
            "response_schema": CUSTOMERS_RESPONSE,
            "tests": CUSTOMERS_TESTS,
            "docs": "",
        }
        fields.update(overrides)
        return endpoint_create_draft(**fields)

    return make


@pytest.fixture
def deployed(make_draft, owner):
    """Create, approve and deploy an endpoint (a new version when the slug exists)."""

    def deploy(**overrides):
        endpoint = make_draft(**overrides)
        endpoint_approve(endpoint=endpoint, user=owner, comment="Looks right.")
        return endpoint_deploy(endpoint=endpoint, user=owner)

    return deploy


def bearer(secret: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {secret}"}


PROXIED_PORTS = {"postgresql": 5432, "mysql": 3306}
PROXIED_PERMISSIONS = [{"objectName": "customers", "path": "/table/customers", "actions": ["SELECT"]}]


@pytest.fixture(params=["postgresql", "mysql"])
def proxied(request, org):
    """A Role on a PostgreSQL or MariaDB Service that reaches its server through a counting proxy."""
    engine = request.param
    database = request.getfixturevalue({"postgresql": "pg_database", "mysql": "my_database"}[engine])
    service = _make_service(org, engine, database, name=f"{engine} via proxy")
    proxy = RoundTripProxy("127.0.0.1", PROXIED_PORTS[engine])
    service_engines_dispose(service=service)
    service.port = proxy.port
    service.save()
    role = Role.objects.create(
        organization=org, service=service, name=f"{engine} reader", permissions=PROXIED_PERMISSIONS
    )
    key, secret = RoleApiKey.issue(role=role, name="proxied")
    yield {"engine": engine, "role": role, "key": key, "secret": secret, "proxy": proxy}
    service_engines_dispose(service=service)
    proxy.close()
