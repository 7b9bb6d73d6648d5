"""Helpers shared by the SDK adapters (no vendor imports here)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from .base import LLMError, says_context_exceeded, says_unsupported


def error_detail(body: object, fallback: str) -> str:
    """The human part of a vendor's error body: {"error": {"message": ...}} or {"message": ...}."""
    if isinstance(body, dict):
        inner = body.get("error") if isinstance(body.get("error"), dict) else body
        message = inner.get("message") if isinstance(inner, dict) else None
        if isinstance(message, str) and message:
            return message
    return fallback


def parse_json_object(text: str, *, vendor: str, what: str) -> dict[str, Any]:
    """Parse a model's JSON text, tolerating a Markdown code fence around it."""
    stripped = (text or "").strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`")
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
    if not stripped:
        raise LLMError(f"{vendor} did not return {what}", retryable=True)
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as error:
        raise LLMError(
            f"{vendor} returned {what} that is not valid JSON ({error.msg} at position {error.pos})", retryable=True
        ) from None
    if not isinstance(value, dict):
        raise LLMError(f"{vendor} returned {what} that is not a JSON object", retryable=True)
    return value


def guard_retries(http_client: Any, *, default_client: Callable[[], Any]) -> Any:
    """The HTTP client for an SDK, with non-transient server errors marked so its retries skip them.

    The SDKs retry every 5xx (that is their one retry policy, and Nectar's: LLM_MAX_RETRIES), but a
    500 that carries a validation message (llama.cpp's server answering a response_format it does
    not know) or a context-length complaint fails the same way every time: `x-should-retry: false`,
    which both SDKs obey, makes it fail at once so the adapter can fall back instead.
    """
    client = http_client if http_client is not None else default_client()
    hooks = dict(client.event_hooks)
    if _mark_non_transient not in hooks.get("response", []):
        hooks["response"] = [*hooks.get("response", []), _mark_non_transient]
        client.event_hooks = hooks
    return client


def _mark_non_transient(response: Any) -> None:
    if response.status_code < 500 or "x-should-retry" in response.headers:
        return
    response.read()
    try:
        body: object = response.json()
    except ValueError:
        body = None
    detail = error_detail(body, response.text[:2000])
    if says_unsupported(response.status_code, detail) or says_context_exceeded(detail):
        response.headers["x-should-retry"] = "false"
