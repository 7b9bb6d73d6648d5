"""MCP server instances generated from Roles, and the log of every tool call."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone


class MCPServerStatus(models.TextChoices):
    ACTIVE = "ACTIVE", "Active"
    INACTIVE = "INACTIVE", "Inactive"
    ERROR = "ERROR", "Error"
    GENERATING = "GENERATING", "Generating"


class MCPServerInstanceQuerySet(models.QuerySet):
    def active(self):
        return self.filter(status=MCPServerStatus.ACTIVE)

    def servable(self):
        """Instances that may answer MCP requests (ERROR ones still answer, with tool errors)."""
        return self.filter(status__in=[MCPServerStatus.ACTIVE, MCPServerStatus.ERROR])


class MCPServerInstance(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    role = models.OneToOneField("roles.Role", on_delete=models.CASCADE, related_name="mcp_instance")
    server_url = models.CharField(max_length=500)
    status = models.CharField(max_length=12, choices=MCPServerStatus.choices, default=MCPServerStatus.GENERATING)
    status_reason = models.TextField(blank=True, default="")
    tools = models.JSONField(default=list, blank=True)
    last_health_check = models.DateTimeField(null=True, blank=True)
    request_count = models.PositiveBigIntegerField(default=0)
    avg_response_time = models.FloatField(null=True, blank=True, help_text="Milliseconds")
    # Digest of the permissions and schema structure the tools were generated from.
    schema_fingerprint = models.CharField(max_length=64, blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = MCPServerInstanceQuerySet.as_manager()

    class Meta:
        verbose_name = "MCP server instance"
        indexes = [models.Index(fields=["status"], name="mcp_instance_status_idx")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=[s.value for s in MCPServerStatus]), name="mcp_instance_status_valid"
            )
        ]

    def __str__(self) -> str:
        return f"MCP server for {self.role} ({self.status})"

    def record_request(self, duration_ms: float) -> None:
        """Fold one request into the counters in a single UPDATE, so concurrent calls lose nothing."""
        type(self).objects.filter(pk=self.pk).update(
            avg_response_time=(Coalesce(F("avg_response_time"), Value(0.0)) * F("request_count") + Value(duration_ms))
            / (F("request_count") + Value(1.0)),
            request_count=F("request_count") + 1,
        )

    def set_status(self, status: str, reason: str = "") -> None:
        self.status = status
        self.status_reason = reason
        self.save(update_fields=["status", "status_reason", "updated_at"])

    def mark_health(self, *, healthy: bool, reason: str = "") -> None:
        self.last_health_check = timezone.now()
        fields = ["last_health_check", "updated_at"]
        if healthy and self.status == MCPServerStatus.ERROR:
            self.status, self.status_reason = MCPServerStatus.ACTIVE, ""
            fields += ["status", "status_reason"]
        elif not healthy and self.status == MCPServerStatus.ACTIVE:
            self.status, self.status_reason = MCPServerStatus.ERROR, reason
            fields += ["status", "status_reason"]
        self.save(update_fields=fields)


class CallOutcome(models.TextChoices):
    OK = "ok", "OK"
    ERROR = "error", "Error"
    DENIED = "denied", "Denied"


class ToolCall(models.Model):
    """One MCP tool call or generated-endpoint call, as recorded for audit and metrics."""

    id = models.BigAutoField(primary_key=True)
    organization = models.ForeignKey("roles.Organization", on_delete=models.CASCADE, related_name="+")
    instance = models.ForeignKey(
        MCPServerInstance, on_delete=models.SET_NULL, null=True, blank=True, related_name="calls"
    )
    api_key = models.ForeignKey("roles.RoleApiKey", on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    tool = models.CharField(max_length=200)
    arguments = models.JSONField(default=dict, blank=True)
    outcome = models.CharField(max_length=10, choices=CallOutcome.choices)
    error = models.TextField(blank=True, default="")
    rows = models.IntegerField(null=True, blank=True)
    duration_ms = models.FloatField()
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["organization", "-created_at"]),
            models.Index(fields=["instance", "-created_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.tool} ({self.outcome}, {self.duration_ms:.1f} ms)"


class AuditBatch(models.Model):
    """A batch of audit records already written, so that a journal replayed after a crash is applied once."""

    id = models.UUIDField(primary_key=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def __str__(self) -> str:
        return f"audit batch {self.id}"


class RateCounter(models.Model):
    """Calls counted in one window of one rate-limit bucket (see mcpservers.limits), shared by every replica."""

    bucket = models.CharField(max_length=200)
    window_index = models.BigIntegerField()
    count = models.BigIntegerField(default=0)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bucket", "window_index"], name="rate_counter_unique_window")]

    def __str__(self) -> str:
        return f"{self.bucket} #{self.window_index}: {self.count}"
