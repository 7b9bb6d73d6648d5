"""What every SDK adapter does the same way: capabilities, fallbacks, context checks and repair.

An adapter subclasses ProviderEngine and implements `_send` (one request in Nectar's terms to
one vendor call), `_probe` (what the model can do) and, where the server can count tokens,
`_count_tokens`. The engine then answers `complete()`:

- A structured answer is asked for in the best mode the model supports, falling back in order:
  response_format json_schema / a forced tool call, then json_object, then the plain-text JSON
  protocol (the schema in the prompt, the JSON object extracted from the answer). An error that
  means "unsupported parameter or feature" moves to the next mode and is recorded on the
  model's capabilities; it is never retried as if it were transient.
- An answer that is not a JSON object, or tool-call arguments that are not JSON, go back to the
  model with the parse error for at most `repair_turns` turns; an answer cut off by max_tokens is
  asked for again with twice the room (up to `max_output_tokens`), then repaired, then refused.
- A model without native tool calling gets its tools described in the prompt and answers
  {"action": "call_tool", ...} in JSON, mapped back to ToolCalls.
- A prompt that cannot fit the model's context window is refused before it is sent, with a
  message naming the sizes.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from dataclasses import dataclass, replace
from typing import Any

from .base import (
    Completion,
    LLMError,
    Message,
    ToolCall,
    ToolSpec,
    Usage,
    context_size_in,
    ensure_object_schema,
    prompt_size_in,
)
from .capabilities import (
    CHARS_PER_TOKEN,
    ESTIMATE_MARGIN,
    EXACT_COUNT_ABOVE,
    MIN_ANSWER_TOKENS,
    MODE_FEATURE,
    TOKENS_PER_MESSAGE,
    Capabilities,
    CapabilityKey,
    CapabilityStore,
    estimate_tokens,
)

logger = logging.getLogger(__name__)

# Stop reasons that mean "cut off by the token limit" (OpenAI, Anthropic).
TRUNCATED = frozenset({"length", "max_tokens", "model_context_window_exceeded"})
# Words an "unsupported" error names when it is about a given capability.
FEATURE_WORDS = {
    "json_schema": ("response_format", "json_schema", "schema", "strict", "structured"),
    "json_object": ("response_format", "json_object", "json mode", "format"),
    "tool_calling": ("tool", "function"),
}
WIDER_WINDOW = (
    "Use a model with a larger context window, or give this one more (OLLAMA_NUM_CTX for Ollama; "
    "LLM_CONTEXT_TOKENS when the server's window is larger than Nectar knows)"
)
REPAIR_PROMPT = (
    "Your previous answer could not be used: {problem}. Answer again with only the JSON object, "
    "no prose and no code fence, matching the schema you were given."
)
SHORTER_PROMPT = (
    "Your previous answer was cut off at {limit} tokens. Answer again, more briefly, so that the whole "
    "answer fits; give only what was asked for."
)


@dataclass(frozen=True)
class Request:
    """One call in Nectar's terms; `mode` says how a structured answer is asked for."""

    mode: str  # "plain", "json_schema", "tools", "json_object" or "text"
    messages: list[Message]
    tools: list[ToolSpec]
    schema: dict[str, Any] | None
    temperature: float
    max_tokens: int

    def then(self, *messages: Message, **changes: Any) -> Request:
        return replace(self, messages=[*self.messages, *messages], **changes)


class _Attempts:
    """Tokens and requests of every attempt behind one answer (fallbacks, repairs, retries)."""

    def __init__(self) -> None:
        self.input_tokens = 0
        self.output_tokens = 0
        self.requests = 0

    def add(self, usage: Usage) -> None:
        self.input_tokens += usage.input_tokens
        self.output_tokens += usage.output_tokens
        self.requests += 1

    @property
    def usage(self) -> Usage:
        return Usage(input_tokens=self.input_tokens, output_tokens=self.output_tokens)

    def finish(self, completion: Completion, *, mode: str, **changes: Any) -> Completion:
        return replace(completion, usage=self.usage, requests=self.requests, mode=mode, **changes)

    def fail(self, error: LLMError) -> LLMError:
        error.usage = self.usage
        error.requests = self.requests
        return error


def extract_json_object(text: str) -> tuple[dict[str, Any] | None, str]:
    """The JSON object in a model's answer (bare, fenced or inside prose), or None and why not."""
    stripped = (text or "").strip()
    if not stripped:
        return None, "the answer was empty"
    decoder = json.JSONDecoder()
    try:
        value = json.loads(stripped)
    except json.JSONDecodeError as error:
        first_error = f"it is not valid JSON ({error.msg} at position {error.pos})"
    else:
        if isinstance(value, dict):
            return value, ""
        return None, f"it is a JSON {type(value).__name__}, not an object"
    # A fenced block, or an object inside prose: the first outermost "{" from which a whole object
    # decodes. A "{" inside a broken object is never taken for the answer (a fragment of it is not).
    for start in _outermost_braces(stripped):
        try:
            value, _end = decoder.raw_decode(stripped, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value, ""
    return None, first_error


def _outermost_braces(text: str):
    """Positions of the "{" that open an object at the top level of the text (strings inside braces skipped)."""
    depth, in_string, escaped = 0, False, False
    for position, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == "{":
            if depth == 0:
                yield position
            depth += 1
        elif char == "}" and depth:
            depth -= 1
        elif char == '"' and depth:
            in_string = True


def schema_instruction(schema: dict[str, Any]) -> str:
    return (
        "Answer with one JSON object and nothing else (no prose, no code fence). It must match this JSON Schema:\n"
        + json.dumps(schema, separators=(",", ":"))
    )


def tool_protocol_schema(tools: list[ToolSpec], answer_schema: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "action": {"type": "string", "enum": ["call_tool", "answer"]},
            "tool": {"type": "string", "enum": [tool.name for tool in tools]},
            "arguments": {"type": "object"},
            "answer": answer_schema or {"type": "string"},
        },
        "required": ["action"],
    }


def tool_protocol_prompt(tools: list[ToolSpec]) -> str:
    lines = [
        "You can use these tools. To call one, answer "
        '{"action": "call_tool", "tool": "<name>", "arguments": {...}}; the result comes back in the next message. '
        'When you need no more tools, answer {"action": "answer", "answer": ...}.'
    ]
    for tool in tools:
        arguments = json.dumps(tool.input_schema.get("properties", {}), separators=(",", ":"))
        lines.append(f"- {tool.name}: {tool.description} Arguments: {arguments}")
    return "\n".join(lines)


def as_text_conversation(messages: list[Message], tools: list[ToolSpec]) -> list[Message]:
    """A tool-use conversation rewritten for a model without native tool calling."""
    protocol = tool_protocol_prompt(tools)
    result: list[Message] = []
    has_system = False
    for message in messages:
        if message.role == "system" and not has_system:
            result.append(Message("system", f"{message.content}\n\n{protocol}"))
            has_system = True
        elif message.role == "assistant" and message.tool_calls:
            calls = "\n".join(
                json.dumps({"action": "call_tool", "tool": call.name, "arguments": call.arguments})
                for call in message.tool_calls
            )
            result.append(Message("assistant", f"{message.content}\n{calls}".strip()))
        elif message.role == "tool":
            result.append(Message("user", f"Result of {message.name or 'the tool'}: {message.content}"))
        else:
            result.append(Message(message.role, message.content))
    if not has_system:
        result.insert(0, Message("system", protocol))
    return result


def prompt_chars(request: Request) -> int:
    chars = 0
    for message in request.messages:
        chars += len(message.content or "")
        for call in message.tool_calls:
            chars += len(call.name) + len(json.dumps(call.arguments))
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description) + len(json.dumps(tool.input_schema))
    if request.schema is not None and request.mode in ("json_schema", "tools", "json_object"):
        chars += len(json.dumps(request.schema))
    return chars


def prompt_text(request: Request) -> str:
    """The request flattened to text, for a server-side tokenizer."""
    parts = [message.content or "" for message in request.messages]
    parts += [json.dumps(call.arguments) for message in request.messages for call in message.tool_calls]
    parts += [f"{tool.name}: {tool.description} {json.dumps(tool.input_schema)}" for tool in request.tools]
    if request.schema is not None and request.mode in ("json_schema", "tools", "json_object"):
        parts.append(json.dumps(request.schema))
    return "\n".join(parts)


class ProviderEngine:
    """The shared half of an SDK adapter (see the module docstring); subclasses talk to the vendor."""

    name = "provider"
    vendor = "The language model"
    # The structured modes this vendor's API offers, best first.
    native_modes: tuple[str, ...] = ("tools", "text")

    def __init__(
        self,
        *,
        capabilities: CapabilityStore | None = None,
        context_length: int | None = None,
        repair_turns: int = 2,
        max_output_tokens: int = 8192,
    ) -> None:
        if repair_turns < 0:
            raise ValueError(f"repair_turns must be 0 or more, got {repair_turns}")
        self._store = capabilities
        self._context_override = context_length or None
        self.repair_turns = repair_turns
        self.max_output_tokens = max_output_tokens
        self._capabilities: Capabilities | None = None
        self._lock = threading.RLock()

    # --- what subclasses provide -----------------------------------------------------------
    model: str
    base_url: str

    def _send(self, request: Request) -> Completion:
        raise NotImplementedError

    def _probe(self) -> tuple[Capabilities, int]:
        """What the model can do, and the tokens the probe spent."""
        return Capabilities(probed=True), 0

    def _count_tokens(self, request: Request, capabilities: Capabilities) -> int | None:
        return None

    # --- capabilities ------------------------------------------------------------------------
    @property
    def capability_key(self) -> CapabilityKey:
        return CapabilityKey(kind=self.name, base_url=self.base_url, model=self.model)

    @property
    def capabilities(self) -> Capabilities:
        """The model's capabilities: remembered, else probed once (when a store keeps them)."""
        with self._lock:
            if self._capabilities is None:
                known = self._store.load(self.capability_key) if self._store is not None else None
                if known is None and self._store is not None:
                    known, tokens = self._probe()
                    self._store.save(self.capability_key, known, probed=True, probe_tokens=tokens)
                    logger.info("probed %s: %s", self.capability_key, known.as_dict())
                self._capabilities = known or Capabilities()
            return self._capabilities

    def probe(self) -> Capabilities:
        """Probe the model again now (admin's "probe again") and keep the result."""
        found, tokens = self._probe()
        with self._lock:
            self._capabilities = found
        if self._store is not None:
            self._store.save(self.capability_key, found, probed=True, probe_tokens=tokens)
        return found

    def _learn(self, capabilities: Capabilities) -> None:
        with self._lock:
            self._capabilities = capabilities
        if self._store is not None:
            self._store.save(self.capability_key, capabilities)

    def _mark_unsupported(self, feature: str, error: LLMError) -> None:
        logger.warning("%s: %s is not supported (%s); falling back", self.capability_key, feature, error.message)
        self._learn(self.capabilities.without(feature, error.message))

    def _is_unsupported(self, error: LLMError, feature: str) -> bool:
        text = error.message.lower()
        return error.code == "unsupported" and any(word in text for word in FEATURE_WORDS[feature])

    def context_length(self) -> int | None:
        return self._context_override or self.capabilities.context_length

    # --- the one public call -----------------------------------------------------------------
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
        # `context` is for the offline planner only.
        schema = ensure_object_schema(response_schema) if response_schema is not None else None
        tools = list(tools or [])
        attempts = _Attempts()
        try:
            if tools and self.capabilities.tool_calling is False:
                return self._tool_protocol(messages, tools, schema, temperature, max_tokens, attempts)
            if schema is None:
                request = Request("plain", list(messages), tools, None, temperature, max_tokens)
                try:
                    return self._converse(request, attempts, expect_structured=False)
                except LLMError as error:
                    if not tools or not self._is_unsupported(error, "tool_calling"):
                        raise
                    self._mark_unsupported("tool_calling", error)
                    return self._tool_protocol(messages, tools, schema, temperature, max_tokens, attempts)
            return self._structured(list(messages), tools, schema, temperature, max_tokens, attempts)
        except LLMError as error:
            raise attempts.fail(error) from None

    # --- how ---------------------------------------------------------------------------------
    def _structured(self, messages, tools, schema, temperature, max_tokens, attempts: _Attempts) -> Completion:
        modes = [mode for mode in self.capabilities.structured_modes() if mode in self.native_modes]
        for mode in modes:
            prompt = messages
            if mode in ("json_object", "text"):
                prompt = [*messages, Message("user", schema_instruction(schema))]
            request = Request(mode, prompt, tools, schema, temperature, max_tokens)
            try:
                return self._converse(request, attempts, expect_structured=True)
            except LLMError as error:
                if mode == "text" or not self._is_unsupported(error, MODE_FEATURE[mode]):
                    raise
                self._mark_unsupported(MODE_FEATURE[mode], error)
        raise LLMError(f"{self.vendor} offers no way to answer with a JSON object", code="unsupported")

    def _tool_protocol(self, messages, tools, schema, temperature, max_tokens, attempts: _Attempts) -> Completion:
        completion = self._structured(
            as_text_conversation(messages, tools),
            [],
            tool_protocol_schema(tools, schema),
            temperature,
            max_tokens,
            attempts,
        )
        value = completion.structured or {}
        names = {tool.name for tool in tools}
        mode = f"tool_protocol/{completion.mode}"
        if value.get("action") == "call_tool" and value.get("tool") in names:
            arguments = value.get("arguments") if isinstance(value.get("arguments"), dict) else {}
            call = ToolCall(id=f"call_{uuid.uuid4().hex[:12]}", name=value["tool"], arguments=arguments)
            return replace(completion, text="", tool_calls=(call,), structured=None, mode=mode)
        answer = value.get("answer")
        if schema is not None:
            structured = answer if isinstance(answer, dict) else None
            return replace(completion, text="", structured=structured, mode=mode)
        text = answer if isinstance(answer, str) else json.dumps(answer) if answer is not None else ""
        return replace(completion, text=text, structured=None, mode=mode)

    def _converse(self, request: Request, attempts: _Attempts, *, expect_structured: bool) -> Completion:
        """One answer, repaired or asked again with more room until it can be used (bounded)."""
        turns = 0
        grown = False
        while True:
            completion: Completion | None
            try:
                completion = self._attempt(request, attempts)
            except LLMError as error:
                if error.code == "truncated":
                    completion = None  # tool-call arguments cut off by max_tokens
                elif error.code == "invalid_output" and turns < self.repair_turns:
                    # Tool-call arguments that are not JSON: say so and ask again.
                    turns += 1
                    request = request.then(Message("user", REPAIR_PROMPT.format(problem=error.message)))
                    continue
                else:
                    raise
            needs_answer = expect_structured and not (completion and completion.tool_calls)
            cut = completion is None or (
                completion.stop_reason in TRUNCATED and (needs_answer or bool(completion.tool_calls))
            )
            if cut:
                # A cut-off object or tool call cannot be trusted: more room once, then "shorter".
                bigger = min(request.max_tokens * 2, self.max_output_tokens)
                if not grown and bigger > request.max_tokens:
                    grown = True
                    request = replace(request, max_tokens=bigger)
                    continue
                if turns >= self.repair_turns:
                    raise LLMError(
                        f"{self.vendor}'s answer was cut off at {request.max_tokens} tokens "
                        f"{attempts.requests} times in a row (max_tokens); the answer asked for is too long",
                        code="truncated",
                    )
                turns += 1
                partial = [Message("assistant", completion.text)] if completion and completion.text else []
                request = request.then(*partial, Message("user", SHORTER_PROMPT.format(limit=request.max_tokens)))
                continue
            assert completion is not None
            if not needs_answer:
                return attempts.finish(completion, mode=request.mode)
            if completion.structured is not None:
                value, problem = completion.structured, ""
            else:
                value, problem = extract_json_object(completion.text)
            if value is not None:
                return attempts.finish(completion, mode=request.mode, structured=value)
            if turns >= self.repair_turns:
                raise LLMError(
                    f"{self.vendor} did not answer with a JSON object in {attempts.requests} tries ({problem})",
                    code="invalid_output",
                )
            turns += 1
            request = request.then(
                Message("assistant", completion.text or "(no answer)"),
                Message("user", REPAIR_PROMPT.format(problem=problem)),
            )

    def _attempt(self, request: Request, attempts: _Attempts) -> Completion:
        request = self._fit(request)
        try:
            completion = self._send(request)
        except LLMError as error:
            if error.usage.total_tokens:
                attempts.add(error.usage)  # an answer came back, but could not be used
            if error.code == "context_length":
                raise self._context_error(error) from None
            raise
        attempts.add(completion.usage)
        return completion

    # --- context window ------------------------------------------------------------------------
    def _fit(self, request: Request) -> Request:
        """The request, with max_tokens trimmed to the room left; refused when the prompt cannot fit."""
        window = self.context_length()
        if not window:
            return request
        chars = prompt_chars(request)
        prompt = estimate_tokens(chars, len(request.messages))
        how = (
            f"estimated from {chars:,} characters at {CHARS_PER_TOKEN:g} characters per token "
            f"plus {round((ESTIMATE_MARGIN - 1) * 100)}%"
        )
        if prompt + request.max_tokens > window * EXACT_COUNT_ABOVE:
            counted = self._count_tokens(request, self.capabilities)
            if counted:
                prompt = counted + TOKENS_PER_MESSAGE * len(request.messages)
                how = "counted by the server's tokenizer"
        room = window - prompt
        if room >= request.max_tokens:
            return request
        needed = min(MIN_ANSWER_TOKENS, request.max_tokens)
        if room >= needed:
            return replace(request, max_tokens=room)
        raise LLMError(
            f"the prompt for {self.model} is about {prompt:,} tokens ({how}); with at least {needed:,} tokens for "
            f"the answer it does not fit the model's context window of {window:,} tokens. {WIDER_WINDOW}",
            code="context_length",
        )

    def _context_error(self, error: LLMError) -> LLMError:
        """The server said the prompt is too long: remember its window and say so plainly."""
        window = context_size_in(error.message)
        prompt = prompt_size_in(error.message)
        if window and window != self.capabilities.context_length:
            self._learn(replace(self.capabilities, context_length=window))
        if window and prompt:
            message = (
                f"the prompt for {self.model} is {prompt:,} tokens (as the server counted them), too long for the "
                f"model's context window of {window:,} tokens. {WIDER_WINDOW}"
            )
        else:
            sizes = f" of {window:,} tokens" if window else ""
            message = f"the prompt does not fit {self.model}'s context window{sizes} ({error.message})"
        return LLMError(message, status=error.status, code="context_length")
