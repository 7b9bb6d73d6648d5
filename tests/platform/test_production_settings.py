"""A deployment never improvises its keys or database: with DEBUG off and NECTAR_DEV unset, a
missing SECRET_KEY, NECTAR_ENCRYPTION_KEY(S) or DATABASE_URL stops start-up with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings

ROOT = Path(settings.BASE_DIR)
# Valid but never connected to: `manage.py check` reads the settings and opens no connection.
DATABASE_URL = "postgresql://nectar:secret@127.0.0.1:1/nectar"
PRODUCTION = {
    "SECRET_KEY": "s" * 50,
    "NECTAR_ENCRYPTION_KEY": Fernet.generate_key().decode(),
    "DATABASE_URL": DATABASE_URL,
}
SETTINGS = (
    "NECTAR_DEV",
    "DEBUG",
    "SECRET_KEY",
    "SECRET_KEY_FILE",
    "NECTAR_ENCRYPTION_KEY",
    "NECTAR_ENCRYPTION_KEY_FILE",
    "NECTAR_ENCRYPTION_KEYS",
    "DATABASE_URL",
    "DATABASE_URL_FILE",
    "REDIS_URL",
)


def _run(argv: list[str], data_dir: Path, **env: str) -> subprocess.CompletedProcess:
    # Every setting is given explicitly (empty when "missing"): a developer's .env cannot fill it in.
    clean = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    clean.update(dict.fromkeys(SETTINGS, ""), DJANGO_SETTINGS_MODULE="nectar.settings", NECTAR_DATA_DIR=str(data_dir))
    clean.update(env)
    return subprocess.run(argv, cwd=ROOT, env=clean, capture_output=True, text=True, timeout=180)


def _improvised(data_dir: Path) -> set[str]:
    """Generated keys or an embedded database left in the data directory."""
    return {p.name for p in data_dir.iterdir()} & {"secret_key", "encryption_key", "pgdata"}


def _check(data_dir: Path, **env: str) -> subprocess.CompletedProcess:
    return _run([sys.executable, "manage.py", "check"], data_dir, **env)


def test_a_production_process_with_nothing_configured_names_every_missing_setting(tmp_path):
    result = _check(tmp_path)

    assert result.returncode == 2
    assert "Nectar cannot start" in result.stderr
    for name in ("SECRET_KEY", "NECTAR_ENCRYPTION_KEY", "DATABASE_URL", "NECTAR_DEV=1"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr
    assert _improvised(tmp_path) == set()


@pytest.mark.parametrize("missing", ["SECRET_KEY", "NECTAR_ENCRYPTION_KEY", "DATABASE_URL"])
def test_each_missing_setting_alone_stops_a_production_process(tmp_path, missing):
    result = _check(tmp_path, **{k: v for k, v in PRODUCTION.items() if k != missing})

    assert result.returncode == 2
    first_line = next(line for line in result.stderr.splitlines() if "Nectar cannot start" in line)
    assert missing in first_line
    assert not {"SECRET_KEY", "NECTAR_ENCRYPTION_KEY", "DATABASE_URL"} - {missing} & set(first_line.split(" "))
    assert _improvised(tmp_path) == set()


def test_a_fully_configured_production_process_starts(tmp_path):
    result = _check(tmp_path, **PRODUCTION)
    assert result.returncode == 0, result.stderr
    assert _improvised(tmp_path) == set()


def test_rotation_keys_stand_in_for_the_single_encryption_key(tmp_path):
    keys = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    env = {**PRODUCTION, "NECTAR_ENCRYPTION_KEY": "", "NECTAR_ENCRYPTION_KEYS": keys}
    assert _check(tmp_path, **env).returncode == 0


def test_secrets_may_come_from_files(tmp_path):
    secret = tmp_path / "secret_key"
    secret.write_text("f" * 50)
    data_dir = tmp_path / "data"
    env = {**PRODUCTION, "SECRET_KEY": "", "SECRET_KEY_FILE": str(secret)}
    assert _check(data_dir, **env).returncode == 0


@pytest.mark.parametrize("switch", [{"NECTAR_DEV": "1"}, {"DEBUG": "true"}])
def test_development_mode_generates_local_keys(tmp_path, switch):
    result = _check(tmp_path, DATABASE_URL=DATABASE_URL, **switch)

    assert result.returncode == 0, result.stderr
    assert _improvised(tmp_path) == {"secret_key", "encryption_key"}


def test_the_asgi_application_refuses_to_load_without_its_settings(tmp_path):
    result = _run([sys.executable, "-c", "import nectar.asgi"], tmp_path)

    assert result.returncode != 0
    assert "Nectar cannot start" in result.stderr
    assert "SECRET_KEY" in result.stderr
    assert _improvised(tmp_path) == set()
