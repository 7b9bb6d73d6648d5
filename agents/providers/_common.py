"""Helpers shared by the SDK adapters (no vendor imports here)."""

from __future__ import annotations

import json
from typing import Any

from .base import LLMError


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
