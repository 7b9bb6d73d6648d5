"""Start-up: the embedded database is shared by processes; bad configuration stops with a clear message."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(settings.BASE_DIR)


def _env(**overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(overrides)
    return env


def _manage(*args, **env):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=_env(**env), capture_output=True, text=True, timeout=120
    )


def test_bad_database_url_stops_startup_with_a_clear_message():
    result = _manage("migrate", DATABASE_URL="postgresql://nobody@127.0.0.1:1/nectar")
    assert result.returncode == 2
    assert "the platform database is unreachable" in result.stderr
    assert "Traceback" not in result.stderr


def test_malformed_database_url_stops_startup_with_a_clear_message():
    result = _manage("migrate", DATABASE_URL="mysql://root@127.0.0.1/nectar")
    assert result.returncode == 2
    assert "DATABASE_URL must point at PostgreSQL" in result.stderr


def test_unreachable_redis_stops_startup_with_a_clear_message():
    result = _manage("migrate", REDIS_URL="redis://127.0.0.1:1/0")
    assert result.returncode == 2
    assert "REDIS_URL is set but Redis cannot be reached" in result.stderr


@pytest.fixture
def embedded_data_dir():
    """A fresh data directory outside pytest's own temporary root: the embedded server runs as a user of its
    own, and another pytest session on the machine makes that root owner-only again (0700) at its start."""
    path = Path(tempfile.mkdtemp(prefix="nectar-embedded-test-"))
    path.chmod(0o755)
    yield path / "data"
    shutil.rmtree(path, ignore_errors=True)


def test_two_processes_attach_to_the_same_embedded_database(embedded_data_dir):
    """Two processes on a fresh data directory share one postmaster, which stops after the last exits."""
    data_dir = embedded_data_dir
    script = textwrap.dedent(
        """
        import os, sys, time
        os.environ["DJANGO_SETTINGS_MODULE"] = "nectar.settings"
        import django
        django.setup()
        from django.db import connection
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE IF NOT EXISTS shared_probe (who text)")
            cursor.execute("INSERT INTO shared_probe VALUES (%s)", [sys.argv[1]])
            cursor.execute("SELECT pg_postmaster_start_time()::text")
            print(cursor.fetchone()[0], flush=True)
        # Wait (bounded) until as many processes as expected have written, however slow the machine.
        deadline = time.monotonic() + 120
        while True:
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM shared_probe")
                count = cursor.fetchone()[0]
            if count >= int(sys.argv[2]) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        print(count, flush=True)
        """
    )
    env = _env(NECTAR_DATA_DIR=str(data_dir))
    first = subprocess.Popen(
        [sys.executable, "-c", script, "first", "2"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
    )
    started_line = first.stdout.readline().strip()
    second = subprocess.run(
        [sys.executable, "-c", script, "second", "1"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    first_out, _ = first.communicate(timeout=120)
    assert second.returncode == 0, second.stderr
    assert first.returncode == 0
    second_started, second_count = second.stdout.strip().splitlines()
    assert second_started == started_line, "both processes talk to the same postmaster"
    assert second_count == "2"
    assert first_out.strip() == "2"
    # The last process out stops the server.
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()
