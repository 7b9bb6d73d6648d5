"""Services the API needs that no other app offers: personal API tokens and the organization's metrics."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import authenticate
from django.db import transaction
from django.db.models import Avg, Count, F, Min, Q
from django.utils import timezone
from rest_framework.authtoken.models import Token

from agents.models import AgentExecution, AgentStatus
from endpoints.models import GeneratedEndpoint
from mcpservers.models import CallOutcome, MCPServerInstance, ToolCall
from mcpservers.platform import PercentileCont

ENDPOINT_TOOL_PREFIX = "endpoint:"


class CredentialsError(Exception):
    """Wrong username or password, or an inactive account."""


def user_token_issue(*, request, username: str, password: str) -> Token:
    """Check the credentials and issue the user's API token, replacing (rotating) any earlier one."""
    user = authenticate(request=request, username=username, password=password)
    if user is None or not user.is_active:
        raise CredentialsError("Unable to sign in with these credentials.")
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user)


def user_token_revoke(*, user) -> bool:
    """Revoke the user's API token; True when there was one."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return bool(deleted)


def _call_metrics(calls) -> dict:
    summary = calls.aggregate(
        total=Count("id"),
        errors=Count("id", filter=~Q(outcome=CallOutcome.OK)),
        p50=PercentileCont("duration_ms", 0.5),
        p95=PercentileCont("duration_ms", 0.95),
    )
    total = summary["total"] or 0
    return {
        "total": total,
        "errors": summary["errors"] or 0,
        "error_rate": round(summary["errors"] / total, 4) if total else None,
        "p50_ms": round(summary["p50"], 3) if summary["p50"] is not None else None,
        "p95_ms": round(summary["p95"], 3) if summary["p95"] is not None else None,
    }


def organization_metrics(*, organization, days: int = 30, now=None) -> dict:
    """Executions by status, success rate, mean time to endpoint, tool and endpoint calls, latency percentiles."""
    now = now or timezone.now()
    since = now - timedelta(days=days)
    executions = AgentExecution.objects.filter(organization=organization, parent__isnull=True, created_at__gte=since)
    by_status = {status: 0 for status in AgentStatus.values}
    for row in executions.values("status").annotate(n=Count("id")).order_by():
        by_status[row["status"]] = row["n"]
    finished = by_status[AgentStatus.COMPLETED] + by_status[AgentStatus.FAILED]
    to_endpoint = (
        executions.annotate(first_endpoint=Min("endpoints__created_at"))
        .filter(first_endpoint__isnull=False)
        .aggregate(mean=Avg(F("first_endpoint") - F("created_at")))["mean"]
    )
    calls = ToolCall.objects.filter(organization=organization, created_at__gte=since)
    endpoint_calls = calls.filter(tool__startswith=ENDPOINT_TOOL_PREFIX)
    tool_calls = calls.exclude(tool__startswith=ENDPOINT_TOOL_PREFIX)
    endpoints = {status: 0 for status in ("draft", "approved", "deployed", "retired")}
    for row in GeneratedEndpoint.objects.filter(organization=organization).values("status").annotate(n=Count("id")):
        endpoints[row["status"]] = row["n"]
    servers = {}
    for row in (
        MCPServerInstance.objects.filter(role__organization=organization).values("status").annotate(n=Count("id"))
    ):
        servers[row["status"]] = row["n"]
    return {
        "organization": organization.slug,
        "window_days": days,
        "since": since,
        "executions": {
            "total": sum(by_status.values()),
            "by_status": by_status,
            "success_rate": round(by_status[AgentStatus.COMPLETED] / finished, 4) if finished else None,
            "mean_time_to_endpoint_seconds": round(to_endpoint.total_seconds(), 3) if to_endpoint else None,
        },
        "tool_calls": _call_metrics(tool_calls),
        "endpoint_calls": _call_metrics(endpoint_calls),
        "latency": _call_metrics(calls),
        "endpoints": endpoints,
        "mcp_servers": servers,
    }
