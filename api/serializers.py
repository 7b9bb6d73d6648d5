"""Request and response shapes of /api/v1/. Server-owned fields are read-only: no mass assignment."""

from __future__ import annotations

from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from agents.models import AgentExecution, Phase
from endpoints.models import GeneratedEndpoint, ReviewDecision
from learning.models import AgentMemory, MemoryType
from mcpservers.models import MCPServerInstance
from mcpservers.platform import tool_stats
from mcpservers.toolgen import tool_public
from roles.connectors.targets import TargetRefused, service_target_check
from roles.models import Role, RoleApiKey, Service
from roles.permissions import permissions_validate

# --- Authentication ----------------------------------------------------------------------------


def unique_name(serializer, value: str, *, model, noun: str) -> str:
    """A stripped, non-blank name not yet used by another object of `model` in the caller's organization."""
    value = value.strip()
    if not value:
        raise serializers.ValidationError(f"Give the {noun} a name.", code="blank")
    others = model.objects.filter(organization=serializer.context["organization"], name=value)
    if serializer.instance is not None:
        others = others.exclude(pk=serializer.instance.pk)
    if others.exists():
        raise serializers.ValidationError(f"Your organization already has a {noun} with this name.", code="unique")
    return value


class TokenRequestSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})
    name = serializers.CharField(
        max_length=200, required=False, allow_blank=True, help_text="A name for the new token (e.g. 'CI script')"
    )


class PersonalTokenSerializer(serializers.Serializer):
    """A personal token as listed: never its secret."""

    id = serializers.UUIDField(read_only=True)
    name = serializers.CharField(max_length=200)
    prefix = serializers.CharField(read_only=True, help_text="The token's public first part, to recognise it")
    created_at = serializers.DateTimeField(read_only=True)
    last_used_at = serializers.DateTimeField(read_only=True, allow_null=True)
    revoked_at = serializers.DateTimeField(read_only=True, allow_null=True)


class PersonalTokenCreatedSerializer(PersonalTokenSerializer):
    token = serializers.CharField(read_only=True, help_text="The secret: shown once, stored only as a hash")


class MembershipSummarySerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    role = serializers.ChoiceField(choices=["owner", "admin", "member"])


class TokenResponseSerializer(serializers.Serializer):
    token = serializers.CharField(
        help_text="Send as 'Authorization: Token <token>'. Shown once; your other tokens stay valid."
    )
    id = serializers.UUIDField(help_text="The token's id, to revoke it")
    name = serializers.CharField()
    username = serializers.CharField()
    organizations = MembershipSummarySerializer(many=True)


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.CharField(allow_blank=True)
    organization = MembershipSummarySerializer(help_text="The organization this request acts in")
    organizations = MembershipSummarySerializer(many=True)


# --- Services ----------------------------------------------------------------------------------


class ServiceSerializer(serializers.ModelSerializer):
    """A customer database. `password` and `url` are write-only: stored encrypted, never returned."""

    password = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=1024,
        trim_whitespace=False,
        style={"input_type": "password"},
        help_text="Write-only. Omit to keep the current one; send an empty string to clear it.",
    )
    url = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        max_length=2048,
        help_text="Write-only SQLAlchemy URL instead of host/port/database (may hold a password).",
    )
    options = serializers.DictField(required=False, help_text="Extra driver options (e.g. sslmode)")
    has_password = serializers.SerializerMethodField()
    has_url = serializers.SerializerMethodField()

    class Meta:
        model = Service
        fields = [
            "id",
            "name",
            "engine",
            "host",
            "port",
            "database",
            "username",
            "password",
            "url",
            "options",
            "has_password",
            "has_url",
            "schema_refreshed_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "schema_refreshed_at", "created_at", "updated_at"]

    def get_has_password(self, obj) -> bool:
        return bool(obj.password)

    def get_has_url(self, obj) -> bool:
        return bool(obj.url)

    def validate_name(self, value: str) -> str:
        return unique_name(self, value, model=Service, noun="service")

    def validate(self, attrs):
        engine = attrs.get("engine", getattr(self.instance, "engine", None))
        database = attrs.get("database", getattr(self.instance, "database", ""))
        url = attrs.get("url", getattr(self.instance, "url", ""))
        if not url and not database:
            raise serializers.ValidationError(
                {"database": "Give the database name (or the file path for SQLite), or a full url."}, code="required"
            )
        if engine != "sqlite" and not url and not attrs.get("host", getattr(self.instance, "host", "")):
            raise serializers.ValidationError({"host": "Give the database server's host name."}, code="required")
        try:
            service_target_check(
                engine=engine,
                host=attrs.get("host", getattr(self.instance, "host", "")),
                port=attrs.get("port", getattr(self.instance, "port", None)),
                database=database,
                username=attrs.get("username", getattr(self.instance, "username", "")),
                url=url,
                options=attrs.get("options", getattr(self.instance, "options", None)),
            )
        except TargetRefused as refused:
            raise serializers.ValidationError({refused.field: refused.message}, code="target_refused") from None
        return attrs


class ConnectionTestSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    reason = serializers.ChoiceField(
        choices=[
            "ok",
            "authentication_failed",
            "host_unreachable",
            "unknown_database",
            "timeout",
            "driver_missing",
            "target_refused",
            "error",
        ]
    )
    detail = serializers.CharField(allow_blank=True)
    latency_ms = serializers.FloatField()


class IntrospectedSchemaSerializer(serializers.Serializer):
    """The introspected schema (see the contract in roles/introspection.py)."""

    engine = serializers.CharField()
    default_schema = serializers.CharField(allow_null=True)
    objects = serializers.ListField(child=serializers.DictField(), help_text="Tables, views, procedures, functions")
    refreshed_at = serializers.DateTimeField(allow_null=True)


# --- Roles and keys ----------------------------------------------------------------------------


class McpInstanceSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = MCPServerInstance
        fields = ["id", "status", "status_reason", "server_url"]
        read_only_fields = fields


class RoleSerializer(serializers.ModelSerializer):
    service = serializers.PrimaryKeyRelatedField(queryset=Service.objects.none())
    permissions = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        max_length=1000,
        help_text='Grants: [{"objectName", "schema", "path": "/table/N"|"/view/N"|"/proc/N", "actions", '
        '"columns": {"allow"|"deny": [...]}, "rowFilter": {...}}], validated against the service schema.',
    )
    mcp_server = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = Role
        fields = [
            "id",
            "name",
            "description",
            "is_active",
            "service",
            "permissions",
            "mcp_enabled",
            "mcp_tools_generated",
            "mcp_server",
            "created_by",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["id", "mcp_enabled", "mcp_tools_generated", "created_at", "updated_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        organization = self.context.get("organization")
        if organization is not None:
            self.fields["service"].queryset = Service.objects.filter(organization=organization)

    @extend_schema_field(McpInstanceSummarySerializer(allow_null=True))
    def get_mcp_server(self, obj) -> dict | None:
        instance = MCPServerInstance.objects.filter(role=obj).first()
        return McpInstanceSummarySerializer(instance).data if instance is not None else None

    def validate_name(self, value: str) -> str:
        return unique_name(self, value, model=Role, noun="role")

    def validate(self, attrs):
        service = attrs.get("service", getattr(self.instance, "service", None))
        if "permissions" in attrs or "service" in attrs:
            permissions = attrs.get("permissions", getattr(self.instance, "permissions", []))
            problems = permissions_validate(service=service, permissions=permissions)
            if problems:
                detail: dict = {}
                for problem in problems:
                    if problem.get("index") is None:
                        detail.setdefault("non_field_errors", []).append(problem["message"])
                    else:
                        entry = detail.setdefault(str(problem["index"]), {})
                        entry.setdefault(problem.get("field") or "non_field_errors", []).append(problem["message"])
                raise serializers.ValidationError({"permissions": detail}, code="invalid_permission")
        return attrs


class McpToggleSerializer(serializers.Serializer):
    enabled = serializers.BooleanField(help_text="true: generate and serve the role's MCP server; false: retire it")


class McpToggleResponseSerializer(serializers.Serializer):
    mcp_enabled = serializers.BooleanField()
    mcp_server = McpInstanceSummarySerializer(allow_null=True)


class RoleApiKeySerializer(serializers.ModelSerializer):
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    is_usable = serializers.BooleanField(read_only=True)

    class Meta:
        model = RoleApiKey
        fields = [
            "id",
            "name",
            "prefix",
            "created_by",
            "created_at",
            "expires_at",
            "revoked_at",
            "last_used_at",
            "is_usable",
        ]
        read_only_fields = ["id", "prefix", "created_at", "revoked_at", "last_used_at"]

    def validate_name(self, value: str) -> str:
        if not value.strip():
            raise serializers.ValidationError("Name the key after the client that will use it.", code="blank")
        return value.strip()

    def validate_expires_at(self, value):
        if value is not None and value <= timezone.now():
            raise serializers.ValidationError("The expiry must be in the future.", code="past")
        return value


class RoleApiKeyCreatedSerializer(RoleApiKeySerializer):
    secret = serializers.CharField(read_only=True, help_text="The key itself: shown only in this answer.")

    class Meta(RoleApiKeySerializer.Meta):
        fields = [*RoleApiKeySerializer.Meta.fields, "secret"]


# --- MCP servers -------------------------------------------------------------------------------


class McpInstanceSerializer(serializers.ModelSerializer):
    role = serializers.PrimaryKeyRelatedField(read_only=True)
    role_name = serializers.CharField(source="role.name", read_only=True)
    tool_count = serializers.SerializerMethodField()
    avg_response_time_ms = serializers.FloatField(source="avg_response_time", read_only=True, allow_null=True)

    class Meta:
        model = MCPServerInstance
        fields = [
            "id",
            "role",
            "role_name",
            "server_url",
            "status",
            "status_reason",
            "tool_count",
            "request_count",
            "avg_response_time_ms",
            "last_health_check",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_tool_count(self, obj) -> int:
        return len(obj.tools or [])


class ToolStatsSerializer(serializers.Serializer):
    tool = serializers.CharField()
    count = serializers.IntegerField()
    error_rate = serializers.FloatField()
    p50_ms = serializers.FloatField(allow_null=True)
    p95_ms = serializers.FloatField(allow_null=True)
    avg_ms = serializers.FloatField(allow_null=True)


class McpInstanceDetailSerializer(McpInstanceSerializer):
    tools = serializers.SerializerMethodField()
    metrics = serializers.SerializerMethodField()

    class Meta(McpInstanceSerializer.Meta):
        fields = [*McpInstanceSerializer.Meta.fields, "tools", "metrics"]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_tools(self, obj) -> list:
        return [tool_public(tool) for tool in (obj.tools or []) if isinstance(tool, dict)]

    @extend_schema_field(ToolStatsSerializer(many=True))
    def get_metrics(self, obj) -> list:
        return tool_stats(organization=obj.role.organization, hours=24, instance_id=str(obj.pk))


# --- Executions --------------------------------------------------------------------------------


class ExecutionCreateSerializer(serializers.Serializer):
    requirement = serializers.CharField(
        max_length=4000, help_text="What the API should do, in plain English (e.g. 'EU customers by segment')"
    )
    role = serializers.PrimaryKeyRelatedField(
        queryset=Role.objects.none(), help_text="The MCP-enabled role the agents work through"
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        organization = self.context.get("organization")
        if organization is not None:
            self.fields["role"].queryset = Role.objects.filter(organization=organization)


class ExecutionUrlsSerializer(serializers.Serializer):
    self = serializers.URLField()
    events = serializers.URLField()
    websocket = serializers.CharField(help_text="ws:// or wss:// URL of the live event stream")


def execution_urls(request, execution) -> dict:
    from django.urls import reverse

    detail = request.build_absolute_uri(reverse("api:execution-detail", args=[execution.pk]))
    events = request.build_absolute_uri(reverse("api:execution-events", args=[execution.pk]))
    scheme = "wss" if request.is_secure() else "ws"
    return {
        "self": detail,
        "events": events,
        "websocket": f"{scheme}://{request.get_host()}/ws/executions/{execution.pk}/",
    }


class ExecutionSubmittedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    urls = ExecutionUrlsSerializer()


class EndpointSummarySerializer(serializers.ModelSerializer):
    class Meta:
        model = GeneratedEndpoint
        fields = ["id", "slug", "version", "method", "status"]
        read_only_fields = fields


class ExecutionSerializer(serializers.ModelSerializer):
    requirement = serializers.CharField(source="business_requirement", read_only=True)
    role = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    role_name = serializers.CharField(source="role.name", read_only=True, allow_null=True, default=None)
    user = serializers.SlugRelatedField(slug_field="username", read_only=True)
    last_seq = serializers.IntegerField(source="event_seq", read_only=True)
    current_phase = serializers.ChoiceField(choices=Phase.choices, allow_blank=True, read_only=True)
    urls = serializers.SerializerMethodField()

    class Meta:
        model = AgentExecution
        fields = [
            "id",
            "requirement",
            "status",
            "status_reason",
            "current_phase",
            "role",
            "role_name",
            "user",
            "success",
            "rating",
            "last_seq",
            "created_at",
            "started_at",
            "completed_at",
            "updated_at",
            "urls",
        ]
        read_only_fields = fields

    @extend_schema_field(ExecutionUrlsSerializer)
    def get_urls(self, obj) -> dict:
        return execution_urls(self.context["request"], obj)


class ChoiceSerializer(serializers.Serializer):
    id = serializers.CharField()
    label = serializers.CharField()
    mapping = serializers.DictField()


class QuestionSerializer(serializers.Serializer):
    id = serializers.CharField()
    phrase = serializers.CharField(help_text="the words of the requirement the question is about")
    text = serializers.CharField()
    kind = serializers.CharField()
    choices = ChoiceSerializer(many=True)
    allow_other = serializers.BooleanField(help_text='a free-text answer is accepted: {"other": "..."}')
    multiple = serializers.BooleanField(required=False, default=False, help_text="several choice ids may be given")


class AnswersSerializer(serializers.Serializer):
    answers = serializers.DictField(
        child=serializers.JSONField(),
        allow_empty=False,
        help_text='{question id: choice id, [choice ids] (multiple), or {"other": "your words"}}',
    )


class ExecutionDetailSerializer(ExecutionSerializer):
    questions = QuestionSerializer(many=True, read_only=True)
    answers = serializers.JSONField(read_only=True)
    result = serializers.JSONField(read_only=True)
    test_results = serializers.JSONField(read_only=True)
    performance_metrics = serializers.JSONField(read_only=True)
    discoveries = serializers.JSONField(read_only=True)
    improvements = serializers.JSONField(read_only=True)
    endpoints = EndpointSummarySerializer(many=True, read_only=True)

    class Meta(ExecutionSerializer.Meta):
        fields = [
            *ExecutionSerializer.Meta.fields,
            "feedback",
            "pause_requested",
            "cancel_requested",
            "questions",
            "answers",
            "result",
            "generated_code",
            "test_results",
            "documentation",
            "performance_metrics",
            "discoveries",
            "improvements",
            "endpoints",
        ]
        read_only_fields = fields


class EventSerializer(serializers.Serializer):
    seq = serializers.IntegerField()
    kind = serializers.CharField()
    phase = serializers.CharField(allow_blank=True)
    agent = serializers.CharField(allow_blank=True)
    payload = serializers.DictField()
    created_at = serializers.DateTimeField()


class EventsQuerySerializer(serializers.Serializer):
    after = serializers.IntegerField(required=False, default=0, min_value=0, max_value=2_000_000_000)
    limit = serializers.IntegerField(required=False, default=500, min_value=1, max_value=1000)


class EventsPageSerializer(serializers.Serializer):
    execution = serializers.UUIDField()
    status = serializers.CharField()
    finished = serializers.BooleanField(help_text="True once the execution is COMPLETED or FAILED")
    last_seq = serializers.IntegerField(help_text="Sequence number of the last event stored so far")
    next_after = serializers.IntegerField(help_text="Pass as ?after= to get the events that follow")
    events = EventSerializer(many=True)


class RatingSerializer(serializers.Serializer):
    up = serializers.BooleanField(help_text="true: thumbs up; false: thumbs down")
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class RatingResultSerializer(serializers.Serializer):
    rating = serializers.IntegerField()
    previous = serializers.IntegerField(allow_null=True)
    memories_adjusted = serializers.IntegerField()


# --- Generated endpoints -----------------------------------------------------------------------


class GeneratedEndpointSerializer(serializers.ModelSerializer):
    role = serializers.PrimaryKeyRelatedField(read_only=True)
    role_name = serializers.CharField(source="role.name", read_only=True)
    source_execution = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    reviewed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    deployed_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)
    path = serializers.CharField(read_only=True)
    versioned_path = serializers.CharField(read_only=True)
    is_read_only = serializers.BooleanField(read_only=True)
    tests_passed = serializers.BooleanField(read_only=True)
    review_decision = serializers.ChoiceField(choices=ReviewDecision.choices, allow_blank=True, read_only=True)

    class Meta:
        model = GeneratedEndpoint
        fields = [
            "id",
            "slug",
            "version",
            "method",
            "description",
            "status",
            "role",
            "role_name",
            "source_execution",
            "path",
            "versioned_path",
            "is_read_only",
            "tests_passed",
            "review_decision",
            "reviewed_by",
            "reviewed_at",
            "review_comment",
            "deployed_at",
            "deployed_by",
            "retired_at",
            "call_count",
            "avg_latency_ms",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class GeneratedEndpointDetailSerializer(GeneratedEndpointSerializer):
    parameters = serializers.JSONField(read_only=True)
    write_action = serializers.JSONField(read_only=True)
    response_schema = serializers.JSONField(read_only=True)
    tests = serializers.JSONField(read_only=True)
    test_results = serializers.JSONField(read_only=True)
    validation_errors = serializers.JSONField(read_only=True)

    class Meta(GeneratedEndpointSerializer.Meta):
        fields = [
            *GeneratedEndpointSerializer.Meta.fields,
            "parameters",
            "sql",
            "write_action",
            "response_schema",
            "tests",
            "test_results",
            "validation_errors",
            "docs",
        ]
        read_only_fields = fields


class ReviewSerializer(serializers.Serializer):
    comment = serializers.CharField(required=False, allow_blank=True, default="", max_length=5000)


class RejectSerializer(serializers.Serializer):
    comment = serializers.CharField(max_length=5000, help_text="Why the endpoint is rejected (required)")


class EndpointDocsSerializer(serializers.Serializer):
    markdown = serializers.CharField()


# --- Memories ----------------------------------------------------------------------------------


class MemorySerializer(serializers.ModelSerializer):
    source_execution = serializers.PrimaryKeyRelatedField(read_only=True, allow_null=True)
    tags = serializers.ListField(child=serializers.CharField(), read_only=True)
    similarity = serializers.SerializerMethodField()
    score = serializers.SerializerMethodField()

    class Meta:
        model = AgentMemory
        fields = [
            "id",
            "type",
            "content",
            "tags",
            "relevance_score",
            "usage_count",
            "last_used",
            "is_active",
            "source_execution",
            "created_at",
            "updated_at",
            "similarity",
            "score",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_similarity(self, obj) -> float | None:
        return getattr(obj, "search_similarity", None)

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_score(self, obj) -> float | None:
        return getattr(obj, "search_score", None)


class BusinessRuleCreateSerializer(serializers.Serializer):
    content = serializers.CharField(max_length=10_000, help_text="The rule, in plain English")
    tags = serializers.ListField(
        child=serializers.CharField(max_length=90), required=False, default=list, max_length=20
    )


MEMORY_TYPE_CHOICES = MemoryType.choices


# --- Metrics -----------------------------------------------------------------------------------


class MetricsQuerySerializer(serializers.Serializer):
    days = serializers.IntegerField(required=False, default=30, min_value=1, max_value=3650)


class ExecutionMetricsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    by_status = serializers.DictField(child=serializers.IntegerField())
    success_rate = serializers.FloatField(allow_null=True, help_text="Completed / finished, 0..1")
    mean_time_to_endpoint_seconds = serializers.FloatField(allow_null=True)


class CallMetricsSerializer(serializers.Serializer):
    total = serializers.IntegerField()
    errors = serializers.IntegerField()
    error_rate = serializers.FloatField(allow_null=True)
    p50_ms = serializers.FloatField(allow_null=True)
    p95_ms = serializers.FloatField(allow_null=True)


class MetricsSerializer(serializers.Serializer):
    organization = serializers.CharField()
    window_days = serializers.IntegerField()
    since = serializers.DateTimeField()
    executions = ExecutionMetricsSerializer()
    tool_calls = CallMetricsSerializer(help_text="MCP tool calls")
    endpoint_calls = CallMetricsSerializer(help_text="Calls of live generated endpoints")
    latency = CallMetricsSerializer(help_text="All calls together")
    endpoints = serializers.DictField(child=serializers.IntegerField(), help_text="Generated endpoints by status")
    mcp_servers = serializers.DictField(child=serializers.IntegerField(), help_text="MCP servers by status")
