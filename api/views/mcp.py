"""MCP server instances: status, tools, metrics; regenerate the tools."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from api.errors import ApiError
from api.serializers import McpInstanceDetailSerializer, McpInstanceSerializer
from api.views.base import ApiViewMixin
from mcpservers.models import MCPServerInstance, MCPServerStatus
from mcpservers.selectors import mcp_instances_for_user
from mcpservers.services import instance_regenerate


class McpInstanceFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=MCPServerStatus.choices)
    role = filters.UUIDFilter(field_name="role_id")

    class Meta:
        model = MCPServerInstance
        fields = ["status", "role"]


@extend_schema_view(
    list=extend_schema(summary="List the organization's MCP servers"),
    retrieve=extend_schema(summary="One MCP server: status and reason, tools and per-tool metrics (last 24 h)"),
)
class McpInstanceViewSet(ApiViewMixin, viewsets.ReadOnlyModelViewSet):
    filterset_class = McpInstanceFilter
    ordering_fields = ["created_at", "updated_at", "request_count", "status"]
    ordering = ["created_at"]
    manager_actions = ("regenerate",)
    customer_database_actions = ("regenerate",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return MCPServerInstance.objects.none()
        return mcp_instances_for_user(user=self.request.user, organization=self.organization)

    def get_serializer_class(self):
        return McpInstanceSerializer if self.action == "list" else McpInstanceDetailSerializer

    @extend_schema(
        summary="Regenerate the server's tools from the role's permissions (owners and admins)",
        request=None,
        responses={200: McpInstanceDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def regenerate(self, request, pk=None):
        instance = self.get_object()
        if not (instance.role.mcp_enabled and instance.role.is_active):
            raise ApiError(
                "MCP is switched off for this role (or the role is inactive); switch it on first.",
                code="invalid_state",
                status_code=409,
            )
        instance = instance_regenerate(instance=instance)
        return Response(McpInstanceDetailSerializer(instance, context=self.get_serializer_context()).data)
