"""Reads across models and the access helpers: one per resource, each refusing outsiders."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404

from roles.models import Membership, Organization, Role, Service


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


def service_get_for_user(*, user, service_id) -> Service:
    try:
        return Service.objects.get(id=service_id, organization__in=organization_ids_for_user(user))
    except (Service.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such service") from exc


def role_get_for_user(*, user, role_id) -> Role:
    try:
        return Role.objects.select_related("service", "organization").get(
            id=role_id, organization__in=organization_ids_for_user(user)
        )
    except (Role.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such role") from exc
