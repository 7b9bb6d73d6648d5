"""Token and cost accounting per execution, and an optional token budget."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .base import Completion, LLMError, Message, ToolSpec, Usage


class BudgetExceeded(LLMError):
    """The execution has used its token budget; no further LLM call is made."""

    def __init__(self, *, used: int, budget: int) -> None:
        super().__init__(f"token budget exhausted: {used} of {budget} tokens used", retryable=False)
        self.used = used
        self.budget = budget


@dataclass(frozen=True)
class Price:
    input_per_mtok: float
    output_per_mtok: float

    def cost(self, usage: Usage) -> float:
        return (usage.input_tokens * self.input_per_mtok + usage.output_tokens * self.output_per_mtok) / 1_000_000


def parse_prices(text: str) -> dict[str, Price]:
    """Parse LLM_PRICES: "model=input_per_mtok:output_per_mtok,..." in USD per million tokens."""
    prices: dict[str, Price] = {}
    for entry in (text or "").split(","):
        entry = entry.strip()
        if not entry:
            continue
        model, _, rates = entry.partition("=")
        input_rate, _, output_rate = rates.partition(":")
        try:
            price = Price(float(input_rate), float(output_rate))
        except ValueError:
            raise ValueError(
                f"LLM_PRICES entry {entry!r} should look like model=input_per_mtok:output_per_mtok, e.g. gpt-4.1=2:8"
            ) from None
        if not model.strip() or price.input_per_mtok < 0 or price.output_per_mtok < 0:
            raise ValueError(f"LLM_PRICES entry {entry!r} needs a model name and non-negative prices")
        prices[model.strip()] = price
    return prices


def price_for(model: str, prices: dict[str, Price]) -> Price | None:
    """Exact name first, then the longest configured name that prefixes a dated model id."""
    if model in prices:
        return prices[model]
    candidates = [name for name in prices if model.startswith(name)]
    return prices[max(candidates, key=len)] if candidates else None


def _round(cost: float | None) -> float | None:
    return None if cost is None else round(cost, 6)


class UsageMeter:
    """Accumulates LLM calls, tokens, cost and time for one execution; safe across threads."""

    def __init__(self, *, prices: dict[str, Price] | None = None) -> None:
        if prices is None:
            from django.conf import settings

            prices = parse_prices(getattr(settings, "LLM_PRICES", ""))
        self.prices = prices
        self._lock = threading.Lock()
        self.calls = 0
        self.failed_calls = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.seconds = 0.0
        self._by_model: dict[str, dict[str, Any]] = {}

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def restore(self, saved: dict[str, Any]) -> None:
        """Continue from a stored as_dict() (a resumed execution keeps its budget)."""
        with self._lock:
            self.calls = int(saved.get("llm_calls") or 0)
            self.failed_calls = int(saved.get("llm_failed_calls") or 0)
            self.input_tokens = int(saved.get("input_tokens") or 0)
            self.output_tokens = int(saved.get("output_tokens") or 0)
            self.seconds = float(saved.get("llm_seconds") or 0.0)
            self._by_model = {
                str(model): {
                    "calls": int(entry.get("calls") or 0),
                    "input_tokens": int(entry.get("input_tokens") or 0),
                    "output_tokens": int(entry.get("output_tokens") or 0),
                    "cost_usd": entry.get("cost_usd"),
                }
                for model, entry in (saved.get("by_model") or {}).items()
                if isinstance(entry, dict)
            }

    @property
    def cost(self) -> float | None:
        """Total cost in USD, or None when any model used has no configured price."""
        with self._lock:
            costs = [entry["cost_usd"] for entry in self._by_model.values()]
        if not costs or any(cost is None for cost in costs):
            return None
        return sum(costs)

    def record(self, *, model: str, usage: Usage, seconds: float = 0.0, requests: int = 1) -> None:
        price = price_for(model, self.prices)
        with self._lock:
            self.calls += requests
            self.input_tokens += usage.input_tokens
            self.output_tokens += usage.output_tokens
            self.seconds += seconds
            entry = self._by_model.setdefault(
                model, {"calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0 if price else None}
            )
            entry["calls"] += requests
            entry["input_tokens"] += usage.input_tokens
            entry["output_tokens"] += usage.output_tokens
            if price is not None:
                entry["cost_usd"] += price.cost(usage)

    def record_failure(self, *, model: str = "", usage: Usage | None = None, seconds: float = 0.0) -> None:
        """A call that failed; what its attempts spent (repairs that never converged) still counts."""
        with self._lock:
            self.failed_calls += 1
            self.seconds += seconds
        if usage is not None and usage.total_tokens:
            self.record(model=model, usage=usage, requests=0)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary for AgentExecution.performance_metrics."""
        cost = self.cost
        with self._lock:
            return {
                "llm_calls": self.calls,
                "llm_failed_calls": self.failed_calls,
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "total_tokens": self.input_tokens + self.output_tokens,
                "cost_usd": _round(cost),
                "llm_seconds": round(self.seconds, 3),
                "by_model": {
                    model: {**entry, "cost_usd": _round(entry["cost_usd"])} for model, entry in self._by_model.items()
                },
            }


@dataclass(frozen=True)
class CallRecord:
    """One answer (or failure) of the language model, as an observer sees it."""

    model: str
    usage: Usage
    requests: int
    seconds: float
    completion: Completion | None = None
    error: LLMError | None = None
    context: dict[str, Any] = field(default_factory=dict)


class CallObserver(Protocol):
    """Told before and after every LLM call; `before_call` may refuse it by raising an LLMError."""

    def before_call(self) -> None: ...

    def after_call(self, record: CallRecord) -> None: ...


class MeteredProvider:
    """Wraps any LLMProvider: records every call on a meter and refuses calls past a token budget.

    `observers` see every call too: the organization's daily spending ledger (which may refuse a
    call once a cap is reached) and the execution's log of LLM calls.
    """

    def __init__(
        self,
        provider: Any,
        meter: UsageMeter,
        *,
        token_budget: int | None = None,
        observers: Sequence[CallObserver] = (),
    ) -> None:
        if token_budget is not None and token_budget <= 0:
            raise ValueError(f"token_budget must be a positive number of tokens, got {token_budget}")
        self.provider = provider
        self.meter = meter
        self.token_budget = token_budget
        self.observers = list(observers)

    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def model(self) -> str:
        return self.provider.model

    @property
    def remaining_tokens(self) -> int | None:
        return None if self.token_budget is None else max(0, self.token_budget - self.meter.total_tokens)

    def complete(
        self,
        *,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        response_schema: dict[str, Any] | None = None,
        temperature: float = 0.2,
        max_tokens: int = 2000,
        context: dict[str, Any] | None = None,
    ) -> Completion:
        if self.token_budget is not None and self.meter.total_tokens >= self.token_budget:
            raise BudgetExceeded(used=self.meter.total_tokens, budget=self.token_budget)
        for observer in self.observers:
            observer.before_call()
        started = time.monotonic()
        try:
            completion = self.provider.complete(
                messages=messages,
                tools=tools,
                response_schema=response_schema,
                temperature=temperature,
                max_tokens=max_tokens,
                context=context,
            )
        except LLMError as error:
            seconds = time.monotonic() - started
            usage = getattr(error, "usage", None) or Usage()
            self.meter.record_failure(model=self.provider.model, usage=usage, seconds=seconds)
            self._tell(
                CallRecord(
                    model=self.provider.model,
                    usage=usage,
                    requests=getattr(error, "requests", 0),
                    seconds=seconds,
                    error=error,
                    context=context or {},
                )
            )
            raise
        seconds = time.monotonic() - started
        model = completion.model or self.provider.model
        requests = max(1, completion.requests)
        self.meter.record(model=model, usage=completion.usage, seconds=seconds, requests=requests)
        self._tell(
            CallRecord(
                model=model,
                usage=completion.usage,
                requests=requests,
                seconds=seconds,
                completion=completion,
                context=context or {},
            )
        )
        return completion

    def _tell(self, record: CallRecord) -> None:
        for observer in self.observers:
            observer.after_call(record)
