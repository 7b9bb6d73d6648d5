"""What the language model costs: each organization's daily ledger and spending caps, and the call log.

Every LLM call of a run is written to the organization's ledger for the day (LLMUsage: tokens,
and cost priced from LLM_PRICES) and to the run's event log ("llm_call", with its tokens). An
organization may have a daily cap in tokens, in USD, or both: the lower of its own (set by an
owner in admin) and the platform's LLM_DAILY_TOKEN_LIMIT / LLM_DAILY_COST_LIMIT_USD. Once a cap
is reached no new run starts (checked at submission) and no further LLM call is made (checked
before each call), with a message that says what was used and when it resets. Calls already in
flight finish, so a day may end slightly above its cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from time import monotonic

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Sum
from django.utils import timezone

from agents.events import event_append
from agents.models import AgentExecution, LLMUsage
from agents.providers import LLMError, Usage, provider_config_for
from agents.providers.accounting import CallRecord, parse_prices, price_for
from roles.models import Organization

# Providers whose tokens cost nothing (the built-in planner).
FREE_KINDS = frozenset({"offline"})


class TimeBudgetExceeded(LLMError):
    """The run has used its time budget; no further LLM call is made."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False, code="time_budget")


class SpendingCapReached(LLMError):
    """The organization has reached a daily LLM spending cap; nothing more is spent today."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False, code="spending_cap")


@dataclass(frozen=True)
class SpendingLimits:
    tokens: int | None
    cost_usd: Decimal | None

    @property
    def any(self) -> bool:
        return self.tokens is not None or self.cost_usd is not None


@dataclass(frozen=True)
class SpendingToday:
    tokens: int
    cost_usd: Decimal
    unpriced_tokens: int
    unpriced_models: tuple[str, ...]


def _lower(own, platform):
    candidates = [value for value in (own, platform) if value is not None]
    return min(candidates) if candidates else None


def spending_limits(*, organization) -> SpendingLimits:
    """The lower of the organization's own cap and the platform's (0 in a setting means no platform cap).

    An owner may tighten the platform's cap for their organization, never lift it. Read from the
    database each time, so a changed cap applies to runs already going.
    """
    own = (
        Organization.objects.filter(pk=organization.pk).values("llm_daily_token_limit", "llm_daily_cost_limit").first()
        or {}
    )
    platform_cost = Decimal(str(settings.LLM_DAILY_COST_LIMIT_USD)) if settings.LLM_DAILY_COST_LIMIT_USD else None
    return SpendingLimits(
        tokens=_lower(own.get("llm_daily_token_limit"), settings.LLM_DAILY_TOKEN_LIMIT or None),
        cost_usd=_lower(own.get("llm_daily_cost_limit"), platform_cost),
    )


def spending_today(*, organization) -> SpendingToday:
    rows = LLMUsage.objects.filter(organization=organization, day=timezone.localdate())
    totals = rows.aggregate(
        tokens=Sum(F("input_tokens") + F("output_tokens")), cost=Sum("cost_usd"), unpriced=Sum("unpriced_tokens")
    )
    unpriced = tuple(rows.filter(unpriced_tokens__gt=0).values_list("model", flat=True).distinct())
    return SpendingToday(
        tokens=totals["tokens"] or 0,
        cost_usd=totals["cost"] or Decimal(0),
        unpriced_tokens=totals["unpriced"] or 0,
        unpriced_models=unpriced,
    )


def _resets_in() -> str:
    now = timezone.localtime()
    midnight = timezone.make_aware(datetime.combine(now.date() + timedelta(days=1), time.min), now.tzinfo)
    hours, rest = divmod(int((midnight - now).total_seconds()), 3600)
    return f"midnight {settings.TIME_ZONE}, in {hours} h {rest // 60} min"


def spending_check(*, organization, provider_kind: str = "", model: str = "") -> None:
    """Refuse (SpendingCapReached) when the organization has reached a daily cap, or one cannot be kept."""
    limits = spending_limits(organization=organization)
    if not limits.any:
        return
    today = spending_today(organization=organization)
    after = f"New runs can start after {_resets_in()}, or sooner if the daily cap is raised."
    if limits.tokens is not None and today.tokens >= limits.tokens:
        raise SpendingCapReached(
            f"{organization.name} has used {today.tokens:,} of its {limits.tokens:,} AI model tokens for today. {after}"
        )
    if limits.cost_usd is None:
        return
    prices = parse_prices(settings.LLM_PRICES)
    if provider_kind and provider_kind not in FREE_KINDS and price_for(model, prices) is None:
        raise SpendingCapReached(
            f"{organization.name} has a daily AI model budget of ${limits.cost_usd:,.2f}, but LLM_PRICES has "
            f"no price for {model!r}, so what it costs cannot be counted; add one (for example "
            f"{model}=input_usd:output_usd per million tokens) or remove the budget"
        )
    if today.unpriced_tokens:
        raise SpendingCapReached(
            f"{organization.name} used {', '.join(today.unpriced_models)} today, which LLM_PRICES has no price for, "
            f"so its daily budget of ${limits.cost_usd:,.2f} cannot be kept; add their prices to LLM_PRICES"
        )
    if today.cost_usd >= limits.cost_usd:
        raise SpendingCapReached(
            f"{organization.name} has spent ${today.cost_usd:,.2f} of its ${limits.cost_usd:,.2f} daily "
            f"AI model budget. {after}"
        )


def spending_check_for_run(*, organization) -> None:
    """The check at submission: the caps, with the model a new run would use."""
    try:
        config = provider_config_for(organization=organization)
    except LLMError:
        spending_check(organization=organization)  # a broken configuration is reported by the run itself
        return
    spending_check(organization=organization, provider_kind=config.kind, model=config.model)


def spending_record(*, organization, provider_kind: str, model: str, usage: Usage, requests: int) -> None:
    """Add one call's tokens (and cost) to the organization's ledger for today."""
    if not usage.total_tokens and not requests:
        return
    price = Decimal(0)
    unpriced = 0
    if provider_kind not in FREE_KINDS:
        found = price_for(model, parse_prices(settings.LLM_PRICES))
        if found is None:
            unpriced = usage.total_tokens
        else:
            price = Decimal(str(round(found.cost(usage), 6)))
    key = {"organization": organization, "day": timezone.localdate(), "provider_kind": provider_kind, "model": model}
    changes = {
        "calls": F("calls") + requests,
        "input_tokens": F("input_tokens") + usage.input_tokens,
        "output_tokens": F("output_tokens") + usage.output_tokens,
        "cost_usd": F("cost_usd") + price,
        "unpriced_tokens": F("unpriced_tokens") + unpriced,
        "updated_at": timezone.now(),
    }
    # One atomic UPDATE per call; the first call of the day creates the row (a racing worker's
    # insert loses on the unique constraint and updates instead).
    if LLMUsage.objects.filter(**key).update(**changes):
        return
    try:
        with transaction.atomic():
            LLMUsage.objects.create(
                **key,
                calls=requests,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                cost_usd=price,
                unpriced_tokens=unpriced,
            )
    except IntegrityError:
        LLMUsage.objects.filter(**key).update(**changes)


class SpendingLedger:
    """A CallObserver: refuses calls past the organization's daily caps and records every call's spending."""

    def __init__(self, *, organization, provider_kind: str, model: str) -> None:
        self.organization = organization
        self.provider_kind = provider_kind
        self.model = model

    def before_call(self) -> None:
        spending_check(organization=self.organization, provider_kind=self.provider_kind, model=self.model)

    def after_call(self, record: CallRecord) -> None:
        spending_record(
            organization=self.organization,
            provider_kind=self.provider_kind,
            model=record.model or self.model,
            usage=record.usage,
            requests=record.requests,
        )


class ExecutionCallLog:
    """A CallObserver: every LLM call of a run becomes an "llm_call" event with its tokens."""

    def __init__(self, *, execution: AgentExecution) -> None:
        self.execution = execution

    def before_call(self) -> None:
        return None

    def after_call(self, record: CallRecord) -> None:
        context = record.context or {}
        payload = {
            "step": str(context.get("step") or ""),
            "model": record.model,
            "input_tokens": record.usage.input_tokens,
            "output_tokens": record.usage.output_tokens,
            "requests": record.requests,
            "seconds": round(record.seconds, 3),
        }
        if record.completion is not None:
            payload |= {
                "mode": record.completion.mode,
                "stop_reason": record.completion.stop_reason,
                "tool_calls": [call.name for call in record.completion.tool_calls],
            }
        if record.error is not None:
            payload |= {"error": record.error.message[:500], "code": record.error.code}
        event_append(
            execution=self.execution,
            kind="llm_call",
            phase=str(context.get("phase") or ""),
            agent=str(context.get("agent") or "")[:20],
            payload=payload,
        )


class RunDeadline:
    """A CallObserver: no LLM call starts once the run has used its time budget (AGENT_TIME_BUDGET_SECONDS).

    Counted from when this worker took the run; each call is itself bounded by LLM_TIMEOUT_SECONDS.
    """

    def __init__(self, *, seconds: float, clock=None) -> None:
        self.clock = clock or monotonic
        self.seconds = seconds
        self.started = self.clock()

    def before_call(self) -> None:
        elapsed = self.clock() - self.started
        if elapsed >= self.seconds:
            raise TimeBudgetExceeded(
                f"the run has taken {_duration(elapsed)}, its whole time budget ({_duration(self.seconds)}); "
                "try a simpler requirement, a faster model, or a larger AGENT_TIME_BUDGET_SECONDS"
            )

    def after_call(self, record: CallRecord) -> None:
        return None


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def llm_call_observers(*, execution: AgentExecution, provider) -> list:
    """What watches the LLM calls of a run: its time budget, the organization's ledger, the run's call log."""
    return [
        RunDeadline(seconds=settings.AGENT_TIME_BUDGET_SECONDS),
        SpendingLedger(organization=execution.organization, provider_kind=provider.name, model=provider.model),
        ExecutionCallLog(execution=execution),
    ]
