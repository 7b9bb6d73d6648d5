"""API clients for people with clear roles, and a demo customer database (SQLite) to connect."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from api.models import PersonalToken
from roles.demo import demo_build_sqlite
from roles.models import Role, Service

SQLITE_PERMISSIONS = [
    {"objectName": "customers", "schema": "main", "path": "/table/customers", "actions": ["SELECT"]},
    {"objectName": "orders", "schema": "main", "path": "/table/orders", "actions": ["SELECT"]},
]


@pytest.fixture(scope="session")
def demo_path(tmp_path_factory):
    return str(demo_build_sqlite(path=tmp_path_factory.mktemp("api-demo") / "demo.sqlite", scale=0.02))


@pytest.fixture(autouse=True)
def _fresh_throttle_cache(db, django_db_blocker):
    # The cache lives in the platform database unless Redis is configured.
    with django_db_blocker.unblock():
        cache.clear()
    yield
    with django_db_blocker.unblock():
        cache.clear()


def _client_for(user) -> APIClient:
    client = APIClient()
    _, secret = PersonalToken.issue(user=user, name="test client")
    client.credentials(HTTP_AUTHORIZATION=f"Token {secret}")
    client.user = user
    return client


@pytest.fixture
def owner_client(owner):
    return _client_for(owner)


@pytest.fixture
def admin_client(admin_member):
    return _client_for(admin_member)


@pytest.fixture
def member_client(member):
    return _client_for(member)


@pytest.fixture
def outsider_client(outsider):
    return _client_for(outsider)


@pytest.fixture
def service(org, demo_path):
    return Service.objects.create(organization=org, name="Demo shop", engine="sqlite", database=demo_path)


@pytest.fixture
def role(org, service, owner):
    return Role.objects.create(
        organization=org, service=service, name="Sales analyst", permissions=SQLITE_PERMISSIONS, created_by=owner
    )


def errors_of(response) -> list[dict]:
    body = response.json()
    assert set(body) == {"errors"}, body
    for item in body["errors"]:
        assert set(item) == {"field", "message", "code"}, item
    return body["errors"]
