"""Roles (grants on one database), their MCP switch and their API keys."""

from __future__ import annotations

from django.http import Http404
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.response import Response

from api.serializers import (
    McpInstanceSummarySerializer,
    McpToggleResponseSerializer,
    McpToggleSerializer,
    RoleApiKeyCreatedSerializer,
    RoleApiKeySerializer,
    RoleSerializer,
)
from api.views.base import ApiViewMixin
from mcpservers.services import mcp_disable, mcp_enable
from roles.models import Role, RoleApiKey
from roles.selectors import role_api_keys_for_user, role_get_for_user, roles_for_user


class RoleFilter(filters.FilterSet):
    service = filters.UUIDFilter(field_name="service_id")
    mcp_enabled = filters.BooleanFilter()
    is_active = filters.BooleanFilter()
    name = filters.CharFilter(lookup_expr="icontains")

    class Meta:
        model = Role
        fields = ["service", "mcp_enabled", "is_active", "name"]


@extend_schema_view(
    list=extend_schema(summary="List roles"),
    retrieve=extend_schema(summary="One role"),
    create=extend_schema(summary="Create a role; permissions are validated against the database schema"),
    update=extend_schema(summary="Change a role (owners and admins)"),
    partial_update=extend_schema(summary="Change some fields of a role (owners and admins)"),
    destroy=extend_schema(summary="Delete a role, its keys and its endpoints (owners and admins)"),
)
class RoleViewSet(ApiViewMixin, viewsets.ModelViewSet):
    serializer_class = RoleSerializer
    filterset_class = RoleFilter
    ordering_fields = ["name", "created_at", "updated_at"]
    ordering = ["name"]
    manager_actions = ("create", "update", "partial_update", "destroy", "mcp")
    customer_database_actions = ("create", "update", "partial_update", "mcp")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Role.objects.none()
        return roles_for_user(user=self.request.user, organization=self.organization)

    def perform_create(self, serializer):
        serializer.save(organization=self.organization, created_by=self.request.user)

    @extend_schema(
        summary="Switch the role's MCP server on or off (owners and admins)",
        description="On: the server is (re)generated from the role's permissions and serves its tools. "
        "Off: it stops answering (INACTIVE) but keeps its history.",
        request=McpToggleSerializer,
        responses={200: McpToggleResponseSerializer},
    )
    @action(detail=True, methods=["post"])
    def mcp(self, request, pk=None):
        role = self.get_object()
        data = McpToggleSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        instance = mcp_enable(role=role) if data.validated_data["enabled"] else mcp_disable(role=role)
        body = {
            "mcp_enabled": role.mcp_enabled,
            "mcp_server": McpInstanceSummarySerializer(instance).data if instance is not None else None,
        }
        return Response(McpToggleResponseSerializer(body).data)


ROLE_PARAMETER = OpenApiParameter("role_pk", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The role's id")


@extend_schema_view(
    list=extend_schema(summary="List the role's API keys (never their secrets)", parameters=[ROLE_PARAMETER]),
    retrieve=extend_schema(summary="One API key (never its secret)", parameters=[ROLE_PARAMETER]),
    create=extend_schema(
        summary="Create an API key (owners and admins); the secret is in this answer only",
        parameters=[ROLE_PARAMETER],
        request=RoleApiKeySerializer,
        responses={201: RoleApiKeyCreatedSerializer},
    ),
    revoke=extend_schema(
        summary="Revoke an API key (owners and admins)",
        parameters=[ROLE_PARAMETER],
        request=None,
        responses={200: RoleApiKeySerializer},
    ),
)
class RoleApiKeyViewSet(
    ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin, viewsets.GenericViewSet
):
    serializer_class = RoleApiKeySerializer
    filterset_fields = []
    ordering_fields = ["created_at", "name", "last_used_at"]
    ordering = ["-created_at"]
    manager_actions = ("create", "revoke")

    def get_role(self) -> Role:
        if not hasattr(self, "_role"):
            try:
                self._role = role_get_for_user(
                    user=self.request.user, role_id=self.kwargs["role_pk"], organization=self.organization
                )
            except Http404 as exc:
                raise NotFound("No such role.") from exc
        return self._role

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RoleApiKey.objects.none()
        return role_api_keys_for_user(
            user=self.request.user, role_id=self.get_role().pk, organization=self.organization
        )

    def create(self, request, *args, **kwargs):
        role = self.get_role()
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        key, secret = RoleApiKey.issue(
            role=role,
            name=serializer.validated_data["name"],
            created_by=request.user,
            expires_at=serializer.validated_data.get("expires_at"),
        )
        key.secret = secret
        return Response(RoleApiKeyCreatedSerializer(key, context=self.get_serializer_context()).data, status=201)

    @action(detail=True, methods=["post"])
    def revoke(self, request, role_pk=None, pk=None):
        key = self.get_object()
        key.revoke()
        return Response(
            RoleApiKeySerializer(key, context=self.get_serializer_context()).data, status=status.HTTP_200_OK
        )
