"""The organization's numbers: executions, success rate, time to endpoint, calls and latency."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from api.serializers import MetricsQuerySerializer, MetricsSerializer
from api.services import organization_metrics
from api.views.base import ApiViewMixin


class MetricsView(ApiViewMixin, APIView):
    @extend_schema(
        operation_id="metrics",
        tags=["metrics"],
        summary="Per-organization summary over the last `days` days",
        parameters=[
            OpenApiParameter(
                "days", {"type": "integer", "minimum": 1, "maximum": 3650}, description="Window in days (default 30)"
            )
        ],
        responses={200: MetricsSerializer},
    )
    def get(self, request):
        query = MetricsQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        body = organization_metrics(organization=self.organization, days=query.validated_data["days"])
        return Response(MetricsSerializer(body).data)
