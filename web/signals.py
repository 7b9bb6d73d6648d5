"""Approvals are announced from what the other apps write: a run that finished with a draft, a review decision."""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from agents.models import AgentStatus, ExecutionEvent
from endpoints.models import EndpointStatus, GeneratedEndpoint, ReviewDecision
from web.models import NotificationKind
from web.notifications import notify_approval_needed, notify_decision


@receiver(post_save, sender=ExecutionEvent, dispatch_uid="web.approval_needed")
def _run_finished_with_a_draft(sender, instance: ExecutionEvent, created: bool, **kwargs):
    if not created or instance.kind != "status":
        return
    payload = instance.payload or {}
    produced = payload.get("endpoint") or {}
    if payload.get("status") != AgentStatus.COMPLETED or not produced.get("id"):
        return
    endpoint = (
        GeneratedEndpoint.objects.filter(pk=produced["id"], status__in=[EndpointStatus.DRAFT, EndpointStatus.APPROVED])
        .exclude(review_decision=ReviewDecision.REJECTED)
        .select_related("organization", "source_execution__user")
        .first()
    )
    if endpoint is not None:
        notify_approval_needed(endpoint=endpoint)


@receiver(post_save, sender=GeneratedEndpoint, dispatch_uid="web.review_decision")
def _endpoint_reviewed(sender, instance: GeneratedEndpoint, created: bool, update_fields=None, **kwargs):
    if created or not update_fields:
        return
    fields = set(update_fields)
    if "review_decision" in fields and instance.review_decision in (ReviewDecision.APPROVED, ReviewDecision.REJECTED):
        kind = (
            NotificationKind.APPROVED
            if instance.review_decision == ReviewDecision.APPROVED
            else NotificationKind.REJECTED
        )
        notify_decision(endpoint=instance, kind=kind, actor=instance.reviewed_by)
    elif "deployed_at" in fields and instance.status == EndpointStatus.DEPLOYED:
        notify_decision(endpoint=instance, kind=NotificationKind.DEPLOYED, actor=None)
