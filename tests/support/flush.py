"""A faster empty-every-table between transactional tests, on PostgreSQL.

Django's flush truncates every table (about 0.4 s here: TRUNCATE gives each table and index new
files), then post_migrate re-creates the content types and permissions it removed. The tables of a
test hold a few rows, so deleting them is about fifty times faster; Django's foreign keys are
DEFERRABLE INITIALLY DEFERRED, so the order does not matter inside the flush's transaction. Content
types and permissions are kept (post_migrate finds them in place), and a flush that resets sequences,
or a schema with a foreign key that cannot be deferred, still truncates.
"""

from __future__ import annotations

import sys

import psycopg
from django.db import OperationalError
from django.db.backends.postgresql.operations import DatabaseOperations

KEPT = frozenset({"django_content_type", "auth_permission"})
# How long the flush waits for the tables' locks before it looks for a connection that holds them idle.
LOCK_WAIT = "10s"
_truncate = DatabaseOperations.sql_flush
_execute = DatabaseOperations.execute_sql_flush


def _sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
    if reset_sequences or not _all_foreign_keys_deferrable(self.connection):
        return _truncate(self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade)
    emptied = [self.quote_name(t) for t in sorted(tables) if t not in KEPT]
    if not emptied:
        return []
    return [
        "SET CONSTRAINTS ALL DEFERRED",
        # As TRUNCATE would, wait for writers in flight and keep new ones out until the commit (a
        # server process a test started may still be writing): no row slips in between the deletes.
        f"LOCK TABLE {', '.join(emptied)} IN SHARE ROW EXCLUSIVE MODE",
        *(f"DELETE FROM {table}" for table in emptied),
    ]


def _all_foreign_keys_deferrable(connection) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_constraint WHERE contype = 'f' AND NOT condeferrable"
            " AND connamespace = current_schema()::regnamespace)"
        )
        return cursor.fetchone()[0]


def _execute_sql_flush(self, sql_list):
    """Run the flush; a connection left idle in a transaction holding the tables' locks (a thread of an
    earlier test that never committed) is ended, named on stderr, and the flush runs again.

    Nectar's own threads no longer leave one (the audit flusher did; see nectar/connections.py): this
    guards against test code that does (raw connections, servers a test starts), which would otherwise
    hold every later flush until the test timeout."""
    if not sql_list:
        return _execute(self, sql_list)
    try:
        return _execute(self, [f"SET LOCAL lock_timeout = '{LOCK_WAIT}'", *sql_list])
    except OperationalError as exc:
        if not isinstance(exc.__cause__, psycopg.errors.LockNotAvailable):
            raise
    for pid, query in _end_idle_lock_holders(self.connection):
        sys.stderr.write(f"\nflush: ended connection {pid}, idle in a transaction after: {query}\n")
    return _execute(self, sql_list)


def _end_idle_lock_holders(connection) -> list[tuple[int, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.pid, left(a.query, 200) FROM pg_stat_activity a WHERE a.datname = current_database()"
            " AND a.pid <> pg_backend_pid() AND a.state LIKE 'idle in transaction%%'"
            " AND EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND l.relation IS NOT NULL)"
        )
        holders = cursor.fetchall()
        for pid, _ in holders:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    return holders


def install() -> None:
    DatabaseOperations.sql_flush = _sql_flush
    DatabaseOperations.execute_sql_flush = _execute_sql_flush
