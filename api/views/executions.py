"""Executions: submit a requirement (202), follow status and events, pause, resume, cancel, rate."""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from agents.events import events_since
from agents.models import AgentExecution, AgentStatus, Phase
from agents.selectors import executions_for_user
from agents.services import execution_cancel, execution_pause, execution_rate, execution_resume, execution_submit
from api.serializers import (
    AnswersSerializer,
    EventsPageSerializer,
    EventsQuerySerializer,
    ExecutionCreateSerializer,
    ExecutionDetailSerializer,
    ExecutionSerializer,
    ExecutionSubmittedSerializer,
    RatingResultSerializer,
    RatingSerializer,
    execution_urls,
)
from api.views.base import ApiViewMixin


class UtcDateTimeField(IsoDateTimeField):
    """An ISO 8601 date-time, converted to UTC (PostgreSQL refuses offsets beyond ±15:59)."""

    def to_python(self, value):
        parsed = super().to_python(value)
        if parsed is None or parsed.tzinfo is None:
            return parsed
        try:
            return parsed.astimezone(datetime.UTC)
        except OverflowError as exc:
            raise ValidationError("Enter a date-time within the supported range.", code="invalid") from exc


class UtcDateTimeFilter(filters.IsoDateTimeFilter):
    field_class = UtcDateTimeField


class ExecutionFilter(filters.FilterSet):
    status = filters.ChoiceFilter(choices=AgentStatus.choices)
    role = filters.UUIDFilter(field_name="role_id")
    current_phase = filters.ChoiceFilter(choices=Phase.choices)
    mine = filters.BooleanFilter(method="filter_mine", label="Only executions you submitted")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = AgentExecution
        fields = ["status", "role", "current_phase", "mine", "created_after", "created_before"]

    def filter_mine(self, queryset, name, value):
        return queryset.filter(user=self.request.user) if value else queryset


def _event_body(event) -> dict:
    return {
        "seq": event.seq,
        "kind": event.kind,
        "phase": event.phase,
        "agent": event.agent,
        "payload": event.payload if isinstance(event.payload, dict) else {"value": event.payload},
        "created_at": event.created_at,
    }


@extend_schema_view(
    list=extend_schema(summary="List executions of your organization"),
    retrieve=extend_schema(summary="An execution: status, phase and results so far"),
)
class ExecutionViewSet(ApiViewMixin, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    filterset_class = ExecutionFilter
    ordering_fields = ["created_at", "completed_at", "status"]
    ordering = ["-created_at"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AgentExecution.objects.none()
        return executions_for_user(user=self.request.user, organization=self.organization)

    def get_serializer_class(self):
        return ExecutionSerializer if self.action == "list" else ExecutionDetailSerializer

    def _check_steering(self, execution) -> None:
        """Whoever submitted the execution, or an owner/admin, may pause, resume or cancel it."""
        if execution.user_id != self.request.user.pk and not self.membership.can_manage:
            raise PermissionDenied("Only the person who submitted it, or an owner or admin, may steer this execution.")

    @extend_schema(
        summary="Submit a requirement: the agents build an endpoint in the background",
        request=ExecutionCreateSerializer,
        responses={202: ExecutionSubmittedSerializer},
    )
    def create(self, request):
        data = ExecutionCreateSerializer(data=request.data, context=self.get_serializer_context())
        data.is_valid(raise_exception=True)
        execution = execution_submit(
            user=request.user, role=data.validated_data["role"], requirement=data.validated_data["requirement"]
        )
        urls = execution_urls(request, execution)
        body = {"id": execution.pk, "status": execution.status, "urls": urls}
        return Response(
            ExecutionSubmittedSerializer(body).data, status=status.HTTP_202_ACCEPTED, headers={"Location": urls["self"]}
        )

    @extend_schema(
        summary="Events after a sequence number (replay, or poll for new ones)",
        parameters=[
            OpenApiParameter(
                "after",
                {"type": "integer", "minimum": 0, "maximum": 2_000_000_000},
                description="Return events with seq > after (default 0)",
            ),
            OpenApiParameter(
                "limit",
                {"type": "integer", "minimum": 1, "maximum": 1000},
                description="At most this many events (default 500)",
            ),
        ],
        responses={200: EventsPageSerializer},
    )
    @action(detail=True, methods=["get"], pagination_class=None, filterset_class=None, ordering_fields=[])
    def events(self, request, pk=None):
        execution = self.get_object()
        query = EventsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        after, limit = query.validated_data["after"], query.validated_data["limit"]
        execution.refresh_from_db(fields=["status", "event_seq"])
        events = list(events_since(execution=execution, after_seq=after, limit=limit))
        body = {
            "execution": execution.pk,
            "status": execution.status,
            "finished": execution.is_finished,
            "last_seq": execution.event_seq,
            "next_after": events[-1].seq if events else after,
            "events": [_event_body(e) for e in events],
        }
        return Response(EventsPageSerializer(body).data)

    def _steer(self, service):
        execution = self.get_object()
        self._check_steering(execution)
        execution = service(execution=execution)
        return Response(ExecutionDetailSerializer(execution, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Pause a pending or running execution", request=None, responses={200: ExecutionDetailSerializer}
    )
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._steer(execution_pause)

    @extend_schema(summary="Resume a paused execution", request=None, responses={200: ExecutionDetailSerializer})
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._steer(execution_resume)

    @extend_schema(summary="Cancel an unfinished execution", request=None, responses={200: ExecutionDetailSerializer})
    @action(detail=True, methods=["post"])
    def cancel(self, request, pk=None):
        return self._steer(execution_cancel)

    @extend_schema(
        summary="Answer a waiting execution's questions; it goes on with the answers",
        description=(
            "An execution in status WAITING asks questions (its `questions`). Give an answer to each: a choice id, "
            'several ids where the question allows `multiple`, or {"other": "..."} where it allows '
            "`allow_other`. Choices become terms of the database's glossary, so later requirements ask nothing."
        ),
        request=AnswersSerializer,
        responses={200: ExecutionDetailSerializer},
    )
    @action(detail=True, methods=["post"])
    def answers(self, request, pk=None):
        from agents.services import execution_answer

        execution = self.get_object()
        data = AnswersSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        execution = execution_answer(execution=execution, user=request.user, answers=data.validated_data["answers"])
        return Response(ExecutionDetailSerializer(execution, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="Rate the result: thumbs up or down, with an optional comment",
        request=RatingSerializer,
        responses={200: RatingResultSerializer},
    )
    @action(detail=True, methods=["post"])
    def rating(self, request, pk=None):
        execution = self.get_object()
        data = RatingSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        result = execution_rate(execution=execution, user=request.user, **data.validated_data)
        body = {"rating": result.rating, "previous": result.previous, "memories_adjusted": result.memories_adjusted}
        return Response(RatingResultSerializer(body).data)
