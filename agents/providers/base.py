"""Nectar's own vocabulary for talking to a language model, whichever vendor answers."""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

logger = logging.getLogger(__name__)

Role = Literal["system", "user", "assistant", "tool"]
ROLES = ("system", "user", "assistant", "tool")

# The name of the tool a provider forces when it has to return a structured object.
STRUCTURED_TOOL_NAME = "respond_with_json"
STRUCTURED_TOOL_DESCRIPTION = "Give the final answer as a JSON object that matches this tool's input schema exactly."


@dataclass(frozen=True)
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    role: Role
    content: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"Message.role must be one of {', '.join(ROLES)}, got {self.role!r}")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a Message with role 'tool' needs the tool_call_id of the call it answers")
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only an assistant Message can carry tool_calls")
        if not isinstance(self.tool_calls, tuple):
            object.__setattr__(self, "tool_calls", tuple(self.tool_calls))


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True)
class Completion:
    text: str
    tool_calls: tuple[ToolCall, ...]
    structured: dict[str, Any] | None
    usage: Usage  # of every request behind this answer (fallbacks and repair turns included)
    model: str
    stop_reason: str
    mode: str = ""  # how a structured answer was obtained: json_schema, tools, json_object, text, ...
    requests: int = 1  # HTTP requests behind this answer


class LLMError(Exception):
    """A language model call failed; `retryable` says whether trying again later may help."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
        code: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        # "unsupported" (the server rejects a parameter or feature), "context_length", "refused",
        # "invalid_output", "truncated", ...
        self.code = code
        # What the failed attempts spent, so accounting and budgets still see it.
        self.usage = Usage()
        self.requests = 0

    def __str__(self) -> str:
        return self.message


@runtime_checkable
class LLMProvider(Protocol):
    name: str
    model: str

    def complete(
        self,
        *,
        messages: list[Message],
        tools: list[ToolSpec] | None = None,
        response_schema: dict[str, Any] | None = None,
        temperature: float = 0.2,
        max_tokens: int = 2000,
        context: dict[str, Any] | None = None,
    ) -> Completion: ...


# Error classification -----------------------------------------------------------------------

RETRYABLE_STATUSES = frozenset({408, 409, 429})

# What a server says when it does not know a parameter or a feature: FastAPI/pydantic validation
# (vLLM, llama-cpp-python, LM Studio), OpenAI's and Anthropic's invalid_request wording, Ollama's.
_UNSUPPORTED_MARKERS = re.compile(
    r"validation error|input should be|literal_error|extra_forbidden|extra inputs are not permitted"
    r"|not supported|unsupported|does not support|not implemented|unrecognized|unknown (?:parameter|field|argument)"
    r"|invalid (?:parameter|value|type|schema|response_format|tool)|is not one of|must be one of|unexpected keyword",
    re.I,
)
# What a server says when the prompt does not fit the model's context window.
_CONTEXT_MARKERS = re.compile(
    r"context[_ ]length|context window|maximum context|too many tokens|prompt is too long"
    r"|exceeds? (?:the )?(?:model'?s? )?(?:context|max(?:imum)? (?:input|sequence))|n_ctx|max_model_len",
    re.I,
)
_CONTEXT_SIZE = re.compile(
    r"(?:maximum context length is|context window of|max_model_len(?: is| of|=)?|context length of|n_ctx\D{0,4})"
    r"\s*(\d{3,9})",
    re.I,
)


def is_retryable_status(status: int | None) -> bool:
    return status is not None and (status in RETRYABLE_STATUSES or status >= 500)


def says_unsupported(status: int | None, detail: str) -> bool:
    """An answer that means "this parameter or feature is not supported": never transient.

    400 and 422 are about the request itself. llama.cpp's and llama-cpp-python's servers answer
    HTTP 500 with a validation message to a response_format they do not know, and 501 means
    "not implemented": none of these get better by trying again.
    """
    if status is None or says_context_exceeded(detail):
        return False
    if status == 501:
        return True
    return status in (400, 422, 500) and bool(_UNSUPPORTED_MARKERS.search(detail or ""))


def says_context_exceeded(detail: str) -> bool:
    return bool(_CONTEXT_MARKERS.search(detail or ""))


def context_size_in(detail: str) -> int | None:
    """The context window a server names in its error ("maximum context length is 8192 tokens")."""
    match = _CONTEXT_SIZE.search(detail or "")
    return int(match.group(1)) if match else None


# How servers say how long the prompt was: OpenAI, vLLM and llama-cpp-python ("27816 in the messages",
# "your messages resulted in 130000 tokens"), Anthropic ("prompt is too long: 210000 tokens > 200000").
_PROMPT_SIZE = re.compile(
    r"(\d[\d,]*) in the messages|messages resulted in (\d[\d,]*) tokens|prompt is too long: (\d[\d,]*) tokens"
    r"|prompt tokens? \(?(\d[\d,]*)",
    re.I,
)


def prompt_size_in(detail: str) -> int | None:
    """The prompt length a server names in its error, when it names one."""
    match = _PROMPT_SIZE.search(detail or "")
    if not match:
        return None
    return int(next(group for group in match.groups() if group).replace(",", ""))


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Read Retry-After (seconds or an HTTP date) or retry-after-ms; None when absent or unreadable."""
    if not headers:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds:
        try:
            return max(0.0, float(milliseconds) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, parsed.timestamp() - time.time())


# Safety ------------------------------------------------------------------------------------------

_KEY_PATTERN = re.compile(r"\b(sk|sk-ant|sk-proj|key)[-_][A-Za-z0-9_\-*]{6,}")


def redact(text: str, *secrets: str | None) -> str:
    """Remove API keys from text that may end up in an error, a log or an execution record."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return _KEY_PATTERN.sub("[redacted]", text)


def ensure_object_schema(schema: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(schema, dict) or schema.get("type") != "object":
        raise LLMError('response_schema must be a JSON Schema whose "type" is "object"', retryable=False)
    return schema


def error_from_status(
    *,
    vendor: str,
    status: int,
    detail: str,
    headers: Mapping[str, str] | None,
    model: str,
    key_setting: str,
    secrets: tuple[str | None, ...] = (),
) -> LLMError:
    """Turn an HTTP error answer into an LLMError whose message is safe to show and store."""
    detail = redact(detail or "", *secrets)[:300]
    retry_after = parse_retry_after(headers)
    if status == 401:
        message = f"{vendor} rejected the API key (401); check {key_setting} or the organization's LLM key"
    elif status == 403:
        message = f"{vendor} refused the request (403): the API key may not have access to model {model!r}"
    elif status == 404:
        message = f"{vendor} answered 404: model {model!r} or the API endpoint was not found ({detail})"
    elif status == 429:
        message = f"{vendor} rate limit reached (429)"
    elif status in (408, 409):
        message = f"{vendor} asked to try again ({status})"
    elif says_context_exceeded(detail) and status in (400, 413, 422, 500):
        message = f"{vendor} says the prompt is too long for model {model!r} ({status}): {detail}"
        return LLMError(message, status=status, code="context_length")
    elif says_unsupported(status, detail):
        message = f"{vendor} rejected the request ({status}): {detail}"
        return LLMError(message, status=status, code="unsupported")
    elif status >= 500:
        message = f"{vendor} server error ({status})"
    else:
        message = f"{vendor} rejected the request ({status}): {detail}"
    return LLMError(message, retryable=is_retryable_status(status), status=status, retry_after=retry_after)
