"""The caller's organization: from their Membership, chosen by header or query when they have several."""

from __future__ import annotations

from rest_framework import exceptions

from roles.models import Membership
from roles.selectors import memberships_for_user

ORGANIZATION_HEADER = "X-Nectar-Organization"
ORGANIZATION_QUERY = "org"


def caller_membership(request) -> Membership:
    """The Membership the request acts through (cached on the request).

    `X-Nectar-Organization: <slug>` (or `?org=<slug>`) selects one of the caller's organizations;
    without it, the first one (oldest membership). An organization the caller does not belong to
    is answered like any unknown object: 404.
    """
    cached = getattr(request, "_nectar_membership", None)
    if cached is not None:
        return cached
    user = request.user
    if not getattr(user, "is_authenticated", False) or not getattr(user, "pk", None):
        raise exceptions.NotAuthenticated()
    memberships = memberships_for_user(user=user)
    slug = request.headers.get(ORGANIZATION_HEADER) or request.query_params.get(ORGANIZATION_QUERY)
    if slug:
        membership = memberships.filter(organization__slug=slug).first()
        if membership is None:
            raise exceptions.NotFound(f"No such organization: {slug[:64]}.")
    else:
        membership = memberships.first()
        if membership is None:
            raise exceptions.PermissionDenied(
                "You do not belong to any organization yet; ask an owner to invite you.", code="no_organization"
            )
    request._nectar_membership = membership
    return membership
