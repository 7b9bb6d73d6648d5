"""Agent executions (the spec's AgentExecution) and their ordered event log."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class AgentStatus(models.TextChoices):
    PENDING = "PENDING", "Pending"
    RUNNING = "RUNNING", "Running"
    PAUSED = "PAUSED", "Paused"
    WAITING = "WAITING", "Waiting for your answer"
    COMPLETED = "COMPLETED", "Completed"
    FAILED = "FAILED", "Failed"
    LEARNING = "LEARNING", "Learning"


FINISHED_STATUSES = (AgentStatus.COMPLETED, AgentStatus.FAILED)


class AgentType(models.TextChoices):
    ORCHESTRATOR = "ORCHESTRATOR", "Orchestrator"
    EXPLORER = "EXPLORER", "Explorer"
    ARCHITECT = "ARCHITECT", "Architect"
    SECURITY = "SECURITY", "Security"
    IMPLEMENTER = "IMPLEMENTER", "Implementer"
    TESTER = "TESTER", "Tester"
    DOCUMENTER = "DOCUMENTER", "Documenter"


class Phase(models.TextChoices):
    EXPLORATION = "exploration", "Exploration"
    ARCHITECTURE = "architecture", "Architecture"
    SECURITY = "security", "Security review"
    IMPLEMENTATION = "implementation", "Implementation"
    TESTING = "testing", "Testing"
    DOCUMENTATION = "documentation", "Documentation"
    LEARNING = "learning", "Learning"


PHASE_ORDER = [p.value for p in Phase]


class AgentExecutionQuerySet(models.QuerySet):
    def for_organization(self, organization):
        return self.filter(organization=organization)

    def unfinished(self):
        return self.exclude(status__in=FINISHED_STATUSES)


class AgentExecution(models.Model):
    # --- the spec's fields ---
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    business_requirement = models.TextField()
    agent_type = models.CharField(max_length=20, choices=AgentType.choices, default=AgentType.ORCHESTRATOR)
    status = models.CharField(max_length=10, choices=AgentStatus.choices, default=AgentStatus.PENDING)
    mcp_servers_used = models.JSONField(default=list, blank=True)
    tools_invoked = models.JSONField(default=list, blank=True)
    thought_process = models.JSONField(default=list, blank=True)
    discoveries = models.JSONField(default=list, blank=True)
    generated_code = models.TextField(null=True, blank=True)
    test_results = models.JSONField(null=True, blank=True)
    documentation = models.TextField(null=True, blank=True)
    performance_metrics = models.JSONField(null=True, blank=True)
    success = models.BooleanField(null=True, blank=True)
    feedback = models.TextField(null=True, blank=True)
    improvements = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    organization = models.ForeignKey("roles.Organization", on_delete=models.CASCADE, related_name="executions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="executions")

    # --- what running it in the background needs ---
    role = models.ForeignKey("roles.Role", on_delete=models.SET_NULL, null=True, blank=True, related_name="executions")
    parent = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="children",
        help_text="The orchestration this agent run belongs to",
    )
    current_phase = models.CharField(max_length=20, choices=Phase.choices, blank=True, default="")
    status_reason = models.TextField(blank=True, default="")
    result = models.JSONField(null=True, blank=True, help_text="Design, SQL, tests and endpoint produced so far")
    rating = models.SmallIntegerField(null=True, blank=True, help_text="+1 or -1 from the requester")
    pause_requested = models.BooleanField(default=False)
    cancel_requested = models.BooleanField(default=False)
    attempts = models.PositiveSmallIntegerField(default=0)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    event_seq = models.PositiveIntegerField(default=0, editable=False, help_text="Sequence number of the last event")
    questions = models.JSONField(
        default=list, blank=True, help_text="What the run asks the requester before it can go on (WAITING)"
    )
    answers = models.JSONField(default=list, blank=True, help_text="Questions asked so far, with the answers given")
    updated_at = models.DateTimeField(auto_now=True)

    objects = AgentExecutionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization"], name="agent_exec_org_idx"),
            models.Index(fields=["status"], name="agent_exec_status_idx"),
            models.Index(fields=["agent_type"], name="agent_exec_type_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=[s.value for s in AgentStatus]), name="agent_exec_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(rating__isnull=True) | models.Q(rating__in=[-1, 1]), name="agent_exec_rating_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_agent_type_display()}: {self.business_requirement[:60]}"

    @property
    def is_finished(self) -> bool:
        return self.status in FINISHED_STATUSES

    def mark_failed(self, reason: str) -> None:
        self.status = AgentStatus.FAILED
        self.status_reason = reason
        self.success = False
        self.completed_at = timezone.now()
        self.save(update_fields=["status", "status_reason", "success", "completed_at", "updated_at"])


class ExecutionEvent(models.Model):
    """One step of an execution, in order. The source of truth for live views and replays."""

    id = models.BigAutoField(primary_key=True)
    execution = models.ForeignKey(AgentExecution, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    kind = models.CharField(max_length=20)  # phase, thought, tool_call, tool_result, status, message, ...
    phase = models.CharField(max_length=20, blank=True, default="")
    agent = models.CharField(max_length=20, blank=True, default="")
    payload = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["execution", "seq"]
        constraints = [models.UniqueConstraint(fields=["execution", "seq"], name="execution_event_unique_seq")]

    def __str__(self) -> str:
        return f"#{self.seq} {self.kind}"


class ModelCapability(models.Model):
    """What one configured model can do, probed once (lazily, on first use) and kept for every run.

    Keyed by provider kind, base URL and model name. None means "not known: try it"; False means the
    server said it is unsupported, and `failures` keeps what it said.
    """

    provider_kind = models.CharField(max_length=20)
    base_url = models.CharField(max_length=500)
    model = models.CharField(max_length=200)
    tool_calling = models.BooleanField(null=True, help_text="Calls tools natively (tools / tool_choice)")
    json_schema = models.BooleanField(null=True, help_text="Accepts response_format json_schema")
    json_object = models.BooleanField(null=True, help_text="Accepts response_format json_object")
    context_length = models.PositiveIntegerField(null=True, blank=True, help_text="Context window in tokens")
    tokenizer_url = models.CharField(max_length=500, blank=True, default="", help_text="Exact token counting")
    server = models.CharField(max_length=40, blank=True, default="", help_text="What answered the probe")
    failures = models.JSONField(default=dict, blank=True, help_text="What the server said for each unsupported feature")
    probed_at = models.DateTimeField(null=True, blank=True)
    probe_tokens = models.PositiveIntegerField(default=0, help_text="Tokens spent on probes")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider_kind", "model", "base_url"]
        constraints = [
            models.UniqueConstraint(fields=["provider_kind", "base_url", "model"], name="model_capability_unique_model")
        ]

    def __str__(self) -> str:
        return f"{self.provider_kind} {self.model} at {self.base_url}"


class LLMUsage(models.Model):
    """The LLM tokens and cost of one organization on one day with one model: what spending caps count."""

    organization = models.ForeignKey("roles.Organization", on_delete=models.CASCADE, related_name="llm_usage")
    day = models.DateField(help_text="In the platform's TIME_ZONE")
    provider_kind = models.CharField(max_length=20)
    model = models.CharField(max_length=200)
    calls = models.PositiveIntegerField(default=0)
    input_tokens = models.PositiveBigIntegerField(default=0)
    output_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=14, decimal_places=6, default=0)
    unpriced_tokens = models.PositiveBigIntegerField(
        default=0, help_text="Tokens of a model LLM_PRICES has no price for"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-day", "model"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "day", "provider_kind", "model"], name="llm_usage_unique_org_day_model"
            )
        ]
        verbose_name_plural = "LLM usage"

    def __str__(self) -> str:
        return f"{self.day} {self.model}: {self.input_tokens + self.output_tokens} tokens"
