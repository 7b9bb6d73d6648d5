from django import forms
from django.contrib import admin, messages
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from learning.forms import GlossaryTermForm
from learning.glossary import glossary_term_read, mapping_parse
from learning.models import AgentMemory, GlossaryTerm, ImprovementReport, MemoryType, MemoryUse
from learning.services import LearningInputError, embed_texts, memory_embed
from roles.admin_scoping import OrganizationScopedAdmin
from roles.selectors import organization_ids_for_user


class MemoryUseInline(admin.TabularInline):
    model = MemoryUse
    fields = ("execution", "kind", "agent", "similarity", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "How this memory was used"

    def has_add_permission(self, request, obj=None):
        return False


class AgentMemoryForm(forms.ModelForm):
    class Meta:
        model = AgentMemory
        fields = (
            "organization",
            "service",
            "role",
            "type",
            "content",
            "tags",
            "relevance_score",
            "is_active",
            "related_memories",
        )
        help_texts = {
            "content": "What agents should know, in plain words. Its embedding is computed when you save.",
            "tags": "Comma-separated, e.g. object:public.orders, finance",
            "service": "The database this memory is about (empty: the whole organization)",
            "role": "The Role whose runs it came from; a Role's API keys see only their Role's memories",
        }

    def clean(self):
        cleaned = super().clean()
        organization, service, role = (cleaned.get(name) for name in ("organization", "service", "role"))
        if role is not None and service is None:
            cleaned["service"] = service = role.service
        if organization is not None and service is not None and service.organization_id != organization.pk:
            self.add_error("service", "This Service belongs to another organization.")
        if role is not None and service is not None and role.service_id != service.pk:
            self.add_error("role", "This Role is on another Service.")
        return cleaned


@admin.register(AgentMemory)
class AgentMemoryAdmin(OrganizationScopedAdmin):
    form = AgentMemoryForm
    list_display = (
        "short_content",
        "type",
        "organization",
        "relevance_score",
        "usage_count",
        "last_used",
        "source",
        "is_active",
    )
    list_filter = (
        "type",
        "is_active",
        "organization",
        "service",
        "role",
        "embedder",
        ("last_used", admin.EmptyFieldListFilter),
    )
    search_fields = ("content",)
    readonly_fields = (
        "usage_count",
        "last_used",
        "source_execution",
        "embedder",
        "created_at",
        "updated_at",
        "retired_at",
        "retired_reason",
        "merged_into",
    )
    filter_horizontal = ("related_memories",)
    inlines = [MemoryUseInline]
    actions = ["recompute_embeddings", "retire_memories"]

    @admin.display(description="Content")
    def short_content(self, obj):
        return obj.content[:100]

    @admin.display(description="Source")
    def source(self, obj):
        if obj.source_execution_id:
            return f"execution {str(obj.source_execution_id)[:8]}"
        return "entered by an admin" if obj.type == MemoryType.BUSINESS_RULE else "-"

    def get_changeform_initial_data(self, request):
        """New memories are business rules of the admin's (first) organization unless changed."""
        initial = super().get_changeform_initial_data(request)
        initial.setdefault("type", MemoryType.BUSINESS_RULE)
        if "organization" not in initial:
            org_ids = organization_ids_for_user(request.user, manage=True)
            if org_ids:
                initial["organization"] = org_ids[0]
        initial.setdefault("relevance_score", 0.7)
        return initial

    def get_search_results(self, request, queryset, search_term):
        """Search content, and tags by exact tag (e.g. "object:public.orders")."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if search_term:
            results |= queryset.filter(tags__contains=[search_term.strip()])
        return results, may_have_duplicates

    def save_model(self, request, obj, form, change):
        # Embed before the row is written so a saved memory is always searchable.
        if not change or "content" in form.changed_data or obj.embedding is None:
            obj.embedder, (obj.embedding,) = embed_texts([obj.content])
        if not obj.is_active and obj.retired_at is None:
            obj.retired_at = timezone.now()
            obj.retired_reason = obj.retired_reason or f"Retired by {request.user.get_username()} in admin"
        super().save_model(request, obj, form, change)

    @admin.action(description="Recompute embeddings with the current embedder")
    def recompute_embeddings(self, request, queryset):
        count = 0
        for memory in queryset:
            memory_embed(memory=memory)
            count += 1
        self.message_user(request, f"Recomputed {count} embeddings.", messages.SUCCESS)

    @admin.action(description="Retire selected memories")
    def retire_memories(self, request, queryset):
        count = queryset.filter(is_active=True).update(
            is_active=False,
            retired_at=timezone.now(),
            retired_reason=f"Retired by {request.user.get_username()} in admin",
        )
        self.message_user(request, f"Retired {count} memories.", messages.SUCCESS)


@admin.register(MemoryUse)
class MemoryUseAdmin(OrganizationScopedAdmin):
    organization_path = "memory__organization"
    list_display = ("memory", "execution", "kind", "agent", "similarity", "created_at")
    list_filter = ("kind", "agent")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(ImprovementReport)
class ImprovementReportAdmin(OrganizationScopedAdmin):
    list_display = ("started_at", "organization", "merged", "decayed", "promoted", "retired", "finished_at")
    list_filter = ("organization",)
    fields = (
        "organization",
        "started_at",
        "finished_at",
        "merged",
        "decayed",
        "promoted",
        "retired",
        "changes_table",
    )
    readonly_fields = fields

    @admin.display(description="Changes")
    def changes_table(self, obj):
        if not obj.changes:
            return "Nothing changed."
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td><a href='{}'>{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    c.get("action", ""),
                    reverse("admin:learning_agentmemory_change", args=[c.get("memory")]) if c.get("memory") else "",
                    str(c.get("memory", ""))[:8],
                    c.get("type", ""),
                    c.get("summary", ""),
                    c.get("reason", ""),
                )
                for c in obj.changes
            ),
        )
        return format_html(
            "<table><thead><tr><th>Action</th><th>Memory</th><th>Type</th><th>Summary</th><th>Reason</th></tr>"
            "</thead><tbody>{}</tbody></table>",
            rows,
        )

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class GlossaryTermAdminForm(forms.ModelForm, GlossaryTermForm):
    """The mapping as fields (learning.forms.GlossaryTermForm), never the memory's raw JSON."""

    class Meta:
        model = GlossaryTerm
        fields = ("organization", "service")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["service"].required = True
        parsed = glossary_term_read(memory=self.instance) if self.instance.pk else None
        if parsed is not None:
            self.initial.update(GlossaryTermForm.initial_for(parsed.term, parsed.mapping, parsed.note))
            self.fields["term"].disabled = True
            self.fields["term"].required = False

    def clean(self):
        cleaned = super().clean()
        organization, service = cleaned.get("organization"), cleaned.get("service")
        if organization is not None and service is not None and service.organization_id != organization.pk:
            self.add_error("service", "This Service belongs to another organization.")
        if cleaned.get("kind") and "conditions" not in self.errors:
            try:
                mapping_parse(self.mapping())
            except LearningInputError as exc:  # a form message, never a server error
                self.add_error(None, str(exc))
        return cleaned


@admin.register(GlossaryTerm)
class GlossaryTermAdmin(OrganizationScopedAdmin):
    """The glossary of each Service: term, what it means, where it came from; edited through learning.glossary."""

    form = GlossaryTermAdminForm
    list_display = ("term", "kind", "meaning", "service", "organization", "origin", "updated_at")
    list_filter = ("organization", "service")
    search_fields = ("content",)
    readonly_fields = ("origin", "updated_at")

    def get_queryset(self, request):
        from learning.glossary import GLOSSARY_TAG

        return (
            super()
            .get_queryset(request)
            .filter(type=MemoryType.BUSINESS_RULE, tags__contains=[GLOSSARY_TAG], is_active=True)
            .defer("embedding")
        )

    def get_fields(self, request, obj=None):
        names = ["organization", "service", "term", "kind", "object", "column", "op", "value", "func", "times"]
        return [*names, "conditions", "note", "origin", "updated_at"]

    def _parsed(self, obj):
        return glossary_term_read(memory=obj)

    @admin.display(description="Term")
    def term(self, obj):
        parsed = self._parsed(obj)
        return parsed.term if parsed else "(unreadable)"

    @admin.display(description="Kind")
    def kind(self, obj):
        parsed = self._parsed(obj)
        return parsed.mapping.kind if parsed else ""

    @admin.display(description="Means")
    def meaning(self, obj):
        parsed = self._parsed(obj)
        return parsed.mapping.describe() if parsed else ""

    @admin.display(description="Came from")
    def origin(self, obj):
        if obj is None or not obj.pk:
            return "-"
        if obj.source_execution_id:
            url = reverse("admin:agents_agentexecution_change", args=[obj.source_execution_id])
            return format_html('an answer in <a href="{}">execution {}</a>', url, str(obj.source_execution_id)[:8])
        return "entered by hand"

    def save_model(self, request, obj, form, change):
        from django.core.exceptions import ValidationError

        from learning.glossary import glossary_define, glossary_update

        mapping = form.mapping()
        note = form.cleaned_data.get("note") or ""
        try:
            if change:
                glossary_update(memory=obj, mapping=mapping, user=request.user, note=note)
            else:
                term = glossary_define(
                    service=form.cleaned_data["service"],
                    term=form.cleaned_data["term"],
                    mapping=mapping,
                    user=request.user,
                    note=note,
                )
                obj.pk = term.memory_id
        except LearningInputError as exc:
            raise ValidationError(str(exc)) from exc

    def delete_model(self, request, obj):
        from learning.glossary import glossary_remove

        glossary_remove(memory=obj, user=request.user)

    def delete_queryset(self, request, queryset):
        from learning.glossary import glossary_remove

        for obj in queryset:
            glossary_remove(memory=obj, user=request.user)
