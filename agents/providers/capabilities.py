"""What a configured model can do, probed once and remembered (no vendor imports here).

A model is known by its provider kind, base URL and name. Its capabilities say which ways of
getting a structured answer work (a forced tool call, response_format json_schema or
json_object; the plain-text JSON protocol always does), whether it calls tools natively, how
large its context window is and how to count tokens exactly. `None` means "not known yet: try";
`False` means a server said so, and `failures` keeps what it said.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Protocol

# Structured-output modes, best first; "text" (JSON in the answer text, with repair turns) always works.
STRUCTURED_MODES = ("json_schema", "tools", "json_object", "text")
# Which capability each mode depends on.
MODE_FEATURE = {"json_schema": "json_schema", "tools": "tool_calling", "json_object": "json_object"}
FEATURES = ("tool_calling", "json_schema", "json_object")

# Counting tokens without the model's tokenizer (tiktoken and its vocabularies are not available
# offline): English prose runs at about four characters per token and JSON, SQL and identifiers
# nearer three, so 3.5 characters per token plus 15% keeps a prompt that fits on the safe side
# for the BPE tokenizers of current models.
CHARS_PER_TOKEN = 3.5
ESTIMATE_MARGIN = 1.15
TOKENS_PER_MESSAGE = 8  # role markers and separators of a chat template
# Below this share of the window an estimate is trusted; above it the server's tokenizer (when it
# has one) counts exactly, so a prompt that does fit is not refused on an estimate.
EXACT_COUNT_ABOVE = 0.8
# An answer squeezed into less room than this is not worth asking for.
MIN_ANSWER_TOKENS = 256


@dataclass(frozen=True)
class CapabilityKey:
    kind: str
    base_url: str
    model: str

    def __str__(self) -> str:
        return f"{self.kind} {self.model} at {self.base_url}"


@dataclass(frozen=True)
class Capabilities:
    tool_calling: bool | None = None
    json_schema: bool | None = None
    json_object: bool | None = None
    context_length: int | None = None
    tokenizer: str = ""  # URL of the server's token-counting endpoint, "" when it has none
    server: str = ""  # what answered the probe: openai, anthropic, ollama, vllm, llama-cpp-python, ...
    failures: dict[str, str] = field(default_factory=dict)
    probed: bool = False

    def supports(self, feature: str) -> bool | None:
        return getattr(self, feature)

    def without(self, feature: str, reason: str) -> Capabilities:
        """The same model, with `feature` known not to work and why."""
        if feature not in FEATURES:
            raise ValueError(f"unknown capability {feature!r}; expected one of {', '.join(FEATURES)}")
        return replace(self, **{feature: False}, failures={**self.failures, feature: reason[:500]})

    def structured_modes(self) -> list[str]:
        """The structured-output modes to try, in order, leaving out those known not to work."""
        return [mode for mode in STRUCTURED_MODES if mode == "text" or self.supports(MODE_FEATURE[mode]) is not False]

    def as_dict(self) -> dict:
        return {
            "tool_calling": self.tool_calling,
            "json_schema": self.json_schema,
            "json_object": self.json_object,
            "context_length": self.context_length,
            "tokenizer": self.tokenizer,
            "server": self.server,
            "failures": dict(self.failures),
        }


class CapabilityStore(Protocol):
    """Where probed capabilities are kept (the ModelCapability table in production)."""

    def load(self, key: CapabilityKey) -> Capabilities | None: ...

    def save(
        self, key: CapabilityKey, capabilities: Capabilities, *, probed: bool = False, probe_tokens: int = 0
    ) -> None: ...


class MemoryCapabilityStore:
    """A CapabilityStore in a dict: for one process (tests, scripts)."""

    def __init__(self) -> None:
        self.rows: dict[CapabilityKey, Capabilities] = {}
        self.probes: dict[CapabilityKey, int] = {}
        self.probe_tokens: dict[CapabilityKey, int] = {}

    def load(self, key: CapabilityKey) -> Capabilities | None:
        return self.rows.get(key)

    def save(
        self, key: CapabilityKey, capabilities: Capabilities, *, probed: bool = False, probe_tokens: int = 0
    ) -> None:
        self.rows[key] = capabilities
        if probed:
            self.probes[key] = self.probes.get(key, 0) + 1
        self.probe_tokens[key] = self.probe_tokens.get(key, 0) + probe_tokens


def estimate_tokens(text_chars: int, messages: int) -> int:
    """Tokens of a prompt of `text_chars` characters in `messages` messages, erring high."""
    return math.ceil(text_chars / CHARS_PER_TOKEN * ESTIMATE_MARGIN) + TOKENS_PER_MESSAGE * messages + 16
