"""Learning: store memories with embeddings, retrieve them for agents, learn from runs and ratings.

Retrieval ranks memories by a blend (also in docs/learning.md):

    score = 0.75 * similarity + 0.15 * relevance_score + 0.10 * usage_recency
    usage_recency = min(1, ln(1 + usage_count) / ln(50)) * exp(-days_since_last_used / 30)

`similarity` is the cosine similarity of the memory's embedding and the query's (1 - pgvector's
`<=>` cosine distance); `relevance_score` (0..1) moves with ratings and continuous improvement;
`usage_recency` rewards memories that were used often and lately (0 if never used). The
`max(3k, 30)` nearest memories by similarity are re-ranked by score and the best `k` returned.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.core.exceptions import PermissionDenied
from django.db import connection, transaction
from django.db.models import F, Value
from django.db.models.functions import Greatest, Least
from django.utils import timezone

from learning import vector_search
from learning.embedders import EMBEDDING_DIMENSIONS, embedder_from_settings
from learning.extraction import (
    dedupe,
    describe_parameters,
    object_tag,
    objects_of,
    parameter_names,
    query_shapes,
    sql_tables,
)
from learning.models import AgentMemory, MemoryType, MemoryUse
from roles.selectors import membership_get

logger = logging.getLogger(__name__)

WEIGHT_SIMILARITY = 0.75
WEIGHT_RELEVANCE = 0.15
WEIGHT_USAGE = 0.10
USAGE_SATURATION = 50  # uses at which the usage factor reaches 1
RECENCY_DAYS = 30.0  # e-folding time of the recency factor
MAX_K = 100
RATING_STEP = 0.1  # relevance moved by one rating
SLOW_QUERY_MS = 500.0  # a successful query slower than this yields an OPTIMIZATION memory

LEARNED_TYPES = (
    MemoryType.SUCCESS_PATTERN,
    MemoryType.API_PATTERN,
    MemoryType.CODE_SNIPPET,
    MemoryType.OPTIMIZATION,
)


class LearningInputError(ValueError):
    """Bad input to a learning service: names the field and what was expected. Nothing was changed."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class RetrievedMemory:
    memory: AgentMemory
    similarity: float
    score: float


# --- storing ---------------------------------------------------------------------------------


_PATTERN_BLOCK = re.compile(r"```json\s*\{.*?\}\s*```", re.S)


def embedding_text(content: str) -> str:
    """What a memory is embedded as: its prose, without machine-readable pattern blocks."""
    return _PATTERN_BLOCK.sub("", content).strip() or content


def embed_texts(texts: Sequence[str]) -> tuple[str, list[list[float]]]:
    """Embed texts with the configured embedder; returns (embedder name, vectors)."""
    embedder = embedder_from_settings()
    vectors = embedder.embed([embedding_text(text) for text in texts])
    for vector in vectors:
        if len(vector) != EMBEDDING_DIMENSIONS:
            raise LearningInputError("embedding", f"embedder {embedder.name} returned {len(vector)} dimensions")
    return embedder.name, vectors


def _validate_memory(*, type: str, content: str, relevance_score: float) -> None:
    if type not in MemoryType.values:
        raise LearningInputError("type", f"expected one of {', '.join(MemoryType.values)}, got {type!r}")
    if not isinstance(content, str) or not content.strip():
        raise LearningInputError("content", "expected non-empty text")
    if not isinstance(relevance_score, int | float) or not 0.0 <= relevance_score <= 1.0:
        raise LearningInputError("relevance_score", f"expected a number between 0 and 1, got {relevance_score!r}")


def execution_scope(*, execution) -> tuple[object | None, object | None]:
    """(Service, Role) an execution ran for: its Role's, or for a child agent run its orchestration's."""
    role = execution.role
    if role is None and execution.parent_id is not None:
        role = execution.parent.role
    return (role.service if role is not None else None), role


def _validate_scope(*, organization, service, role) -> tuple[object | None, object | None]:
    if role is not None:
        if role.organization_id != organization.pk:
            raise LearningInputError("role", "the Role belongs to another organization")
        if service is None:
            service = role.service
        elif role.service_id != service.pk:
            raise LearningInputError("role", "the Role is on another Service than the one given")
    if service is not None and service.organization_id != organization.pk:
        raise LearningInputError("service", "the Service belongs to another organization")
    return service, role


def memory_create(
    *,
    organization,
    type: str,
    content: str,
    tags: Iterable[str] = (),
    source_execution=None,
    relevance_score: float = 0.5,
    related: Iterable[AgentMemory] = (),
    service=None,
    role=None,
) -> AgentMemory:
    """Embed `content` and store it as a memory of `organization`, linked to `related` memories.

    `service` and `role` say which database and Role it is about; with a `source_execution` and
    neither given, they are the execution's (see execution_scope).
    """
    _validate_memory(type=type, content=content, relevance_score=relevance_score)
    related = list(related)
    if any(m.organization_id != organization.pk for m in related):
        raise LearningInputError("related", "related memories must belong to the same organization")
    if source_execution is not None and source_execution.organization_id != organization.pk:
        raise LearningInputError("source_execution", "the execution belongs to another organization")
    if source_execution is not None and service is None and role is None:
        service, role = execution_scope(execution=source_execution)
    service, role = _validate_scope(organization=organization, service=service, role=role)
    embedder_name, (vector,) = embed_texts([content])  # before the transaction: may be a network call
    with transaction.atomic():
        memory = AgentMemory.objects.create(
            organization=organization,
            type=type,
            content=content.strip(),
            tags=dedupe(tags),
            source_execution=source_execution,
            relevance_score=float(relevance_score),
            embedding=vector,
            embedder=embedder_name,
            service=service,
            role=role,
        )
        if related:
            memory.related_memories.add(*related)
    return memory


def memory_embed(*, memory: AgentMemory) -> AgentMemory:
    """(Re)compute a stored memory's embedding from its content, e.g. after an admin edited it."""
    embedder_name, (vector,) = embed_texts([memory.content])
    memory.embedding = vector
    memory.embedder = embedder_name
    memory.save(update_fields=["embedding", "embedder", "updated_at"])
    return memory


def business_rule_create(
    *, organization, user, content: str, tags: Iterable[str] = (), service=None, role=None
) -> AgentMemory:
    """An owner or admin of the organization records a BUSINESS_RULE memory (of a Service or Role, if given)."""

    membership = membership_get(user=user, organization=organization)
    if not user.is_superuser and (membership is None or not membership.can_manage):
        raise PermissionDenied("Only owners and admins of the organization may enter business rules.")
    return memory_create(
        organization=organization,
        type=MemoryType.BUSINESS_RULE,
        content=content,
        tags=["business-rule", *tags],
        relevance_score=0.7,
        service=service,
        role=role,
    )


# --- retrieving ------------------------------------------------------------------------------


def usage_recency(*, usage_count: int, last_used: datetime | None, now: datetime) -> float:
    """min(1, ln(1 + uses) / ln(50)) * exp(-days since last use / 30); 0 when never used."""
    if not usage_count or last_used is None:
        return 0.0
    usage = min(1.0, math.log1p(usage_count) / math.log(USAGE_SATURATION))
    days = max(0.0, (now - last_used).total_seconds() / 86400.0)
    return usage * math.exp(-days / RECENCY_DAYS)


def memory_score(*, similarity: float, memory: AgentMemory, now: datetime) -> float:
    return (
        WEIGHT_SIMILARITY * similarity
        + WEIGHT_RELEVANCE * memory.relevance_score
        + WEIGHT_USAGE * usage_recency(usage_count=memory.usage_count, last_used=memory.last_used, now=now)
    )


def _validate_types(types) -> list[str] | None:
    if types is None:
        return None
    if isinstance(types, str):
        types = [types]
    types = list(types)
    bad = [t for t in types if t not in MemoryType.values]
    if bad or not types:
        raise LearningInputError("types", f"expected memory types among {', '.join(MemoryType.values)}, got {bad}")
    return types


def memory_retrieve(
    *,
    organization,
    text: str,
    types: Iterable[str] | None = None,
    k: int = 10,
    execution=None,
    agent: str = "",
    now: datetime | None = None,
    service=None,
    role=None,
) -> list[RetrievedMemory]:
    """The `k` memories of `organization` most useful for `text`, best first (see the module docstring).

    A text with no searchable word (only stop words, punctuation) finds nothing: the result is empty.
    Only active memories embedded by the current embedder are considered; `service` and `role`
    keep only the memories of that Service (database) and of that Role. With an `execution`,
    each returned memory is recorded as used by it (MemoryUse) and its usage_count and
    last_used are updated, once per execution and agent.
    """
    if not isinstance(text, str) or not text.strip():
        raise LearningInputError("text", "expected non-empty text to search for")
    if not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise LearningInputError("k", f"expected an integer between 1 and {MAX_K}, got {k!r}")
    types = _validate_types(types)
    if execution is not None and execution.organization_id != organization.pk:
        raise LearningInputError("execution", "the execution belongs to another organization")
    if role is not None and role.organization_id != organization.pk:
        raise LearningInputError("role", "the Role belongs to another organization")
    if service is not None and service.organization_id != organization.pk:
        raise LearningInputError("service", "the Service belongs to another organization")
    now = now or timezone.now()
    embedder_name, (vector,) = embed_texts([text])
    if not any(vector):
        # No searchable word (e.g. "a", "the"): nothing is similar to it, so nothing is found.
        return []
    pool = max(3 * k, 30)
    with transaction.atomic(), connection.cursor() as cursor:
        neighbours = vector_search.nearest(
            cursor,
            vector=vector,
            organization_id=organization.pk,
            types=types,
            embedder=embedder_name,
            limit=pool,
            service_id=service.pk if service is not None else None,
            role_id=role.pk if role is not None else None,
        )
    # The 384-dimension vectors stay in the database: ranking needs the similarity, not the embedding.
    by_id = AgentMemory.objects.defer("embedding").in_bulk([n.id for n in neighbours])
    ranked = sorted(
        (
            RetrievedMemory(memory=by_id[n.id], similarity=n.similarity, score=0.0)
            for n in neighbours
            if n.id in by_id and math.isfinite(n.similarity)  # a memory embedded as a zero vector matches nothing
        ),
        key=lambda r: -memory_score(similarity=r.similarity, memory=r.memory, now=now),
    )[:k]
    results = [
        RetrievedMemory(
            memory=r.memory,
            similarity=r.similarity,
            score=memory_score(similarity=r.similarity, memory=r.memory, now=now),
        )
        for r in ranked
    ]
    if execution is not None and results:
        memory_record_use(retrieved=results, execution=execution, agent=agent, now=now)
    return results


def memory_record_use(*, retrieved: Sequence[RetrievedMemory], execution, agent: str = "", now=None) -> int:
    """Record that `execution` used these memories; counts each memory once per execution and agent."""
    now = now or timezone.now()
    newly_used = []
    with transaction.atomic():
        for item in retrieved:
            _, created = MemoryUse.objects.get_or_create(
                memory=item.memory,
                execution=execution,
                kind=MemoryUse.Kind.RETRIEVED,
                agent=agent[:20],
                defaults={"similarity": item.similarity},
            )
            if created:
                newly_used.append(item.memory.pk)
        if newly_used:
            AgentMemory.objects.filter(pk__in=newly_used).update(usage_count=F("usage_count") + 1, last_used=now)
    for item in retrieved:
        if item.memory.pk in newly_used:
            item.memory.refresh_from_db(fields=["usage_count", "last_used"])
    return len(newly_used)


# --- learning from runs ----------------------------------------------------------------------


def _require_dict(value, field: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise LearningInputError(field, f"expected an object, got {type(value).__name__}")
    return value


def _objects_and_tags(exploration: dict, sql: str | None) -> tuple[list[str], list[str]]:
    names = [f"{o['schema']}.{o['name']}" if o.get("schema") else o["name"] for o in objects_of(exploration)]
    tags = [object_tag(o.get("schema"), o["name"]) for o in objects_of(exploration)]
    if not names and sql:
        for schema, name in sql_tables(sql):
            names.append(f"{schema}.{name}" if schema else name)
            tags.append(object_tag(schema, name))
    return dedupe(names), dedupe(tags)


def learn_from_success(*, execution, results: dict) -> list[AgentMemory]:
    """Store what a successful execution teaches: SUCCESS_PATTERN, API_PATTERN, CODE_SNIPPET, OPTIMIZATION.

    `results` = {"requirement", "exploration": {"objects": [{"schema", "name", "kind"}]},
    "design": {"method", "path", "description", "parameters", "shape"}, "sql", "pattern" (optional: the
    reusable design as a dict, stored with the API_PATTERN in a fenced json block),
    "tests": {"passed", "failed", "cases"}, "performance": {"duration_ms", "notes"}}.
    The memories are linked to each other and recorded as produced by the execution. Calling it
    again for the same execution returns the memories already stored.
    """
    results = _require_dict(results, "results")
    existing = list(AgentMemory.objects.filter(source_execution=execution, type__in=LEARNED_TYPES))
    if existing:
        return existing
    requirement = results.get("requirement") or execution.business_requirement
    if not isinstance(requirement, str) or not requirement.strip():
        raise LearningInputError("results.requirement", "expected the requirement text")
    requirement = requirement.strip()
    exploration = _require_dict(results.get("exploration"), "results.exploration")
    design = _require_dict(results.get("design"), "results.design")
    tests = _require_dict(results.get("tests"), "results.tests")
    performance = _require_dict(results.get("performance"), "results.performance")
    sql = results.get("sql") or ""
    if not isinstance(sql, str):
        raise LearningInputError("results.sql", "expected SQL text")

    names, object_tags = _objects_and_tags(exploration, sql)
    params = parameter_names(design.get("parameters"))
    shapes = query_shapes(sql, parameters=params)
    if design.get("shape"):
        extra = design["shape"] if isinstance(design["shape"], list | tuple) else [design["shape"]]
        shapes = dedupe([*shapes, *(str(shape) for shape in extra)])
    method = str(design.get("method") or "").upper()
    path = str(design.get("path") or "")
    endpoint = f"{method} {path}".strip()
    passed, failed = int(tests.get("passed") or 0), int(tests.get("failed") or 0)
    base_tags = [*object_tags, *shapes]

    drafts: list[tuple[str, str, list[str]]] = []
    objects_text = ", ".join(names) or "the granted objects"
    drafts.append(
        (
            MemoryType.SUCCESS_PATTERN,
            f"{requirement}\nSolved with {endpoint or 'a query'} over {objects_text}. "
            f"Query shape: {', '.join(shapes) or 'simple read'}. Tests: {passed} passed, {failed} failed.",
            ["success", *base_tags],
        )
    )
    if method and path:
        description = design.get("description") or requirement
        text = (
            f"{endpoint}: {description}. Parameters: {describe_parameters(design.get('parameters'))}. "
            f"Reads {objects_text}. Shape: {design.get('shape') or ', '.join(shapes) or 'list'}."
        )
        pattern = results.get("pattern")
        if isinstance(pattern, dict) and pattern:
            # The machine-readable pattern, so a planner can reuse the design as it was deployed.
            text += "\n\n```json\n" + json.dumps(pattern, default=str, sort_keys=True) + "\n```"
        drafts.append((MemoryType.API_PATTERN, text, ["api", f"method:{method.lower()}", *base_tags]))
    if sql.strip():
        drafts.append((MemoryType.CODE_SNIPPET, f"-- {requirement}\n{sql.strip()}", ["sql", *base_tags]))
    duration = performance.get("duration_ms")
    notes = performance.get("notes") or performance.get("optimizations") or []
    if isinstance(notes, str):
        notes = [notes]
    if (isinstance(duration, int | float) and duration >= SLOW_QUERY_MS) or notes:
        advice = "; ".join(str(n) for n in notes) or (
            "narrow the time window, filter on indexed columns and bound the result with LIMIT"
        )
        timing = f" ran in {duration:.0f} ms" if isinstance(duration, int | float) else ""
        drafts.append(
            (
                MemoryType.OPTIMIZATION,
                f"Performance of {endpoint or 'the query'} for: {requirement}. It{timing} over {objects_text}. "
                f"Advice: {advice}.",
                ["performance", *base_tags],
            )
        )

    embedder_name, vectors = embed_texts([d[1] for d in drafts])
    relevance = 0.6 if failed == 0 else 0.5
    service, role = execution_scope(execution=execution)
    with transaction.atomic():
        memories = [
            AgentMemory.objects.create(
                organization_id=execution.organization_id,
                service=service,
                role=role,
                type=kind,
                content=content,
                tags=dedupe(tags),
                source_execution=execution,
                relevance_score=relevance,
                embedding=vector,
                embedder=embedder_name,
            )
            for (kind, content, tags), vector in zip(drafts, vectors, strict=True)
        ]
        for memory in memories:
            memory.related_memories.add(*[m for m in memories if m.pk != memory.pk])
        MemoryUse.objects.bulk_create(
            [
                MemoryUse(memory=m, execution=execution, kind=MemoryUse.Kind.PRODUCED, agent="learning")
                for m in memories
            ],
            ignore_conflicts=True,
        )
    return memories


def learn_from_failure(*, execution, reason: str, phase: str, attempted: dict | None = None) -> AgentMemory:
    """Store an ANTI_PATTERN: what was attempted in which phase, and why it failed or was rejected.

    `attempted` may hold "design" ({"method", "path", ...}), "sql", "exploration" (objects) and
    "avoid" ({"columns": [...], "unbounded": [tables]}), stored as a fenced json block.
    The same failure stored twice for one execution is stored once.
    """
    if not isinstance(reason, str) or not reason.strip():
        raise LearningInputError("reason", "expected the reason of the failure")
    if not isinstance(phase, str) or not phase.strip():
        raise LearningInputError("phase", "expected the phase that failed")
    attempted = _require_dict(attempted, "attempted")
    design = _require_dict(attempted.get("design"), "attempted.design")
    sql = attempted.get("sql") or ""
    if not isinstance(sql, str):
        raise LearningInputError("attempted.sql", "expected SQL text")
    names, object_tags = _objects_and_tags(_require_dict(attempted.get("exploration"), "attempted.exploration"), sql)
    shapes = query_shapes(sql, parameters=parameter_names(design.get("parameters")))
    endpoint = f"{str(design.get('method') or '').upper()} {design.get('path') or ''}".strip()
    lines = [
        f"Avoid: {reason.strip()}",
        f"Phase: {phase.strip()}. Requirement: {execution.business_requirement.strip()}",
    ]
    if endpoint:
        lines.append(f"Attempted design: {endpoint}")
    if names:
        lines.append(f"Objects: {', '.join(names)}")
    if sql.strip():
        lines.append(f"Attempted SQL: {sql.strip()}")
    avoid = attempted.get("avoid")
    if isinstance(avoid, dict) and any(avoid.values()):
        # Machine-readable: what a planner should stay away from next time (columns, unbounded reads).
        lines.append("\n```json\n" + json.dumps({"avoid": avoid}, sort_keys=True) + "\n```")
    content = "\n".join(lines)
    existing = AgentMemory.objects.filter(
        source_execution=execution, type=MemoryType.ANTI_PATTERN, content=content
    ).first()
    if existing:
        return existing
    siblings = list(AgentMemory.objects.filter(source_execution=execution))
    memory = memory_create(
        organization=execution.organization,
        type=MemoryType.ANTI_PATTERN,
        content=content,
        tags=[
            "anti-pattern",
            f"phase:{phase.strip().lower()}",
            f"agent:{execution.agent_type.lower()}",
            *object_tags,
            *shapes,
        ],
        source_execution=execution,
        relevance_score=0.6,
        related=siblings,
    )
    MemoryUse.objects.get_or_create(memory=memory, execution=execution, kind=MemoryUse.Kind.PRODUCED, agent="learning")
    return memory


# --- feedback --------------------------------------------------------------------------------


def memories_shift_relevance(*, executions, delta: float) -> int:
    """Move the relevance of every memory these executions produced or retrieved by delta, clamped to [0, 1].

    `executions` is a queryset of execution primary keys; returns how many memories moved.
    """
    if not delta:
        return 0
    ids = list(AgentMemory.objects.produced_or_used_by(executions).values_list("pk", flat=True))
    return AgentMemory.objects.filter(pk__in=ids).update(
        relevance_score=Least(Greatest(F("relevance_score") + Value(delta), Value(0.0)), Value(1.0))
    )


# --- designs people rejected ----------------------------------------------------------------------

REJECTED_TAG = "rejected-design"
# How alike two requirements must read for a rejected design of one to be refused for the other.
REJECTED_SIMILARITY = 0.75


def design_reject(
    *, execution, fingerprint: str, reason: str, requirement: str, sql: str = "", interpretation: dict | None = None
) -> AgentMemory:
    """A person said a design is wrong (rated down, rejected, rolled back): never offer it again.

    Its success and API patterns stop being retrieved, and an ANTI_PATTERN of the Service records
    the design's fingerprint with the reason, so that the next run for the same or a similar
    requirement finds another design, asks, or declines.
    """
    if not fingerprint:
        raise LearningInputError("fingerprint", "expected the design's fingerprint")
    reason = (reason or "").strip() or "rated not helpful"
    AgentMemory.objects.filter(
        source_execution=execution, type__in=[MemoryType.SUCCESS_PATTERN, MemoryType.API_PATTERN], is_active=True
    ).update(is_active=False, retired_reason=f"the design was rejected: {reason}"[:500], retired_at=timezone.now())
    existing = AgentMemory.objects.filter(
        source_execution=execution, type=MemoryType.ANTI_PATTERN, tags__contains=[REJECTED_TAG, fingerprint]
    ).first()
    if existing is not None:
        return existing
    payload = {"rejected": {"fingerprint": fingerprint, "requirement": requirement, "sql": sql, "reason": reason}}
    if interpretation:
        payload["rejected"]["interpretation"] = interpretation
    content = (
        f"Avoid: a design people rejected ({reason}).\nRequirement: {requirement.strip()}\n"
        + (f"Rejected SQL: {sql.strip()}\n" if sql else "")
        + "\n```json\n"
        + json.dumps(payload, sort_keys=True, default=str)
        + "\n```"
    )
    return memory_create(
        organization=execution.organization,
        type=MemoryType.ANTI_PATTERN,
        content=content,
        tags=["anti-pattern", REJECTED_TAG, fingerprint],
        source_execution=execution,
        relevance_score=0.9,
    )


def rejected_designs(*, organization, service, requirement: str) -> dict[str, str]:
    """{fingerprint: reason} of the designs rejected on this Service for this or a similar requirement."""
    if service is None or not (requirement or "").strip():
        return {}
    found: dict[str, str] = {}
    for memory in AgentMemory.objects.filter(
        service=service, type=MemoryType.ANTI_PATTERN, tags__contains=[REJECTED_TAG], is_active=True
    ).defer("embedding"):
        payload = _fenced_json(memory.content).get("rejected") or {}
        if _normal(payload.get("requirement")) == _normal(requirement):
            found[str(payload.get("fingerprint"))] = str(payload.get("reason") or "")
    if not found or len(found) < 50:
        try:
            retrieved = memory_retrieve(
                organization=organization, text=requirement, types=[MemoryType.ANTI_PATTERN], k=20, service=service
            )
        except LearningInputError:
            retrieved = []
        for r in retrieved:
            if REJECTED_TAG not in (r.memory.tags or []) or r.similarity < REJECTED_SIMILARITY:
                continue
            payload = _fenced_json(r.memory.content).get("rejected") or {}
            if payload.get("fingerprint"):
                found.setdefault(str(payload["fingerprint"]), str(payload.get("reason") or ""))
    return found


def _normal(text) -> str:
    return " ".join(str(text or "").lower().split())


def _fenced_json(content: str) -> dict:
    match = re.search(r"```json\s*(\{.*\})\s*```", content or "", re.S)
    if not match:
        return {}
    try:
        value = json.loads(match.group(1))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
