"""Placeholder for the offline planner provider; the real deterministic planner replaces this module."""

from __future__ import annotations

from typing import Any

from .base import Completion, LLMError, Message, ToolSpec


class OfflineProvider:
    name = "offline"

    def __init__(self, *, model: str = "nectar-offline", **_: Any) -> None:
        self.model = model

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
        raise LLMError("the offline planner is not available yet", retryable=False)
