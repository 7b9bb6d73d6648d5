from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe

from endpoints.models import GeneratedEndpoint
from endpoints.services import (
    EndpointError,
    endpoint_approve,
    endpoint_deploy,
    endpoint_reject,
    endpoint_retire,
    endpoint_rollback,
)
from nectar.admin_display import (
    ADMIN_CSS,
    milliseconds,
    schema_properties_table,
    test_results_table,
)
from roles.admin_scoping import OrganizationScopedAdmin


def _each(modeladmin, request, queryset, verb: str, fn) -> None:
    done = 0
    for endpoint in queryset:
        try:
            fn(endpoint)
            done += 1
        except (EndpointError, PermissionDenied) as exc:
            modeladmin.message_user(request, f"{endpoint}: {exc}", messages.ERROR)
    if done:
        modeladmin.message_user(request, f"{verb} {done} endpoint(s).", messages.SUCCESS)


@admin.register(GeneratedEndpoint)
class GeneratedEndpointAdmin(OrganizationScopedAdmin):
    list_display = (
        "slug",
        "version",
        "method",
        "status",
        "review_decision",
        "organization",
        "role",
        "call_count",
        "average_latency",
        "tests_summary",
        "deployed_at",
    )
    list_filter = ("status", "method", "review_decision")
    search_fields = ("slug", "description", "organization__name")
    readonly_fields = (
        "id",
        "organization",
        "role",
        "source_execution",
        "slug",
        "version",
        "status",
        "test_results_display",
        "validation_errors_display",
        "parameters_display",
        "response_display",
        "review_decision",
        "reviewed_by",
        "reviewed_at",
        "deployed_at",
        "deployed_by",
        "retired_at",
        "call_count",
        "average_latency",
        "created_at",
        "updated_at",
        "links",
    )
    fields = (
        "id",
        "organization",
        "role",
        "source_execution",
        "method",
        "slug",
        "version",
        "status",
        "description",
        "parameters_display",
        "parameters",
        "sql",
        "write_action",
        "response_display",
        "response_schema",
        "tests",
        "test_results_display",
        "validation_errors_display",
        "docs",
        "review_decision",
        "reviewed_by",
        "reviewed_at",
        "review_comment",
        "deployed_at",
        "deployed_by",
        "retired_at",
        "call_count",
        "average_latency",
        "links",
        "created_at",
        "updated_at",
    )
    actions = ("approve", "reject", "deploy", "retire", "rollback")

    class Media:
        css = {"all": [ADMIN_CSS]}

    def has_add_permission(self, request):
        return False  # endpoints come from the agent pipeline (endpoint_create_draft)

    @admin.display(description="Average latency", ordering="avg_latency_ms")
    def average_latency(self, obj):
        return milliseconds(obj.avg_latency_ms)

    @admin.display(description="Test results")
    def test_results_display(self, obj):
        return test_results_table(obj.test_results) if obj.test_results else "not run"

    @admin.display(description="Validation errors")
    def validation_errors_display(self, obj):
        errors = obj.validation_errors or []
        if not errors:
            return "none"
        return format_html_join(mark_safe("<br>"), "• {}", ((e,) for e in errors))

    @admin.display(description="Parameters (readable)")
    def parameters_display(self, obj):
        return schema_properties_table(obj.parameters)

    @admin.display(description="Response row (readable)")
    def response_display(self, obj):
        return schema_properties_table(obj.response_schema)

    @admin.display(description="Tests")
    def tests_summary(self, obj):
        results = obj.test_results or {}
        if not results:
            return "not run"
        return f"{results.get('total', 0) - results.get('failed', 0)}/{results.get('total', 0)} passed"

    @admin.display(description="Links")
    def links(self, obj):
        if obj.pk is None:
            return ""
        return format_html(
            '<a href="{}">Docs</a> · <a href="{}">Export (zip)</a>',
            reverse("endpoints:docs", args=[obj.pk]),
            reverse("endpoints:export", args=[obj.pk]),
        )

    @admin.action(description="Approve selected drafts", permissions=["change"])
    def approve(self, request, queryset):
        _each(self, request, queryset, "Approved", lambda e: endpoint_approve(endpoint=e, user=request.user))

    @admin.action(description="Reject selected drafts", permissions=["change"])
    def reject(self, request, queryset):
        _each(
            self,
            request,
            queryset,
            "Rejected",
            lambda e: endpoint_reject(endpoint=e, user=request.user, comment="Rejected in the admin."),
        )

    @admin.action(description="Deploy selected approved endpoints", permissions=["change"])
    def deploy(self, request, queryset):
        _each(self, request, queryset, "Deployed", lambda e: endpoint_deploy(endpoint=e, user=request.user))

    @admin.action(description="Retire selected versions", permissions=["change"])
    def retire(self, request, queryset):
        _each(self, request, queryset, "Retired", lambda e: endpoint_retire(endpoint=e, user=request.user))

    @admin.action(
        description="Roll back: retire the current version, re-activate the previous one", permissions=["change"]
    )
    def rollback(self, request, queryset):
        slugs = {(e.organization, e.slug) for e in queryset.select_related("organization")}
        done = 0
        for organization, slug in slugs:
            try:
                endpoint_rollback(organization=organization, slug=slug, user=request.user)
                done += 1
            except (EndpointError, PermissionDenied) as exc:
                self.message_user(request, f"{slug}: {exc}", messages.ERROR)
        if done:
            self.message_user(request, f"Rolled back {done} endpoint(s).", messages.SUCCESS)
