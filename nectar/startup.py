"""Fail-fast checks at start-up: a bad DATABASE_URL or unreachable Redis stops with a clear message."""

from __future__ import annotations

import sys

from nectar.health import check_database

# Commands that only read code or print help need no services.
_OFFLINE_COMMANDS = {"help", "--help", "-h", "version", "--version", "makemigrations", "check", "collectstatic"}


def _fail(message: str) -> None:
    sys.stderr.write(f"\nNectar cannot start: {message}\n\n")
    raise SystemExit(2)


def check_services_or_exit(argv: list[str]) -> None:
    from django.core.exceptions import ImproperlyConfigured

    try:
        import django

        django.setup()
    except ImproperlyConfigured as exc:
        _fail(str(exc))
    except Exception as exc:  # pgserver start-up, unreadable secret files, ...
        _fail(f"configuration could not be loaded ({type(exc).__name__}: {exc})")
    command = argv[1] if len(argv) > 1 else "help"
    if command in _OFFLINE_COMMANDS:
        return
    check_platform_services_or_exit()


def check_platform_services_or_exit() -> None:
    from django.conf import settings

    db = settings.DATABASES["default"]
    if not check_database().ok:
        where = (
            "the embedded PostgreSQL"
            if settings.EMBEDDED_DATABASE
            else (
                f"DATABASE_URL (host {db.get('HOST') or 'local socket'}, port {db.get('PORT') or 5432}, "
                f"database {db.get('NAME')!r})"
            )
        )
        _fail(f"the platform database is unreachable: {where}. Check that it is running and the URL is right.")
    if settings.REDIS_URL:
        import redis

        try:
            redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3, socket_timeout=3).ping()
        except (redis.RedisError, ValueError) as exc:
            _fail(
                f"REDIS_URL is set but Redis cannot be reached ({type(exc).__name__}). Start Redis or unset REDIS_URL."
            )
