"""OpenAI Chat Completions adapter; the only module that imports the openai SDK.

Also speaks to any OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio) through base_url.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import openai

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

VENDOR = "OpenAI"
DEFAULT_MODEL = "gpt-4.1-mini"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local servers usually ignore the key, but the SDK insists on one.
PLACEHOLDER_KEY = "not-needed"
# OpenAI's reasoning models refuse a temperature other than the default.
_NO_TEMPERATURE_PREFIXES = ("o1", "o3", "o4", "gpt-5")

StructuredMode = Literal["auto", "json_schema", "tools"]


class OpenAIProvider:
    """OpenAI or an OpenAI-compatible server through the official SDK (its retries, with max_retries)."""

    name = "openai"

    def __init__(
        self,
        *,
        api_key: str | None,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        http_client: Any = None,
        structured_output: StructuredMode = "auto",
    ) -> None:
        if not api_key and not base_url:
            raise LLMError("an OpenAI API key is required (or a base_url of a compatible server)", retryable=False)
        if structured_output not in ("auto", "json_schema", "tools"):
            raise ValueError(f"structured_output must be auto, json_schema or tools, got {structured_output!r}")
        self.model = model or DEFAULT_MODEL
        # Explicit, so the SDK never falls back to OPENAI_BASE_URL from the environment.
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.structured_output: StructuredMode = structured_output
        self._official = "api.openai.com" in self.base_url
        self._secret = api_key
        # One retry policy: the SDK's (429, 408, 409, 5xx, timeouts and connection errors, with
        # backoff and Retry-After); errors that mean "unsupported" are marked so it skips them.
        self._client = openai.OpenAI(
            api_key=api_key or PLACEHOLDER_KEY,
            base_url=self.base_url,
            timeout=timeout,
            max_retries=max_retries,
            http_client=guard_retries(http_client, default_client=openai.DefaultHttpxClient),
        )

    def __repr__(self) -> str:
        return f"OpenAIProvider(model={self.model!r}, base_url={self.base_url!r})"

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
        request: dict[str, Any] = {"model": self.model, "messages": to_openai_messages(messages)}
        # The official API renamed max_tokens; compatible servers mostly know only the old name.
        request["max_completion_tokens" if self._official else "max_tokens"] = max_tokens
        if not (self._official and self.model.startswith(_NO_TEMPERATURE_PREFIXES)):
            request["temperature"] = temperature
        if tools:
            request["tools"] = [to_openai_tool(tool) for tool in tools]
        if response_schema is None:
            return from_openai_response(self._call(request), structured_mode=None)
        schema = ensure_object_schema(response_schema)
        if self.structured_output == "tools":
            return self._complete_with_forced_tool(request, schema, has_tools=bool(tools))
        try:
            response = self._call({**request, "response_format": json_schema_format(schema)})
        except LLMError as error:
            # Some compatible servers reject response_format json_schema: answer through a forced tool,
            # and remember that this server needs it once the tool route has worked.
            if self.structured_output == "json_schema" or error.code != "unsupported":
                raise
            completion = self._complete_with_forced_tool(request, schema, has_tools=bool(tools))
            self.structured_output = "tools"
            return completion
        return from_openai_response(response, structured_mode="json_schema")

    def _complete_with_forced_tool(self, request: dict[str, Any], schema: dict[str, Any], *, has_tools: bool):
        request = {**request, "tools": [*request.get("tools", []), structured_tool(schema)]}
        # Alone, the answer tool is forced; next to real tools the model must call one of them.
        request["tool_choice"] = (
            "required" if has_tools else {"type": "function", "function": {"name": STRUCTURED_TOOL_NAME}}
        )
        return from_openai_response(self._call(request), structured_mode="tools")

    def _call(self, request: dict[str, Any]) -> Any:
        try:
            return self._client.chat.completions.create(**request)
        except openai.APIStatusError as error:
            raise error_from_status(
                vendor=VENDOR if self._official else f"OpenAI-compatible server at {self.base_url}",
                status=error.status_code,
                detail=error_detail(error.body, error.message),
                headers=error.response.headers,
                model=self.model,
                key_setting="OPENAI_API_KEY",
                secrets=(self._secret,),
            ) from None
        except openai.APITimeoutError:
            raise LLMError(f"{VENDOR} did not answer within {self.timeout:g}s", retryable=True) from None
        except openai.APIConnectionError as error:
            reason = redact(str(error.__cause__ or error), self._secret)[:200]
            raise LLMError(f"could not reach {self.base_url}: {reason}", retryable=True) from None


def to_openai_tool(tool: ToolSpec) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.input_schema},
    }


def structured_tool(schema: dict[str, Any]) -> dict[str, Any]:
    return to_openai_tool(
        ToolSpec(name=STRUCTURED_TOOL_NAME, description=STRUCTURED_TOOL_DESCRIPTION, input_schema=schema)
    )


def is_strict_compatible(schema: Any) -> bool:
    """Strict mode needs every object closed (additionalProperties false) with all properties required."""
    if isinstance(schema, list):
        return all(is_strict_compatible(item) for item in schema)
    if not isinstance(schema, dict):
        return True
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False or set(schema.get("required", [])) != set(properties):
            return False
    return all(is_strict_compatible(value) for key, value in schema.items() if key not in ("enum", "const", "default"))


def json_schema_format(schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema, "strict": is_strict_compatible(schema)},
    }


def to_openai_messages(messages: list[Message]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            result.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content})
        elif message.role == "assistant" and message.tool_calls:
            result.append(
                {
                    "role": "assistant",
                    "content": message.content or None,
                    "tool_calls": [
                        {
                            "id": call.id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                        }
                        for call in message.tool_calls
                    ],
                }
            )
        else:
            entry: dict[str, Any] = {"role": message.role, "content": message.content}
            if message.name and message.role == "user":
                entry["name"] = message.name
            result.append(entry)
    return result


def from_openai_response(response: Any, *, structured_mode: Literal["json_schema", "tools"] | None) -> Completion:
    if not response.choices:
        raise LLMError(f"{VENDOR} returned no choices", retryable=True)
    choice = response.choices[0]
    message = choice.message
    if getattr(message, "refusal", None):
        raise LLMError(f"the model refused: {message.refusal[:300]}", retryable=False)
    calls: list[ToolCall] = []
    structured: dict[str, Any] | None = None
    for call in message.tool_calls or []:
        function = getattr(call, "function", None)
        if function is None:
            continue
        arguments = parse_json_object(function.arguments or "{}", vendor=VENDOR, what=f"arguments for {function.name}")
        if structured_mode == "tools" and function.name == STRUCTURED_TOOL_NAME:
            structured = arguments
        else:
            calls.append(ToolCall(id=call.id, name=function.name, arguments=arguments))
    text = message.content or ""
    if structured_mode is not None and structured is None and not calls:
        structured = parse_json_object(text, vendor=VENDOR, what="a structured answer")
    usage = response.usage
    return Completion(
        text=text,
        tool_calls=tuple(calls),
        structured=structured,
        usage=Usage(
            input_tokens=(usage.prompt_tokens or 0) if usage else 0,
            output_tokens=(usage.completion_tokens or 0) if usage else 0,
        ),
        model=response.model or "",
        stop_reason=choice.finish_reason or "",
    )
