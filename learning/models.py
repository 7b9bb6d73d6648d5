"""Agent memories (the spec's AgentMemory) with pgvector embeddings, and improvement reports."""

from __future__ import annotations

import uuid

from django.contrib.postgres.fields import ArrayField
from django.db import models
from pgvector.django import HnswIndex, VectorField

EMBEDDING_DIMENSIONS = 384


class MemoryType(models.TextChoices):
    SUCCESS_PATTERN = "SUCCESS_PATTERN", "Success pattern"
    ANTI_PATTERN = "ANTI_PATTERN", "Anti-pattern"
    BUSINESS_RULE = "BUSINESS_RULE", "Business rule"
    OPTIMIZATION = "OPTIMIZATION", "Optimization"
    CODE_SNIPPET = "CODE_SNIPPET", "Code snippet"
    API_PATTERN = "API_PATTERN", "API pattern"


class AgentMemoryQuerySet(models.QuerySet):
    def for_organization(self, organization):
        return self.filter(organization=organization)

    def active(self):
        return self.filter(is_active=True)

    def produced_or_used_by(self, executions):
        """Memories an execution (or any of the given executions) produced or retrieved."""
        return self.filter(
            models.Q(source_execution__in=executions) | models.Q(uses__execution__in=executions)
        ).distinct()


class AgentMemory(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=20, choices=MemoryType.choices)
    content = models.TextField()
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True)
    tags = ArrayField(models.CharField(max_length=100), default=list, blank=True)
    relevance_score = models.FloatField(default=0.5)
    usage_count = models.PositiveIntegerField(default=0)
    last_used = models.DateTimeField(null=True, blank=True)
    source_execution = models.ForeignKey(
        "agents.AgentExecution", on_delete=models.SET_NULL, null=True, blank=True, related_name="memories_produced"
    )
    related_memories = models.ManyToManyField("self", blank=True, symmetrical=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    organization = models.ForeignKey("roles.Organization", on_delete=models.CASCADE, related_name="memories")
    # What the memory is about: the Service (database) and Role it came from. Memories of a
    # deleted Service go with it; a deleted Role leaves its memories to the organization's users.
    service = models.ForeignKey(
        "roles.Service", on_delete=models.CASCADE, null=True, blank=True, related_name="memories"
    )
    role = models.ForeignKey("roles.Role", on_delete=models.SET_NULL, null=True, blank=True, related_name="memories")
    # Retired memories stay for the record but are no longer retrieved.
    is_active = models.BooleanField(default=True)
    embedder = models.CharField(max_length=100, blank=True, default="")
    # What continuous improvement did to this memory (see learning/improvement.py).
    retired_at = models.DateTimeField(null=True, blank=True)
    retired_reason = models.TextField(blank=True, default="")
    merged_into = models.ForeignKey(
        "self", on_delete=models.SET_NULL, null=True, blank=True, related_name="merged_from"
    )
    last_decayed_at = models.DateTimeField(null=True, blank=True)
    successes_at_promotion = models.PositiveIntegerField(
        default=0, help_text="Successful executions counted when relevance was last promoted"
    )

    objects = AgentMemoryQuerySet.as_manager()

    class Meta:
        verbose_name_plural = "agent memories"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization"], name="memory_org_idx"),
            models.Index(fields=["type"], name="memory_type_idx"),
            models.Index(fields=["relevance_score"], name="memory_relevance_idx"),
            models.Index(fields=["organization", "is_active", "type"], name="memory_org_active_type_idx"),
            HnswIndex(
                name="memory_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(type__in=[t.value for t in MemoryType]), name="memory_type_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(relevance_score__gte=0.0) & models.Q(relevance_score__lte=1.0),
                name="memory_relevance_in_unit_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_type_display()}: {self.content[:60]}"


class MemoryUse(models.Model):
    """A memory retrieved for, or produced by, an execution: how each memory was used."""

    class Kind(models.TextChoices):
        RETRIEVED = "retrieved", "Retrieved"
        PRODUCED = "produced", "Produced"

    memory = models.ForeignKey(AgentMemory, on_delete=models.CASCADE, related_name="uses")
    execution = models.ForeignKey("agents.AgentExecution", on_delete=models.CASCADE, related_name="memory_uses")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    agent = models.CharField(max_length=20, blank=True, default="")
    similarity = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["memory", "execution", "kind", "agent"], name="memory_use_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} by {self.agent or 'execution'}"


class ImprovementReport(models.Model):
    """What one continuous-improvement run changed, and why."""

    organization = models.ForeignKey(
        "roles.Organization", on_delete=models.CASCADE, null=True, blank=True, related_name="improvement_reports"
    )
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    merged = models.PositiveIntegerField(default=0)
    decayed = models.PositiveIntegerField(default=0)
    promoted = models.PositiveIntegerField(default=0)
    retired = models.PositiveIntegerField(default=0)
    changes = models.JSONField(default=list, blank=True, help_text="One entry per change: action, memory, reason")

    class Meta:
        ordering = ["-started_at"]

    def __str__(self) -> str:
        return f"Improvement run {self.started_at:%Y-%m-%d %H:%M}"


class GlossaryTerm(AgentMemory):
    """A business term of a Service's glossary (a BUSINESS_RULE memory tagged "glossary"; learning.glossary)."""

    class Meta:
        proxy = True
        verbose_name = "glossary term"
