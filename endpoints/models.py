"""Generated endpoints: the live, versioned REST APIs that the agent pipeline produces for a Role."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import F, Max, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce

endpoint_slug_validator = RegexValidator(
    r"^[a-z0-9]+(?:-[a-z0-9]+)*$",
    "Use kebab-case: lowercase letters and digits separated by single hyphens (e.g. top-customers).",
)


class EndpointStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    APPROVED = "approved", "Approved"
    DEPLOYED = "deployed", "Deployed"
    RETIRED = "retired", "Retired"


class HttpMethod(models.TextChoices):
    GET = "GET", "GET"
    POST = "POST", "POST"
    PUT = "PUT", "PUT"
    PATCH = "PATCH", "PATCH"
    DELETE = "DELETE", "DELETE"


class ReviewDecision(models.TextChoices):
    NONE = "", "Not reviewed"
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class GeneratedEndpointQuerySet(models.QuerySet):
    def for_organization(self, organization):
        return self.filter(organization=organization)

    def live(self):
        """Deployed versions: every one of them answers at its versioned path."""
        return self.filter(status=EndpointStatus.DEPLOYED)

    def current(self):
        """Per (organization, slug), the deployed version with the highest number."""
        highest = (
            GeneratedEndpoint.objects.live()
            .filter(organization_id=OuterRef("organization_id"), slug=OuterRef("slug"))
            .order_by()
            .values("organization_id", "slug")
            .annotate(top=Max("version"))
            .values("top")
        )
        return self.live().filter(version=Subquery(highest))


class GeneratedEndpoint(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    organization = models.ForeignKey("roles.Organization", on_delete=models.CASCADE, related_name="endpoints")
    role = models.ForeignKey("roles.Role", on_delete=models.CASCADE, related_name="endpoints")
    source_execution = models.ForeignKey(
        "agents.AgentExecution", on_delete=models.SET_NULL, null=True, blank=True, related_name="endpoints"
    )
    method = models.CharField(max_length=6, choices=HttpMethod.choices, default=HttpMethod.GET)
    slug = models.CharField(max_length=64, validators=[endpoint_slug_validator])
    version = models.PositiveIntegerField(default=1)
    description = models.TextField(blank=True, default="")
    # JSON schema of the query (GET) or body (writes) parameters: {"type": "object", "properties", "required"}.
    parameters = models.JSONField(default=dict, blank=True)
    # Read endpoints: one SELECT with named binds (:name). Write endpoints: write_action instead.
    sql = models.TextField(blank=True, default="")
    write_action = models.JSONField(null=True, blank=True)
    # The SQL as the checker accepted it at deploy (and its paged form), with the grants it was
    # checked under: calls run it without parsing while those grants hold (endpoints.runtime).
    checked_sql = models.JSONField(null=True, blank=True, editable=False)
    response_schema = models.JSONField(default=dict, blank=True, help_text="JSON schema of one row")
    status = models.CharField(max_length=10, choices=EndpointStatus.choices, default=EndpointStatus.DRAFT)
    tests = models.JSONField(default=list, blank=True)
    test_results = models.JSONField(null=True, blank=True)
    validation_errors = models.JSONField(null=True, blank=True, help_text="Errors of the last validation")
    docs = models.TextField(blank=True, default="")
    interpretation = models.JSONField(
        null=True, blank=True, help_text="What the endpoint means, element by element (endpoints.interpretation)"
    )
    verification = models.JSONField(
        null=True,
        blank=True,
        help_text="The platform's checks of the design against its requirement and their verdict",
    )
    review_decision = models.CharField(max_length=10, choices=ReviewDecision.choices, blank=True, default="")
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(null=True, blank=True)
    review_comment = models.TextField(blank=True, default="")
    deployed_at = models.DateTimeField(null=True, blank=True)
    deployed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Who made this version live (empty: deployed automatically by the organization's policy)",
    )
    retired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    call_count = models.PositiveBigIntegerField(default=0)
    avg_latency_ms = models.FloatField(null=True, blank=True)

    objects = GeneratedEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["organization", "slug", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug", "version"], name="endpoint_unique_slug_version"),
            models.CheckConstraint(
                condition=models.Q(status__in=[s.value for s in EndpointStatus]), name="endpoint_status_valid"
            ),
            models.CheckConstraint(
                condition=models.Q(method__in=[m.value for m in HttpMethod]), name="endpoint_method_valid"
            ),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="endpoint_version_positive"),
        ]
        indexes = [models.Index(fields=["organization", "slug", "status"], name="endpoint_org_slug_status_idx")]

    def __str__(self) -> str:
        return f"{self.method} {self.slug} v{self.version} ({self.status})"

    @property
    def is_read_only(self) -> bool:
        return self.method == HttpMethod.GET and not self.write_action

    @property
    def tool_name(self) -> str:
        return f"endpoint:{self.slug}@v{self.version}"

    @property
    def path(self) -> str:
        return f"/api/v1/x/{self.organization.slug}/{self.slug}"

    @property
    def versioned_path(self) -> str:
        return f"{self.path}/v{self.version}"

    @property
    def verdict(self) -> str:
        """verified | needs_review | failed | unverified (no interpretation was checked)."""
        return (self.verification or {}).get("verdict") or "unverified"

    @property
    def tests_passed(self) -> bool:
        results = self.test_results or {}
        cases = results.get("cases") or []
        return bool(cases) and all(case.get("passed") for case in cases)

    def record_call(self, duration_ms: float) -> None:
        """Fold one call into the counters in a single UPDATE, so concurrent calls lose nothing."""
        type(self).objects.filter(pk=self.pk).update(
            avg_latency_ms=(Coalesce(F("avg_latency_ms"), Value(0.0)) * F("call_count") + Value(float(duration_ms)))
            / (F("call_count") + Value(1.0)),
            call_count=F("call_count") + 1,
        )


class EndpointAlias(models.Model):
    """An older address of a Role's endpoint: calls with that Role's keys are answered by the endpoint's slug now.

    Made when endpoints of several Roles shared one slug: the Role of the first version kept it, the
    others moved to a slug of their own and keep answering at the old address for their own keys.
    """

    organization = models.ForeignKey("roles.Organization", on_delete=models.CASCADE, related_name="endpoint_aliases")
    slug = models.CharField(max_length=64)
    role = models.ForeignKey("roles.Role", on_delete=models.CASCADE, related_name="endpoint_aliases")
    target_slug = models.CharField(max_length=64, validators=[endpoint_slug_validator])
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug", "role"], name="endpoint_alias_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.slug} -> {self.target_slug} ({self.role_id})"
