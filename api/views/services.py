"""Customer databases: create, change, test the connection, read and refresh the introspected schema."""

from __future__ import annotations

from django.db.models import ProtectedError, RestrictedError
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.errors import ApiError
from api.serializers import ConnectionTestSerializer, IntrospectedSchemaSerializer, ServiceSerializer
from api.views.base import ApiViewMixin
from mcpservers.services import tools_regenerate_for_service
from roles.executor import service_test_connection
from roles.introspection import service_refresh_schema, service_schema
from roles.models import Engine, Service
from roles.selectors import services_for_user


class ServiceFilter(filters.FilterSet):
    engine = filters.ChoiceFilter(choices=Engine.choices)
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Service
        fields = ["engine", "name"]


def _schema_body(service: Service, schema: dict) -> dict:
    return {
        "engine": schema.get("engine") or service.engine,
        "default_schema": schema.get("default_schema"),
        "objects": schema.get("objects") or [],
        "refreshed_at": service.schema_refreshed_at,
    }


@extend_schema_view(
    list=extend_schema(summary="List your organization's databases"),
    retrieve=extend_schema(summary="One database (password and url are never returned)"),
    create=extend_schema(summary="Connect a database (owners and admins)"),
    update=extend_schema(summary="Change a database (owners and admins)"),
    partial_update=extend_schema(summary="Change some fields of a database (owners and admins)"),
    destroy=extend_schema(summary="Remove a database that no role uses (owners and admins)"),
)
class ServiceViewSet(ApiViewMixin, viewsets.ModelViewSet):
    serializer_class = ServiceSerializer
    filterset_class = ServiceFilter
    ordering_fields = ["name", "engine", "created_at", "updated_at"]
    ordering = ["name"]
    manager_actions = ("create", "update", "partial_update", "destroy", "test_connection", "refresh_schema")
    customer_database_actions = ("test_connection", "introspected_schema", "refresh_schema")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Service.objects.none()
        return services_for_user(user=self.request.user, organization=self.organization)

    def perform_create(self, serializer):
        serializer.save(organization=self.organization)

    def perform_destroy(self, instance):
        try:
            instance.delete()
        except (ProtectedError, RestrictedError) as exc:
            raise ApiError(
                "Roles still use this database; delete or move them first.", code="in_use", status_code=409
            ) from exc

    @extend_schema(
        summary="Test the connection (owners and admins)",
        description="Connects with the stored credentials and runs a trivial query. A failed connection is "
        "a 200 answer with ok=false and the reason (authentication_failed, host_unreachable, ...).",
        request=None,
        responses={200: ConnectionTestSerializer},
    )
    @action(detail=True, methods=["post"], url_path="test-connection")
    def test_connection(self, request, pk=None):
        result = service_test_connection(service=self.get_object())
        body = {"ok": result.ok, "reason": result.reason, "detail": result.detail, "latency_ms": result.latency_ms}
        return Response(ConnectionTestSerializer(body).data)

    @extend_schema(
        summary="The introspected schema (from the cache; introspects once when nothing is cached)",
        responses={200: IntrospectedSchemaSerializer},
    )
    @action(detail=True, methods=["get"], url_path="schema")
    def introspected_schema(self, request, pk=None):
        service = self.get_object()
        return Response(IntrospectedSchemaSerializer(_schema_body(service, service_schema(service=service))).data)

    @extend_schema(
        summary="Introspect the database again now (owners and admins)",
        request=None,
        responses={200: IntrospectedSchemaSerializer},
    )
    @action(detail=True, methods=["post"], url_path="refresh-schema")
    def refresh_schema(self, request, pk=None):
        service = self.get_object()
        schema = service_refresh_schema(service=service)
        tools_regenerate_for_service(service=service)
        return Response(IntrospectedSchemaSerializer(_schema_body(service, schema)).data, status=status.HTTP_200_OK)
