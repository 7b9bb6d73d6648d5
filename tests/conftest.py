"""People with clear roles, shared by every suite: an owner, a member and an outsider."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from roles.models import Membership, MembershipRole, Organization

PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _audit_written_before_the_answer(settings):
    """Audit records reach the database before a call returns, so tests can read them at once.

    The same journal and batch code runs; the batching tests turn this off and flush themselves.
    """
    settings.AUDIT_SYNCHRONOUS = True


@pytest.fixture(autouse=True)
def _caches_start_empty():
    """A rolled-back test announces nothing; start every test with empty hot-path caches."""
    from nectar import invalidation

    invalidation.changed(None)
    yield


@pytest.fixture
def org(db):
    return Organization.objects.create(name="Acme Retail", slug="acme")


@pytest.fixture
def other_org(db):
    return Organization.objects.create(name="Globex", slug="globex")


def _person(username: str, organization: Organization, role: str, *, staff: bool = True):
    user = get_user_model().objects.create_user(
        username=username, email=f"{username}@example.com", password=PASSWORD, is_staff=staff
    )
    Membership.objects.create(user=user, organization=organization, role=role)
    return user


@pytest.fixture
def owner(org):
    return _person("olivia", org, MembershipRole.OWNER)


@pytest.fixture
def admin_member(org):
    return _person("adam", org, MembershipRole.ADMIN)


@pytest.fixture
def member(org):
    return _person("mia", org, MembershipRole.MEMBER)


@pytest.fixture
def outsider(other_org):
    return _person("oscar", other_org, MembershipRole.OWNER)


@pytest.fixture(scope="session", autouse=True)
def _close_stray_test_database_sessions(django_db_setup, django_db_blocker):
    """Channel-layer pools and live servers keep connections open; end them so the test DB can be dropped.

    Only on the test database: when no test of the session used one, the connection is the platform's
    own database, whose sessions belong to other processes (a running server, a benchmark).
    """
    yield
    from django.db import connection

    from mcpservers.audit import audit_shutdown
    from nectar.invalidation import stop_listening

    with django_db_blocker.unblock():
        audit_shutdown()
    stop_listening()
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND datname = %s AND pid <> pg_backend_pid()",
            [connection.creation._get_test_db_name()],
        )
