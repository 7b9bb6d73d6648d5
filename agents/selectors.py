"""Access helpers for executions: anyone outside the organization gets a 404."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404

from agents.models import AgentExecution
from roles.selectors import organization_scope


def executions_for_user(*, user, organization=None):
    """Top-level executions (not the agents' own runs) of the user's organizations."""
    return organization_scope(
        AgentExecution.objects.filter(parent__isnull=True).select_related("role", "user", "organization"),
        user=user,
        organization=organization,
    )


def execution_get_for_user(*, user, execution_id, organization=None) -> AgentExecution:
    try:
        return executions_for_user(user=user, organization=organization).get(pk=execution_id)
    except (AgentExecution.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such execution") from exc
