"""Access helpers for executions: anyone outside the organization gets a 404."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404

from agents.models import AgentExecution
from roles.selectors import organization_ids_for_user


def executions_for_user(*, user):
    return AgentExecution.objects.filter(
        organization__in=organization_ids_for_user(user), parent__isnull=True
    ).select_related("role", "user", "organization")


def execution_get_for_user(*, user, execution_id) -> AgentExecution:
    try:
        return executions_for_user(user=user).get(pk=execution_id)
    except (AgentExecution.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such execution") from exc
