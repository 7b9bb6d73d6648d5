"""Platform connections of background threads: nothing is left open between two pieces of work.

Django ends a transaction (`transaction.atomic`) by committing or rolling back and then turning
autocommit back on. When that last step fails (an error raised while autocommit is restored, such
as the test runner refusing database access at that moment), the connection stays out of
autocommit: every later `atomic` block on it believes it is nested in a transaction, commits
nothing, and the next statement opens a transaction that no one ends. A thread that keeps its
connection between tasks calls `close_if_transaction_left_open()` before and after each piece of
work, so that each one commits on its own and nothing is held in between.
"""

from __future__ import annotations

import contextlib

from django.db import DatabaseError
from django.db.backends.base.base import BaseDatabaseWrapper
from psycopg.pq import TransactionStatus


def transaction_left_open(conn: BaseDatabaseWrapper) -> bool:
    """True when `conn` has a transaction that nothing will end: outside every atomic block of this
    thread, yet not in autocommit, or with a transaction open (or a broken link) on the server side."""
    raw = conn.connection
    if raw is None or conn.in_atomic_block:
        return False
    return not conn.autocommit or not raw.autocommit or raw.info.transaction_status != TransactionStatus.IDLE


def close_if_transaction_left_open(conn: BaseDatabaseWrapper) -> bool:
    """Close `conn` when a transaction was left open on it (the server rolls that work back), so that the
    next query opens a fresh connection in autocommit; True if it was closed."""
    if not transaction_left_open(conn):
        return False
    with contextlib.suppress(DatabaseError):  # a broken link may fail to close; Django drops it either way
        conn.close()
    return True
