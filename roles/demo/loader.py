"""Build the demo database: PostgreSQL through COPY, SQLite through executemany.

Both builders are idempotent: a database whose demo_metadata already records the same seed,
schema version and scale is left untouched; anything else is dropped and rebuilt in one
transaction (PostgreSQL) or in a temporary file moved into place (SQLite).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from roles.demo.generator import DEMO_SEED, DemoDataset, demo_generate, demo_validate_scale
from roles.demo.schema import DEMO_SCHEMA_VERSION, DEMO_TABLES, demo_schema_ddl

# progress(stage, done, total): stage is "generate", a table name, or "objects" (indexes, views, routines).
Progress = Callable[[str, int, int], None]

_PROGRESS_EVERY = 10_000
# Serialises concurrent builders of the same PostgreSQL database (web and worker starting together).
_ADVISORY_LOCK_KEY = 0x4E45435441520001


class DemoBuildError(Exception):
    """The demo database could not be built (unreachable server, missing privilege, bad URL)."""

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


def _scale_text(scale: float) -> str:
    return f"{demo_validate_scale(scale):g}"


def _marker(*, seed: int, scale: float) -> dict[str, str]:
    return {"seed": str(seed), "version": str(DEMO_SCHEMA_VERSION), "scale": _scale_text(scale)}


def _matches(metadata: dict[str, str], marker: dict[str, str], max_age_days: int | None = None) -> bool:
    if not all(metadata.get(key) == value for key, value in marker.items()):
        return False
    if max_age_days is not None:
        try:
            anchor = date.fromisoformat(metadata.get("anchor_date", ""))
        except ValueError:
            return False
        # Dates are relative to the anchor: an old build slowly drifts out of "the last 90 days".
        return (datetime.now(UTC).date() - anchor).days <= max_age_days
    return True


def _metadata_rows(dataset: DemoDataset, marker: dict[str, str]) -> list[tuple[str, str]]:
    values = {
        **marker,
        "anchor_date": dataset.anchor.isoformat(),
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "row_counts": json.dumps(dataset.counts, sort_keys=True),
    }
    return sorted(values.items())


def _result(*, engine: str, created: bool, metadata: dict[str, str], started: float, **extra) -> dict:
    return {
        "engine": engine,
        "created": created,
        "seed": int(metadata["seed"]),
        "scale": float(metadata["scale"]),
        "version": int(metadata["version"]),
        "anchor_date": metadata.get("anchor_date"),
        "counts": _in_load_order(json.loads(metadata.get("row_counts") or "{}")),
        "seconds": round(time.monotonic() - started, 2),
        **extra,
    }


def _in_load_order(counts: dict[str, int]) -> dict[str, int]:
    return {name: counts[name] for name in DEMO_TABLES if name in counts}


def _generate(*, seed: int, scale: float, anchor: date | None, progress: Progress | None) -> DemoDataset:
    if progress:
        progress("generate", 0, 1)
    dataset = demo_generate(seed=seed, scale=scale, anchor=anchor or datetime.now(UTC).date())
    if progress:
        progress("generate", 1, 1)
    return dataset


# --- PostgreSQL ----------------------------------------------------------------------------


def _pg_connect(conninfo: str, **overrides):
    import psycopg

    try:
        return psycopg.connect(conninfo, connect_timeout=10, **overrides)
    except psycopg.OperationalError as exc:
        message = f"cannot connect to the demo PostgreSQL server: {_first_line(exc)}"
        raise DemoBuildError(message, retryable=True) from exc


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def demo_postgres_ensure_database(*, url: str) -> bool:
    """Create the database named in url on its server when missing; True when it was created."""
    from psycopg import sql
    from psycopg.conninfo import conninfo_to_dict

    try:
        params = conninfo_to_dict(url)
    except Exception as exc:
        raise DemoBuildError(f"the demo database URL is not valid: {_first_line(exc)}") from exc
    dbname = params.get("dbname")
    if not dbname:
        raise DemoBuildError("the demo database URL must name a database (postgresql://user@host:port/<name>)")
    with _pg_connect(url, dbname="postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [dbname]).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
        return True


def _pg_metadata(conn) -> dict[str, str]:
    if conn.execute("SELECT to_regclass('public.demo_metadata')").fetchone()[0] is None:
        return {}
    return dict(conn.execute("SELECT key, value FROM demo_metadata").fetchall())


def demo_postgres_metadata(*, url: str) -> dict[str, str]:
    """The demo_metadata of an existing demo database ({} when it has none)."""
    with _pg_connect(url) as conn:
        return _pg_metadata(conn)


def demo_build_postgres(
    *,
    url: str,
    scale: float = 1.0,
    seed: int = DEMO_SEED,
    progress: Progress | None = None,
    force: bool = False,
    anchor: date | None = None,
    max_age_days: int | None = None,
) -> dict:
    """Create (if needed) and seed the demo database at url; a no-op when already seeded alike.

    max_age_days: also rebuild when the data's anchor day is older than this (None: never).

    Returns {"engine", "created", "seed", "scale", "version", "anchor_date", "counts",
    "seconds"} (plus "database_created" after a build). Raises DemoBuildError, ValueError for a bad scale.
    """
    import psycopg

    marker = _marker(seed=seed, scale=scale)  # validates the scale before touching the server
    try:
        return _build_postgres(url=url, seed=seed, scale=scale, marker=marker, progress=progress, force=force,
                               anchor=anchor, max_age_days=max_age_days)  # fmt: skip
    except psycopg.Error as exc:
        # Connection strings and row values never reach the message: only the server's first line.
        retryable = isinstance(exc, psycopg.OperationalError)
        raise DemoBuildError(f"building the demo database failed: {_first_line(exc)}", retryable=retryable) from exc


def _build_postgres(*, url, seed, scale, marker, progress, force, anchor, max_age_days) -> dict:
    from psycopg import sql

    started = time.monotonic()
    database_created = demo_postgres_ensure_database(url=url)
    with _pg_connect(url) as conn:
        existing = _pg_metadata(conn)
        conn.rollback()
        if not force and _matches(existing, marker, max_age_days):
            return _result(engine="postgresql", created=False, metadata=existing, started=started)
        dataset = _generate(seed=seed, scale=scale, anchor=anchor, progress=progress)
        ddl = demo_schema_ddl("postgresql")
        with conn.transaction(), conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK_KEY])
            # Another builder may have finished while we waited for the lock.
            existing = _pg_metadata(conn)
            if not force and _matches(existing, marker, max_age_days):
                return _result(engine="postgresql", created=False, metadata=existing, started=started)
            cur.execute("SET LOCAL synchronous_commit = off")
            cur.execute("SET LOCAL client_min_messages = warning")
            # Index builds and foreign-key validation after the bulk load run in memory.
            cur.execute("SET LOCAL maintenance_work_mem = '128MB'")
            cur.execute("SET LOCAL work_mem = '64MB'")
            for statement in (*ddl.drop, *ddl.tables):
                cur.execute(statement)
            for table in dataset.tables.values():
                copy_sql = sql.SQL("COPY {} ({}) FROM STDIN").format(
                    sql.Identifier(table.name), sql.SQL(", ").join(map(sql.Identifier, table.columns))
                )
                total = len(table.rows)
                if progress:
                    progress(table.name, 0, total)
                with cur.copy(copy_sql) as copy:
                    for done, row in enumerate(table.rows, start=1):
                        copy.write_row(row)
                        if progress and done % _PROGRESS_EVERY == 0:
                            progress(table.name, done, total)
                if progress:
                    progress(table.name, total, total)
                # Identity columns continue after the seeded ids.
                key = table.columns[0]
                cur.execute(
                    sql.SQL("SELECT setval(pg_get_serial_sequence({}, {}), greatest(max({}), 1)) FROM {}").format(
                        sql.Literal(table.name), sql.Literal(key), sql.Identifier(key), sql.Identifier(table.name)
                    )
                )
            objects = (*ddl.indexes, *ddl.objects)
            for done, statement in enumerate(objects, start=1):
                cur.execute(statement)
                if progress:
                    progress("objects", done, len(objects))
            metadata = _metadata_rows(dataset, marker)
            cur.executemany("INSERT INTO demo_metadata (key, value) VALUES (%s, %s)", metadata)
        conn.autocommit = True
        conn.execute("ANALYZE")
    return _result(
        engine="postgresql",
        created=True,
        metadata=dict(metadata),
        started=started,
        database_created=database_created,
    )


# --- SQLite --------------------------------------------------------------------------------


def _sqlite_value(value):
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        # UTC, in the form SQLite's own date functions produce, so comparisons with datetime('now') work.
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return value


def demo_sqlite_metadata(*, path: str | Path) -> dict[str, str]:
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        with sqlite3.connect(path) as conn:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'demo_metadata'").fetchone():
                return dict(conn.execute("SELECT key, value FROM demo_metadata").fetchall())
    except sqlite3.DatabaseError:
        return {}
    return {}


def demo_build_sqlite(
    *,
    path: str | Path,
    scale: float = 0.02,
    seed: int = DEMO_SEED,
    progress: Progress | None = None,
    force: bool = False,
    anchor: date | None = None,
) -> Path:
    """Build the demo database as a SQLite file (same tables and views; no routines); returns its path."""
    path = Path(path)
    marker = _marker(seed=seed, scale=scale)
    if not force and _matches(demo_sqlite_metadata(path=path), marker):
        return path
    dataset = _generate(seed=seed, scale=scale, anchor=anchor, progress=progress)
    ddl = demo_schema_ddl("sqlite")
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_name(f".{path.name}.{os.getpid()}.building")
    building.unlink(missing_ok=True)
    try:
        conn = sqlite3.connect(building)
        try:
            conn.execute("PRAGMA foreign_keys = ON")
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            with conn:
                for statement in ddl.tables:
                    conn.execute(statement)
                for table in dataset.tables.values():
                    placeholders = ", ".join("?" for _ in table.columns)
                    insert = f"INSERT INTO {table.name} ({', '.join(table.columns)}) VALUES ({placeholders})"
                    total = len(table.rows)
                    for start in range(0, total, _PROGRESS_EVERY):
                        chunk = table.rows[start : start + _PROGRESS_EVERY]
                        conn.executemany(insert, [tuple(map(_sqlite_value, row)) for row in chunk])
                        if progress:
                            progress(table.name, min(start + _PROGRESS_EVERY, total), total)
                objects = (*ddl.indexes, *ddl.objects)
                for done, statement in enumerate(objects, start=1):
                    conn.execute(statement)
                    if progress:
                        progress("objects", done, len(objects))
                conn.executemany(
                    "INSERT INTO demo_metadata (key, value) VALUES (?, ?)", _metadata_rows(dataset, marker)
                )
        finally:
            conn.close()
        os.replace(building, path)
    finally:
        building.unlink(missing_ok=True)
    return path


__all__ = [
    "DEMO_TABLES",
    "DemoBuildError",
    "Progress",
    "demo_build_postgres",
    "demo_build_sqlite",
    "demo_postgres_ensure_database",
    "demo_postgres_metadata",
    "demo_sqlite_metadata",
]


def demo_grant_service_login(*, url: str, login: str) -> None:
    """Give the demo Service's login exactly what the demo Roles use, and nothing else.

    It reads the business tables and views (not demo_metadata), runs the functions the Roles are
    granted, and writes only where a demo Role writes: support tickets (EU support opens and
    updates them) and an account's tier (the analyst's apply_loyalty_tier). Run as the database's owner.
    """
    import psycopg
    from psycopg import sql

    from roles.demo.schema import DEMO_TABLES, DEMO_VIEWS

    business = [name for name in DEMO_TABLES if name != "demo_metadata"]
    who = sql.Identifier(login)
    statements = [
        sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(who),
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
            sql.Identifier(psycopg.conninfo.conninfo_to_dict(url)["dbname"]), who
        ),
        sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(who),
        sql.SQL("GRANT SELECT ON {} TO {}").format(
            sql.SQL(", ").join(map(sql.Identifier, business + list(DEMO_VIEWS))), who
        ),
        sql.SQL("GRANT INSERT, UPDATE ON support_tickets TO {}").format(who),
        sql.SQL("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {}").format(who),
        sql.SQL("GRANT UPDATE (tier) ON accounts TO {}").format(who),
    ]
    try:
        with _pg_connect(url) as conn:
            for statement in statements:
                conn.execute(statement)
            conn.commit()
    except psycopg.Error as exc:
        raise DemoBuildError(f"granting the demo login its rights failed: {_first_line(exc)}") from exc
