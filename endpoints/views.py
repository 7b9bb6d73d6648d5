"""Live generated endpoints (/api/v1/x/<org>/<slug>[/v<n>]) and their docs and export pages."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from drf_spectacular.views import SpectacularSwaggerView
from rest_framework.authentication import SessionAuthentication, TokenAuthentication
from rest_framework.exceptions import ParseError
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from endpoints.api import ApiKeyRateThrottle, HasRoleApiKey, RoleApiKeyAuthentication
from endpoints.cache import endpoint_cached
from endpoints.openapi import organization_openapi
from endpoints.runtime import EndpointResult, endpoint_call, error_body
from endpoints.selectors import EndpointGone, endpoint_get_for_user, endpoint_resolve_live, organization_for_openapi
from endpoints.services import endpoint_export, endpoint_markdown_docs
from nectar.markdown import markdown_html
from nectar.text import query_string_values


def _page_link(request, *, limit: int, offset: int) -> str:
    query = request.GET.copy()
    query.pop("page", None)
    query["limit"] = str(limit)
    query["offset"] = str(offset)
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


def answer_body(result: EndpointResult, request) -> dict:
    """A live call's JSON body: a page of rows gets links to the next and previous pages."""
    body = dict(result.body)
    if result.status == 200 and "has_next" in body:
        limit, offset = body["limit"], body["offset"]
        body["next"] = _page_link(request, limit=limit, offset=offset + limit) if body.pop("has_next") else None
        body["previous"] = _page_link(request, limit=limit, offset=max(0, offset - limit)) if offset > 0 else None
    return body


class GeneratedEndpointView(APIView):
    """Answers every method; the endpoint decides which one it accepts."""

    authentication_classes = [RoleApiKeyAuthentication]
    permission_classes = [HasRoleApiKey]
    throttle_classes = [ApiKeyRateThrottle]
    schema = None  # described per deployed endpoint by endpoints.openapi

    def _handle(self, request, org_slug: str, slug: str, version: int | None = None):
        api_key = request.auth
        try:
            role = getattr(api_key, "role", None)
            endpoint = endpoint_cached(
                (org_slug, slug, version, getattr(role, "pk", None)),
                lambda: endpoint_resolve_live(organization_slug=org_slug, slug=slug, version=version, role=role),
            )
        except EndpointGone as gone:
            return Response(error_body(410, gone.message, code="gone"), status=410)
        except Http404:
            return Response(error_body(404, "No such endpoint.", code="not_found"), status=404)
        if api_key.role.organization_id != endpoint.organization_id:
            # Keys of another organization learn nothing about this one's endpoints.
            return Response(error_body(404, "No such endpoint.", code="not_found"), status=404)
        if request.method != endpoint.method:
            self.endpoint_method = endpoint.method
            return Response(
                error_body(405, f"This endpoint answers {endpoint.method} only.", code="method_not_allowed"),
                status=405,
            )
        invalid_body = ""
        if endpoint.is_read_only:
            # Decoded from the raw query string, so bytes that are not UTF-8 are refused, not replaced.
            raw = request.META.get("QUERY_STRING", "")
            values = {k: (v if len(v) > 1 else v[0]) for k, v in query_string_values(raw).items()}
            from_text = True
        else:
            try:
                values = request.data if isinstance(request.data, dict) else None
            except ParseError:
                values, invalid_body = {}, "The body is not valid JSON (in UTF-8)."
            if values is None:
                return Response(
                    error_body(400, "Send the parameters as a JSON object.", code="invalid_body"), status=400
                )
            from_text = False
        result = endpoint_call(
            endpoint=endpoint, api_key=api_key, values=values, from_text=from_text, invalid_body=invalid_body
        )
        return Response(answer_body(result, request), status=result.status, headers=result.headers or None)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code == 405 and response.data and "error" in response.data:
            response["Allow"] = self.endpoint_method  # DRF would list every method of this view
        return response

    def get(self, request, org_slug, slug, version=None):
        return self._handle(request, org_slug, slug, version)

    post = put = patch = delete = get


@login_required
def endpoint_docs_page(request, endpoint_id):
    endpoint = endpoint_get_for_user(user=request.user, endpoint_id=endpoint_id)
    return render(
        request,
        "endpoints/docs.html",
        {"endpoint": endpoint, "docs_html": markdown_html(endpoint_markdown_docs(endpoint=endpoint))},
    )


@login_required
def endpoint_export_download(request, endpoint_id):
    endpoint = endpoint_get_for_user(user=request.user, endpoint_id=endpoint_id)
    response = HttpResponse(endpoint_export(endpoint=endpoint), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{endpoint.slug}-v{endpoint.version}.zip"'
    return response


class OrganizationOpenAPIView(APIView):
    """/api/v1/x/<org>/openapi.json: members (session or token) and API keys of the organization's roles."""

    authentication_classes = [RoleApiKeyAuthentication, TokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]
    schema = None

    def get(self, request, org_slug):
        organization = organization_for_openapi(principal=request.user, org_slug=org_slug)
        return Response(organization_openapi(organization=organization))


class OrganizationSwaggerView(SpectacularSwaggerView):
    """Swagger UI (assets served by Nectar through drf-spectacular-sidecar) over the organization's document."""

    authentication_classes = [SessionAuthentication, TokenAuthentication]
    permission_classes = [IsAuthenticated]
    schema = None  # a page, not part of the integration API

    def get(self, request, org_slug, *args, **kwargs):
        organization = organization_for_openapi(principal=request.user, org_slug=org_slug)
        self.url = reverse("endpoints:openapi", args=[organization.slug])
        self.title = f"{organization.name}: generated APIs"
        return super().get(request, *args, **kwargs)
