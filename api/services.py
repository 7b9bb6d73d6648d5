"""Services the API needs that no other app offers: personal API tokens and the organization's metrics."""

from __future__ import annotations

from datetime import timedelta

from axes.exceptions import AxesBackendPermissionDenied
from django.contrib.auth import authenticate
from django.db.models import Avg, Count, F, Min, Q
from django.shortcuts import get_object_or_404
from django.utils import timezone

from agents.models import AgentExecution, AgentStatus
from api.models import PersonalToken
from endpoints.models import GeneratedEndpoint
from mcpservers.models import CallOutcome, MCPServerInstance, ToolCall
from mcpservers.platform import PercentileCont
from nectar.auth import LOCKOUT_MESSAGE

ENDPOINT_TOOL_PREFIX = "endpoint:"


class CredentialsError(Exception):
    """Wrong username or password, or an inactive account."""


class LoginLocked(Exception):
    """Too many failed logins for this account or from this address."""


def user_token_issue(*, request, username: str, password: str, name: str = "") -> tuple[PersonalToken, str]:
    """Check the credentials and issue a new named personal token (others stay valid); returns it with its secret.

    The check goes through the login throttle (django-axes): too many failures for the account or
    from the address raise LoginLocked.
    """
    http_request = getattr(request, "_request", request)
    try:
        user = authenticate(request=http_request, username=username, password=password)
    except AxesBackendPermissionDenied as exc:
        raise LoginLocked(LOCKOUT_MESSAGE) from exc
    if getattr(http_request, "axes_locked_out", False):
        raise LoginLocked(LOCKOUT_MESSAGE)
    if user is None or not user.is_active:
        raise CredentialsError("Unable to sign in with these credentials.")
    return personal_token_create(user=user, name=name or f"Token of {timezone.now():%Y-%m-%d %H:%M}")


def personal_token_create(*, user, name: str) -> tuple[PersonalToken, str]:
    """A new named token for the user; the secret is returned once and stored only as a hash."""
    name = (name or "").strip()
    if not name:
        raise CredentialsError("Give the token a name.")
    return PersonalToken.issue(user=user, name=name[:200])


def personal_token_revoke(*, user, token_id) -> PersonalToken:
    """Revoke one of the user's own tokens (404 for anyone else's)."""
    token = get_object_or_404(PersonalToken.objects.filter(user=user), pk=token_id)
    token.revoke()
    return token


def user_token_revoke(*, user, token=None) -> bool:
    """Revoke the token the request came with (or, without one, every token of the user); True when one was."""
    queryset = PersonalToken.objects.filter(user=user, revoked_at__isnull=True)
    if isinstance(token, PersonalToken):
        queryset = queryset.filter(pk=token.pk)
    return bool(queryset.update(revoked_at=timezone.now()))


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
