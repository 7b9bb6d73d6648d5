"""People with clear roles, shared by every suite: an owner, a member and an outsider."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from roles.models import Membership, MembershipRole, Organization
from tests.support import flush

flush.install()

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
def _service_targets_of_the_suite(tmp_path_factory):
    """Opt in, explicitly, to the targets the suite's customer databases use.

    Service targets are governed (roles/connectors/targets.py): loopback addresses and SQLite
    files are refused unless an operator allows them. The suite's PostgreSQL and MariaDB run on
    127.0.0.1 and its SQLite files live under pytest's temporary directory, so this allows exactly
    those (and tests of the rule itself override these settings).
    """
    from django.conf import settings

    previous = settings.SERVICE_ALLOWED_HOSTS, settings.SERVICE_SQLITE_DIR
    settings.SERVICE_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.SERVICE_SQLITE_DIR = str(tmp_path_factory.getbasetemp())
    yield
    settings.SERVICE_ALLOWED_HOSTS, settings.SERVICE_SQLITE_DIR = previous


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
