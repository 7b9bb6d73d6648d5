"""Token and cost accounting per execution, and the token budget."""

from __future__ import annotations

import json

import pytest

from agents.providers import BudgetExceeded, Completion, LLMError, Message, MeteredProvider, Usage, UsageMeter
from agents.providers.accounting import parse_prices


class ScriptedProvider:
    """Returns the given completions (or raises the given errors) in order."""

    name = "scripted"
    model = "scripted-model"

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.calls = 0

    def complete(self, **kwargs):
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome


def completion(model: str, input_tokens: int, output_tokens: int) -> Completion:
    return Completion(
        text="ok",
        tool_calls=(),
        structured=None,
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
        model=model,
        stop_reason="end_turn",
    )


def call(provider):
    return provider.complete(messages=[Message(role="user", content="hi")])


def test_prices_are_read_from_the_llm_prices_setting_format():
    prices = parse_prices(" claude-sonnet-4-6=3:15, gpt-4.1-mini=0.4:1.6 ,")

    assert prices["claude-sonnet-4-6"].input_per_mtok == 3.0
    assert prices["gpt-4.1-mini"].output_per_mtok == 1.6


@pytest.mark.parametrize("text", ["gpt-4.1=cheap", "gpt-4.1=1", "=1:2", "gpt-4.1=-1:2"])
def test_a_malformed_price_names_the_entry_and_the_expected_shape(text):
    with pytest.raises(ValueError, match="LLM_PRICES entry"):
        parse_prices(text)


def test_cost_is_computed_per_model_and_matches_dated_model_ids(settings):
    settings.LLM_PRICES = "claude-sonnet-4-6=3:15,gpt-4.1-mini=0.4:1.6,gpt-4.1-mini-2025-04-14=0.5:2"
    meter = UsageMeter()
    provider = MeteredProvider(
        ScriptedProvider(
            completion("claude-sonnet-4-6-20260101", 1_000_000, 100_000),
            completion("gpt-4.1-mini-2025-04-14", 2_000_000, 1_000_000),
        ),
        meter,
    )

    call(provider)
    call(provider)

    metrics = meter.as_dict()
    assert metrics["llm_calls"] == 2
    assert (metrics["input_tokens"], metrics["output_tokens"], metrics["total_tokens"]) == (
        3_000_000,
        1_100_000,
        4_100_000,
    )
    assert metrics["by_model"]["claude-sonnet-4-6-20260101"]["cost_usd"] == pytest.approx(3 + 1.5)
    # The longest configured name wins: the dated price, not the undated one.
    assert metrics["by_model"]["gpt-4.1-mini-2025-04-14"]["cost_usd"] == pytest.approx(1 + 2)
    assert metrics["cost_usd"] == pytest.approx(7.5)
    assert json.loads(json.dumps(metrics)) == metrics


def test_cost_is_none_when_a_model_used_has_no_price():
    meter = UsageMeter(prices=parse_prices("claude-sonnet-4-6=3:15"))
    provider = MeteredProvider(
        ScriptedProvider(completion("claude-sonnet-4-6", 1000, 100), completion("llama3.1:8b", 500, 50)), meter
    )

    call(provider)
    call(provider)

    metrics = meter.as_dict()
    assert metrics["cost_usd"] is None
    assert metrics["by_model"]["llama3.1:8b"]["cost_usd"] is None
    assert metrics["by_model"]["claude-sonnet-4-6"]["cost_usd"] == pytest.approx(0.0045)
    assert metrics["total_tokens"] == 1650


def test_an_unused_meter_reports_zero_calls_and_no_cost():
    assert UsageMeter(prices={}).as_dict() == {
        "llm_calls": 0,
        "llm_failed_calls": 0,
        "input_tokens": 0,
        "output_tokens": 0,
        "total_tokens": 0,
        "cost_usd": None,
        "llm_seconds": 0.0,
        "by_model": {},
    }


def test_failed_calls_are_counted_and_the_error_passes_through():
    meter = UsageMeter(prices={})
    provider = MeteredProvider(ScriptedProvider(LLMError("rate limited", retryable=True, status=429)), meter)

    with pytest.raises(LLMError, match="rate limited"):
        call(provider)

    assert (meter.calls, meter.failed_calls) == (0, 1)


def test_the_token_budget_stops_further_calls_without_reaching_the_provider():
    meter = UsageMeter(prices={})
    scripted = ScriptedProvider(completion("m", 600, 200), completion("m", 300, 100), completion("m", 1, 1))
    provider = MeteredProvider(scripted, meter, token_budget=1000)

    call(provider)
    assert provider.remaining_tokens == 200
    call(provider)
    with pytest.raises(BudgetExceeded) as caught:
        call(provider)

    assert scripted.calls == 2
    assert (caught.value.used, caught.value.budget, caught.value.retryable) == (1200, 1000, False)
    assert isinstance(caught.value, LLMError)
    assert "token budget exhausted: 1200 of 1000 tokens used" in str(caught.value)


def test_the_metered_provider_shows_the_wrapped_providers_name_and_model():
    provider = MeteredProvider(ScriptedProvider(), UsageMeter(prices={}))

    assert (provider.name, provider.model) == ("scripted", "scripted-model")


def test_one_meter_can_span_several_providers_of_one_execution():
    meter = UsageMeter(prices={})
    first = MeteredProvider(ScriptedProvider(completion("a", 10, 1)), meter)
    second = MeteredProvider(ScriptedProvider(completion("b", 20, 2)), meter)

    call(first)
    call(second)

    assert meter.as_dict()["total_tokens"] == 33
    assert set(meter.as_dict()["by_model"]) == {"a", "b"}
