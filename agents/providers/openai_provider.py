"""OpenAI Chat Completions adapter; the only module that imports the openai SDK.

Also speaks to any OpenAI-compatible server (vLLM, Ollama, llama.cpp, LM Studio) through base_url.
What such a server can do differs (llama-cpp-python's server answers HTTP 500 to a json_schema
response_format, Ollama needs num_ctx to use more than its small default window), so a
compatible server is probed once (see `_probe`) and the engine falls back from there.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

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
    error_from_status,
    redact,
)
from .capabilities import MODE_FEATURE, Capabilities, CapabilityStore
from .engine import ProviderEngine, Request, extract_json_object, prompt_text, schema_instruction

VENDOR = "OpenAI"
DEFAULT_MODEL = "gpt-4.1-mini"
DEFAULT_BASE_URL = "https://api.openai.com/v1"
# Local servers usually ignore the key, but the SDK insists on one.
PLACEHOLDER_KEY = "not-needed"
# OpenAI's reasoning models refuse a temperature other than the default.
_NO_TEMPERATURE_PREFIXES = ("o1", "o3", "o4", "gpt-5")
# Context windows of OpenAI's own models (its API does not report them), longest prefix first.
OPENAI_CONTEXT_WINDOWS = (
    ("gpt-4.1", 1_047_576),
    ("gpt-5", 400_000),
    ("gpt-4o", 128_000),
    ("gpt-4-turbo", 128_000),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4", 200_000),
    ("gpt-4", 8_192),
    ("gpt-3.5", 16_385),
)
# Ollama's own default window when num_ctx is not sent.
OLLAMA_DEFAULT_NUM_CTX = 4096
PROBE_TIMEOUT = 10.0
PROBE_SCHEMA = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}
PROBE_MESSAGES = [
    Message("system", "You answer with JSON."),
    Message("user", 'Reply with the JSON object {"ok": true}.'),
]


class OpenAIProvider(ProviderEngine):
    """OpenAI or an OpenAI-compatible server through the official SDK (its retries, with max_retries)."""

    name = "openai"
    vendor = VENDOR
    native_modes = ("json_schema", "tools", "json_object", "text")

    def __init__(
        self,
        *,
        api_key: str | None,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        timeout: float = 60.0,
        max_retries: int = 4,
        http_client: Any = None,
        capabilities: CapabilityStore | None = None,
        context_length: int | None = None,
        num_ctx: int | None = None,
        repair_turns: int = 2,
        max_output_tokens: int = 8192,
    ) -> None:
        if not api_key and not base_url:
            raise LLMError("an OpenAI API key is required (or a base_url of a compatible server)", retryable=False)
        self.model = model or DEFAULT_MODEL
        # Explicit, so the SDK never falls back to OPENAI_BASE_URL from the environment.
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.timeout = timeout
        self.max_retries = max_retries
        self.num_ctx = num_ctx or None
        self._official = "api.openai.com" in self.base_url
        if self._official:
            self.vendor = VENDOR
        else:
            self.vendor = f"the OpenAI-compatible server at {self.base_url}"
        self._secret = api_key
        self._detected_server = ""
        super().__init__(
            capabilities=capabilities,
            # Ollama works within num_ctx, whatever the model could do.
            context_length=context_length or self.num_ctx,
            repair_turns=repair_turns,
            max_output_tokens=max_output_tokens,
        )
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

    @property
    def _root(self) -> str:
        """The server's root URL (OpenAI-compatible APIs live under /v1)."""
        return self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url

    @property
    def _is_ollama(self) -> bool:
        # What is known so far, without probing (this is asked while probing too).
        known = self._capabilities.server if self._capabilities is not None else self._detected_server
        return known == "ollama" or ":11434" in self.base_url

    # --- one call --------------------------------------------------------------------------------
    def _send(self, request: Request) -> Completion:
        # llama-cpp-python's server (and other strict compatible servers) refuse an assistant turn whose
        # content is null next to its tool_calls; OpenAI's API takes either, so they get a string.
        messages = to_openai_messages(request.messages, empty_content=None if self._official else "")
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        # The official API renamed max_tokens; compatible servers mostly know only the old name.
        body["max_completion_tokens" if self._official else "max_tokens"] = request.max_tokens
        if not (self._official and self.model.startswith(_NO_TEMPERATURE_PREFIXES)):
            body["temperature"] = request.temperature
        tools = [to_openai_tool(tool) for tool in request.tools]
        if request.mode == "tools":
            tools.append(structured_tool(request.schema or {}))
            # Alone, the answer tool is forced; next to real tools the model must call one of them.
            body["tool_choice"] = (
                "required" if request.tools else {"type": "function", "function": {"name": STRUCTURED_TOOL_NAME}}
            )
        elif tools:
            # Explicit: llama-cpp-python's function-calling format ignores tools without it.
            body["tool_choice"] = "auto"
        if tools:
            body["tools"] = tools
        if request.mode == "json_schema":
            body["response_format"] = json_schema_format(request.schema or {})
        elif request.mode == "json_object":
            body["response_format"] = {"type": "json_object"}
            if not self._official:
                # llama.cpp's servers constrain the answer to this schema (a grammar); others ignore it.
                body["response_format"]["schema"] = request.schema
        if self.num_ctx and self._is_ollama:
            body["extra_body"] = {"options": {"num_ctx": self.num_ctx}}
        return from_openai_response(self._create(body), forced_tool=request.mode == "tools", vendor=self.vendor)

    def _create(self, body: dict[str, Any]) -> Any:
        try:
            return self._client.chat.completions.create(**body)
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
            raise LLMError(f"{self.vendor} did not answer within {self.timeout:g}s", retryable=True) from None
        except openai.APIConnectionError as error:
            reason = redact(str(error.__cause__ or error), self._secret)[:200]
            raise LLMError(f"could not reach {self.base_url}: {reason}", retryable=True) from None

    # --- what the model can do ---------------------------------------------------------------------
    def _probe(self) -> tuple[Capabilities, int]:
        if self._official:
            # OpenAI's API documents all three; its window is not reported, so it comes from a table.
            window = next((size for prefix, size in OPENAI_CONTEXT_WINDOWS if self.model.startswith(prefix)), None)
            found = Capabilities(
                tool_calling=True,
                json_schema=True,
                json_object=True,
                context_length=window,
                server="openai",
                probed=True,
            )
            return found, 0
        found = self._probe_server()
        tokens = 0
        for mode in ("json_schema", "tools", "json_object"):
            feature = MODE_FEATURE[mode]
            works, reason, used = self._probe_mode(mode)
            tokens += used
            found = replace(found, **{feature: True}) if works else found.without(feature, reason)
        return replace(found, probed=True), tokens

    def _probe_mode(self, mode: str) -> tuple[bool, str, int]:
        messages = PROBE_MESSAGES
        if mode == "json_object":
            messages = [*PROBE_MESSAGES, Message("user", schema_instruction(PROBE_SCHEMA))]
        request = Request(mode, messages, [], PROBE_SCHEMA, 0.0, 48)
        try:
            completion = self._send(request)
        except LLMError as error:
            if error.code in ("unsupported", "invalid_output"):
                return False, error.message, 0
            raise
        value = completion.structured
        if value is None:
            value, _problem = extract_json_object(completion.text)
        if isinstance(value, dict):
            return True, "", completion.usage.total_tokens
        return (
            False,
            f"the server accepted {mode} but answered without a JSON object: {completion.text[:120]!r}",
            completion.usage.total_tokens,
        )

    def _probe_server(self) -> Capabilities:
        """Which server this is, its context window and its token counter, from what it publishes."""
        server, window, tokenizer = "", None, ""
        listing = self._get(f"{self.base_url}/models")
        entries = listing.get("data") if isinstance(listing, dict) else None
        if isinstance(entries, list):
            entry = next((e for e in entries if isinstance(e, dict) and e.get("id") == self.model), None)
            if entry is None and len(entries) == 1 and isinstance(entries[0], dict):
                entry = entries[0]
            if entry:
                meta = entry.get("meta") if isinstance(entry.get("meta"), dict) else {}
                window = _first_int(
                    entry.get("max_model_len"),  # vLLM
                    entry.get("context_length"),
                    entry.get("max_context_length"),  # LM Studio
                    entry.get("context_window"),
                    meta.get("n_ctx"),
                    meta.get("n_ctx_train"),  # llama.cpp's server
                )
                owner = str(entry.get("owned_by") or "")
                server = {"vllm": "vllm", "llamacpp": "llama.cpp"}.get(owner, server)
        version = self._get(f"{self._root}/api/version")
        if isinstance(version, dict) and "version" in version:
            server = self._detected_server = "ollama"
            shown = self._post(f"{self._root}/api/show", {"model": self.model})
            info = shown.get("model_info") if isinstance(shown, dict) else None
            trained = _first_int(*(v for k, v in (info or {}).items() if k.endswith(".context_length")))
            effective = self.num_ctx or OLLAMA_DEFAULT_NUM_CTX
            window = min(effective, trained) if trained else effective
        if window is None:
            props = self._get(f"{self._root}/props")
            if isinstance(props, dict):
                settings = props.get("default_generation_settings")
                window = _first_int(props.get("n_ctx"), settings.get("n_ctx") if isinstance(settings, dict) else None)
                server = server or "llama.cpp"
        counted = self._post(f"{self._root}/extras/tokenize/count", {"input": "Hello world", "model": self.model})
        if isinstance(counted, dict) and isinstance(counted.get("count"), int):
            tokenizer = f"{self._root}/extras/tokenize/count"
            server = server or "llama-cpp-python"
        else:
            counted = self._post(f"{self._root}/tokenize", _tokenize_body(self.model, "Hello world"))
            if isinstance(counted, dict) and ("count" in counted or isinstance(counted.get("tokens"), list)):
                tokenizer = f"{self._root}/tokenize"
                window = window or _first_int(counted.get("max_model_len"))
        return Capabilities(context_length=window, tokenizer=tokenizer, server=server or "openai-compatible")

    def _count_tokens(self, request: Request, capabilities: Capabilities) -> int | None:
        if not capabilities.tokenizer:
            return None
        text = prompt_text(request)
        if capabilities.tokenizer.endswith("/extras/tokenize/count"):
            answer = self._post(capabilities.tokenizer, {"input": text, "model": self.model})
        else:
            answer = self._post(capabilities.tokenizer, _tokenize_body(self.model, text))
        if not isinstance(answer, dict):
            return None
        if isinstance(answer.get("count"), int):
            return answer["count"]
        return len(answer["tokens"]) if isinstance(answer.get("tokens"), list) else None

    def _get(self, url: str) -> Any:
        return self._quietly(lambda: self._client.get(url, cast_to=object, options=_PROBE_OPTIONS))

    def _post(self, url: str, body: dict[str, Any]) -> Any:
        return self._quietly(lambda: self._client.post(url, cast_to=object, body=body, options=_PROBE_OPTIONS))

    @staticmethod
    def _quietly(call) -> Any:
        """A probe of an optional endpoint: its absence (or any failure) is an answer, not an error."""
        try:
            return call()
        except (openai.APIError, ValueError):
            return None


_PROBE_OPTIONS: Any = {"timeout": PROBE_TIMEOUT, "max_retries": 0}


def _tokenize_body(model: str, text: str) -> dict[str, Any]:
    # vLLM reads "prompt", llama.cpp's server "content".
    return {"model": model, "prompt": text, "content": text, "add_special": False}


def _first_int(*values: Any) -> int | None:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


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


def to_openai_messages(messages: list[Message], *, empty_content: str | None = None) -> list[dict[str, Any]]:
    """Chat Completions messages; `empty_content` is what an assistant turn with only tool calls says."""
    result: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "tool":
            result.append({"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content})
        elif message.role == "assistant" and message.tool_calls:
            result.append(
                {
                    "role": "assistant",
                    "content": message.content or empty_content,
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


def from_openai_response(response: Any, *, forced_tool: bool, vendor: str = VENDOR) -> Completion:
    if not response.choices:
        raise LLMError(f"{vendor} returned no choices", retryable=True)
    choice = response.choices[0]
    message = choice.message
    refused = None
    if getattr(message, "refusal", None):
        refused = LLMError(f"the model declined to answer: {message.refusal[:300]}", code="refused")
    elif choice.finish_reason == "content_filter":
        refused = LLMError(f"{vendor} withheld the answer (its content filter stopped it)", code="refused")
    if refused is not None:
        refused.usage = _usage(response.usage)  # a refusal is paid for too: accounting and budgets see it
        raise refused
    truncated = choice.finish_reason == "length"
    calls: list[ToolCall] = []
    structured: dict[str, Any] | None = None
    for call in message.tool_calls or []:
        function = getattr(call, "function", None)
        if function is None:
            continue
        try:
            what = f"arguments for {function.name}"
            arguments = parse_json_object(function.arguments or "{}", vendor=vendor, what=what)
        except LLMError as error:
            # Cut off in the middle of the arguments, or not JSON: the engine asks again.
            error.code = "truncated" if truncated else "invalid_output"
            error.retryable = False  # the engine repairs it; asking the same again would not help
            error.usage = _usage(response.usage)
            raise
        if forced_tool and function.name == STRUCTURED_TOOL_NAME:
            structured = arguments
        else:
            calls.append(ToolCall(id=call.id, name=function.name, arguments=arguments))
    return Completion(
        text=message.content or "",
        tool_calls=tuple(calls),
        structured=structured,
        usage=_usage(response.usage),
        model=response.model or "",
        stop_reason=choice.finish_reason or "",
    )


def _usage(usage: Any) -> Usage:
    return Usage(
        input_tokens=(usage.prompt_tokens or 0) if usage else 0,
        output_tokens=(usage.completion_tokens or 0) if usage else 0,
    )
