"""LLM providers behind one small interface: Anthropic, OpenAI (and compatible servers), offline.

Vendor SDKs are imported only inside their adapter modules; import those through the registry.
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
