"""Background tasks of the learning app (django-q2). Tasks take ids and are safe to repeat."""

from __future__ import annotations

from learning.improvement import improvement_run
from roles.models import Organization


def improvement_run_task(organization_id=None) -> int:
    """The daily continuous-improvement run; returns the ImprovementReport id."""

    organization = Organization.objects.get(pk=organization_id) if organization_id else None
    return improvement_run(organization=organization).pk
