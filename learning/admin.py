from django.contrib import admin

from learning.models import AgentMemory, ImprovementReport, MemoryUse
from nectar.admin_scoping import OrganizationScopedAdmin


@admin.register(AgentMemory)
class AgentMemoryAdmin(OrganizationScopedAdmin):
    list_display = ("short_content", "type", "organization", "relevance_score", "usage_count", "last_used", "is_active")
    list_filter = ("type", "is_active")
    search_fields = ("content", "tags")
    readonly_fields = ("usage_count", "last_used", "source_execution", "embedder", "created_at", "updated_at")
    exclude = ("embedding",)
    filter_horizontal = ("related_memories",)

    @admin.display(description="Content")
    def short_content(self, obj):
        return obj.content[:100]


@admin.register(MemoryUse)
class MemoryUseAdmin(OrganizationScopedAdmin):
    organization_path = "memory__organization"
    list_display = ("memory", "execution", "kind", "agent", "similarity", "created_at")
    list_filter = ("kind",)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ImprovementReport)
class ImprovementReportAdmin(OrganizationScopedAdmin):
    list_display = ("started_at", "organization", "merged", "decayed", "promoted", "retired")
    readonly_fields = (
        "organization",
        "started_at",
        "finished_at",
        "merged",
        "decayed",
        "promoted",
        "retired",
        "changes",
    )

    def has_add_permission(self, request):
        return False
