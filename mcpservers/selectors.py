"""Access helpers for MCP server instances: one per resource, each refusing outsiders with 404."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404

from mcpservers.models import MCPServerInstance
from roles.selectors import organization_ids_for_user, organization_scope


def mcp_instance_get_for_user(*, user, instance_id) -> MCPServerInstance:
    try:
        return MCPServerInstance.objects.select_related("role", "role__service", "role__organization").get(
            id=instance_id, role__organization__in=organization_ids_for_user(user)
        )
    except (MCPServerInstance.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such MCP server") from exc


def mcp_instances_for_user(*, user, organization=None):
    return organization_scope(
        MCPServerInstance.objects.select_related("role", "role__organization", "role__service").order_by("role__name"),
        user=user,
        organization=organization,
        path="role__organization",
    )
