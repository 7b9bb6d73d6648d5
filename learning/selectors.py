"""Access helpers for memories: anyone outside the organization gets a 404."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.http import Http404

from learning.models import AgentMemory
from roles.selectors import organization_scope


def memories_for_user(*, user, organization=None):
    return organization_scope(AgentMemory.objects.all(), user=user, organization=organization)


def memory_get_for_user(*, user, memory_id, organization=None) -> AgentMemory:
    try:
        return memories_for_user(user=user, organization=organization).get(pk=memory_id)
    except (AgentMemory.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such memory") from exc


def glossary_memory_get_for_user(*, user, memory_id, organization=None) -> AgentMemory:
    """A live glossary term of one of the user's organizations; 404 for anything else."""
    from learning.glossary import GLOSSARY_TAG
    from learning.models import MemoryType

    memories = memories_for_user(user=user, organization=organization).filter(
        type=MemoryType.BUSINESS_RULE, tags__contains=[GLOSSARY_TAG], is_active=True, service__isnull=False
    )
    try:
        return memories.select_related("service", "organization").get(pk=memory_id)
    except (AgentMemory.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such glossary term") from exc
