"""Anthropic Messages API adapter; the only module that imports the anthropic SDK."""

from __future__ import annotations

from typing import Any

import anthropic

from ._common import error_detail, guard_retries, parse_json_object
from .base import (
    STRUCTURED_TOOL_DESCRIPTION,
    STRUCTURED_TOOL_NAME,
    Completion,
    LLMError,
    Message,
    ToolCall,
    ToolSpec,
    Usage,
    ensure_object_schema,
    error_from_status,
    redact,
)

VENDOR = "Anthropic"
DEFAULT_MODEL = "claude-sonnet-4-6"
DEFAULT_BASE_URL = "https://api.anthropic.com"


class AnthropicProvider:
    """Claude through the official SDK (its retries, with max_retries) and Nectar's tool-call mapping."""

    name = "anthropic"

    def __init__(
        self,
        *,
        api_key: str,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        http_client: Any = None,
    ) -> None:
        if not api_key:
            raise LLMError("an Anthropic API key is required", retryable=False)
        self.model = model or DEFAULT_MODEL
        # Explicit, so the SDK never falls back to ANTHROPIC_BASE_URL from the environment.
        self.base_url = base_url or DEFAULT_BASE_URL
        self.timeout = timeout
        self.max_retries = max_retries
        self._secret = api_key
        # One retry policy: the SDK's (429, 408, 409, 5xx and 529, timeouts and connection errors,
        # with backoff and Retry-After); errors that mean "unsupported" are marked so it skips them.
        self._client = anthropic.Anthropic(
            api_key=api_key,
            base_url=self.base_url,
            timeout=timeout,
            max_retries=max_retries,
            http_client=guard_retries(http_client, default_client=anthropic.DefaultHttpxClient),
        )

    def __repr__(self) -> str:
        return f"AnthropicProvider(model={self.model!r}, base_url={self.base_url!r})"

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
        # `temperature` is part of Nectar's interface; this SDK's Messages API no longer takes sampling
        # parameters, so it is not sent. `context` is for the offline planner only.
        system, turns = to_anthropic_messages(messages)
        request: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens, "messages": turns}
        if system:
            request["system"] = system
        tool_params = [to_anthropic_tool(tool) for tool in tools or []]
        if response_schema is not None:
            schema = ensure_object_schema(response_schema)
            tool_params.append(
                {"name": STRUCTURED_TOOL_NAME, "description": STRUCTURED_TOOL_DESCRIPTION, "input_schema": schema}
            )
            # Alone, the answer tool is forced; next to real tools the model must call one of them.
            request["tool_choice"] = {"type": "tool", "name": STRUCTURED_TOOL_NAME} if not tools else {"type": "any"}
        if tool_params:
            request["tools"] = tool_params
        response = self._send(request)
        return from_anthropic_response(response, structured_expected=response_schema is not None)

    def _send(self, request: dict[str, Any]) -> Any:
        try:
            return self._client.messages.create(**request)
        except anthropic.APIStatusError as error:
            raise error_from_status(
                vendor=VENDOR,
                status=error.status_code,
                detail=error_detail(error.body, error.message),
                headers=error.response.headers,
                model=self.model,
                key_setting="ANTHROPIC_API_KEY",
                secrets=(self._secret,),
            ) from None
        except anthropic.APITimeoutError:
            raise LLMError(f"{VENDOR} did not answer within {self.timeout:g}s", retryable=True) from None
        except anthropic.APIConnectionError as error:
            reason = redact(str(error.__cause__ or error), self._secret)[:200]
            raise LLMError(f"could not reach {VENDOR} at {self._client.base_url}: {reason}", retryable=True) from None


def to_anthropic_tool(tool: ToolSpec) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.input_schema}


def to_anthropic_messages(messages: list[Message]) -> tuple[str, list[dict[str, Any]]]:
    """System text apart; tool results become tool_result blocks in a user turn; same-role turns merge."""
    system_parts: list[str] = []
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            system_parts.append(message.content)
            continue
        blocks: list[dict[str, Any]] = []
        if message.role == "tool":
            role = "user"
            blocks.append({"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.content})
        else:
            role = message.role
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            for call in message.tool_calls:
                blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            # The API wants alternating turns; tool results must share one user turn.
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    return "\n\n".join(part for part in system_parts if part), turns


def from_anthropic_response(response: Any, *, structured_expected: bool) -> Completion:
    texts: list[str] = []
    calls: list[ToolCall] = []
    structured: dict[str, Any] | None = None
    for block in response.content:
        if block.type == "text":
            texts.append(block.text)
        elif block.type == "tool_use":
            arguments = dict(block.input) if isinstance(block.input, dict) else {}
            if block.name == STRUCTURED_TOOL_NAME:
                structured = arguments
            else:
                calls.append(ToolCall(id=block.id, name=block.name, arguments=arguments))
    text = "".join(texts)
    if structured_expected and structured is None and not calls:
        structured = parse_json_object(text, vendor=VENDOR, what="a structured answer")
    usage = response.usage
    input_tokens = (
        (usage.input_tokens or 0)
        + (getattr(usage, "cache_creation_input_tokens", None) or 0)
        + (getattr(usage, "cache_read_input_tokens", None) or 0)
    )
    return Completion(
        text=text,
        tool_calls=tuple(calls),
        structured=structured,
        usage=Usage(input_tokens=input_tokens, output_tokens=usage.output_tokens or 0),
        model=response.model,
        stop_reason=response.stop_reason or "",
    )
