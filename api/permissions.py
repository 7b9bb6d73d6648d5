"""Who may do what: members read, submit and rate; owners and admins manage."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

from api.context import caller_membership


class OrganizationAccess(BasePermission):
    """The caller must belong to the request's organization; `view.manager_actions` need owner or admin.

    Collection-level manager actions (create, ...) are refused in has_permission; actions on one
    object are refused only after the object was found in the caller's organization, so another
    organization's objects answer 404, never 403.
    """

    message = "Only owners and admins of the organization may do this."
    code = "permission_denied"

    def _requires_manager(self, view) -> bool:
        return getattr(view, "action", None) in getattr(view, "manager_actions", ())

    def has_permission(self, request, view) -> bool:
        if not (request.user and request.user.is_authenticated):
            return False
        membership = caller_membership(request)
        if self._requires_manager(view) and not getattr(view, "detail", False):
            return membership.can_manage
        return True

    def has_object_permission(self, request, view, obj) -> bool:
        if self._requires_manager(view):
            return caller_membership(request).can_manage
        return True
