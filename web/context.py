"""The organization a signed-in user is working in (kept in the session) and the navigation around it."""

from __future__ import annotations

from django.http import Http404

from roles.models import Organization
from roles.selectors import organizations_for_user
from web.selectors import approvals_pending, notifications_unread_count, user_can_manage

SESSION_KEY = "nectar_organization_id"


def organization_current(request) -> Organization:
    """The organization chosen in the session, else the user's first one; 404 for a user with none."""
    organizations = list(organizations_for_user(user=request.user).order_by("name"))
    if not organizations:
        raise Http404("You are not a member of any organization yet; ask an administrator to add you.")
    chosen = request.session.get(SESSION_KEY)
    for organization in organizations:
        if str(organization.pk) == chosen:
            return organization
    return organizations[0]


def organization_choose(request, *, organization_id: str) -> Organization:
    """Switch the session to one of the user's organizations (404 for any other)."""
    for organization in organizations_for_user(user=request.user):
        if str(organization.pk) == str(organization_id):
            request.session[SESSION_KEY] = str(organization.pk)
            return organization
    raise Http404("No such organization")


def nav_context(request, *, section: str = "") -> dict:

    organizations = list(organizations_for_user(user=request.user).order_by("name"))
    current = organization_current(request) if organizations else None
    can_manage = current is not None and user_can_manage(user=request.user, organization_id=current.pk)
    return {
        "organizations": organizations,
        "organization": current,
        "section": section,
        "nav_can_manage": can_manage,
        "approvals_count": approvals_pending(organization=current).count() if can_manage else 0,
        "unread_count": notifications_unread_count(user=request.user),
    }
