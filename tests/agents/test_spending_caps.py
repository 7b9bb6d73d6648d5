"""Per-organization daily LLM spending caps: checked at submission and before every LLM call."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from agents.llm_usage import SpendingCapReached, spending_check, spending_record, spending_today
from agents.models import AgentExecution, AgentStatus, ExecutionEvent, LLMUsage
from agents.orchestrator import execution_run
from agents.providers import Usage
from agents.services import ExecutionError, execution_claim, execution_submit

pytestmark = pytest.mark.django_db

REQUIREMENT = "Customers in the EU"


@pytest.fixture(autouse=True)
def platform(settings):
    settings.LLM_PROVIDER = "offline"
    settings.LLM_DAILY_TOKEN_LIMIT = 0
    settings.LLM_DAILY_COST_LIMIT_USD = 0.0
    settings.LLM_PRICES = ""
    return settings


def used_today(organization, tokens: int, *, model="gpt-4.1-mini", kind="openai", day=None, cost="0") -> LLMUsage:
    return LLMUsage.objects.create(
        organization=organization,
        day=day or timezone.localdate(),
        provider_kind=kind,
        model=model,
        calls=3,
        input_tokens=tokens - tokens // 4,
        output_tokens=tokens // 4,
        cost_usd=Decimal(cost),
    )


def test_a_run_is_refused_at_submission_once_the_daily_token_cap_is_reached(analyst_role, owner, org):
    org.llm_daily_token_limit = 100_000
    org.save()
    used_today(org, 100_400)

    with pytest.raises(ExecutionError) as caught:
        execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT, enqueue=False)

    assert caught.value.code == "spending_cap"
    assert caught.value.message.startswith(
        "Acme Retail has used 100,400 of its 100,000 AI model tokens for today. New runs can start after "
        "midnight UTC, in "
    )
    assert not AgentExecution.objects.exists()


def test_below_the_cap_a_run_is_accepted(analyst_role, owner, org):
    org.llm_daily_token_limit = 100_000
    org.save()
    used_today(org, 99_000)

    execution = execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT, enqueue=False)

    assert execution.status == AgentStatus.PENDING


def test_the_api_answers_429_with_the_reason(analyst_role, owner, org):
    org.llm_daily_token_limit = 1000
    org.save()
    used_today(org, 5000)
    client = APIClient()
    client.force_authenticate(user=owner)

    response = client.post(
        "/api/v1/executions/", {"requirement": REQUIREMENT, "role": str(analyst_role.pk)}, format="json"
    )

    assert response.status_code == 429
    [error] = response.json()["errors"]
    assert error["code"] == "spending_cap" and "5,000 of its 1,000 AI model tokens" in error["message"]


def test_yesterdays_usage_and_other_organizations_usage_do_not_count(analyst_role, owner, org, other_org):
    org.llm_daily_token_limit = 10_000
    org.save()
    used_today(org, 50_000, day=timezone.localdate() - timedelta(days=1))
    used_today(other_org, 50_000)

    assert execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT, enqueue=False)
    assert spending_today(organization=org).tokens == 0


def test_the_platform_cap_applies_and_an_organization_may_tighten_it_but_not_lift_it(
    analyst_role, owner, org, platform
):
    platform.LLM_DAILY_TOKEN_LIMIT = 2000
    used_today(org, 1500)
    assert execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT, enqueue=False)

    org.llm_daily_token_limit = 1000
    org.save()
    with pytest.raises(ExecutionError, match="1,500 of its 1,000 AI model tokens"):
        execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT, enqueue=False)

    org.llm_daily_token_limit = 1_000_000
    org.save()
    used_today(org, 600, model="gpt-4.1")
    with pytest.raises(ExecutionError, match="2,100 of its 2,000 AI model tokens"):
        execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT, enqueue=False)


def test_the_cost_cap_counts_usd_from_the_price_table(org, platform):
    platform.LLM_PRICES = "gpt-4.1-mini=0.40:1.60"
    org.llm_daily_cost_limit = Decimal("1.00")
    org.save()
    spending_record(
        organization=org,
        provider_kind="openai",
        model="gpt-4.1-mini-2025-04-14",
        usage=Usage(input_tokens=1_000_000, output_tokens=200_000),
        requests=4,
    )

    today = spending_today(organization=org)
    assert today.cost_usd == Decimal("0.72") and today.tokens == 1_200_000
    spending_check(organization=org, provider_kind="openai", model="gpt-4.1-mini")  # 0.72 < 1.00

    spending_record(organization=org, provider_kind="openai", model="gpt-4.1-mini", usage=Usage(800_000, 0), requests=1)
    with pytest.raises(SpendingCapReached, match=r"has spent \$1\.04 of its \$1\.00 daily AI model budget"):
        spending_check(organization=org, provider_kind="openai", model="gpt-4.1-mini")
    assert LLMUsage.objects.get(organization=org, model="gpt-4.1-mini-2025-04-14").calls == 4


def test_a_cost_cap_with_a_model_that_has_no_price_is_refused_with_what_to_add(analyst_role, owner, org, platform):
    platform.LLM_PROVIDER = "openai"
    platform.OPENAI_API_KEY = "sk-test-not-real"
    platform.LLM_MODEL = "gpt-4.1"
    platform.LLM_PRICES = "gpt-4o=2.5:10"
    org.llm_daily_cost_limit = Decimal("20")
    org.save()

    with pytest.raises(ExecutionError) as caught:
        execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT, enqueue=False)

    assert caught.value.code == "spending_cap"
    assert "LLM_PRICES has no price for 'gpt-4.1'" in caught.value.message
    assert "gpt-4.1=input_usd:output_usd per million tokens" in caught.value.message


def test_the_built_in_planner_costs_nothing_but_its_tokens_count(org, platform):
    platform.LLM_PRICES = ""
    org.llm_daily_cost_limit = Decimal("0.01")
    org.save()

    spending_record(
        organization=org, provider_kind="offline", model="nectar-offline", usage=Usage(5000, 500), requests=2
    )

    spending_check(organization=org, provider_kind="offline", model="nectar-offline")
    today = spending_today(organization=org)
    assert (today.tokens, today.cost_usd, today.unpriced_tokens) == (5500, Decimal(0), 0)


@pytest.mark.django_db(transaction=True)
def test_a_running_execution_stops_before_its_next_llm_call_once_the_cap_is_reached(analyst_role, owner, org):
    org.llm_daily_token_limit = 6000
    org.save()
    execution = execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT, enqueue=False)

    execution_run(execution=execution_claim(execution_id=execution.pk))

    execution.refresh_from_db()
    assert execution.status == AgentStatus.FAILED
    assert "AI model tokens for today" in execution.status_reason
    calls = [e.payload for e in ExecutionEvent.objects.filter(execution=execution, kind="llm_call").order_by("seq")]
    spent = [c["input_tokens"] + c["output_tokens"] for c in calls]
    # The call that crossed the cap was the last one made.
    assert sum(spent[:-1]) < 6000 <= sum(spent)
    assert spending_today(organization=org).tokens == sum(spent)


@pytest.mark.django_db(transaction=True)
def test_every_llm_call_of_a_run_is_logged_with_its_tokens_and_counted_on_the_ledger(analyst_role, owner, org):
    execution = execution_submit(user=owner, role=analyst_role, requirement=REQUIREMENT, enqueue=False)

    execution_run(execution=execution_claim(execution_id=execution.pk))

    execution.refresh_from_db()
    metrics = execution.performance_metrics
    calls = [e for e in ExecutionEvent.objects.filter(execution=execution, kind="llm_call")]
    assert len(calls) == metrics["llm_calls"] > 0
    assert sum(e.payload["input_tokens"] + e.payload["output_tokens"] for e in calls) == metrics["total_tokens"]
    assert all(e.agent and e.payload["step"] and e.payload["model"] == "nectar-offline" for e in calls)
    row = LLMUsage.objects.get(organization=org, day=timezone.localdate())
    assert (row.provider_kind, row.calls, row.input_tokens + row.output_tokens) == (
        "offline",
        metrics["llm_calls"],
        metrics["total_tokens"],
    )


def test_no_llm_call_starts_once_the_run_has_used_its_time_budget():
    from agents.llm_usage import RunDeadline, TimeBudgetExceeded
    from agents.providers import Completion, Message, MeteredProvider, UsageMeter

    now = [0.0]

    class Instant:
        name, model = "scripted", "scripted-model"

        def complete(self, **kwargs):
            now[0] += 40.0  # each answer takes 40 s
            return Completion("ok", (), None, Usage(10, 5), "scripted-model", "end_turn")

    provider = MeteredProvider(
        Instant(), UsageMeter(prices={}), observers=[RunDeadline(seconds=100, clock=lambda: now[0])]
    )
    for _ in range(3):
        provider.complete(messages=[Message("user", "go")])

    with pytest.raises(TimeBudgetExceeded, match=r"the run has taken 2 min 0 s, its whole time budget \(1 min 40 s\)"):
        provider.complete(messages=[Message("user", "go")])
    assert provider.meter.calls == 3
