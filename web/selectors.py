"""Reads behind the business pages: phase timelines, the endpoint of an execution, call charts, memories."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone

from agents.events import event_serialize, events_since
from agents.models import PHASE_ORDER, AgentExecution, AgentStatus, Phase
from agents.selectors import execution_get_for_user
from endpoints.models import EndpointStatus, GeneratedEndpoint, ReviewDecision
from learning.models import AgentMemory
from learning.services import memory_retrieve
from mcpservers.models import ToolCall
from roles.models import Role
from roles.selectors import organization_ids_for_user
from web.memory_display import memory_view
from web.models import Notification, UserPreference

REPLAY_LIMIT = 5000
CHART_DAYS = 14


@dataclass(frozen=True)
class PhaseState:
    name: str
    label: str
    state: str  # pending, running, done, failed, paused
    seconds: float | None = None


def user_can_manage(*, user, organization_id) -> bool:
    """Owners and admins of the organization (and superusers) review, deploy and roll back."""
    if getattr(user, "is_superuser", False) and user.is_active:
        return True
    return organization_id in organization_ids_for_user(user, manage=True)


def execution_get_for_control(*, user, execution_id) -> AgentExecution:
    """An execution the user may pause, resume or cancel: their own, or any of an organization they manage."""
    execution = execution_get_for_user(user=user, execution_id=execution_id)
    if execution.user_id != user.pk and not user_can_manage(user=user, organization_id=execution.organization_id):
        raise PermissionDenied("Only the requester or an owner or admin of the organization can control this run.")
    return execution


def execution_events(*, execution: AgentExecution) -> list[dict]:
    """The stored events, serialized exactly as the WebSocket sends them."""
    return [event_serialize(e) for e in events_since(execution=execution, after_seq=0, limit=REPLAY_LIMIT)]


def phase_states(*, execution: AgentExecution, events: list[dict]) -> list[PhaseState]:
    states = {name: {"state": "pending", "seconds": None} for name in PHASE_ORDER}
    for event in events:
        payload = event.get("payload") or {}
        if event["kind"] == "phase" and payload.get("phase") in states:
            entry = states[payload["phase"]]
            if payload.get("status") == "completed":
                entry["state"], entry["seconds"] = "done", payload.get("seconds")
            elif payload.get("status") == "started":
                entry["state"] = "running"
        elif (
            event["kind"] == "status" and payload.get("status") == AgentStatus.FAILED and payload.get("phase") in states
        ):
            states[payload["phase"]]["state"] = "failed"
    stopped = {AgentStatus.FAILED: "failed", AgentStatus.PAUSED: "paused", AgentStatus.WAITING: "asking"}.get(
        execution.status
    )
    if stopped:
        for entry in states.values():
            if entry["state"] == "running":
                entry["state"] = stopped
    return [PhaseState(name=n, label=Phase(n).label, state=s["state"], seconds=s["seconds"]) for n, s in states.items()]


_EXPLORE_PREFIXES = ("analyze_", "query_", "describe_", "sample_", "search_")


def _explored_object(tool: str, arguments) -> str | None:
    """The table or view a look-up was about: named by the tool (query_orders) or by its arguments."""
    if isinstance(arguments, dict):
        for key in ("object", "object_name", "table", "name"):
            if isinstance(arguments.get(key), str) and arguments[key]:
                return arguments[key]
    for prefix in _EXPLORE_PREFIXES:
        if tool.startswith(prefix):
            name = tool[len(prefix) :]
            return name[: -len("_schema")] if name.endswith("_schema") else name
    return None


def phase_summaries(*, events: list[dict]) -> dict[str, str]:
    """One plain sentence per phase about what it did, from the stored events (no tool names)."""
    explored: set[str] = set()
    calls = 0
    tests = None
    memories = None
    fixes = 0
    for event in events:
        payload = event.get("payload") or {}
        if event["kind"] == "tool_call" and event.get("phase") == "exploration":
            calls += 1
            obj = _explored_object(str(payload.get("tool", "")), payload.get("arguments"))
            if obj:
                explored.add(obj)
        elif event["kind"] == "tests":
            tests = payload
        elif event["kind"] == "fix_round":
            fixes += 1
        elif event["kind"] == "phase" and payload.get("status") == "completed" and payload.get("memories") is not None:
            memories = payload.get("memories")
    out = {}
    if explored or calls:
        n = len(explored)
        out["exploration"] = (
            f"Looked at {n} table{'s' if n != 1 else ''} or view{'s' if n != 1 else ''} of the database."
            if n
            else f"Made {calls} look-up{'s' if calls != 1 else ''} in the database."
        )
    out["architecture"] = "Chose the data, filters and parameters of the API."
    out["security"] = "Checked the query against what the role may read."
    out["implementation"] = "Built the endpoint and its tests."
    if tests:
        passed, total = tests.get("passed", 0), tests.get("total", 0)
        text = f"{passed} of {total} test{'s' if total != 1 else ''} passed on the live data."
        if fixes:
            text += f" {fixes} round{'s' if fixes != 1 else ''} of fixes."
        out["testing"] = text
    out["documentation"] = "Wrote how to call it, with examples."
    if memories is not None:
        out["learning"] = f"Kept {memories} lesson{'s' if memories != 1 else ''} for the next requests."
    return out


PHASE_DOING = {
    "exploration": "Looking through the database for the data you asked for…",
    "architecture": "Designing the API: which data, filters and parameters…",
    "security": "Checking that the query reads only what the role may read…",
    "implementation": "Building the endpoint…",
    "testing": "Testing the endpoint on the live data…",
    "documentation": "Writing the documentation…",
    "learning": "Keeping what was learned for next time…",
}


def execution_now(*, execution: AgentExecution, phases: list[PhaseState]) -> str:
    """What is happening, in one plain sentence."""
    if execution.status == AgentStatus.COMPLETED:
        return "Done: your API is ready for review below."
    if execution.status == AgentStatus.FAILED:
        return "The run stopped before it could finish; see why below."
    if execution.status == AgentStatus.PAUSED:
        return "Paused. Resume it when you are ready."
    if execution.status == AgentStatus.WAITING:
        return "Waiting for your answer: one or two words of the request can mean several things here."
    running = next((p for p in phases if p.state == "running"), None)
    if running is not None:
        return PHASE_DOING.get(running.name, "Working…")
    if any(p.state == "done" for p in phases):
        return "Moving on to the next step…"
    return "Waiting for a worker to start…"


def execution_progress(*, execution: AgentExecution, phases: list[PhaseState]) -> dict:
    done = sum(1 for p in phases if p.state == "done")
    end = execution.completed_at or timezone.now()
    elapsed = max(0.0, (end - execution.created_at).total_seconds())
    return {
        "done": done,
        "total": len(phases),
        "percent": round(100 * done / len(phases)) if phases else 0,
        "elapsed_seconds": int(elapsed),
        "running": not execution.is_finished and execution.status not in (AgentStatus.PAUSED, AgentStatus.WAITING),
    }


def execution_waiting(*, execution: AgentExecution, posted=None) -> dict | None:
    """A waiting run's questions as the live page asks them, with what was understood; None otherwise.

    `posted` (the form sent back with an error) keeps what the person chose and typed.
    """
    if execution.status != AgentStatus.WAITING or not execution.questions:
        return None
    questions = []
    for question in execution.questions:
        name = f"q-{question['id']}"
        chosen = set(posted.getlist(name)) if posted is not None else set()
        questions.append(
            {
                **question,
                "field": name,
                "other_value": (posted.get(f"{name}-other") or "") if posted is not None else "",
                "choices": [{**c, "checked": c["id"] in chosen} for c in question.get("choices") or []],
            }
        )
    understood = ((execution.result or {}).get("waiting") or {}).get("understood") or ""
    return {"questions": questions, "understood": understood, "answered": execution.answers or []}


def execution_controls(*, execution: AgentExecution) -> dict:
    unfinished = not execution.is_finished
    return {
        "can_pause": execution.status in (AgentStatus.PENDING, AgentStatus.RUNNING) and not execution.pause_requested,
        "can_resume": execution.status == AgentStatus.PAUSED or execution.pause_requested,
        "can_cancel": unfinished and not execution.cancel_requested,
    }


def execution_endpoint(*, execution: AgentExecution):
    """The endpoint an execution produced: the one named in its result, else its latest draft."""

    versions = GeneratedEndpoint.objects.filter(source_execution=execution).select_related(
        "organization", "role", "role__service"
    )
    named = ((execution.result or {}).get("endpoint") or {}).get("id")
    if named:
        endpoint = versions.filter(pk=named).first()
        if endpoint is not None:
            return endpoint
    return versions.order_by("-created_at").first()


def endpoints_of_organization(*, organization):
    return (
        GeneratedEndpoint.objects.filter(organization=organization)
        .select_related("organization", "role", "source_execution")
        .order_by("slug", "-version")
    )


def endpoint_daily_calls(*, endpoints, days: int = CHART_DAYS, today=None) -> dict:
    """Calls per day over the last `days` days for each endpoint, keyed by endpoint id (oldest day first)."""

    today = today or timezone.localdate()
    first = today - timedelta(days=days - 1)
    by_tool = {e.tool_name: e for e in endpoints}
    counts = {e.pk: [0] * days for e in endpoints}
    if not by_tool:
        return counts
    organization_ids = {e.organization_id for e in endpoints}
    rows = (
        ToolCall.objects.filter(
            organization_id__in=organization_ids,
            tool__in=list(by_tool),
            created_at__date__gte=first,
        )
        .annotate(day=TruncDate("created_at"))
        .values("tool", "day")
        .annotate(n=Count("id"))
    )
    for row in rows:
        index = (row["day"] - first).days
        if 0 <= index < days:
            counts[by_tool[row["tool"]].pk][index] += row["n"]
    return counts


def mcp_roles_of_organization(*, organization) -> list:
    """MCP-enabled roles with their instance, tools and API keys."""

    roles = (
        Role.objects.filter(organization=organization, mcp_enabled=True)
        .select_related("service", "mcp_instance")
        .prefetch_related("api_keys")
        .order_by("name")
    )
    return list(roles)


def memories_browse(
    *, organization, text: str = "", memory_type: str = "", service=None, limit: int = 30
) -> list[dict]:
    """Memories of the organization (of one Service if given): the best matches for `text`, else the newest."""

    if text.strip():
        retrieved = memory_retrieve(
            organization=organization,
            text=text,
            types=[memory_type] if memory_type else None,
            k=limit,
            service=service,
        )
        items = [{"memory": r.memory, "similarity": r.similarity, "score": r.score} for r in retrieved]
    else:
        queryset = AgentMemory.objects.filter(organization=organization, is_active=True).order_by("-created_at")
        if memory_type:
            queryset = queryset.filter(type=memory_type)
        if service is not None:
            queryset = queryset.filter(service=service)
        items = [{"memory": m, "similarity": None, "score": None} for m in queryset[:limit]]
    ids = [item["memory"].pk for item in items]
    memories = AgentMemory.objects.in_bulk(ids)
    with_uses = {
        m.pk: m
        for m in AgentMemory.objects.filter(pk__in=ids)
        .select_related("source_execution", "source_execution__parent", "service")
        .prefetch_related("uses__execution__parent")
    }
    for item in items:
        memory = with_uses.get(item["memory"].pk, memories.get(item["memory"].pk))
        item["memory"] = memory
        item["source"] = _top_execution(memory.source_execution)
        item["view"] = memory_view(memory=memory)
        item["uses"] = [
            {"use": use, "execution": _top_execution(use.execution)}
            for use in sorted(memory.uses.all(), key=lambda u: u.created_at, reverse=True)[:10]
        ]
    return items


def _top_execution(execution):
    """The orchestration a (child) agent run belongs to: the page a user can open."""
    if execution is None:
        return None
    return execution.parent if execution.parent_id else execution


def approvals_pending(*, organization):
    """Endpoints of the organization that wait for an owner or admin: drafts and approved-not-deployed, not rejected."""

    return (
        GeneratedEndpoint.objects.filter(
            organization=organization, status__in=[EndpointStatus.DRAFT, EndpointStatus.APPROVED]
        )
        .exclude(review_decision=ReviewDecision.REJECTED)
        .exclude(source_execution__status__in=[AgentStatus.PENDING, AgentStatus.RUNNING, AgentStatus.PAUSED])
        .select_related("organization", "role", "role__service", "source_execution", "source_execution__user")
        .order_by("-created_at")
    )


def notifications_of_user(*, user, limit: int = 50):
    return Notification.objects.filter(user=user).select_related("organization")[:limit]


def notifications_unread_count(*, user) -> int:
    return Notification.objects.filter(user=user).unread().count()


def role_last_used(*, user, roles) -> object | None:
    """The Role this user chose last time, if it is still among `roles` (never another user's choice)."""

    last_role_id = UserPreference.objects.filter(user=user).values_list("last_role_id", flat=True).first()
    if last_role_id is None:
        return None
    return next((role for role in roles if role.pk == last_role_id), None)


def notification_get_for_user(*, user, notification_id: int):
    """One of the user's own notifications; 404 for anyone else's."""
    from django.http import Http404

    item = Notification.objects.filter(user=user, pk=notification_id).first()
    if item is None:
        raise Http404("No such notification")
    return item


VERDICT_LABELS = {
    "verified": "Verified against the request",
    "needs_review": "Needs a person's review",
    "failed": "Did not pass its checks",
    "unverified": "Not verified",
}


def endpoint_evidence(*, endpoint: GeneratedEndpoint) -> dict:
    """What an approver sees before approving: the meaning in plain words, what it rests on, sample rows, tests."""
    from endpoints.interpretation import interpretation_parse
    from endpoints.verification.wording import interpretation_describe

    verification = endpoint.verification or {}
    requirement = verification.get("requirement") or ""
    interpretation = None
    if endpoint.interpretation:
        try:
            interpretation = interpretation_parse(endpoint.interpretation)
        except ValueError:
            interpretation = None
    meaning = verification.get("meaning") or (
        interpretation_describe(interpretation, requirement=requirement) if interpretation is not None else ""
    )
    assumptions = [{"text": a.text, "phrase": a.phrase} for a in (interpretation.assumptions if interpretation else [])]
    concerns = list(
        dict.fromkeys(
            [*verification.get("review_reasons", [])]
            + [f["message"] for f in verification.get("findings") or [] if not f.get("passed", True)]
        )
    )
    report = verification.get("meaning_tests") or {}
    rows = list(report.get("sample_rows") or [])
    columns = list(rows[0]) if rows else []
    verdict = endpoint.verdict
    return {
        "verdict": verdict,
        "verdict_label": VERDICT_LABELS.get(verdict, verdict),
        "requirement": requirement,
        "meaning": meaning,
        "assumptions": assumptions,
        "concerns": concerns,
        "rests_on_assumption": bool(assumptions) or any(c.startswith("assumed:") for c in concerns),
        "example_params": report.get("example_params") or {},
        "sample_columns": columns,
        "sample_rows": [[row.get(c) for c in columns] for row in rows],
        "meaning_tests": report.get("tests") or [],
        "auto_deployable": verdict == "verified",
    }


def glossary_of_service(*, service) -> list[dict]:
    """The Service's glossary for its page: each term, what it means, and where it came from."""
    from learning.glossary import glossary_terms

    terms = glossary_terms(service=service)
    memories = {
        str(m.pk): m
        for m in AgentMemory.objects.filter(pk__in=[t.memory_id for t in terms])
        .select_related("source_execution__user")
        .defer("embedding")
    }
    rows = []
    for t in terms:
        memory = memories.get(t.memory_id)
        execution = memory.source_execution if memory is not None else None
        rows.append(
            {
                **t.as_dict(),
                "kind": t.mapping.kind,
                "updated_at": memory.updated_at if memory is not None else None,
                "execution": execution if execution is not None and execution.parent_id is None else None,
                "answered_by": execution.user.get_username() if execution is not None and execution.user else "",
            }
        )
    return sorted(rows, key=lambda r: (r["term"], r["kind"]))


def database_definitions(*, service) -> list[dict]:
    """What the database itself says its objects and columns mean: comments, and the views it defines."""
    found = []
    for obj in (service.schema_cache or {}).get("objects") or []:
        columns = [{"name": c["name"], "comment": c["comment"]} for c in obj.get("columns") or [] if c.get("comment")]
        if obj.get("comment") or columns or obj.get("kind") == "view":
            found.append(
                {
                    "name": obj["name"],
                    "schema": obj.get("schema") or "",
                    "kind": obj.get("kind") or "table",
                    "comment": obj.get("comment") or "",
                    "columns": columns,
                    "column_names": [c["name"] for c in obj.get("columns") or []],
                }
            )
    return sorted(found, key=lambda o: (o["kind"] != "view", o["name"]))
