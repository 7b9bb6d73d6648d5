"""Helpers for tests that start Nectar processes (the run command, workers) against the test database."""

from __future__ import annotations

import os
from urllib.parse import quote

from django.db import connection


def test_database_url() -> str:
    """A DATABASE_URL for the test database as this test process uses it (credentials included)."""
    db = connection.settings_dict
    credentials = quote(db["USER"] or "", safe="")
    if db.get("PASSWORD"):
        credentials += f":{quote(db['PASSWORD'], safe='')}"
    host = db.get("HOST") or db.get("OPTIONS", {}).get("host") or ""
    if not host or host.startswith("/"):
        return f"postgresql://{credentials}@/{quote(db['NAME'], safe='')}?host={quote(host, safe='/')}"
    return f"postgresql://{credentials}@{host}:{db.get('PORT') or 5432}/{quote(db['NAME'], safe='')}"


def process_env(**overrides: str) -> dict:
    """This process's environment for a child on the test database (no Redis), with overrides."""
    from django.conf import settings

    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(
        {
            "DATABASE_URL": test_database_url(),
            # The same explicit opt-in to the suite's customer databases as this process (tests/conftest.py).
            "NECTAR_SERVICE_ALLOWED_HOSTS": ",".join(settings.SERVICE_ALLOWED_HOSTS),
            "NECTAR_SQLITE_DIR": settings.SERVICE_SQLITE_DIR,
            **overrides,
        }
    )
    return env
