"""The whole pipeline with a real local model (SmolLM2-135M-Instruct behind llama-cpp-python's server).

So small a model writes poor designs and often no usable JSON at all; what must hold is the
platform's behaviour, over every requirement, through `generate_api` and through the worker:

- every run reaches a clear end state: COMPLETED with a verified endpoint, or FAILED or waiting
  for answers, with a reason a business user understands (no internal names, no stack trace);
- no endpoint is deployed that the platform did not verify, and no exception leaks;
- the run's time and token budgets hold;
- every LLM call is recorded with its tokens (the run's log, its meter and the organization's
  ledger agree) and every tool call is in the agents' records and the Role's tool-call log.

The figures of every run are printed at the end of the session (tests/llm/conftest.py).
"""

from __future__ import annotations

import json
import re
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import Sum

from agents.models import AgentExecution, AgentStatus, LLMUsage
from agents.services import execution_submit
from agents.tasks import run_execution_task
from endpoints.models import GeneratedEndpoint
from endpoints.runtime import endpoint_run
from mcpservers.models import ToolCall as ToolCallLog
from tests.llm.conftest import RUNS

# Whole pipelines against a real model on two cores: minutes, not the suite's per-test limit.
pytestmark = [pytest.mark.llm, pytest.mark.django_db(transaction=True), pytest.mark.timeout(3600)]

# Through the management command, as a person at a terminal runs it.
COMMAND_REQUIREMENTS = [
    "Customers in the EU",
    "Number of customers by region",
    "Orders in the UK since 2026-01-01",
    "Top 10 products by quantity in the last 90 days",
    "Support tickets that are still open",
]
# Through the worker's task, as a submission from the UI or the API runs.
WORKER_REQUIREMENTS = [
    "Orders of enterprise customers",
    "Order 42 with its items",
    "Accounts by tier",
    "Monthly revenue for each month",
    "Products in the electronics category",
]
# A run may take this long before no further LLM call starts; one call in flight is bounded by
# LLM_TIMEOUT_SECONDS, and the platform's own work after it (tests, learning) is quick.
TIME_BUDGET_SECONDS = 150
TOKEN_BUDGET = 120_000
# Names of the platform's insides that a business user should never have to read ("architecture", the
# phase, is the word the progress display uses).
INTERNAL = re.compile(r"\barchitect\b|language model|traceback|exception|llmerror|keyerror|pydantic", re.I)
END_STATES = {AgentStatus.COMPLETED, AgentStatus.FAILED, AgentStatus.WAITING}


@pytest.fixture
def pipeline_settings(local_model):
    local_model.AGENT_TIME_BUDGET_SECONDS = TIME_BUDGET_SECONDS
    local_model.AGENT_TOKEN_BUDGET = TOKEN_BUDGET
    return local_model


@pytest.fixture
def auto_deploying(analyst_role):
    organization = analyst_role.organization
    organization.auto_deploy_read_only = True
    organization.save(update_fields=["auto_deploy_read_only"])
    return analyst_role


def _check_run(execution: AgentExecution, *, via: str, settings) -> None:
    """The platform's behaviour on one run, whatever the model did; records its figures."""
    execution.refresh_from_db()
    metrics = execution.performance_metrics or {}
    calls = [e.payload for e in execution.events.filter(kind="llm_call").order_by("seq")]
    children = list(execution.children.all())
    RUNS.append(
        {
            "via": via,
            "requirement": execution.business_requirement,
            "status": execution.status,
            "reason": (execution.status_reason or "")[:160],
            "llm_calls": len(calls),
            "input_tokens": sum(c["input_tokens"] for c in calls),
            "output_tokens": sum(c["output_tokens"] for c in calls),
            "tool_calls": sum(len(c.tools_invoked or []) for c in children),
            "seconds": metrics.get("duration_seconds"),
        }
    )

    # A clear end state, in words for the person who asked.
    assert execution.status in END_STATES, (execution.status, execution.status_reason)
    if execution.status == AgentStatus.FAILED:
        reason = execution.status_reason.lower()
        assert len(reason) > 20, reason
        assert not INTERNAL.search(reason), reason
        assert "went wrong on our side" not in reason, f"an exception leaked: {reason}"
    if execution.status == AgentStatus.WAITING:
        assert execution.questions and all(q["text"] for q in execution.questions)
    assert all(c.status in (AgentStatus.COMPLETED, AgentStatus.FAILED) for c in children)

    # Nothing deployed that the platform did not verify; what is deployed answers.
    for endpoint in GeneratedEndpoint.objects.filter(source_execution=execution):
        if endpoint.status == "deployed":
            assert execution.status == AgentStatus.COMPLETED
            assert endpoint.verdict == "verified" and endpoint.tests_passed, endpoint.verification
            assert endpoint.verification["meaning_tests"]["passed"]
            assert endpoint_run(endpoint=endpoint, values={}, from_text=True).status == 200
    if execution.status == AgentStatus.COMPLETED:
        endpoint = GeneratedEndpoint.objects.get(pk=execution.result["endpoint"]["id"])
        assert endpoint.verdict in ("verified", "needs_review")
    else:
        assert not GeneratedEndpoint.objects.filter(source_execution=execution, status="deployed").exists()

    # Budgets: no call started past the token budget, and none after the time budget.
    spent = 0
    for call in calls:
        assert spent < settings.AGENT_TOKEN_BUDGET, "a call started after the token budget was used up"
        spent += call["input_tokens"] + call["output_tokens"]
    usage = (execution.result or {}).get("usage") or {}
    assert usage.get("total_tokens", 0) == spent
    if metrics:
        assert metrics["duration_seconds"] <= settings.AGENT_TIME_BUDGET_SECONDS + settings.LLM_TIMEOUT_SECONDS + 120
    if "time budget" in execution.status_reason:
        assert metrics["duration_seconds"] >= settings.AGENT_TIME_BUDGET_SECONDS

    # Every LLM call with its tokens; every tool call in the agents' records and the Role's log.
    assert calls, "the model was never asked"
    for call in calls:
        if call.get("requests", 1):
            assert call["input_tokens"] > 0, call
    assert usage.get("llm_failed_calls", 0) == sum(1 for c in calls if "error" in c)
    invoked = [t for child in children for t in child.tools_invoked or []]
    if metrics:
        assert metrics["tool_calls"] == len(invoked)
    logged = ToolCallLog.objects.filter(instance=execution.role.mcp_instance, created_at__gte=execution.created_at)
    assert logged.count() >= len([t for t in invoked if t["tool"] in {"search_objects", "describe_object"}])


def _ledger_total(organization) -> int:
    totals = LLMUsage.objects.filter(organization=organization).aggregate(i=Sum("input_tokens"), o=Sum("output_tokens"))
    return (totals["i"] or 0) + (totals["o"] or 0)


def test_requirements_through_generate_api_end_clearly_with_budgets_and_records(
    pipeline_settings, auto_deploying, owner
):
    organization = auto_deploying.organization
    for requirement in COMMAND_REQUIREMENTS:
        out = StringIO()
        try:
            call_command("generate_api", requirement, role="Sales analyst", json=True, stdout=out, stderr=StringIO())
        except CommandError as error:
            # The command says why in words (failed, or waiting for answers); the run is still recorded.
            assert str(error) and not INTERNAL.search(str(error)), str(error)
        execution = AgentExecution.objects.filter(business_requirement=requirement, parent=None).latest("created_at")
        if out.getvalue():
            printed = json.loads(out.getvalue())
            assert printed["status"] == execution.status
        _check_run(execution, via="generate_api", settings=pipeline_settings)
    runs = AgentExecution.objects.filter(organization=organization, parent=None)
    assert runs.count() == len(COMMAND_REQUIREMENTS)
    assert _ledger_total(organization) == sum((r.result or {}).get("usage", {}).get("total_tokens", 0) for r in runs)


def test_requirements_through_the_worker_end_clearly_with_budgets_and_records(pipeline_settings, auto_deploying, owner):
    organization = auto_deploying.organization
    for requirement in WORKER_REQUIREMENTS:
        execution = execution_submit(user=owner, role=auto_deploying, requirement=requirement, enqueue=False)
        status = run_execution_task(str(execution.pk))
        execution.refresh_from_db()
        assert status == execution.status
        _check_run(execution, via="worker", settings=pipeline_settings)
    runs = AgentExecution.objects.filter(organization=organization, parent=None)
    assert _ledger_total(organization) == sum((r.result or {}).get("usage", {}).get("total_tokens", 0) for r in runs)
