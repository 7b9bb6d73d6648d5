"""Keep each Role's MCP server in line with the Role and its database schema."""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from mcpservers.services import role_sync_mcp, tools_regenerate_for_service
from roles.models import Role, Service

logger = logging.getLogger(__name__)


@receiver(post_save, sender=Role, dispatch_uid="mcpservers.role_saved")
def role_saved(sender, instance: Role, **kwargs) -> None:
    """Create, regenerate or retire the Role's MCP server once the save is committed."""
    role_id = instance.pk

    def sync() -> None:
        role = Role.objects.select_related("service", "organization").filter(pk=role_id).first()
        if role is None:
            return
        try:
            role_sync_mcp(role=role)
        except Exception:
            logger.exception("could not update the MCP server of role %s", role_id)

    transaction.on_commit(sync)


@receiver(post_save, sender=Service, dispatch_uid="mcpservers.service_saved")
def service_saved(sender, instance: Service, update_fields=None, **kwargs) -> None:
    """After a schema refresh, regenerate the tools whose schema fingerprint changed."""
    if update_fields is not None and "schema_cache" not in update_fields:
        return
    service_id = instance.pk

    def regenerate() -> None:
        service = Service.objects.filter(pk=service_id).first()
        if service is None:
            return
        try:
            tools_regenerate_for_service(service=service)
        except Exception:
            logger.exception("could not regenerate the MCP tools of service %s", service_id)

    transaction.on_commit(regenerate)


# Saves of these models change what the hot-path caches hold; the database triggers tell the other
# processes at commit, these receivers tell this one at once (see nectar.invalidation).
_BOOKKEEPING = {
    "Organization": {"updated_at"},
    "Service": {"schema_refreshed_at"},
    "Role": {"mcp_tools_generated", "updated_at"},
    "RoleApiKey": {"last_used_at"},
    "MCPServerInstance": {"request_count", "avg_response_time", "last_health_check", "updated_at"},
}


def _organization_of(instance) -> str | None:
    name = type(instance).__name__
    if name == "Organization":
        return str(instance.pk)
    if name in ("Service", "Role"):
        return str(instance.organization_id)
    role_id = getattr(instance, "role_id", None)
    org = Role.objects.filter(pk=role_id).values_list("organization_id", flat=True).first() if role_id else None
    return str(org) if org else None


def _announce(sender, instance, update_fields=None, **kwargs) -> None:
    from nectar import invalidation

    if update_fields is not None and set(update_fields) <= _BOOKKEEPING.get(sender.__name__, set()):
        return
    invalidation.changed(_organization_of(instance))


def _connect_announcements() -> None:
    from django.db.models.signals import post_delete

    from mcpservers.models import MCPServerInstance
    from roles.models import Organization, RoleApiKey

    for model in (Organization, Service, Role, RoleApiKey, MCPServerInstance):
        post_save.connect(_announce, sender=model, dispatch_uid=f"mcpservers.announce.save.{model.__name__}")
        post_delete.connect(_announce, sender=model, dispatch_uid=f"mcpservers.announce.delete.{model.__name__}")


_connect_announcements()
