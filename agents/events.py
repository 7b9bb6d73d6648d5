"""The execution event log: stored in order (the source of truth) and pushed on the channel layer."""

from __future__ import annotations

import json
import logging
from typing import Any

from channels.layers import get_channel_layer
from django.db import connection, transaction

from agents.models import AgentExecution, ExecutionEvent
from nectar.publish import publish_from_sync
from nectar.text import text_printable

logger = logging.getLogger(__name__)

MAX_PAYLOAD_CHARS = 20_000


def execution_group(execution_id) -> str:
    return f"execution-{execution_id}"


def _bounded(payload: dict[str, Any]) -> dict[str, Any]:
    """Keep events small enough for the channel layer; say so when something was cut."""
    # text_printable: a NUL or lone surrogate (e.g. echoed from bad input) cannot break the insert.
    text = json.dumps(text_printable(payload), default=str)
    if len(text) <= MAX_PAYLOAD_CHARS:
        return json.loads(text)
    return {"truncated": True, "preview": text[:MAX_PAYLOAD_CHARS], "original_chars": len(text)}


def event_serialize(event: ExecutionEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "kind": event.kind,
        "phase": event.phase,
        "agent": event.agent,
        "payload": event.payload,
        "created_at": event.created_at.isoformat(),
    }


def event_append(
    *, execution: AgentExecution, kind: str, phase: str = "", agent: str = "", payload: dict | None = None
) -> ExecutionEvent:
    """Store the next event of an execution (gap-free sequence) and publish it.

    The counter's UPDATE ... RETURNING hands out the next number atomically, even across workers,
    and it commits together with the event's INSERT: a process that dies between the two leaves
    neither, so the sequence never has a gap (concurrent appenders wait on the row lock).
    It is published once committed (with the caller's transaction, when there is one): a
    subscriber never sees an event that is rolled back, and no publish holds the row lock.
    """
    bounded = _bounded(payload or {})
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {AgentExecution._meta.db_table} SET event_seq = event_seq + 1 WHERE id = %s RETURNING event_seq",
            [execution.pk],
        )
        (seq,) = cursor.fetchone()
        event = ExecutionEvent.objects.create(
            execution_id=execution.pk, seq=seq, kind=kind, phase=phase, agent=agent, payload=bounded
        )
        transaction.on_commit(lambda: event_publish(execution_id=execution.pk, event=event))
    execution.event_seq = seq
    return event


def event_publish(*, execution_id, event: ExecutionEvent) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        message = {"type": "execution.event", "event": event_serialize(event)}
        publish_from_sync(layer.group_send, execution_group(execution_id), message)
    except Exception:  # the database log is the source of truth; subscribers catch up from it
        logger.warning("could not publish event %s of execution %s", event.seq, execution_id, exc_info=True)


def events_since(*, execution: AgentExecution, after_seq: int = 0, limit: int = 1000):
    return ExecutionEvent.objects.filter(execution=execution, seq__gt=after_seq).order_by("seq")[:limit]


def execution_touch(*, execution: AgentExecution, **fields) -> None:
    """Update a few fields of an execution without overwriting the rest (other writers may be active)."""
    if fields:
        AgentExecution.objects.filter(pk=execution.pk).update(**fields)
        for name, value in fields.items():
            if not hasattr(value, "resolve_expression"):
                setattr(execution, name, value)


__all__ = ["event_append", "event_serialize", "events_since", "execution_group", "execution_touch"]
