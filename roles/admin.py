from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.utils import timezone
from django.utils.html import format_html

from nectar.admin_scoping import OrganizationScopedAdmin
from roles.models import Membership, Organization, Role, RoleApiKey, Service
from roles.selectors import organization_ids_for_user


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    organization_path = "id"
    list_display = ("name", "slug", "llm_provider", "auto_deploy_read_only", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    fields = ("name", "slug", "auto_deploy_read_only", "llm_provider", "llm_model", "llm_base_url", "llm_api_key")

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "llm_api_key":
            kwargs["widget"] = forms.PasswordInput(render_value=False)
            kwargs["required"] = False
            kwargs["help_text"] = "Stored encrypted. Leave empty to keep the current key."
        return super().formfield_for_dbfield(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        if change and not form.cleaned_data.get("llm_api_key"):
            obj.llm_api_key = Organization.objects.get(pk=obj.pk).llm_api_key
        super().save_model(request, obj, form, change)

    def has_add_permission(self, request):
        return request.user.is_superuser


@admin.register(Membership)
class MembershipAdmin(OrganizationScopedAdmin):
    list_display = ("user", "organization", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__username", "user__email", "organization__name")


class ServiceForm(forms.ModelForm):
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        help_text="Stored encrypted and never shown again. Leave empty to keep the current password.",
    )
    url = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        label="URL",
        help_text="Optional SQLAlchemy URL instead of the fields above (stored encrypted, never shown). "
        "Leave empty to keep the current one.",
    )

    class Meta:
        model = Service
        fields = (
            "organization",
            "name",
            "engine",
            "host",
            "port",
            "database",
            "username",
            "password",
            "url",
            "options",
        )

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:
            for secret in ("password", "url"):
                if not cleaned.get(secret):
                    cleaned[secret] = getattr(Service.objects.get(pk=self.instance.pk), secret)
        return cleaned


@admin.register(Service)
class ServiceAdmin(OrganizationScopedAdmin):
    form = ServiceForm
    list_display = ("name", "organization", "engine", "host", "database", "schema_refreshed_at")
    list_filter = ("engine",)
    search_fields = ("name", "host", "database")
    readonly_fields = ("schema_refreshed_at",)


class RoleApiKeyInline(admin.TabularInline):
    model = RoleApiKey
    extra = 0
    fields = ("name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")
    readonly_fields = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Role)
class RoleAdmin(OrganizationScopedAdmin):
    list_display = ("name", "organization", "service", "is_active", "mcp_enabled", "mcp_tools_generated")
    list_filter = ("is_active", "mcp_enabled")
    search_fields = ("name", "description")
    readonly_fields = ("mcp_tools_generated", "created_by", "created_at", "updated_at")
    inlines = [RoleApiKeyInline]

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


class RoleApiKeyForm(forms.ModelForm):
    class Meta:
        model = RoleApiKey
        fields = ("role", "name", "expires_at")


@admin.register(RoleApiKey)
class RoleApiKeyAdmin(OrganizationScopedAdmin):
    organization_path = "role__organization"
    form = RoleApiKeyForm
    list_display = ("name", "role", "prefix_display", "created_at", "expires_at", "last_used_at", "status")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "role__name")
    actions = ["revoke_keys"]

    def get_readonly_fields(self, request, obj=None):
        return ("role", "prefix", "created_at", "last_used_at", "revoked_at") if obj else ()

    @admin.display(description="Key")
    def prefix_display(self, obj):
        return f"nk_{obj.prefix}_…"

    @admin.display(description="Status")
    def status(self, obj):
        if obj.revoked_at:
            return "revoked"
        if obj.expires_at and obj.expires_at <= timezone.now():
            return "expired"
        return "active"

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        if not request.user.is_superuser and obj.role.organization_id not in organization_ids_for_user(
            request.user, manage=True
        ):
            raise PermissionDenied("You can only create keys for roles of your own organization.")
        key, secret = RoleApiKey.issue(role=obj.role, name=obj.name, created_by=request.user, expires_at=obj.expires_at)
        obj.pk, obj.prefix, obj.key_hash, obj.created_at = key.pk, key.prefix, key.key_hash, key.created_at
        obj._state.adding = False
        messages.warning(
            request,
            format_html("Copy this key now; it will not be shown again: <code class='nectar-secret'>{}</code>", secret),
        )

    @admin.action(description="Revoke selected keys")
    def revoke_keys(self, request, queryset):
        count = 0
        for key in self._scope(queryset, request, manage=True):
            if key.revoked_at is None:
                key.revoke()
                count += 1
        self.message_user(request, f"Revoked {count} key(s).")
