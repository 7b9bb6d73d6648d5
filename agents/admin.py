"""Admin of agent executions: the thought process, tools and events as a readable timeline; child runs inline."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from agents.events import event_serialize
from agents.models import AgentExecution, ExecutionEvent, LLMUsage, ModelCapability
from agents.providers import LLMError
from agents.providers.capabilities import CapabilityKey
from agents.providers.registry import capability_probe_again
from nectar.admin_display import ADMIN_CSS, key_value_table, milliseconds, test_results_table
from roles.admin_scoping import OrganizationScopedAdmin

TIMELINE_LIMIT = 2000


def _json_block(value) -> str:
    if value in (None, "", [], {}):
        return "—"
    return format_html('<pre class="code small">{}</pre>', json.dumps(value, indent=2, default=str, ensure_ascii=False))


class RunKindFilter(admin.SimpleListFilter):
    title = "run"
    parameter_name = "run"

    def lookups(self, request, model_admin):
        return [("orchestration", "Orchestrations (requirements)"), ("agent", "Agent runs (children)")]

    def queryset(self, request, queryset):
        if self.value() == "orchestration":
            return queryset.filter(parent__isnull=True)
        if self.value() == "agent":
            return queryset.filter(parent__isnull=False)
        return queryset


class ChildRunInline(admin.TabularInline):
    model = AgentExecution
    fk_name = "parent"
    extra = 0
    can_delete = False
    verbose_name = "agent run"
    verbose_name_plural = "Agent runs of this orchestration"
    fields = ("agent_link", "current_phase", "status", "steps", "tools", "status_reason", "completed_at")
    readonly_fields = fields
    ordering = ("created_at",)
    show_change_link = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        # The page around it was already scoped to the user's organizations.
        return request.user.is_active and request.user.is_staff

    @admin.display(description="Agent")
    def agent_link(self, obj):
        url = reverse("admin:agents_agentexecution_change", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, obj.get_agent_type_display())

    @admin.display(description="Thoughts")
    def steps(self, obj):
        return len(obj.thought_process or [])

    @admin.display(description="Tool calls")
    def tools(self, obj):
        return len(obj.tools_invoked or [])


@admin.register(AgentExecution)
class AgentExecutionAdmin(OrganizationScopedAdmin):
    list_display = (
        "short_requirement",
        "agent_type",
        "status",
        "current_phase",
        "role",
        "organization",
        "user",
        "rating",
        "created_at",
    )
    list_filter = (RunKindFilter, "status", "agent_type", "current_phase", "success", "rating", "created_at")
    search_fields = ("business_requirement", "status_reason")
    date_hierarchy = "created_at"
    list_select_related = ("role", "organization", "user")
    inlines = [ChildRunInline]
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "business_requirement",
                    "agent_type",
                    "status",
                    "status_reason",
                    "current_phase",
                    "parent_link",
                    "organization",
                    "user",
                    "role",
                    "page_link",
                )
            },
        ),
        ("Outcome", {"fields": ("success", "rating", "feedback", "endpoints_display", "metrics_display")}),
        ("Thought process", {"fields": ("thoughts_display",)}),
        ("Tools invoked", {"fields": ("tools_display", "mcp_servers_used", "discoveries_display")}),
        ("Event timeline", {"fields": ("timeline",), "classes": ("collapse",)}),
        (
            "Generated",
            {"fields": ("generated_code_display", "tests_display", "documentation"), "classes": ("collapse",)},
        ),
        (
            "Run",
            {
                "fields": (
                    "created_at",
                    "started_at",
                    "heartbeat_at",
                    "completed_at",
                    "attempts",
                    "pause_requested",
                    "cancel_requested",
                    "event_seq",
                    "result_display",
                ),
                "classes": ("collapse",),
            },
        ),
    )
    # Everything on the page is a record of the run; only the requester's feedback may be edited.
    readonly_fields = tuple(name for _, options in fieldsets for name in options["fields"] if name != "feedback")

    class Media:
        css = {"all": ["web/nectar.css", ADMIN_CSS]}

    def has_add_permission(self, request):
        return False

    @admin.display(description="Requirement", ordering="business_requirement")
    def short_requirement(self, obj):
        return obj.business_requirement[:80]

    @admin.display(description="Orchestration")
    def parent_link(self, obj):
        if not obj.parent_id:
            return "—"
        url = reverse("admin:agents_agentexecution_change", args=[obj.parent_id])
        return format_html('<a href="{}">{}</a>', url, obj.parent.business_requirement[:80])

    @admin.display(description="Live page")
    def page_link(self, obj):
        target = obj.parent_id or obj.pk
        return format_html('<a href="{}">Open the execution page</a>', reverse("execution-detail", args=[target]))

    @admin.display(description="Endpoints produced")
    def endpoints_display(self, obj):
        endpoints = list(obj.endpoints.all())
        if not endpoints:
            return "—"
        return format_html_join(
            mark_safe("<br>"),
            '<a href="{}">{} {} v{}</a> ({})',
            (
                (
                    reverse("admin:endpoints_generatedendpoint_change", args=[e.pk]),
                    e.method,
                    e.slug,
                    e.version,
                    e.status,
                )
                for e in endpoints
            ),
        )

    @admin.display(description="Performance")
    def metrics_display(self, obj):
        return key_value_table(obj.performance_metrics or {})

    @admin.display(description="Thoughts")
    def thoughts_display(self, obj):
        thoughts = obj.thought_process or []
        if not thoughts:
            return "—"
        items = format_html_join(
            "",
            '<div class="event kind-thought"><div class="event-meta"><span>step {}</span>'
            '<span class="step step-{}">{}</span><time>{}</time></div><div class="event-body"><p>{}</p></div></div>',
            (
                (
                    t.get("iteration", ""),
                    t.get("step", ""),
                    t.get("step", ""),
                    str(t.get("at", ""))[11:19],
                    t.get("text", ""),
                )
                for t in thoughts
            ),
        )
        return format_html('<div class="timeline">{}</div>', items)

    @admin.display(description="Tool calls")
    def tools_display(self, obj):
        tools = obj.tools_invoked or []
        if not tools:
            return "—"
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    t.get("tool", ""),
                    json.dumps(t.get("arguments", {}), default=str)[:300],
                    "✓" if t.get("ok") else "✗",
                    "" if t.get("rows") is None else t.get("rows"),
                    "" if t.get("duration_ms") is None else milliseconds(t["duration_ms"]),
                    t.get("error") or "",
                )
                for t in tools
            ),
        )
        return format_html(
            '<table class="table compact"><thead><tr><th>Tool</th><th>Arguments</th><th>OK</th><th>Rows</th>'
            "<th>Duration</th><th>Error</th></tr></thead><tbody>{}</tbody></table>",
            rows,
        )

    @admin.display(description="Discoveries")
    def discoveries_display(self, obj):
        value = obj.discoveries
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return format_html_join(" ", "<code>{}</code>", ((v,) for v in value)) if value else "—"
        if isinstance(value, dict):
            return key_value_table(value)
        return _json_block(value)

    @admin.display(description="Events")
    def timeline(self, obj):
        events = ExecutionEvent.objects.filter(execution=obj).order_by("seq")[:TIMELINE_LIMIT]
        html = "".join(
            render_to_string("agents/_event.html", {"event": event_serialize(e), "oob": False}) for e in events
        )
        if not html:
            return "—"
        return mark_safe(f'<div class="timeline" style="max-height:40rem">{html}</div>')  # noqa: S308 - rendered by templates

    @admin.display(description="Generated SQL")
    def generated_code_display(self, obj):
        return format_html('<pre class="code">{}</pre>', obj.generated_code) if obj.generated_code else "—"

    @admin.display(description="Test results")
    def tests_display(self, obj):
        return test_results_table(obj.test_results)

    @admin.display(description="Result (raw)")
    def result_display(self, obj):
        return _json_block(obj.result)


@admin.register(ModelCapability)
class ModelCapabilityAdmin(admin.ModelAdmin):
    """What each configured model can do. Platform-wide (base URLs of every organization), so superusers only."""

    list_display = (
        "model",
        "provider_kind",
        "base_url",
        "server",
        "tool_calling",
        "json_schema",
        "json_object",
        "context_length",
        "probed_at",
    )
    list_filter = ("provider_kind", "server", "tool_calling", "json_schema", "json_object")
    search_fields = ("model", "base_url")
    fields = (
        "provider_kind",
        "base_url",
        "model",
        "server",
        "tool_calling",
        "json_schema",
        "json_object",
        "context_length",
        "tokenizer_url",
        "failures_display",
        "probed_at",
        "probe_tokens",
    )
    # An operator may correct what a probe found (say, a context window the server does not publish).
    readonly_fields = ("provider_kind", "base_url", "model", "server", "failures_display", "probed_at", "probe_tokens")
    actions = ["probe_again"]

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_change_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request):
        return False  # rows come from probes

    @admin.display(description="What the server said")
    def failures_display(self, obj):
        return _json_block(obj.failures)

    @admin.action(description="Probe the selected models again now")
    def probe_again(self, request, queryset):
        for row in queryset:
            key = CapabilityKey(kind=row.provider_kind, base_url=row.base_url, model=row.model)
            try:
                found = capability_probe_again(key=key)
            except LLMError as error:
                self.message_user(request, f"{row}: {error}", messages.ERROR)
                continue
            supported = [name for name in ("tool_calling", "json_schema", "json_object") if getattr(found, name)]
            self.message_user(
                request,
                f"{row}: probed; supports {', '.join(supported) or 'only the plain-text JSON protocol'}; "
                f"context window {found.context_length or 'unknown'}",
                messages.SUCCESS,
            )


@admin.register(LLMUsage)
class LLMUsageAdmin(OrganizationScopedAdmin):
    """Each organization's LLM tokens and cost per day and model: what its daily caps count."""

    list_display = ("day", "organization", "model", "provider_kind", "calls", "tokens", "cost_usd", "unpriced_tokens")
    list_filter = ("day", "provider_kind", "model")
    date_hierarchy = "day"
    list_select_related = ("organization",)
    readonly_fields = (
        "organization",
        "day",
        "provider_kind",
        "model",
        "calls",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "unpriced_tokens",
        "updated_at",
    )
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting today's row would lift the organization's cap: only an operator may.
        return request.user.is_active and request.user.is_superuser

    @admin.display(description="Tokens")
    def tokens(self, obj):
        return f"{obj.input_tokens + obj.output_tokens:,}"
