from django.contrib import admin

from mcpservers.models import MCPServerInstance, ToolCall
from nectar.admin_scoping import OrganizationScopedAdmin


@admin.register(MCPServerInstance)
class MCPServerInstanceAdmin(OrganizationScopedAdmin):
    organization_path = "role__organization"
    list_display = (
        "role",
        "status",
        "server_url",
        "tool_count",
        "request_count",
        "avg_response_time",
        "last_health_check",
    )
    list_filter = ("status",)
    search_fields = ("role__name", "server_url")
    readonly_fields = (
        "role",
        "server_url",
        "status",
        "status_reason",
        "tools",
        "last_health_check",
        "request_count",
        "avg_response_time",
        "created_at",
        "updated_at",
    )

    @admin.display(description="Tools")
    def tool_count(self, obj):
        return len(obj.tools or [])

    def has_add_permission(self, request):
        return False


@admin.register(ToolCall)
class ToolCallAdmin(OrganizationScopedAdmin):
    list_display = ("created_at", "tool", "instance", "api_key", "outcome", "rows", "duration_ms")
    list_filter = ("outcome",)
    search_fields = ("tool", "error")
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in ToolCall._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
