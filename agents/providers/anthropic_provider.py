"""Anthropic Messages API adapter; the only module that imports the anthropic SDK."""

from __future__ import annotations

from typing import Any

import anthropic

from ._common import error_detail, guard_retries
from .base import (
    STRUCTURED_TOOL_DESCRIPTION,
    STRUCTURED_TOOL_NAME,
    Completion,
    LLMError,
    Message,
    ToolCall,
    ToolSpec,
    Usage,
    error_from_status,
    redact,
)
from .capabilities import Capabilities, CapabilityStore
from .engine import ProviderEngine, Request

VENDOR = "Anthropic"
DEFAULT_MODEL = "claude-sonnet-4-6"
DEFAULT_BASE_URL = "https://api.anthropic.com"
# Every current Claude model reads 200k tokens; the Models API says so per model when it can.
DEFAULT_CONTEXT_WINDOW = 200_000
PROBE_TIMEOUT = 10.0


class AnthropicProvider(ProviderEngine):
    """Claude through the official SDK (its retries, with max_retries) and Nectar's tool-call mapping."""

    name = "anthropic"
    vendor = VENDOR
    # A forced tool call is how the Messages API gives a structured answer; text with repair otherwise.
    native_modes = ("tools", "text")

    def __init__(
        self,
        *,
        api_key: str,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        http_client: Any = None,
        capabilities: CapabilityStore | None = None,
        context_length: int | None = None,
        repair_turns: int = 2,
        max_output_tokens: int = 8192,
    ) -> None:
        if not api_key:
            raise LLMError("an Anthropic API key is required", retryable=False)
        self.model = model or DEFAULT_MODEL
        # Explicit, so the SDK never falls back to ANTHROPIC_BASE_URL from the environment.
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self._secret = api_key
        super().__init__(
            capabilities=capabilities,
            context_length=context_length,
            repair_turns=repair_turns,
            max_output_tokens=max_output_tokens,
        )
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

    def _body(self, request: Request) -> dict[str, Any]:
        # `temperature` is part of Nectar's interface; this SDK's Messages API no longer takes sampling
        # parameters, so it is not sent.
        system, turns = to_anthropic_messages(request.messages)
        body: dict[str, Any] = {"model": self.model, "max_tokens": request.max_tokens, "messages": turns}
        if system:
            body["system"] = system
        tool_params = [to_anthropic_tool(tool) for tool in request.tools]
        if request.mode == "tools":
            answer = ToolSpec(STRUCTURED_TOOL_NAME, STRUCTURED_TOOL_DESCRIPTION, request.schema or {})
            tool_params.append(to_anthropic_tool(answer))
            # Alone, the answer tool is forced; next to real tools the model must call one of them.
            forced = {"type": "tool", "name": STRUCTURED_TOOL_NAME}
            body["tool_choice"] = {"type": "any"} if request.tools else forced
        if tool_params:
            body["tools"] = tool_params
        return body

    def _send(self, request: Request) -> Completion:
        return from_anthropic_response(self._call(self._client.messages.create, self._body(request)))

    def _call(self, method, body: dict[str, Any]) -> Any:
        try:
            return method(**body)
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

    def _probe(self) -> tuple[Capabilities, int]:
        """Tool calling is part of the Messages API; the window comes from the Models API (no tokens)."""
        window = DEFAULT_CONTEXT_WINDOW
        try:
            info = self._client.with_options(timeout=PROBE_TIMEOUT, max_retries=0).models.retrieve(self.model)
        except anthropic.APIError:
            info = None
        if info is not None and isinstance(getattr(info, "max_input_tokens", None), int):
            window = info.max_input_tokens
        return (
            Capabilities(
                tool_calling=True,
                json_schema=False,
                json_object=False,
                context_length=window,
                tokenizer="count_tokens",
                server="anthropic",
                failures={"json_schema": "not used with the Messages API", "json_object": "not offered"},
                probed=True,
            ),
            0,
        )

    def _count_tokens(self, request: Request, capabilities: Capabilities) -> int | None:
        """Exact, from the Messages API's free token counter."""
        body = self._body(request)
        body.pop("max_tokens", None)
        try:
            client = self._client.with_options(timeout=PROBE_TIMEOUT, max_retries=0)
            counted = client.messages.count_tokens(**body)
        except anthropic.APIError:
            return None
        return getattr(counted, "input_tokens", None)


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


def from_anthropic_response(response: Any) -> Completion:
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
    usage = response.usage
    input_tokens = (
        (usage.input_tokens or 0)
        + (getattr(usage, "cache_creation_input_tokens", None) or 0)
        + (getattr(usage, "cache_read_input_tokens", None) or 0)
    )
    if response.stop_reason == "refusal":
        error = LLMError(
            "the model declined to answer" + (f": {text.strip()[:300]}" if text.strip() else ""), code="refused"
        )
        error.usage = Usage(input_tokens=input_tokens, output_tokens=usage.output_tokens or 0)
        raise error
    return Completion(
        text=text,
        tool_calls=tuple(calls),
        structured=structured,
        usage=Usage(input_tokens=input_tokens, output_tokens=usage.output_tokens or 0),
        model=response.model,
        stop_reason=response.stop_reason or "",
    )
