"""Continuous improvement: the daily pass that keeps an organization's memories useful.

One run, per organization:

* merge near-duplicates: active memories of the same type and embedder whose cosine similarity
  exceeds 0.95. The stronger (higher relevance, then more uses, then older) is kept; it gains
  the other's uses (usage_count summed, MemoryUse rows moved), tags and links; the other is
  retired with the reason and `merged_into`;
* decay unused memories: not used (or, if never used, not created) for 30 days -> relevance x 0.9,
  at most once per 30 days. Business rules entered by admins do not decay;
* promote patterns that keep succeeding: a SUCCESS_PATTERN retrieved by at least 3 successful
  executions (other than the one that produced it) gains +0.1 relevance, and again after each
  further 3 successes;
* retire anti-patterns that no longer apply: an ANTI_PATTERN whose objects were since used by
  at least 2 successful executions (SUCCESS_PATTERN memories created later carrying all its
  object tags), or whose objects are no longer granted to the Role of the execution it came from.

Each run writes an ImprovementReport with counts and one entry per change:
{"action", "memory", "organization", "summary", "reason"}.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import datetime, timedelta

import numpy as np
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from learning.extraction import dedupe
from learning.models import AgentMemory, ImprovementReport, MemoryType, MemoryUse
from roles.models import Organization

logger = logging.getLogger(__name__)

MERGE_SIMILARITY = 0.95
DECAY_AFTER = timedelta(days=30)
DECAY_FACTOR = 0.9
PROMOTE_EVERY_SUCCESSES = 3
PROMOTE_STEP = 0.1
RETIRE_AFTER_SUCCESSES = 2
_BLOCK = 1024


def _change(action: str, memory: AgentMemory, reason: str) -> dict:
    return {
        "action": action,
        "memory": str(memory.pk),
        "organization": str(memory.organization_id),
        "type": memory.type,
        "summary": memory.content[:120],
        "reason": reason,
    }


def improvement_run(*, organization=None, now: datetime | None = None) -> ImprovementReport:
    """Run every improvement step for one organization (or all) and record what changed."""

    now = now or timezone.now()
    report = ImprovementReport.objects.create(organization=organization)
    organizations = [organization] if organization is not None else list(Organization.objects.all())
    changes: list[dict] = []
    for org in organizations:
        changes += merge_duplicates(organization=org, now=now)
        changes += decay_unused(organization=org, now=now)
        changes += promote_successes(organization=org)
        changes += retire_anti_patterns(organization=org, now=now)
    counts = defaultdict(int)
    for change in changes:
        counts[change["action"]] += 1
    report.merged = counts["merged"]
    report.decayed = counts["decayed"]
    report.promoted = counts["promoted"]
    report.retired = counts["retired"]
    report.changes = changes
    report.finished_at = timezone.now()
    report.save()
    logger.info(
        "improvement run %s: merged %d, decayed %d, promoted %d, retired %d",
        report.pk,
        report.merged,
        report.decayed,
        report.promoted,
        report.retired,
    )
    return report


# --- merge -----------------------------------------------------------------------------------


def _duplicate_pairs(vectors: np.ndarray) -> list[tuple[int, int, float]]:
    """Index pairs (i < j) whose cosine similarity exceeds MERGE_SIMILARITY, computed block by block."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    unit = vectors / norms
    pairs = []
    for start in range(0, len(unit), _BLOCK):
        block = unit[start : start + _BLOCK] @ unit.T
        rows, cols = np.nonzero(block > MERGE_SIMILARITY)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            i = start + r
            if i < c:
                pairs.append((i, c, float(block[r, c])))
    return pairs


def merge_duplicates(*, organization, now: datetime) -> list[dict]:
    changes = []
    groups = (
        AgentMemory.objects.active()
        .filter(organization=organization, embedding__isnull=False)
        .values_list("type", "embedder")
        .distinct()
    )
    for memory_type, embedder in list(groups):
        rows = list(
            AgentMemory.objects.active()
            .filter(organization=organization, type=memory_type, embedder=embedder, embedding__isnull=False)
            .order_by("-relevance_score", "-usage_count", "created_at", "id")
            .values_list("id", "embedding")
        )
        if len(rows) < 2:
            continue
        ids = [row[0] for row in rows]
        # Rows are sorted strongest first, so in every pair (i < j) i is the one to keep.
        retired: set[int] = set()
        for i, j, similarity in sorted(_duplicate_pairs(np.array([row[1] for row in rows], dtype=np.float32))):
            if i in retired or j in retired:
                continue
            change = _merge(keep_id=ids[i], other_id=ids[j], similarity=similarity, now=now)
            if change:
                retired.add(j)
                changes.append(change)
    return changes


def _merge(*, keep_id, other_id, similarity: float, now: datetime) -> dict | None:
    with transaction.atomic():
        pair = {m.pk: m for m in AgentMemory.objects.select_for_update().filter(pk__in=[keep_id, other_id])}
        keep, other = pair.get(keep_id), pair.get(other_id)
        if keep is None or other is None or not keep.is_active or not other.is_active:
            return None
        keep.usage_count += other.usage_count
        keep.tags = dedupe([*keep.tags, *other.tags])
        keep.relevance_score = max(keep.relevance_score, other.relevance_score)
        if other.last_used and (keep.last_used is None or other.last_used > keep.last_used):
            keep.last_used = other.last_used
        keep.save(update_fields=["usage_count", "tags", "relevance_score", "last_used", "updated_at"])
        links = [m for m in other.related_memories.all() if m.pk != keep.pk]
        if links:
            keep.related_memories.add(*links)
        for use in MemoryUse.objects.filter(memory=other):
            clash = MemoryUse.objects.filter(
                memory=keep, execution_id=use.execution_id, kind=use.kind, agent=use.agent
            ).exists()
            if not clash:
                use.memory = keep
                use.save(update_fields=["memory"])
        other.is_active = False
        other.retired_at = now
        other.merged_into = keep
        other.retired_reason = f"Merged into {keep.pk}: cosine similarity {similarity:.3f} > {MERGE_SIMILARITY}"
        other.save(update_fields=["is_active", "retired_at", "merged_into", "retired_reason", "updated_at"])
    return _change("merged", other, other.retired_reason)


# --- decay -----------------------------------------------------------------------------------


def decay_unused(*, organization, now: datetime) -> list[dict]:
    cutoff = now - DECAY_AFTER
    candidates = (
        AgentMemory.objects.active()
        .filter(organization=organization)
        .exclude(type=MemoryType.BUSINESS_RULE)
        .annotate(last_activity=Coalesce("last_used", "created_at"))
        .filter(last_activity__lt=cutoff)
        .filter(Q(last_decayed_at__isnull=True) | Q(last_decayed_at__lt=cutoff))
    )
    changes = []
    with transaction.atomic():
        memories = list(candidates.select_for_update(of=("self",)))
        for memory in memories:
            new = round(memory.relevance_score * DECAY_FACTOR, 6)
            days = (now - memory.last_activity).days
            changes.append(
                _change(
                    "decayed", memory, f"Not used for {days} days: relevance {memory.relevance_score:.3f} -> {new:.3f}"
                )
            )
        AgentMemory.objects.filter(pk__in=[m.pk for m in memories]).update(
            relevance_score=F("relevance_score") * DECAY_FACTOR, last_decayed_at=now
        )
    return changes


# --- promote ---------------------------------------------------------------------------------


def promote_successes(*, organization) -> list[dict]:
    uses = (
        MemoryUse.objects.filter(
            memory__organization=organization,
            memory__type=MemoryType.SUCCESS_PATTERN,
            memory__is_active=True,
            kind=MemoryUse.Kind.RETRIEVED,
        )
        .filter(Q(execution__success=True) | Q(execution__parent__success=True))
        .values_list("memory_id", "execution_id", "execution__parent_id", "memory__source_execution_id")
    )
    successes: dict = defaultdict(set)
    for memory_id, execution_id, parent_id, source_id in uses:
        root = parent_id or execution_id
        if root != source_id and execution_id != source_id:
            successes[memory_id].add(root)
    changes = []
    for memory_id, roots in successes.items():
        count = len(roots)
        if count < PROMOTE_EVERY_SUCCESSES:
            continue
        with transaction.atomic():
            memory = AgentMemory.objects.select_for_update().get(pk=memory_id)
            if count < memory.successes_at_promotion + PROMOTE_EVERY_SUCCESSES:
                continue
            old = memory.relevance_score
            memory.relevance_score = min(1.0, old + PROMOTE_STEP)
            memory.successes_at_promotion = count
            memory.save(update_fields=["relevance_score", "successes_at_promotion", "updated_at"])
        changes.append(
            _change(
                "promoted",
                memory,
                f"Used by {count} successful executions: relevance {old:.3f} -> {memory.relevance_score:.3f}",
            )
        )
    return changes


# --- retire ----------------------------------------------------------------------------------


def _granted_objects(role) -> set[str] | None:
    """Lower-cased "schema.name" and "name" of every object granted to a Role; None if unknown."""
    permissions = role.permissions if role is not None else None
    if not isinstance(permissions, list) or not permissions:
        return None
    names: set[str] = set()
    for permission in permissions:
        if not isinstance(permission, dict):
            continue
        name = next(
            (
                permission.get(key)
                for key in ("objectName", "object_name", "object", "name", "table")
                if isinstance(permission.get(key), str)
            ),
            None,
        )
        if not name:
            continue
        schema = permission.get("schema")
        names.add(name.lower())
        if isinstance(schema, str) and schema:
            names.add(f"{schema}.{name}".lower())
    return names or None


def _object_names(tags) -> list[str]:
    return [tag.removeprefix("object:") for tag in tags if tag.startswith("object:")]


def retire_anti_patterns(*, organization, now: datetime) -> list[dict]:
    changes = []
    anti_patterns = (
        AgentMemory.objects.active()
        .filter(organization=organization, type=MemoryType.ANTI_PATTERN)
        .select_related("source_execution__role")
    )
    for memory in anti_patterns:
        objects = _object_names(memory.tags)
        if not objects:
            continue
        reason = None
        later = (
            AgentMemory.objects.filter(
                organization=organization,
                type=MemoryType.SUCCESS_PATTERN,
                created_at__gt=memory.created_at,
                tags__contains=[f"object:{name}" for name in objects],
                source_execution__isnull=False,
            )
            .exclude(source_execution__success=False)
            .exclude(source_execution_id=memory.source_execution_id)
            .values_list("source_execution_id", flat=True)
            .distinct()
        )
        succeeded = len(set(later))
        if succeeded >= RETIRE_AFTER_SUCCESSES:
            reason = f"{succeeded} successful executions have since used {', '.join(objects)}"
        else:
            execution = memory.source_execution
            granted = _granted_objects(execution.role if execution else None)
            if granted is not None:
                missing = [name for name in objects if name not in granted and name.rsplit(".", 1)[-1] not in granted]
                if len(missing) == len(objects):
                    reason = f"{', '.join(missing)} no longer granted to role {execution.role.name}"
        if reason is None:
            continue
        memory.is_active = False
        memory.retired_at = now
        memory.retired_reason = reason
        memory.save(update_fields=["is_active", "retired_at", "retired_reason", "updated_at"])
        changes.append(_change("retired", memory, reason))
    return changes
