"""Choose the LLM provider for a call: the organization's override, else the platform settings."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from roles.models import Organization

from .base import LLMError, LLMProvider
from .capabilities import Capabilities, CapabilityKey
from .store import ModelCapabilityStore

PROVIDER_CLASSES = {
    "anthropic": "agents.providers.anthropic_provider:AnthropicProvider",
    "openai": "agents.providers.openai_provider:OpenAIProvider",
    "offline": "agents.providers.offline:OfflineProvider",
}
DEFAULT_MODELS = {"anthropic": "claude-sonnet-4-6", "openai": "gpt-4.1-mini", "offline": "nectar-offline"}
KEY_SETTINGS = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}


@dataclass(frozen=True)
class ProviderConfig:
    """Which provider and model a call will use, and where the choice came from; safe to display."""

    kind: str
    model: str
    base_url: str | None
    source: str  # "organization" or "settings"
    api_key: str | None = field(default=None, repr=False)

    @property
    def has_key(self) -> bool:
        return bool(self.api_key)


def provider_config_for(*, organization: Any = None) -> ProviderConfig:
    """Resolve kind, model, key and base URL without building a client (no network, no SDK import)."""
    default_kind = (settings.LLM_PROVIDER or "offline").strip().lower()
    org_kind = (getattr(organization, "llm_provider", "") or "").strip().lower()
    org_model = (getattr(organization, "llm_model", "") or "").strip()
    kind = org_kind or default_kind
    if kind not in PROVIDER_CLASSES:
        where = "the organization's LLM provider" if org_kind else "LLM_PROVIDER"
        raise LLMError(f"{where} is {kind!r}; expected one of {', '.join(PROVIDER_CLASSES)}", retryable=False)

    # The platform model only applies to the platform's own provider kind.
    platform_model = settings.LLM_MODEL if kind == default_kind else ""
    model = org_model or platform_model or DEFAULT_MODELS[kind]

    api_key: str | None = None
    base_url: str | None = None
    if org_kind:
        # An organization that picks a provider may bring its own key and server; the platform's
        # key and server for that same kind are the fallback.
        api_key = getattr(organization, "llm_api_key", "") or None
        base_url = getattr(organization, "llm_base_url", "") or None
    if kind == "anthropic":
        api_key = api_key or settings.ANTHROPIC_API_KEY or None
        base_url = base_url or getattr(settings, "ANTHROPIC_BASE_URL", "") or None
    elif kind == "openai":
        api_key = api_key or settings.OPENAI_API_KEY or None
        base_url = base_url or settings.OPENAI_BASE_URL or None
    return ProviderConfig(
        kind=kind, model=model, base_url=base_url, source="organization" if org_kind else "settings", api_key=api_key
    )


def provider_for(*, organization: Any = None, purpose: str = "agent", **overrides: Any) -> LLMProvider:
    """Build the provider for an organization (or the platform) and a purpose such as "agent".

    `overrides` go to the provider constructor (tests pass http_client).
    """
    # `purpose` (an agent's name, "agent", "chat", ...) names the caller; every purpose uses the same
    # model today, and it is the hook for a cheaper model per purpose later.
    if not isinstance(purpose, str) or not purpose.strip():
        raise ValueError(f"purpose must be a non-empty name such as 'agent', got {purpose!r}")
    config = provider_config_for(organization=organization)
    provider_class = _load(config.kind)
    if config.kind == "offline":
        return provider_class(model=config.model, **overrides)
    # A local OpenAI-compatible server (Ollama, llama.cpp, ...) needs no key.
    if not config.api_key and not (config.kind == "openai" and config.base_url):
        setting = KEY_SETTINGS[config.kind]
        if config.source == "organization":
            raise LLMError(
                f"the organization uses {config.kind} but has no LLM API key and {setting} is not set; "
                "add a key to the organization or choose the offline provider",
                retryable=False,
            )
        raise LLMError(f"{setting} is not set; set it or choose LLM_PROVIDER=offline", retryable=False)
    options: dict[str, Any] = {
        "capabilities": ModelCapabilityStore(),
        "context_length": settings.LLM_CONTEXT_TOKENS or None,
        "repair_turns": settings.LLM_REPAIR_TURNS,
        "max_output_tokens": settings.LLM_MAX_OUTPUT_TOKENS,
    }
    if config.kind == "openai":
        options["num_ctx"] = settings.OLLAMA_NUM_CTX or None
    return provider_class(
        api_key=config.api_key,
        model=config.model,
        base_url=config.base_url,
        timeout=settings.LLM_TIMEOUT_SECONDS,
        max_retries=settings.LLM_MAX_RETRIES,
        **{**options, **overrides},
    )


def capability_probe_again(*, key: CapabilityKey, **overrides: Any) -> Capabilities:
    """Probe a model again now, with the credentials of the platform or of an organization that uses it.

    `overrides` go to the provider constructor, as for provider_for.
    """
    candidates = [None, *Organization.objects.exclude(llm_provider="", llm_model="", llm_base_url="")]
    for organization in candidates:
        try:
            config = provider_config_for(organization=organization)
        except LLMError:
            continue
        if (config.kind, config.model) != (key.kind, key.model) or config.kind == "offline":
            continue
        try:
            provider = provider_for(organization=organization, **overrides)
        except LLMError:
            continue
        if provider.capability_key == key:
            return provider.probe()
    raise LLMError(
        f"neither the platform settings nor any organization uses {key} any more, so it cannot be probed; "
        "delete the row instead",
        code="not_configured",
    )


def _load(kind: str) -> type:
    module_name, _, class_name = PROVIDER_CLASSES[kind].partition(":")
    return getattr(importlib.import_module(module_name), class_name)
