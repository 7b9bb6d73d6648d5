from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from nectar.admin_display import ADMIN_CSS, key_value_table
from roles.admin_scoping import OrganizationScopedAdmin
from roles.connectors import ConnectorError
from roles.connectors.targets import TargetRefused, service_target_check
from roles.forms import PermissionEditorWidget, PermissionsField, PermissionsJSONWidget, permissions_form_errors
from roles.models import Membership, Organization, Role, RoleApiKey, Service
from roles.selectors import organization_ids_for_user
from roles.services import (
    service_refresh_schema,
    service_schema,
    service_test_connection,
    service_test_connection_unsaved,
)


@admin.register(Organization)
class OrganizationAdmin(OrganizationScopedAdmin):
    organization_path = "id"
    list_display = ("name", "slug", "llm_provider", "auto_deploy_read_only", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}
    fields = (
        "name",
        "slug",
        "auto_deploy_read_only",
        "llm_provider",
        "llm_model",
        "llm_base_url",
        "llm_api_key",
        "llm_daily_token_limit",
        "llm_daily_cost_limit",
    )

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

    # Set on the form class of a "Test connection" submission (ServiceAdmin.get_form): the typed values
    # are checked and tested, never saved, and the page comes back with them.
    connection_test_only = False
    connection_result = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.connection_test_only and self.instance._state.adding:
            # Give back what was just typed so the admin need not type the secrets again to save.
            for secret in ("password", "url"):
                self.fields[secret].widget.render_value = True

    def clean(self):
        cleaned = super().clean()
        if not self.instance._state.adding:
            # Blank secrets keep the stored ones (they are never shown again).
            stored = Service.objects.filter(pk=self.instance.pk).first()
            for secret in ("password", "url"):
                if not cleaned.get(secret) and stored is not None:
                    cleaned[secret] = getattr(stored, secret)
        engine = cleaned.get("engine")
        if not cleaned.get("url"):
            if engine == "sqlite" and not cleaned.get("database"):
                self.add_error("database", "Give the SQLite database file's path (or a URL below).")
            elif engine and engine != "sqlite" and not cleaned.get("host") and not cleaned.get("database"):
                self.add_error("host", "Give the host and database, or a URL below.")
        if engine and not self.errors:
            try:
                service_target_check(
                    engine=engine,
                    host=cleaned.get("host") or "",
                    port=cleaned.get("port"),
                    database=cleaned.get("database") or "",
                    username=cleaned.get("username") or "",
                    url=cleaned.get("url") or "",
                    options=cleaned.get("options") or {},
                )
            except TargetRefused as refused:
                self.add_error(refused.field if refused.field in self.fields else None, refused.message)
        return cleaned

    def is_valid(self):
        valid = super().is_valid()
        if not self.connection_test_only:
            return valid
        if valid:
            self.connection_result = service_test_connection_unsaved(service=self.instance)
        return False  # never saved: the admin shows the form again with the result as a message


@admin.register(Service)
class ServiceAdmin(OrganizationScopedAdmin):
    form = ServiceForm
    list_display = ("name", "organization", "engine", "host", "database", "schema_refreshed_at")
    list_filter = ("engine",)
    search_fields = ("name", "host", "database")
    readonly_fields = ("schema_refreshed_at", "service_tools")
    actions = ["test_connection", "refresh_schema"]

    def get_urls(self):
        return [
            path(
                "<uuid:service_id>/test-connection/",
                self.admin_site.admin_view(self.test_connection_view),
                name="roles_service_test_connection",
            ),
            path(
                "<uuid:service_id>/refresh-schema/",
                self.admin_site.admin_view(self.refresh_schema_view),
                name="roles_service_refresh_schema",
            ),
            *super().get_urls(),
        ]

    class Media:
        css = {"all": [ADMIN_CSS]}

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        if request.method == "POST" and "_test_connection" in request.POST:
            return type(form.__name__, (form,), {"connection_test_only": True})
        return form

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        form = context["adminform"].form
        if form.connection_result is not None:
            name = form.cleaned_data.get("name") or "The database"
            self._report_result(request, name, form.connection_result, unsaved=True)
        elif form.connection_test_only and form.errors:
            self.message_user(request, "Correct the fields below, then test the connection again.", messages.ERROR)
        return super().render_change_form(request, context, add=add, change=change, form_url=form_url, obj=obj)

    @admin.display(description="Tools")
    def service_tools(self, obj):
        test = mark_safe(
            '<button type="submit" name="_test_connection" value="1" class="button">Test connection</button> '
            '<span class="help">tests the values typed above, without saving them</span>'
        )
        if obj is None or obj._state.adding:
            return test
        return format_html(
            '{} <button type="submit" formaction="{}" formmethod="post" class="button">Refresh schema</button> '
            '<a class="button" href="{}?service={}&amp;organization={}">Add a role on this database</a>',
            test,
            reverse("admin:roles_service_refresh_schema", args=[obj.pk]),
            reverse("admin:roles_role_add"),
            obj.pk,
            obj.organization_id,
        )

    def _report_result(self, request, name, result, *, unsaved=False):
        if result.ok:
            note = " Not saved yet: click Save to keep these settings." if unsaved else ""
            self.message_user(request, f"{name}: connected in {result.latency_ms:.0f} ms.{note}", messages.SUCCESS)
        else:
            self.message_user(request, f"{name}: {result.reason.replace('_', ' ')} — {result.detail}", messages.ERROR)

    def _report_test(self, request, service):
        self._report_result(request, service.name, service_test_connection(service=service))

    def _report_refresh(self, request, service):
        try:
            schema = service_refresh_schema(service=service)
        except ConnectorError as exc:
            self.message_user(
                request, f"{service.name}: schema refresh failed ({exc.reason}): {exc.message}", messages.ERROR
            )
            return
        counts = {}
        for obj in schema["objects"]:
            counts[obj["kind"]] = counts.get(obj["kind"], 0) + 1
        summary = ", ".join(f"{n} {kind}s" for kind, n in sorted(counts.items())) or "no objects"
        self.message_user(request, f"{service.name}: schema refreshed ({summary}).", messages.SUCCESS)

    def _managed_service(self, request, service_id):
        service = get_object_or_404(self._scope(Service.objects.all(), request, manage=True), pk=service_id)
        if request.method != "POST":
            raise PermissionDenied("Use POST.")
        return service

    def test_connection_view(self, request, service_id):
        service = self._managed_service(request, service_id)
        self._report_test(request, service)
        return redirect("admin:roles_service_change", service.pk)

    def refresh_schema_view(self, request, service_id):
        service = self._managed_service(request, service_id)
        self._report_refresh(request, service)
        return redirect("admin:roles_service_change", service.pk)

    @admin.action(description="Test connection")
    def test_connection(self, request, queryset):
        for service in self._scope(queryset, request, manage=True):
            self._report_test(request, service)

    @admin.action(description="Refresh schema")
    def refresh_schema(self, request, queryset):
        for service in self._scope(queryset, request, manage=True):
            self._report_refresh(request, service)


class RoleApiKeyInline(admin.TabularInline):
    model = RoleApiKey
    extra = 0
    fields = ("name", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at")
    readonly_fields = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class RoleForm(forms.ModelForm):
    """Role with its permissions edited on the live schema of its Service.

    On the add page the editor appears when the Service is given (?service=<id>, as the Service
    page's "Add a role on this database" link does); otherwise permissions are typed as JSON.
    """

    permissions = PermissionsField(
        required=False,
        widget=PermissionsJSONWidget(attrs={"rows": 8}),
        help_text='A list of grants: {"objectName", "schema", "path": "/table/NAME", "actions": [...], '
        '"columns": {"allow": [...]}, "rowFilter": {"col": value}}.',
    )

    class Meta:
        model = Role
        fields = (
            "name",
            "description",
            "organization",
            "service",
            "is_active",
            "permissions",
            "mcp_enabled",
            "mcp_allow_try_sql",
            "mcp_server_config",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        service = self.instance.service if self.instance.pk and self.instance.service_id else self._chosen_service()
        if service is None:
            return
        try:
            schema = service_schema(service=service)
        except ConnectorError as exc:
            self.fields[
                "permissions"
            ].help_text = f"The schema of {service.name} cannot be read ({exc.reason}); edit the JSON directly."
            return
        self.fields["permissions"].widget = PermissionEditorWidget(schema=schema)
        self.fields["permissions"].help_text = f"Objects of {service.name}, from its schema."

    def _chosen_service(self):
        """On the add page, the Service picked through ?service=<id> (only among the user's choices)."""
        ref = (self.data.get("service") if self.is_bound else None) or self.initial.get("service")
        if not ref or "service" not in self.fields:
            return None
        try:
            return self.fields["service"].queryset.filter(pk=ref).first()
        except (ValueError, ValidationError):
            return None

    def clean(self):
        cleaned = super().clean()
        service = cleaned.get("service")
        permissions = cleaned.get("permissions")
        if service is not None and permissions:
            for message in permissions_form_errors(service=service, permissions=permissions):
                self.add_error("permissions", message)
        return cleaned


@admin.register(Role)
class RoleAdmin(OrganizationScopedAdmin):
    form = RoleForm
    list_display = ("name", "organization", "service", "is_active", "mcp_enabled", "mcp_tools_generated")
    list_filter = ("is_active", "mcp_enabled")
    search_fields = ("name", "description")
    readonly_fields = ("server_config_table", "mcp_tools_generated", "created_by", "created_at", "updated_at")
    inlines = [RoleApiKeyInline]

    class Media:
        css = {"all": [ADMIN_CSS]}

    @admin.display(description="MCP server configuration (readable)")
    def server_config_table(self, obj):
        config = obj.mcp_server_config if obj is not None else None
        if not config:
            return "Defaults (nothing configured)."
        return key_value_table(config) if isinstance(config, dict) else str(config)

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
