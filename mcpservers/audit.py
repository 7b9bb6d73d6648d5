"""Audit records of MCP tool calls and generated-endpoint calls, written in batches off the request path.

`audit_record()` appends the record to this process's journal (one JSON line written to a file
in AUDIT_JOURNAL_DIR: it reaches the page cache before the caller gets its answer, so a crash of
the process does not lose it) and to the batch in memory. A flusher thread writes each batch in
one transaction: the ToolCall rows (one INSERT), the counters of MCP instances and endpoints
(one UPDATE each, adding the batch's exact counts and durations), the keys' last use (at most
once a minute per key) and the batch's id in AuditBatch, so that no batch is ever applied twice.
Then the batch's journal segment is deleted. Each batch and each prune of AuditBatch is committed
at once: the flusher's connection is checked before and after every piece of work, and one left
with a transaction open (see nectar.connections) is closed, so nothing is held between flushes
and a batch is never counted as written while its transaction is still open.

Shutdown flushes what is pending (the ASGI lifespan, which a SIGTERM to the web server ends;
atexit). After a crash, the journal segments of the dead process are found by the next process
that flushes (a segment's lock is free once its process is gone) and applied unless AuditBatch
already has them.

With AUDIT_SYNCHRONOUS (the test suite) each record is applied before audit_record() returns,
through the same journal and the same batch code, by the caller (inside its transaction, if it
is in one); a flusher thread started earlier leaves those batches alone.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import os
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from mcpservers.workers import run_blocking
from nectar.connections import close_if_transaction_left_open

logger = logging.getLogger(__name__)

KEY_TOUCH_SECONDS = 60
# How often the flusher applies the journals of dead processes and prunes AuditBatch.
RECOVER_SECONDS = 30.0


@dataclass
class _Segment:
    id: uuid.UUID
    path: Path
    fd: int
    records: list


_lock = threading.Lock()
_state: dict = {"segment": None, "pid": None, "thread": None, "wake": None, "stop": None}
_key_touched: dict = {}
_apply_lock = threading.Lock()


def _journal_dir() -> Path:
    path = Path(getattr(settings, "AUDIT_JOURNAL_DIR", None) or Path(settings.DATA_DIR) / "audit")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _new_segment() -> _Segment:
    segment_id = uuid.uuid4()
    path = _journal_dir() / f"{os.getpid()}-{segment_id}.jsonl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return _Segment(segment_id, path, fd, [])


def _close(segment: _Segment, *, delete: bool) -> None:
    if delete:
        with contextlib.suppress(FileNotFoundError):
            segment.path.unlink()
    with contextlib.suppress(OSError):
        os.close(segment.fd)


# json.dumps with options builds an encoder per call: the one for every record is kept.
_RECORD_JSON = json.JSONEncoder(default=str, ensure_ascii=False)


def audit_record(
    *,
    organization_id,
    tool: str,
    arguments: dict,
    outcome: str,
    duration_ms: float,
    error: str = "",
    rows: int | None = None,
    instance_id=None,
    endpoint_id=None,
    api_key_id=None,
) -> None:
    """Put one call on record (durably in the journal now, in the database with the next batch)."""
    record = {
        "organization_id": str(organization_id),
        "instance_id": str(instance_id) if instance_id else None,
        "endpoint_id": str(endpoint_id) if endpoint_id else None,
        "api_key_id": str(api_key_id) if api_key_id else None,
        "tool": str(tool)[:200],
        "arguments": arguments,
        "outcome": outcome,
        "error": (error or "")[:2000],
        "rows": rows,
        "duration_ms": float(duration_ms),
        "created_at": timezone.now().isoformat(),
    }
    line = (_RECORD_JSON.encode(record) + "\n").encode()
    synchronous = getattr(settings, "AUDIT_SYNCHRONOUS", False)
    with _lock:
        _ensure_process()
        segment = _state["segment"]
        if segment is None:
            segment = _state["segment"] = _new_segment()
        os.write(segment.fd, line)
        segment.records.append(record)
        full = len(segment.records) >= int(getattr(settings, "AUDIT_BATCH_SIZE", 500))
    if synchronous:
        run_blocking(audit_flush)  # a call on the event loop waits for it in a worker thread
    elif full:
        _state["wake"].set()


def audit_flush() -> int:
    """Write the pending batch now (and any batch a dead process left); return how many records were written."""
    with _lock:
        segment = _state["segment"]
        _state["segment"] = None
    written = 0
    if segment is not None:
        if segment.records:
            written += _apply_segment(segment.id, segment.records)
        _close(segment, delete=True)
    written += _recover_orphans()
    return written


def _apply_segment(segment_id: uuid.UUID, records: list[dict]) -> int:
    """Apply one batch exactly once; on failure the journal keeps it for the next attempt.

    Outside a transaction of the caller the batch is committed before this returns, and the
    connection is left with nothing open.
    """
    with _apply_lock:
        try:
            return _apply(segment_id, records)
        except IntegrityError:
            # A referenced instance, key or endpoint was deleted meanwhile: keep the rows without it.
            return _apply(segment_id, _repaired(records))
        finally:
            if not connection.in_atomic_block:
                close_if_transaction_left_open(connection)
                connection.close_if_unusable_or_obsolete()


def _apply(segment_id: uuid.UUID, records: list[dict]) -> int:
    from mcpservers.models import AuditBatch, ToolCall

    # Outside a caller's transaction, the block below must be a transaction of its own that commits.
    close_if_transaction_left_open(connection)
    with transaction.atomic():
        if not _claimed(AuditBatch._meta.db_table, segment_id):
            return 0
        _insert_calls(ToolCall._meta.db_table, records)
        _add_counters(records)
    _touch_keys(records)
    return len(records)


def _claimed(table: str, segment_id: uuid.UUID) -> bool:
    """Mark the batch as written, in the caller's transaction; False if it already was (one statement)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (id, created_at) VALUES (%s, %s) ON CONFLICT (id) DO NOTHING RETURNING id",
            [segment_id, timezone.now()],
        )
        return cursor.fetchone() is not None


CALL_COLUMNS = (
    "organization_id",
    "instance_id",
    "api_key_id",
    "tool",
    "arguments",
    "outcome",
    "error",
    "rows",
    "duration_ms",
    "created_at",
)


def _insert_calls(table: str, records: list[dict]) -> None:
    """The batch's ToolCall rows in one COPY (the platform database is PostgreSQL)."""
    statement = f"COPY {table} ({', '.join(CALL_COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor, connection.wrap_database_errors, cursor.cursor.copy(statement) as copy:
        for r in records:
            copy.write_row([json.dumps(r[c]) if c == "arguments" else r[c] for c in CALL_COLUMNS])


def _counts(records: list[dict], field: str) -> list[tuple[str, int, float]]:
    totals: dict[str, list] = defaultdict(lambda: [0, 0.0])
    for r in records:
        if r.get(field):
            totals[r[field]][0] += 1
            totals[r[field]][1] += r["duration_ms"]
    return [(k, n, total) for k, (n, total) in totals.items()]


def _bulk_add(table: str, count: str, average: str, rows: list[tuple[str, int, float]]) -> None:
    if not rows:
        return
    values = ", ".join(["(%s::uuid, %s::bigint, %s::float8)"] * len(rows))
    params = [p for row in rows for p in row]
    sql = (
        f"UPDATE {table} AS t SET {average} = (COALESCE(t.{average}, 0.0) * t.{count} + v.total) / (t.{count} + v.n), "
        f"{count} = t.{count} + v.n FROM (VALUES {values}) AS v(id, n, total) WHERE t.id = v.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


# field of a record -> (model, count column, average column): the counters a batch adds to.
_COUNTERS: dict[str, tuple] = {}


def register_counter(*, field: str, model, count: str, average: str) -> None:
    """Let a higher app (generated endpoints) have its call counters kept by the audit batches."""
    _COUNTERS[field] = (model, count, average)


def _counter_models() -> dict[str, tuple]:
    from mcpservers.models import MCPServerInstance

    return {"instance_id": (MCPServerInstance, "request_count", "avg_response_time"), **_COUNTERS}


def _add_counters(records: list[dict]) -> None:
    for field, (model, count, average) in _counter_models().items():
        _bulk_add(model._meta.db_table, count, average, _counts(records, field))


def _touch_keys(records: list[dict]) -> None:
    from roles.models import RoleApiKey

    now = time.monotonic()
    due = {}
    for r in records:
        key = r.get("api_key_id")
        if key and now - _key_touched.get(key, -KEY_TOUCH_SECONDS) >= KEY_TOUCH_SECONDS:
            due[key] = datetime.fromisoformat(r["created_at"])
    for key, used_at in due.items():
        _key_touched[key] = now
        RoleApiKey.objects.filter(pk=key).exclude(last_used_at__gte=used_at).update(last_used_at=used_at)


def _repaired(records: list[dict]) -> list[dict]:
    from roles.models import Organization, RoleApiKey

    def existing(model, field):
        ids = {r[field] for r in records if r.get(field)}
        return {str(pk) for pk in model.objects.filter(pk__in=ids).values_list("pk", flat=True)}

    orgs = existing(Organization, "organization_id")
    kept = {"api_key_id": existing(RoleApiKey, "api_key_id")}
    kept.update({field: existing(model, field) for field, (model, _, _) in _counter_models().items()})
    out = []
    for r in records:
        if r["organization_id"] not in orgs:
            continue  # the organization is gone, and its calls with it (CASCADE)
        out.append({**r, **{field: r.get(field) if r.get(field) in ids else None for field, ids in kept.items()}})
    return out


def _recover_orphans() -> int:
    """Apply journal segments whose process is gone (their lock is free)."""
    written = 0
    with _lock:
        current = _state["segment"]
    for path in sorted(_journal_dir().glob("*.jsonl")):
        if current is not None and path == current.path:
            continue
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live process owns it
            records = []
            with open(path, encoding="utf-8") as handle:
                for line in handle:
                    try:
                        records.append(json.loads(line))
                    except json.JSONDecodeError:
                        logger.warning("skipping a torn line at the end of audit journal %s", path.name)
            segment_id = uuid.UUID(path.stem.split("-", 1)[1])
            if records:
                written += _apply_segment(segment_id, records)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        except (ValueError, IndexError):
            logger.error("unreadable audit journal %s left in place", path.name)
        finally:
            os.close(fd)
    return written


# --- The flusher thread of this process ---------------------------------------------------------


def _ensure_process() -> None:
    """Start this process's flusher (once; again in a forked child). Called with _lock held."""
    pid = os.getpid()
    if _state["pid"] != pid:
        _state.update(pid=pid, segment=None, thread=None, wake=threading.Event(), stop=threading.Event())
    if _state["thread"] is None and not getattr(settings, "AUDIT_SYNCHRONOUS", False):
        thread = threading.Thread(target=_flush_forever, name="nectar-audit", daemon=True)
        _state["thread"] = thread
        thread.start()


def _flush_forever() -> None:
    interval = float(getattr(settings, "AUDIT_FLUSH_SECONDS", 0.2))
    recovered_at = 0.0
    stop, wake = _state["stop"], _state["wake"]
    while not stop.is_set():
        wake.wait(interval)
        wake.clear()
        try:
            with _lock:
                segment = _state["segment"]
                if segment is not None and segment.records and not getattr(settings, "AUDIT_SYNCHRONOUS", False):
                    _state["segment"] = None
                else:
                    segment = None
            if segment is not None:
                try:
                    _apply_segment(segment.id, segment.records)
                    _close(segment, delete=True)
                except Exception:
                    # Keep the journal: a later flush (or the next process) applies it.
                    logger.exception("audit batch %s not written yet; it stays in the journal", segment.id)
                    _close(segment, delete=False)
            if time.monotonic() - recovered_at > RECOVER_SECONDS:
                recovered_at = time.monotonic()
                _recover_orphans()
                _forget_old_batches()
        except Exception:
            if stop.is_set():
                return  # shutting down: audit_shutdown flushes what is left
            logger.exception("audit flusher failed; retrying")
        finally:
            close_if_transaction_left_open(connection)  # nothing is held until the next flush


def _forget_old_batches() -> None:
    """AuditBatch only needs to outlive the journals that could still name its batches."""
    from datetime import timedelta

    from mcpservers.models import AuditBatch

    close_if_transaction_left_open(connection)  # so that the delete commits at once
    AuditBatch.objects.filter(created_at__lt=timezone.now() - timedelta(days=7)).delete()


def audit_shutdown() -> None:
    """Flush what is pending and stop the flusher (ASGI lifespan shutdown, atexit; after a crash the journal)."""
    if _state["pid"] != os.getpid():
        return
    stop = _state.get("stop")
    if stop is not None:
        stop.set()
    try:
        audit_flush()
    except Exception:
        logger.exception("audit records could not be flushed at shutdown; they stay in the journal")


def _forget_after_fork() -> None:
    _state.update(pid=None, segment=None, thread=None)
    _key_touched.clear()


atexit.register(audit_shutdown)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_after_fork)
