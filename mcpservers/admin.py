from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from mcpservers.models import MCPServerInstance, MCPServerStatus, ToolCall
from mcpservers.services import instance_regenerate, mcp_disable, mcp_enable
from nectar.admin_display import ADMIN_CSS, key_value_table, milliseconds, rows_table
from roles.admin import RoleAdmin as BaseRoleAdmin
from roles.admin_scoping import OrganizationScopedAdmin
from roles.models import Role


@admin.register(MCPServerInstance)
class MCPServerInstanceAdmin(OrganizationScopedAdmin):
    organization_path = "role__organization"
    list_display = (
        "role",
        "status",
        "server_url",
        "tool_count",
        "request_count",
        "average_response",
        "last_health_check",
        "connect_link",
    )
    list_filter = ("status",)
    search_fields = ("role__name", "server_url")
    fields = (
        "role",
        "server_url",
        "status",
        "status_reason",
        "last_health_check",
        "request_count",
        "average_response",
        "created_at",
        "updated_at",
        "tools_table",
    )
    readonly_fields = fields
    actions = ["regenerate_tools"]

    class Media:
        css = {"all": [ADMIN_CSS]}

    @admin.display(description="Average response", ordering="avg_response_time")
    def average_response(self, obj):
        return milliseconds(obj.avg_response_time)

    @admin.display(description="Tools")
    def tools_table(self, obj):
        tools = obj.tools or []
        if not tools:
            return "No tools yet."
        return rows_table(
            [_tool_row(t) for t in tools if isinstance(t, dict)],
            [("name", "Tool"), ("access", "Access"), ("description", "What it does"), ("parameters", "Parameters")],
            formatters={"name": lambda v: format_html("<code>{}</code>", v)},
        )

    @admin.display(description="Tools")
    def tool_count(self, obj):
        return len(obj.tools or [])

    @admin.display(description="Client configuration")
    def connect_link(self, obj):
        return format_html('<a href="{}">Connect</a>', reverse("mcpservers:client-config", args=[obj.pk]))

    @admin.action(description="Regenerate tools of the selected MCP servers")
    def regenerate_tools(self, request, queryset):
        done = 0
        for instance in self._scope(queryset, request, manage=True).select_related("role", "role__service"):
            if instance.status != MCPServerStatus.INACTIVE:
                instance_regenerate(instance=instance)
                done += 1
        self.message_user(request, f"Regenerated {done} MCP server(s).")

    def has_add_permission(self, request):
        return False


def _tool_row(tool: dict) -> dict:
    hints = tool.get("annotations") or {}
    if hints.get("destructiveHint"):
        access = "changes data (destructive)"
    elif hints.get("readOnlyHint"):
        access = "read only"
    else:
        access = "writes"
    properties = ((tool.get("inputSchema") or {}).get("properties")) or {}
    required = set((tool.get("inputSchema") or {}).get("required") or [])
    parameters = format_html_join(
        ", ", "<code>{}</code>{}", ((name, "*" if name in required else "") for name in properties)
    )
    return {
        "name": tool.get("name", ""),
        "access": access,
        "description": tool.get("description") or tool.get("title") or "",
        "parameters": parameters or "none",
    }


@admin.register(ToolCall)
class ToolCallAdmin(OrganizationScopedAdmin):
    list_display = ("created_at", "tool", "instance", "api_key", "outcome", "rows", "duration")
    list_filter = ("outcome",)
    search_fields = ("tool", "error")
    date_hierarchy = "created_at"
    fields = (
        "created_at",
        "organization",
        "instance",
        "api_key",
        "tool",
        "outcome",
        "rows",
        "duration",
        "arguments_table",
        "error",
    )
    readonly_fields = fields

    class Media:
        css = {"all": [ADMIN_CSS]}

    @admin.display(description="Duration", ordering="duration_ms")
    def duration(self, obj):
        return milliseconds(obj.duration_ms)

    @admin.display(description="Arguments")
    def arguments_table(self, obj):
        return key_value_table(obj.arguments if isinstance(obj.arguments, dict) else {"value": obj.arguments})

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class RoleMcpAdmin(BaseRoleAdmin):
    """The connectors engineer's RoleAdmin plus the MCP switch: in the list, as actions, with its status."""

    list_display = (*BaseRoleAdmin.list_display, "mcp_status")
    list_editable = ("mcp_enabled",)
    actions = [*(getattr(BaseRoleAdmin, "actions", None) or []), "enable_mcp", "disable_mcp"]

    @admin.display(description="MCP server")
    def mcp_status(self, obj):
        instance = getattr(obj, "mcp_instance", None) if hasattr(obj, "mcp_instance") else None
        if instance is None:
            return "—"
        label = instance.get_status_display()
        if instance.status == MCPServerStatus.ERROR and instance.status_reason:
            label = f"{label}: {instance.status_reason[:80]}"
        return format_html('<a href="{}">{}</a>', reverse("mcpservers:client-config", args=[instance.pk]), label)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("mcp_instance")

    @admin.action(description="Enable MCP for the selected roles")
    def enable_mcp(self, request, queryset):
        results = [mcp_enable(role=role) for role in self._scope(queryset, request, manage=True)]
        failed = [i for i in results if i.status == MCPServerStatus.ERROR]
        self.message_user(request, f"Enabled MCP for {len(results)} role(s); {len(failed)} failed to generate.")

    @admin.action(description="Disable MCP for the selected roles")
    def disable_mcp(self, request, queryset):
        roles = list(self._scope(queryset, request, manage=True))
        for role in roles:
            mcp_disable(role=role)
        self.message_user(request, f"Disabled MCP for {len(roles)} role(s).")


if admin.site.is_registered(Role):
    admin.site.unregister(Role)
admin.site.register(Role, RoleMcpAdmin)
