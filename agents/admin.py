from django.contrib import admin

from agents.models import AgentExecution, ExecutionEvent
from nectar.admin_scoping import OrganizationScopedAdmin


class ExecutionEventInline(admin.TabularInline):
    model = ExecutionEvent
    extra = 0
    fields = ("seq", "created_at", "phase", "agent", "kind", "payload")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(AgentExecution)
class AgentExecutionAdmin(OrganizationScopedAdmin):
    list_display = (
        "business_requirement",
        "agent_type",
        "status",
        "current_phase",
        "organization",
        "user",
        "created_at",
    )
    list_filter = ("status", "agent_type")
    search_fields = ("business_requirement",)
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in AgentExecution._meta.fields if f.name not in ("feedback",)]
    inlines = [ExecutionEventInline]

    def has_add_permission(self, request):
        return False
