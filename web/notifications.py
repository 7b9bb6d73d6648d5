"""In-app notifications about approvals (and their email copies): who hears what, and when."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from roles.models import Membership
from web.models import Notification, NotificationKind

logger = logging.getLogger(__name__)


def notification_send(*, users, organization, kind: str, title: str, body: str = "", url: str = "", endpoint=None):
    """Create one notification per user (each user at most once) and email it where email is configured."""
    created = []
    seen = set()
    for user in users:
        if user is None or user.pk in seen or not user.is_active:
            continue
        seen.add(user.pk)
        created.append(
            Notification.objects.create(
                user=user,
                organization=organization,
                kind=kind,
                title=title[:300],
                body=body,
                url=url[:500],
                endpoint=endpoint,
            )
        )
    if settings.NOTIFY_BY_EMAIL and created:
        ids = [n.pk for n in created]
        # After the commit, outside any transaction: the mail server is a network call.
        transaction.on_commit(lambda: notifications_email(notification_ids=ids))
    return created


def notifications_email(*, notification_ids: list[int]) -> int:
    """Email each notification to its user's address; failures are logged, the in-app copy stays."""
    sent = 0
    for notification in Notification.objects.filter(pk__in=notification_ids, emailed_at__isnull=True).select_related(
        "user"
    ):
        address = notification.user.email
        if not address:
            continue
        link = f"{settings.PUBLIC_BASE_URL}{notification.url}" if notification.url else settings.PUBLIC_BASE_URL
        text = f"{notification.body}\n\nOpen it in Nectar: {link}\n" if notification.body else f"Open: {link}\n"
        try:
            send_mail(f"[Nectar] {notification.title}", text, None, [address], fail_silently=False)
        except Exception:
            logger.warning("could not email notification %s to user %s", notification.pk, notification.user_id)
            continue
        Notification.objects.filter(pk=notification.pk).update(emailed_at=timezone.now())
        sent += 1
    return sent


def notifications_mark_read(*, user, notification_ids: list[int] | None = None) -> int:
    """Mark the user's notifications (all, or the given ones) read; others' are never touched."""
    queryset = Notification.objects.filter(user=user, read_at__isnull=True)
    if notification_ids is not None:
        queryset = queryset.filter(pk__in=notification_ids)
    return queryset.update(read_at=timezone.now())


def _endpoint_page(endpoint) -> str:
    execution_id = endpoint.source_execution_id
    if execution_id and endpoint.source_execution.parent_id is None:
        return reverse("execution-detail", args=[execution_id])
    return reverse("endpoint-detail", args=[endpoint.pk])


def _requester(endpoint):
    execution = endpoint.source_execution
    return execution.user if execution is not None else None


def notify_approval_needed(*, endpoint) -> list[Notification]:
    """Tell the organization's owners and admins that an endpoint waits for their review."""

    requester = _requester(endpoint)
    managers = [
        m.user
        for m in Membership.objects.managers().filter(organization_id=endpoint.organization_id).select_related("user")
        if requester is None or m.user_id != requester.pk
    ]
    who = requester.get_username() if requester is not None else "The agents"
    return notification_send(
        users=managers,
        organization=endpoint.organization,
        kind=NotificationKind.APPROVAL_NEEDED,
        title=f"{endpoint.slug} v{endpoint.version} waits for your approval",
        body=f"{who} asked for: {_requirement(endpoint)}\nReview it, then approve and deploy it, or reject it.",
        url=_endpoint_page(endpoint),
        endpoint=endpoint,
    )


def notify_decision(*, endpoint, kind: str, actor=None) -> list[Notification]:
    """Tell the member who asked for the endpoint what was decided (not when they decided it themselves)."""
    requester = _requester(endpoint)
    if requester is None or (actor is not None and actor.pk == requester.pk):
        return []
    by = f" by {actor.get_username()}" if actor is not None else ""
    titles = {
        NotificationKind.APPROVED: f"{endpoint.slug} v{endpoint.version} was approved{by}",
        NotificationKind.REJECTED: f"{endpoint.slug} v{endpoint.version} was rejected{by}",
        NotificationKind.DEPLOYED: f"{endpoint.slug} v{endpoint.version} is live",
    }
    body = f"Your request: {_requirement(endpoint)}"
    if kind == NotificationKind.REJECTED and endpoint.review_comment:
        body += f"\nReason: {endpoint.review_comment}"
    if kind == NotificationKind.DEPLOYED:
        body += "\nCall it with an API key of the role; the page shows how."
    return notification_send(
        users=[requester],
        organization=endpoint.organization,
        kind=kind,
        title=titles[kind],
        body=body,
        url=_endpoint_page(endpoint),
        endpoint=endpoint,
    )


def _requirement(endpoint) -> str:
    execution = endpoint.source_execution
    text = execution.business_requirement if execution is not None else endpoint.description
    return (text or endpoint.slug)[:300]
