"""Organization scoping for Django admin: staff see and edit only their organizations' objects."""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.core.exceptions import FieldDoesNotExist, PermissionDenied

from nectar.forms import TextSafeFormMixin
from roles.selectors import organization_ids_for_user


class OrganizationScopedAdmin(admin.ModelAdmin):
    """Filter every list, lookup and foreign-key choice by the user's organizations.

    `organization_path` is the lookup from this model to its Organization ("organization",
    "role__organization", ...). Owners and admins of an organization may change its objects;
    members may only view them. Superusers see everything.
    """

    organization_path = "organization"

    def _org_ids(self, request, *, manage: bool) -> list:
        return organization_ids_for_user(request.user, manage=manage)

    def _scope(self, queryset, request, *, manage: bool = False):
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.organization_path}__in": self._org_ids(request, manage=manage)})

    def get_queryset(self, request):
        return self._scope(super().get_queryset(request), request)

    def get_list_filter(self, request):
        """Filters on related objects offer only what the user's own rows refer to (never other organizations)."""
        filters = super().get_list_filter(request)
        if request.user.is_superuser:
            return filters
        return [_scoped_filter(self.model, entry) for entry in filters]

    def _may(self, request, obj, *, manage: bool) -> bool:
        if request.user.is_superuser:
            return True
        if not request.user.is_active or not request.user.is_staff:
            return False
        if not self._org_ids(request, manage=manage):
            return False
        if obj is None:
            return True
        return self._scope(type(obj).objects.filter(pk=obj.pk), request, manage=manage).exists()

    def has_module_permission(self, request):
        return self._may(request, None, manage=False)

    def has_view_permission(self, request, obj=None):
        return self._may(request, obj, manage=False)

    def has_add_permission(self, request):
        return self._may(request, None, manage=True)

    def has_change_permission(self, request, obj=None):
        return self._may(request, obj, manage=True)

    def has_delete_permission(self, request, obj=None):
        return self._may(request, obj, manage=True)

    def get_form(self, request, obj=None, change=False, **kwargs):
        """Every admin form refuses text the database cannot hold (NUL, lone surrogates), JSON fields included."""
        form = super().get_form(request, obj, change=change, **kwargs)
        if issubclass(form, TextSafeFormMixin):
            return form
        return type(form.__name__, (TextSafeFormMixin, form), {})

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        """Offer only objects of the user's organizations as foreign-key choices."""
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and not request.user.is_superuser:
            field.queryset = scope_choices(field.queryset, request.user)
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if field is not None and not request.user.is_superuser:
            field.queryset = scope_choices(field.queryset, request.user)
        return field

    def save_model(self, request, obj, form, change):
        if not request.user.is_superuser:
            org_id = _object_organization_id(obj, self.organization_path)
            if org_id is not None and org_id not in self._org_ids(request, manage=True):
                raise PermissionDenied("You can only manage objects of your own organization.")
        super().save_model(request, obj, form, change)


def _scoped_filter(model, entry):
    """A list_filter entry on a relation becomes RelatedOnlyFieldListFilter: its choices come from the scoped rows."""
    name, filter_class = (
        (entry, None) if isinstance(entry, str) else (entry if isinstance(entry, tuple) else (None, None))
    )
    if name is None:
        return entry
    try:
        field = get_fields_from_path(model, name)[-1]
    except FieldDoesNotExist:
        return entry
    if not field.is_relation:
        return entry
    if filter_class is None or filter_class is admin.RelatedFieldListFilter:
        return (name, admin.RelatedOnlyFieldListFilter)
    return entry


def _object_organization_id(obj, path: str):
    target = obj
    parts = path.split("__")
    for part in parts[:-1]:
        target = getattr(target, part, None)
        if target is None:
            return None
    return getattr(target, f"{parts[-1]}_id", None)


# How to reach an Organization from the models that foreign keys point at.
_ORGANIZATION_PATHS = {
    "organization": "id",
    "user": "memberships__organization",
}


def scope_choices(queryset, user):
    model = queryset.model
    org_ids = organization_ids_for_user(user, manage=False)
    name = model._meta.model_name
    if name in _ORGANIZATION_PATHS:
        return queryset.filter(**{f"{_ORGANIZATION_PATHS[name]}__in": org_ids}).distinct()
    field_names = {f.name for f in model._meta.get_fields()}
    if "organization" in field_names:
        return queryset.filter(organization__in=org_ids)
    if "role" in field_names:
        return queryset.filter(role__organization__in=org_ids)
    if "execution" in field_names:
        return queryset.filter(execution__organization__in=org_ids)
    return queryset.none()
