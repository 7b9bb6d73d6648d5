"""Reads across models and the access helpers: one per resource, each refusing outsiders."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404

from roles.models import Membership, Organization, Role, RoleApiKey, Service


def organization_ids_for_user(user, *, manage: bool = False) -> list:
    """Organizations the user belongs to (only those they own or administer when manage=True)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return []
    memberships = Membership.objects.filter(user=user)
    if manage:
        memberships = memberships.managers()
    return list(memberships.values_list("organization_id", flat=True))


def membership_get(*, user, organization: Organization) -> Membership | None:
    return Membership.objects.filter(user=user, organization=organization).first()


def organizations_for_user(*, user):
    return Organization.objects.filter(id__in=organization_ids_for_user(user))


def organization_scope(queryset, *, user, organization=None, path: str = "organization"):
    """Rows of the user's organizations, narrowed to `organization` when given (none if it is not theirs)."""
    org_ids = organization_ids_for_user(user)
    if organization is not None:
        org_ids = [pk for pk in org_ids if pk == organization.pk]
    return queryset.filter(**{f"{path}__in": org_ids})


def memberships_for_user(*, user):
    """The user's memberships with their organizations, oldest first."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "pk", None):
        return Membership.objects.none()
    return Membership.objects.filter(user=user).select_related("organization").order_by("created_at", "pk")


def services_for_user(*, user, organization=None):
    return organization_scope(Service.objects.all(), user=user, organization=organization)


def service_get_for_user(*, user, service_id, organization=None) -> Service:
    try:
        return services_for_user(user=user, organization=organization).get(id=service_id)
    except (Service.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such service") from exc


def roles_for_user(*, user, organization=None):
    return organization_scope(
        Role.objects.select_related("service", "organization", "created_by"), user=user, organization=organization
    )


def role_get_for_user(*, user, role_id, organization=None) -> Role:
    try:
        return roles_for_user(user=user, organization=organization).get(id=role_id)
    except (Role.DoesNotExist, ValueError, TypeError, ValidationError) as exc:
        raise Http404("No such role") from exc


def role_api_keys_for_user(*, user, role_id, organization=None):
    """The API keys of one Role (404 when the Role is not one of the user's)."""
    role = role_get_for_user(user=user, role_id=role_id, organization=organization)
    return RoleApiKey.objects.filter(role=role).select_related("role", "created_by")
