"""Reads of generated endpoints and their access helpers (404 for anyone outside the organization)."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404

from endpoints.api import ApiKeyPrincipal
from endpoints.models import EndpointAlias, EndpointStatus, GeneratedEndpoint
from roles.models import Organization
from roles.selectors import organization_ids_for_user, organization_scope


class EndpointGone(Exception):
    """The addressed version was retired (HTTP 410)."""

    def __init__(self, endpoint: GeneratedEndpoint, message: str):
        super().__init__(message)
        self.endpoint = endpoint
        self.message = message


def endpoint_get_for_user(*, user, endpoint_id) -> GeneratedEndpoint:
    """An endpoint of one of the user's organizations, or 404."""
    if getattr(user, "is_superuser", False) and user.is_active:
        scope = GeneratedEndpoint.objects.all()
    else:
        scope = GeneratedEndpoint.objects.filter(organization__in=organization_ids_for_user(user))
    try:
        return scope.select_related("organization", "role", "role__service").get(id=endpoint_id)
    except (GeneratedEndpoint.DoesNotExist, ValueError, ValidationError) as exc:
        raise Http404("No such endpoint") from exc


def endpoints_for_user(*, user, organization=None):
    return organization_scope(
        GeneratedEndpoint.objects.select_related("organization", "role", "role__service", "reviewed_by"),
        user=user,
        organization=organization,
    )


def endpoint_resolve_live(
    *, organization_slug: str, slug: str, version: int | None = None, role=None
) -> GeneratedEndpoint:
    """The endpoint a live call addresses: Http404 when unknown, EndpointGone when retired.

    With the caller's `role`, an older address of that Role's endpoint (EndpointAlias) leads to it.
    """
    if role is not None:
        alias = (
            EndpointAlias.objects.filter(organization__slug=organization_slug, slug=slug, role=role)
            .values_list("target_slug", flat=True)
            .first()
        )
        slug = alias or slug
    versions = GeneratedEndpoint.objects.filter(organization__slug=organization_slug, slug=slug).select_related(
        "organization", "role", "role__service"
    )
    if version is None:
        endpoint = versions.live().order_by("-version").first()
        if endpoint is not None:
            return endpoint
        retired = versions.filter(status=EndpointStatus.RETIRED).order_by("-version").first()
        if retired is not None:
            raise EndpointGone(retired, f"The endpoint '{slug}' has been retired; no version of it is live.")
        raise Http404("No such endpoint")
    endpoint = versions.filter(version=version).first()
    if endpoint is None or endpoint.status in (EndpointStatus.DRAFT, EndpointStatus.APPROVED):
        raise Http404("No such endpoint version")
    if endpoint.status == EndpointStatus.RETIRED:
        current = versions.live().order_by("-version").first()
        hint = f" Use v{current.version} ({current.path})." if current else ""
        raise EndpointGone(endpoint, f"Version {version} of '{slug}' has been retired.{hint}")
    return endpoint


def organization_for_openapi(*, principal, org_slug: str):
    """The organization whose OpenAPI document the caller may read: a member's, or an API key's role's; else 404."""

    organization = Organization.objects.filter(slug=org_slug).first()
    if organization is None:
        raise Http404("No such organization")
    if isinstance(principal, ApiKeyPrincipal):
        allowed = principal.api_key.role.organization_id == organization.pk
    elif getattr(principal, "is_superuser", False) and principal.is_active:
        allowed = True
    else:
        allowed = organization.pk in organization_ids_for_user(principal)
    if not allowed:
        raise Http404("No such organization")
    return organization


def endpoints_deployed_describe(*, organization, query: str = "", limit: int = 200, role=None) -> list[dict]:
    """The organization's deployed endpoints (every live version; with `role`, that Role's only), matching `query`."""
    endpoints = GeneratedEndpoint.objects.live().filter(organization=organization).select_related("organization")
    if role is not None:
        endpoints = endpoints.filter(role=role)
    if query:
        endpoints = endpoints.filter(Q(slug__icontains=query) | Q(description__icontains=query))
    return [
        {
            "id": str(e.pk),
            "method": e.method,
            "path": e.versioned_path,
            "slug": e.slug,
            "description": e.description,
            "version": e.version,
            "status": e.status,
        }
        for e in endpoints.order_by("slug", "-version")[:limit]
    ]
