"""Executions: submit a requirement, pause, resume, cancel; claim and recover them in the worker."""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from agents.events import event_append
from agents.llm_usage import SpendingCapReached, spending_check_for_run
from agents.models import AgentExecution, AgentStatus, AgentType
from learning.services import RATING_STEP, LearningInputError, memories_shift_relevance
from roles.selectors import membership_get, organization_ids_for_user

logger = logging.getLogger(__name__)

MAX_REQUIREMENT_CHARS = 4000
MAX_ATTEMPTS = 2
TASK = "agents.tasks.run_execution_task"


class ExecutionError(Exception):
    """A request about an execution that cannot be honoured; `field` names the culprit input."""

    def __init__(self, message: str, *, field: str | None = None, code: str = "invalid"):
        super().__init__(message)
        self.message = message
        self.field = field
        self.code = code


def _enqueue(execution_id) -> None:
    from django_q.tasks import async_task

    async_task(TASK, str(execution_id), task_name=f"execution-{execution_id}", group="executions")


def execution_submit(*, user, role, requirement: str, enqueue: bool = True) -> AgentExecution:
    """Create a PENDING execution for a requirement on a Role and queue its pipeline (unless enqueue=False)."""

    text = (requirement or "").strip()
    if not text:
        raise ExecutionError("Describe the API you need in a sentence or two.", field="requirement", code="required")
    if len(text) > MAX_REQUIREMENT_CHARS:
        raise ExecutionError(
            f"The requirement is {len(text)} characters long; keep it under {MAX_REQUIREMENT_CHARS}.",
            field="requirement",
            code="max_length",
        )
    if role.organization_id not in organization_ids_for_user(user):
        raise ExecutionError("No such role.", field="role", code="not_found")
    if not role.is_active:
        raise ExecutionError(f"The role '{role.name}' is inactive.", field="role", code="inactive")
    if not role.mcp_enabled:
        raise ExecutionError(
            f"The role '{role.name}' has no MCP server; an admin must enable MCP on it first.",
            field="role",
            code="mcp_disabled",
        )
    try:
        spending_check_for_run(organization=role.organization)
    except SpendingCapReached as exc:
        raise ExecutionError(exc.message, code="spending_cap") from None
    with transaction.atomic():
        execution = AgentExecution.objects.create(
            business_requirement=text,
            agent_type=AgentType.ORCHESTRATOR,
            status=AgentStatus.PENDING,
            organization_id=role.organization_id,
            user=user,
            role=role,
        )
        event_append(execution=execution, kind="status", payload={"status": AgentStatus.PENDING})
        if enqueue:
            transaction.on_commit(lambda: _enqueue(execution.pk))
    return execution


def execution_pause(*, execution: AgentExecution) -> AgentExecution:
    if execution.status not in (AgentStatus.PENDING, AgentStatus.RUNNING):
        raise ExecutionError(
            f"Only a pending or running execution can be paused (this one is {execution.status}).", code="invalid_state"
        )
    updated = AgentExecution.objects.filter(pk=execution.pk, status=AgentStatus.PENDING).update(
        status=AgentStatus.PAUSED, status_reason="paused by the user"
    )
    if not updated:
        AgentExecution.objects.filter(pk=execution.pk).update(pause_requested=True)
    else:
        event_append(execution=execution, kind="status", payload={"status": AgentStatus.PAUSED})
    execution.refresh_from_db()
    return execution


def execution_resume(*, execution: AgentExecution) -> AgentExecution:
    if execution.status != AgentStatus.PAUSED and not execution.pause_requested:
        raise ExecutionError(
            f"Only a paused execution can be resumed (this one is {execution.status}).", code="invalid_state"
        )
    with transaction.atomic():
        updated = AgentExecution.objects.filter(pk=execution.pk, status=AgentStatus.PAUSED).update(
            status=AgentStatus.PENDING, pause_requested=False, status_reason="", attempts=0
        )
        if updated:
            event_append(execution=execution, kind="status", payload={"status": AgentStatus.PENDING, "resumed": True})
            transaction.on_commit(lambda: _enqueue(execution.pk))
        else:  # still running: withdraw the request before it is honoured
            AgentExecution.objects.filter(pk=execution.pk).update(pause_requested=False)
    execution.refresh_from_db()
    return execution


def execution_cancel(*, execution: AgentExecution) -> AgentExecution:
    if execution.is_finished:
        raise ExecutionError(f"The execution has already finished ({execution.status}).", code="invalid_state")
    stopped = AgentExecution.objects.filter(
        pk=execution.pk, status__in=[AgentStatus.PENDING, AgentStatus.PAUSED]
    ).update(
        status=AgentStatus.FAILED, success=False, status_reason="cancelled by the user", completed_at=timezone.now()
    )
    if stopped:
        event_append(
            execution=execution,
            kind="status",
            payload={"status": AgentStatus.FAILED, "reason": "cancelled by the user"},
        )
    else:
        AgentExecution.objects.filter(pk=execution.pk).update(cancel_requested=True)
    execution.refresh_from_db()
    return execution


def _stale_before():
    return timezone.now() - timedelta(seconds=settings.EXECUTION_STALE_SECONDS)


def execution_claim(*, execution_id) -> AgentExecution | None:
    """Take an execution for this worker, or None when another worker has it or it is finished.

    A task delivered twice finds the execution RUNNING with a fresh heartbeat (or finished) and
    does nothing, so results are never duplicated.
    """
    now = timezone.now()
    claimable = Q(status=AgentStatus.PENDING) | Q(status=AgentStatus.RUNNING, heartbeat_at__lt=_stale_before())
    claimed = AgentExecution.objects.filter(
        claimable, pk=execution_id, cancel_requested=False, pause_requested=False
    ).update(status=AgentStatus.RUNNING, heartbeat_at=now, attempts=F("attempts") + 1, started_at=now)
    if not claimed:
        return None
    # Child agent runs left unfinished by a previous attempt's worker ran no further.
    _finish_interrupted_children(
        parents=[execution_id], reason="interrupted: the worker stopped responding; the phase runs again"
    )
    execution = AgentExecution.objects.select_related("role__service", "organization").get(pk=execution_id)
    # Which worker process took it: operators (and the multi-replica test) see where a run went.
    worker = f"{socket.gethostname()}:{os.getpid()}"
    event_append(
        execution=execution,
        kind="status",
        payload={"status": AgentStatus.RUNNING, "attempt": execution.attempts, "worker": worker},
    )
    return execution


def _finish_interrupted_children(*, parents, reason: str) -> int:
    """Fail the unfinished child agent runs of these orchestrations (their worker is gone); returns how many."""
    return (
        AgentExecution.objects.filter(parent__in=parents)
        .unfinished()
        .update(status=AgentStatus.FAILED, success=False, status_reason=reason, completed_at=timezone.now())
    )


def executions_recover_stale() -> dict:
    """Finish or resume runs whose worker died: never RUNNING forever.

    A run whose heartbeat is older than EXECUTION_STALE_SECONDS is queued again (it resumes from
    its first unfinished phase) until it has had MAX_ATTEMPTS; then it is marked FAILED.
    """
    resumed, failed = [], []
    stale = AgentExecution.objects.filter(
        status__in=[AgentStatus.RUNNING, AgentStatus.LEARNING], heartbeat_at__lt=_stale_before(), parent__isnull=True
    )
    for execution in stale:
        if execution.attempts < MAX_ATTEMPTS and not execution.cancel_requested:
            moved = AgentExecution.objects.filter(pk=execution.pk, heartbeat_at=execution.heartbeat_at).update(
                status=AgentStatus.PENDING, status_reason="resuming after its worker stopped responding"
            )
            if moved:
                # The agent that was running when the worker died ran no further; its phase runs again.
                _finish_interrupted_children(
                    parents=[execution.pk], reason="interrupted: the worker stopped responding; the phase runs again"
                )
                event_append(
                    execution=execution,
                    kind="status",
                    payload={"status": AgentStatus.PENDING, "reason": "worker stopped responding; resuming"},
                )
                _enqueue(execution.pk)
                resumed.append(str(execution.pk))
        else:
            reason = (
                "cancelled by the user"
                if execution.cancel_requested
                else (
                    f"the worker stopped responding during {execution.current_phase or 'the run'} "
                    f"(after {execution.attempts} attempt(s))"
                )
            )
            moved = AgentExecution.objects.filter(pk=execution.pk, heartbeat_at=execution.heartbeat_at).update(
                status=AgentStatus.FAILED, success=False, status_reason=reason, completed_at=timezone.now()
            )
            if moved:
                event_append(
                    execution=execution, kind="status", payload={"status": AgentStatus.FAILED, "reason": reason}
                )
                failed.append(str(execution.pk))
    # Children are finished with their run: no child is left unfinished under a run that is not running
    # (finished, paused, waiting to resume), whatever state the child was in when its worker died.
    idle_parents = AgentExecution.objects.filter(parent__isnull=True).exclude(
        status__in=[AgentStatus.RUNNING, AgentStatus.LEARNING]
    )
    _finish_interrupted_children(parents=idle_parents, reason="the orchestration stopped")
    # A PENDING run whose task was lost (e.g. the broker restarted) is queued again.
    lost = AgentExecution.objects.filter(
        status=AgentStatus.PENDING, parent__isnull=True, updated_at__lt=_stale_before()
    ).values_list("pk", flat=True)
    requeued = [str(pk) for pk in lost]
    for pk in requeued:
        AgentExecution.objects.filter(pk=pk).update(updated_at=timezone.now())
        _enqueue(pk)
    return {"resumed": resumed, "failed": failed, "requeued": requeued}


# --- feedback --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RatingResult:
    rating: int
    previous: int | None
    memories_adjusted: int


def execution_rate(*, execution, user, up: bool, comment: str = "") -> RatingResult:
    """A member of the organization rates an execution up or down, with an optional comment.

    The rating (+1/-1) and comment are stored on the execution; the relevance of every memory it
    (or its child agent runs) produced or retrieved moves by RATING_STEP in the rating's
    direction, clamped to [0, 1]. Giving the same rating again changes nothing; changing it
    reverses the previous adjustment and applies the new one.
    """
    if not isinstance(up, bool):
        raise LearningInputError("up", "expected true (thumbs up) or false (thumbs down)")
    if not isinstance(comment, str) or len(comment) > 5000:
        raise LearningInputError("comment", "expected text of at most 5000 characters")
    if not user.is_superuser and membership_get(user=user, organization=execution.organization) is None:
        raise PermissionDenied("You can only rate executions of your own organization.")
    rating = 1 if up else -1
    with transaction.atomic():
        locked = AgentExecution.objects.select_for_update().get(pk=execution.pk)
        previous = locked.rating
        delta = (rating - (previous or 0)) * RATING_STEP
        locked.rating = rating
        if comment.strip():
            locked.feedback = comment.strip()
        locked.save(update_fields=["rating", "feedback", "updated_at"])
        adjusted = 0
        if delta:
            executions = AgentExecution.objects.filter(Q(pk=locked.pk) | Q(parent_id=locked.pk)).values("pk")
            adjusted = memories_shift_relevance(executions=executions, delta=delta)
    execution.rating, execution.feedback = locked.rating, locked.feedback
    return RatingResult(rating=rating, previous=previous, memories_adjusted=adjusted)
