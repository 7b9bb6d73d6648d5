"""Executions: submit a requirement, pause, resume, cancel; claim and recover them in the worker."""

from __future__ import annotations

import logging
import os
import re
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
from agents.wording import phase_doing, plain_words
from endpoints.interpretation import design_fingerprint
from endpoints.models import GeneratedEndpoint
from learning.glossary import Mapping, glossary_define, mapping_parse, term_normalize
from learning.grammar import is_grammatical
from learning.services import RATING_STEP, LearningInputError, design_reject, memories_shift_relevance
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
        raise ExecutionError(plain_words(exc.message), code="spending_cap") from None
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
        pk=execution.pk, status__in=[AgentStatus.PENDING, AgentStatus.PAUSED, AgentStatus.WAITING]
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
                    f"The run stopped responding {phase_doing(execution.current_phase) or 'before it finished'} "
                    f"and could not be resumed (after {execution.attempts} attempt(s)). Submit the requirement "
                    "again; if it happens again, tell your admin."
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
    design_avoided: bool = False  # rated down: its design is never offered again for a similar requirement


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
    avoided = _avoid_rated_down(execution=locked, comment=comment) if rating < 0 else False
    return RatingResult(rating=rating, previous=previous, memories_adjusted=adjusted, design_avoided=avoided)


def _avoid_rated_down(*, execution: AgentExecution, comment: str) -> bool:
    """A design rated not helpful is never offered again for the same or a similar requirement on its Service."""
    endpoint_info = (execution.result or {}).get("endpoint") or {}
    endpoint = GeneratedEndpoint.objects.filter(pk=endpoint_info.get("id")).first() if endpoint_info else None
    interpretation = endpoint.interpretation if endpoint is not None else None
    if not interpretation:
        return False
    design_reject(
        execution=execution,
        fingerprint=design_fingerprint(interpretation),
        reason=f"rated not helpful: {comment.strip()}" if comment.strip() else "rated not helpful",
        requirement=(execution.result or {}).get("requirement") or execution.business_requirement,
        sql=endpoint.sql,
        interpretation=interpretation,
    )
    return True


# --- answering a run's questions ---------------------------------------------------------------


def _merged(question: dict, picked: list[dict]) -> dict:
    """Several choices of one question as one: their conditions' values add up ('delivered' and 'shipped')."""
    if len(picked) == 1:
        return picked[0]
    mappings = [dict(c.get("mapping") or {}) for c in picked]
    merged = dict(mappings[0])
    conditions: dict[tuple, dict] = {}
    for mapping in mappings:
        for condition in mapping.get("filters") or []:
            key = (condition.get("column"), condition.get("op"))
            entry = conditions.setdefault(key, {**condition, "values": []})
            for value in condition.get("values") or [condition.get("value")]:
                if value is not None and value not in entry["values"]:
                    entry["values"].append(value)
        if mapping.get("values") or mapping.get("value") is not None:
            merged.setdefault("values", [])
            for value in mapping.get("values") or [mapping.get("value")]:
                if value not in merged["values"]:
                    merged["values"].append(value)
    if conditions:
        merged["filters"] = [{k: v for k, v in c.items() if k != "value"} for c in conditions.values()]
    if merged.get("values"):
        merged.pop("value", None)
        merged["op"] = "in"
    label = ", ".join(c["label"] for c in picked)
    return {"id": "+".join(c["id"] for c in picked), "label": label, "mapping": merged}


def _answer_of(question: dict, value) -> tuple[dict | None, str]:
    """(the chosen choice, or None) and the free-text answer, for one question; raises on a bad answer."""
    choices = {c["id"]: c for c in question.get("choices") or []}
    if isinstance(value, list):
        if not question.get("multiple") and len(value) != 1:
            raise ExecutionError("Choose one answer.", field=f"answers.{question['id']}")
        unknown = [v for v in value if v not in choices]
        if not value or unknown:
            raise ExecutionError(
                f"Expected some of: {', '.join(choices)}.", field=f"answers.{question['id']}", code="invalid_choice"
            )
        return _merged(question, [choices[v] for v in dict.fromkeys(value)]), ""
    if isinstance(value, dict):
        if "choice" in value:  # an explicit choice is a choice, never free text
            if isinstance(value["choice"], str) and value["choice"] in choices:
                return choices[value["choice"]], ""
            raise ExecutionError(
                f"Expected one of: {', '.join(choices)}.", field=f"answers.{question['id']}", code="invalid_choice"
            )
        if "other" in value or "text" in value:
            text = str(value.get("other") or value.get("text") or "").strip()
            if not question.get("allow_other"):
                raise ExecutionError("Choose one of the offered answers.", field=f"answers.{question['id']}")
            if not text:
                raise ExecutionError("Say in a few words what you mean.", field=f"answers.{question['id']}")
            return None, text[:300]
    if isinstance(value, str) and value in choices:
        return choices[value], ""
    if isinstance(value, str) and value.strip() and question.get("allow_other"):
        return None, value.strip()[:300]
    offered = ", ".join(choices) or "a text answer"
    raise ExecutionError(f"Expected one of: {offered}.", field=f"answers.{question['id']}", code="invalid_choice")


def _replace_phrase(requirement: str, phrase: str, text: str) -> str:
    pattern = re.compile(r"(?<![\w])" + re.escape(phrase) + r"(?![\w])", re.I)
    replaced, count = pattern.subn(text, requirement, count=1)
    return replaced if count else f"{requirement} ({phrase}: {text})"


def _without_left_out(mappings: list[tuple[str, Mapping]]) -> list[tuple[str, Mapping]]:
    """A word answered 'leave it out' keeps nothing else of the same answers (a date for its window, say)."""
    left_out = {term_normalize(term) for term, mapping in mappings if mapping.kind == "ignore"}
    return [(t, m) for t, m in mappings if m.kind == "ignore" or term_normalize(t) not in left_out]


def execution_answer(*, execution: AgentExecution, user, answers: dict, enqueue: bool = True) -> AgentExecution:
    """The requester answers a waiting run's questions; choices define glossary terms, and the run goes on.

    `answers` maps each question id to a choice id, or to {"other": "..."} (free text, where the
    question allows it: the words replace the phrase in the requirement). Every question needs an
    answer; a bad answer changes nothing.
    """
    if execution.status != AgentStatus.WAITING:
        raise ExecutionError(
            f"This run is not waiting for an answer (it is {execution.get_status_display().lower()}).",
            code="invalid_state",
        )
    if user.pk != execution.user_id and execution.organization_id not in organization_ids_for_user(user, manage=True):
        raise ExecutionError("Only the person who asked, or an owner or admin, can answer.", code="forbidden")
    questions = {q["id"]: q for q in execution.questions or []}
    if not isinstance(answers, dict) or not answers:
        raise ExecutionError("Answer the questions: give a choice for each one.", field="answers", code="required")
    unknown = sorted(set(answers) - set(questions))
    if unknown:
        raise ExecutionError(f"No such question: {', '.join(unknown)}.", field=f"answers.{unknown[0]}")
    missing = [qid for qid in questions if qid not in answers]
    if missing:
        raise ExecutionError("Answer every question.", field=f"answers.{missing[0]}", code="required")
    chosen = [(questions[qid], *_answer_of(questions[qid], value)) for qid, value in answers.items()]
    mappings = []
    for question, choice, _text in chosen:
        if choice is not None and choice.get("mapping"):
            mapping = dict(choice["mapping"])
            term = mapping.pop("term", None) or question["phrase"]
            if is_grammatical(term):
                raise ExecutionError(
                    f"'{term}' is an ordinary word of a request, not a business term; "
                    "say in your own words what you mean instead.",
                    field=f"answers.{question['id']}",
                )
            try:
                mappings.append((term, mapping_parse(mapping)))
            except LearningInputError as exc:
                raise ExecutionError(
                    f"That answer cannot be used ({exc}); choose another.", field=f"answers.{question['id']}"
                ) from exc
    mappings = _without_left_out(mappings)
    service = execution.role.service if execution.role else None
    # Glossary terms first (embedding them may reach the network): the next requirement asks nothing.
    defined = [
        glossary_define(
            service=service, term=term, mapping=mapping, user=user, check_user=False, source_execution=execution
        )
        for term, mapping in mappings
        if service is not None
    ]
    state = dict(execution.result or {})
    requirement = state.get("requirement") or execution.business_requirement
    for question, choice, text in chosen:
        if choice is None and text:
            requirement = _replace_phrase(requirement, question["phrase"], text)
    record = [
        *list(execution.answers or []),
        *[
            {
                "question": question["text"],
                "phrase": question["phrase"],
                "answer": choice["label"] if choice is not None else text,
                "choice": choice["id"] if choice is not None else None,
                "at": timezone.now().isoformat(),
            }
            for question, choice, text in chosen
        ],
    ]
    # The design starts again with what was learned; the token meter keeps counting.
    state = {"usage": state.get("usage") or {}, "requirement": requirement, "answered": len(record)}
    with transaction.atomic():
        updated = AgentExecution.objects.filter(pk=execution.pk, status=AgentStatus.WAITING).update(
            status=AgentStatus.PENDING,
            questions=[],
            answers=record,
            status_reason="",
            attempts=0,
            result=state,
            updated_at=timezone.now(),
        )
        if not updated:
            raise ExecutionError("This run was answered or cancelled meanwhile.", code="conflict")
        event_append(
            execution=execution,
            kind="answers",
            payload={"answers": record[-len(chosen) :], "glossary": [t.term for t in defined]},
        )
        event_append(execution=execution, kind="status", payload={"status": AgentStatus.PENDING, "answered": True})
        if enqueue:
            transaction.on_commit(lambda: _enqueue(execution.pk))
    execution.refresh_from_db()
    return execution
