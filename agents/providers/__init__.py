"""LLM providers behind one small interface: Anthropic, OpenAI (and compatible servers), offline.

    provider = MeteredProvider(provider_for(organization=org), UsageMeter(), token_budget=200_000)
    completion = provider.complete(messages=[Message(role="user", content="...")], tools=[...],
                                   response_schema={...}, context={...})
    completion.text / .tool_calls / .structured / .usage; meter.as_dict() for performance_metrics

Every failure is an LLMError (message safe to show, `retryable`, `status`, `code`). Transport retries
are the SDKs' own (`max_retries` = LLM_MAX_RETRIES: 429, 408, 409, 5xx, timeouts, connection errors,
Retry-After honoured); a server error that means "unsupported parameter" or "prompt too long" is
marked so they skip it. The SDKs are imported only in their adapter modules, lazily through the registry.
"""

from .accounting import BudgetExceeded, MeteredProvider, UsageMeter, parse_prices
from .base import Completion, LLMError, LLMProvider, Message, ToolCall, ToolSpec, Usage
from .registry import provider_config_for, provider_for

__all__ = [
    "BudgetExceeded",
    "Completion",
    "LLMError",
    "LLMProvider",
    "Message",
    "MeteredProvider",
    "ToolCall",
    "ToolSpec",
    "Usage",
    "UsageMeter",
    "parse_prices",
    "provider_config_for",
    "provider_for",
]
