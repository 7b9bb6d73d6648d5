"""The audit flusher thread commits every batch and every prune at once and holds nothing in between.

The failure reproduced here was seen in a full test run: the test runner refuses database access
between tests (pytest-django makes every query of every thread fail), and when that happened just as
the flusher's transaction ended, restoring autocommit failed after the commit. From then on each
`atomic` block on the flusher's connection committed nothing: the next batch was counted as written
and rolled back when the connection was closed, and the prune left a transaction open for minutes,
holding its locks.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from mcpservers import audit
from mcpservers.models import AuditBatch, CallOutcome, ToolCall
from tests.mcpservers.test_hot_path import _wait_until

pytestmark = pytest.mark.django_db(transaction=True)


WAIT = 20.0  # seconds: the flusher retries on its own schedule


@pytest.fixture
def raw_connections():
    """Connections of the test database that the test runner's blocking does not reach."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    opened: list[psycopg.Connection] = []

    def connect(*, autocommit: bool) -> psycopg.Connection:
        opened.append(psycopg.connect(**params, autocommit=autocommit))
        return opened[-1]

    yield connect
    for conn in opened:
        conn.close()


@pytest.fixture
def journal_dir(settings, tmp_path):
    """Records batched by the background flusher of this process, journaled in a directory of their own."""
    settings.AUDIT_SYNCHRONOUS = False
    settings.AUDIT_JOURNAL_DIR = str(tmp_path)
    audit.audit_flush()
    return tmp_path


def _record(org, i: int) -> None:
    audit.audit_record(
        organization_id=org.pk, tool="list_orders", arguments={"i": i}, outcome=CallOutcome.OK, duration_ms=1.0
    )


def _held_transactions(watcher: psycopg.Connection) -> list[tuple]:
    """Transactions of the test database open for more than a second (a flush takes milliseconds)."""
    return watcher.execute(
        "SELECT pid, state, left(query, 120) FROM pg_stat_activity WHERE datname = current_database()"
        " AND pid <> pg_backend_pid() AND xact_start < clock_timestamp() - interval '1 second'"
    ).fetchall()


def _commit_while_access_is_refused(
    raw_connections, django_db_blocker, caplog, *, table: str, statement: str, start=lambda: None
):
    """Hold `table` until the flusher's `statement` (after `start()`) waits for it, then let it go on and
    commit while the test runner refuses database access, until the flusher has logged the failure that follows."""
    holder, watcher = raw_connections(autocommit=False), raw_connections(autocommit=True)
    holder.execute(f"LOCK TABLE {table} IN SHARE MODE")
    start()
    waiting = (
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        " AND query LIKE %s"
    )
    assert _wait_until(lambda: watcher.execute(waiting, [statement + "%"]).fetchone() is not None, WAIT)
    caplog.clear()
    with django_db_blocker.block():
        holder.rollback()
        assert _wait_until(lambda: any(r.name == "mcpservers.audit" for r in caplog.records), WAIT)
    return watcher


def test_a_batch_after_a_failure_at_the_end_of_a_transaction_is_committed(
    org, journal_dir, raw_connections, django_db_blocker, caplog, monkeypatch
):
    monkeypatch.setattr(audit, "RECOVER_SECONDS", 3600.0)  # no recovery in between: the next batch comes first
    _record(org, 1)
    assert _wait_until(lambda: ToolCall.objects.count() == 1, WAIT)  # the flusher has its connection
    watcher = _commit_while_access_is_refused(
        raw_connections,
        django_db_blocker,
        caplog,
        table="mcpservers_toolcall",
        statement="COPY mcpservers_toolcall",
        start=lambda: _record(org, 2),
    )
    _record(org, 3)
    _wait_until(lambda: ToolCall.objects.count() == 3, 5)
    assert not _held_transactions(watcher)
    audit.audit_flush()  # the journal of the interrupted batch (committed already: applied once)
    assert sorted(ToolCall.objects.values_list("arguments__i", flat=True)) == [1, 2, 3]
    assert not list(Path(journal_dir).glob("*.jsonl"))


def test_the_prune_after_a_failure_at_the_end_of_a_transaction_holds_nothing(
    org, journal_dir, raw_connections, django_db_blocker, caplog, monkeypatch
):
    _record(org, 1)
    assert _wait_until(lambda: ToolCall.objects.count() == 1, WAIT)  # the flusher has its connection
    monkeypatch.setattr(audit, "RECOVER_SECONDS", 0.05)
    watcher = _commit_while_access_is_refused(
        raw_connections,
        django_db_blocker,
        caplog,
        table="mcpservers_auditbatch",
        statement='DELETE FROM "mcpservers_auditbatch"',
    )
    old = AuditBatch.objects.create(id=uuid.uuid4())
    AuditBatch.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=8))
    time.sleep(1.5)  # the prune runs every few hundred milliseconds meanwhile
    assert not _held_transactions(watcher)
    assert not AuditBatch.objects.filter(pk=old.pk).exists()  # pruned, and committed
