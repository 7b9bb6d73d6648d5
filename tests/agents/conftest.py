"""A demo customer database (SQLite, small scale) with an MCP-enabled Role, for agent tests."""

from __future__ import annotations

import time

import pytest

from mcpservers.services import mcp_enable
from roles.demo import demo_build_sqlite
from roles.demo.platform import demo_sales_analyst_permissions
from roles.models import Engine, Role, Service
from tests.agents.recordings import SleepRecorder


@pytest.fixture(scope="session")
def demo_sqlite_path(tmp_path_factory):
    return str(demo_build_sqlite(path=tmp_path_factory.mktemp("demo") / "demo.sqlite3", scale=0.02))


def _sqlite_permissions() -> list[dict]:
    """The demo analyst's grants without procedures (SQLite has none) and with SQLite's schema name."""
    grants = []
    for grant in demo_sales_analyst_permissions():
        if grant["path"].startswith("/proc/"):
            continue
        grants.append({**grant, "schema": "main"})
    return grants


@pytest.fixture
def demo_service(org, demo_sqlite_path):
    return Service.objects.create(organization=org, name="demo", engine=Engine.SQLITE, database=demo_sqlite_path)


@pytest.fixture
def analyst_role(org, owner, demo_service):
    role = Role.objects.create(
        organization=org,
        service=demo_service,
        name="Sales analyst",
        permissions=_sqlite_permissions(),
        created_by=owner,
    )
    role.mcp_enabled = True
    role.save()
    mcp_enable(role=role)
    role.refresh_from_db()
    return role


@pytest.fixture
def sdk_sleeps(monkeypatch):
    """The delays the SDKs' own retries wait between attempts, recorded instead of slept."""
    recorder = SleepRecorder()
    # Both SDKs call time.sleep from their base client; nothing else sleeps in an adapter test.
    monkeypatch.setattr(time, "sleep", recorder)
    return recorder
