"""The learning effect: a requirement similar to one already solved takes fewer steps the second time.

Run: python -m bench.bench_learning

For each pair, the first requirement runs in a fresh throwaway organization (no memories), then
the second, similar one runs after the first was learned. Printed per pair and in total: agent
steps, LLM calls, tool calls and seconds, first against second (the baseline is the first run).
The organization, its Role, MCP server, endpoints and memories are deleted at the end; the demo
database is only read.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "nectar.settings")
django.setup()

from django.contrib.auth import get_user_model  # noqa: E402

from agents.orchestrator import execution_run  # noqa: E402
from agents.services import execution_claim, execution_submit  # noqa: E402
from endpoints.models import GeneratedEndpoint  # noqa: E402
from endpoints.services import endpoint_approve  # noqa: E402
from mcpservers.services import mcp_enable  # noqa: E402
from roles.demo.location import demo_database_location  # noqa: E402
from roles.demo.platform import demo_sales_analyst_permissions  # noqa: E402
from roles.models import Engine, Membership, Organization, Role, Service  # noqa: E402

PAIRS = [
    ("Customers in the EU", "Customers in the US"),
    ("Orders with status shipped", "Orders with status delivered"),
    ("Open support tickets with priority high", "Open support tickets with priority urgent"),
    ("Top 10 products by revenue in the last 90 days", "Top 5 products by revenue in the last 30 days"),
    ("Customers with no activity in the last 90 days", "Customers with no activity in the last 60 days"),
]


def _run(*, user, role, requirement: str, approve: bool = False) -> dict:
    """One requirement end to end; with `approve`, its verified endpoint is approved (what the platform learns from)."""
    started = time.monotonic()
    execution = execution_submit(user=user, role=role, requirement=requirement, enqueue=False)
    execution_run(execution=execution_claim(execution_id=execution.pk))
    execution.refresh_from_db()
    if approve and execution.status == "COMPLETED":
        endpoint = GeneratedEndpoint.objects.get(pk=execution.result["endpoint"]["id"])
        if endpoint.status == "draft":
            endpoint_approve(endpoint=endpoint, user=user, comment="learning bench")
    metrics = execution.performance_metrics or {}
    return {
        "status": execution.status,
        "reason": execution.status_reason,
        "steps": metrics.get("agent_steps", 0),
        "llm_calls": metrics.get("llm_calls", 0),
        "tool_calls": metrics.get("tool_calls", 0),
        "seconds": time.monotonic() - started,
    }


def _organization():
    suffix = uuid.uuid4().hex[:8]
    organization = Organization.objects.create(name=f"Learning bench {suffix}", slug=f"bench-learning-{suffix}")
    user = get_user_model().objects.create_user(username=f"bench-{suffix}", password=uuid.uuid4().hex)
    Membership.objects.create(user=user, organization=organization, role="owner")
    location = demo_database_location()
    service = Service.objects.create(
        organization=organization,
        name="demo",
        engine=Engine.POSTGRESQL,
        host=location.host,
        port=location.port,
        database=location.database,
        username=location.username,
        password=location.password,
    )
    return organization, user, service


def _role(organization, service, name: str) -> Role:
    role = Role.objects.create(
        organization=organization,
        service=service,
        name=name,
        permissions=demo_sales_analyst_permissions(),
        mcp_enabled=True,
    )
    mcp_enable(role=role)
    role.refresh_from_db()
    return role


def main() -> None:
    rows = []
    for index, (first, second) in enumerate(PAIRS):
        # Each pair in its own organization, so the first run starts with no memories.
        organization, user, service = _organization()
        try:
            role = _role(organization, service, f"analyst {index}")
            before = _run(user=user, role=role, requirement=first, approve=True)
            after = _run(user=user, role=role, requirement=second)
        finally:
            organization.delete()
            user.delete()
        rows.append((first, second, before, after))
        print(
            f"{first!r} -> {second!r}\n"
            f"    first : {before['status']:<9} steps {before['steps']:>2}  llm {before['llm_calls']:>2}  "
            f"tools {before['tool_calls']:>2}  {before['seconds']:.1f}s {before['reason']}\n"
            f"    second: {after['status']:<9} steps {after['steps']:>2}  llm {after['llm_calls']:>2}  "
            f"tools {after['tool_calls']:>2}  {after['seconds']:.1f}s {after['reason']}",
            flush=True,
        )
    done = [(b, a) for _, _, b, a in rows if b["status"] == a["status"] == "COMPLETED"]
    if not done:
        print("No pair completed twice; no learning effect to report.")
        return
    print(f"\nPairs completed both times: {len(done)} of {len(rows)}")
    for key in ("steps", "llm_calls", "tool_calls", "seconds"):
        first = sum(b[key] for b, _ in done)
        second = sum(a[key] for _, a in done)
        change = (second - first) / first * 100 if first else 0.0
        print(f"  {key:<10} first {first:>8.1f}   second {second:>8.1f}   change {change:+.0f}%")
    fewer = sum(1 for b, a in done if a["steps"] < b["steps"])
    print(
        f"  second run took fewer agent steps in {fewer} of {len(done)} pairs; "
        f"median seconds first {statistics.median(b['seconds'] for b, _ in done):.1f}, "
        f"second {statistics.median(a['seconds'] for _, a in done):.1f}"
    )


if __name__ == "__main__":
    main()
