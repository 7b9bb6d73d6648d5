"""Generated endpoints: review, deploy, roll back, retire, export and read their docs."""

from __future__ import annotations

from django.http import HttpResponse
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.serializers import (
    EndpointDocsSerializer,
    GeneratedEndpointDetailSerializer,
    GeneratedEndpointSerializer,
    RejectSerializer,
    ReviewSerializer,
)
from api.views.base import ApiViewMixin
from endpoints.models import EndpointStatus, GeneratedEndpoint, HttpMethod, ReviewDecision
from endpoints.selectors import endpoints_for_user
from endpoints.services import (
    endpoint_approve,
    endpoint_deploy,
    endpoint_export,
    endpoint_markdown_docs,
    endpoint_reject,
    endpoint_retire,
    endpoint_rollback,
)


class EndpointFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=EndpointStatus.choices)
    method = filters.ChoiceFilter(choices=HttpMethod.choices)
    review_decision = filters.ChoiceFilter(choices=[c for c in ReviewDecision.choices if c[0]])
    slug = filters.CharFilter()
    role = filters.UUIDFilter(field_name="role_id")
    source_execution = filters.UUIDFilter(field_name="source_execution_id")

    class Meta:
        model = GeneratedEndpoint
        fields = ["status", "method", "review_decision", "slug", "role", "source_execution"]


@extend_schema_view(
    list=extend_schema(summary="List generated endpoints (every version)"),
    retrieve=extend_schema(summary="One endpoint version: parameters, SQL, tests and their results, docs"),
)
class EndpointViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    filterset_class = EndpointFilter
    ordering_fields = ["created_at", "updated_at", "slug", "version", "call_count", "deployed_at"]
    ordering = ["slug", "-version"]
    manager_actions = ("approve", "reject", "deploy", "retire", "rollback")
    customer_database_actions = ("deploy", "rollback", "export", "docs")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return GeneratedEndpoint.objects.none()
        return endpoints_for_user(user=self.request.user, organization=self.organization)

    def get_serializer_class(self):
        return GeneratedEndpointSerializer if self.action == "list" else GeneratedEndpointDetailSerializer

    def _answer(self, endpoint):
        endpoint.refresh_from_db()
        return Response(GeneratedEndpointDetailSerializer(endpoint, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Approve a draft (owners and admins)",
        request=ReviewSerializer,
        responses={200: GeneratedEndpointDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def approve(self, request, pk=None):
        endpoint = self.get_object()
        data = ReviewSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._answer(endpoint_approve(endpoint=endpoint, user=request.user, **data.validated_data))

    @extend_schema(
        summary="Reject a draft or an approved endpoint, saying why (owners and admins)",
        request=RejectSerializer,
        responses={200: GeneratedEndpointDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def reject(self, request, pk=None):
        endpoint = self.get_object()
        data = RejectSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        return self._answer(endpoint_reject(endpoint=endpoint, user=request.user, **data.validated_data))

    @extend_schema(
        summary="Deploy an approved endpoint (validated again first; owners and admins)",
        request=None,
        responses={200: GeneratedEndpointDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def deploy(self, request, pk=None):
        return self._answer(endpoint_deploy(endpoint=self.get_object(), user=request.user))

    @extend_schema(
        summary="Retire this version: its path answers 410 Gone (owners and admins)",
        request=None,
        responses={200: GeneratedEndpointDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def retire(self, request, pk=None):
        return self._answer(endpoint_retire(endpoint=self.get_object(), user=request.user))

    @extend_schema(
        summary="Roll this endpoint's slug back to its previous deployed version (owners and admins)",
        description="Retires the current version of the slug and makes the previous deployed version current "
        "again; answers with the version that is now current.",
        request=None,
        responses={200: GeneratedEndpointDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request, pk=None):
        endpoint = self.get_object()
        current = endpoint_rollback(organization=endpoint.organization, slug=endpoint.slug, user=request.user)
        return self._answer(current)

    @extend_schema(
        summary="Download standalone code: a DRF view, urls, pytest tests and a README (zip)",
        responses={(200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="A zip archive")},
    )
    @action(detail=True, methods=["get"])
    def export(self, request, pk=None):
        endpoint = self.get_object()
        response = HttpResponse(endpoint_export(endpoint=endpoint), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{endpoint.slug}-v{endpoint.version}.zip"'
        return response

    @extend_schema(summary="Markdown documentation of the endpoint", responses={200: EndpointDocsSerializer})
    @action(detail=True, methods=["get"])
    def docs(self, request, pk=None):
        return Response({"markdown": endpoint_markdown_docs(endpoint=self.get_object())})
