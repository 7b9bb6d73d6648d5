"""Memories: search (semantic with ?q=, else a filtered list), create business rules, delete."""

from __future__ import annotations

from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.response import Response

from api.serializers import BusinessRuleCreateSerializer, MemorySerializer
from api.views.base import ApiViewMixin
from learning.models import AgentMemory, MemoryType
from learning.selectors import memories_for_user
from learning.services import business_rule_create, memory_retrieve

MAX_SEARCH_RESULTS = 100


class MemoryFilter(filters.FilterSet):
    type = filters.ChoiceFilter(choices=MemoryType.choices)
    tag = filters.CharFilter(field_name="tags", lookup_expr="contains", method="filter_tag")
    is_active = filters.BooleanFilter()

    class Meta:
        model = AgentMemory
        fields = ["type", "tag", "is_active"]

    def filter_tag(self, queryset, name, value):
        return queryset.filter(tags__contains=[value])


@extend_schema_view(
    list=extend_schema(
        summary="Search memories",
        description="With `q`, the memories most relevant to the text (semantic search, best first, "
        "with similarity and score). Without it, a filtered, ordered list.",
        parameters=[
            OpenApiParameter("q", OpenApiTypes.STR, description="Text to search for (semantic search)"),
        ],
    ),
    retrieve=extend_schema(summary="One memory"),
    create=extend_schema(
        summary="Record a business rule (owners and admins)",
        request=BusinessRuleCreateSerializer,
        responses={201: MemorySerializer},
    ),
    destroy=extend_schema(summary="Delete a memory (owners and admins)"),
)
class MemoryViewSet(
    ApiViewMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = MemorySerializer
    filterset_class = MemoryFilter
    ordering_fields = ["created_at", "relevance_score", "usage_count", "last_used"]
    ordering = ["-created_at"]
    manager_actions = ("create", "destroy")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AgentMemory.objects.none()
        return memories_for_user(user=self.request.user, organization=self.organization)

    def list(self, request, *args, **kwargs):
        text = (request.query_params.get("q") or "").strip()
        if not text:
            return super().list(request, *args, **kwargs)

        # Validate type/tag/is_active through the filter set, then search semantically.
        filtered = self.filter_queryset(self.get_queryset())
        memory_type = request.query_params.get("type")
        retrieved = memory_retrieve(
            organization=self.organization,
            text=text[:2000],
            types=[memory_type] if memory_type else None,
            k=MAX_SEARCH_RESULTS,
        )
        allowed = set(filtered.values_list("pk", flat=True).filter(pk__in=[r.memory.pk for r in retrieved]))
        memories = []
        for r in retrieved:
            if r.memory.pk in allowed:
                r.memory.search_similarity = round(r.similarity, 4)
                r.memory.search_score = round(r.score, 4)
                memories.append(r.memory)
        page = self.paginate_queryset(memories)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def create(self, request, *args, **kwargs):
        data = BusinessRuleCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        memory = business_rule_create(organization=self.organization, user=request.user, **data.validated_data)
        return Response(self.get_serializer(memory).data, status=status.HTTP_201_CREATED)
