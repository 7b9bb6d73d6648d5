"""Text that Nectar cannot store or send on: NUL characters, invalid UTF-8 and lone surrogates.

PostgreSQL text and jsonb cannot hold NUL, and no database driver can encode a lone surrogate;
such a value would fail deep inside a query (and show the platform's SQL). Every entry point
(generated endpoints, the REST API, forms, MCP tool arguments) checks its input with
`text_problem` first and answers with a clear 400 or tool error naming the field.

Raw bytes that are not UTF-8 are decoded with errors="surrogateescape" (see
`query_string_values`), so they arrive here as lone surrogates and are refused the same way.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, quote_from_bytes

MAX_DEPTH = 64
_ASCII = bytes(range(128))


def text_problem(value: str) -> str | None:
    """Why `value` cannot be accepted as text, or None when it can."""
    if "\x00" in value:
        return "contains a NUL character (\\u0000), which text cannot hold"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = value[exc.start]
        if 0xDC80 <= ord(bad) <= 0xDCFF:
            return f"is not valid UTF-8 (byte 0x{ord(bad) - 0xDC00:02X})"
        return f"contains a lone surrogate (\\u{ord(bad):04x}), which is not valid Unicode"
    return None


def _walk(value: Any, path: str, depth: int = 0) -> Iterator[tuple[str, str]]:
    if depth > MAX_DEPTH:
        yield path or "value", f"The value is nested more than {MAX_DEPTH} levels deep."
        return
    if isinstance(value, str):
        if problem := text_problem(value):
            yield path or "value", f"The text {problem}."
    elif isinstance(value, dict):
        for key, item in value.items():
            key_text = key if isinstance(key, str) else str(key)
            where = f"{path}.{key_text}" if path else key_text
            if problem := text_problem(key_text):
                yield text_printable(where), f"The name {problem}."
                continue
            yield from _walk(item, where, depth + 1)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk(item, f"{path}[{index}]" if path else f"[{index}]", depth + 1)


def _clean(value: Any, depth: int = 0) -> bool:
    """Whether _walk would find nothing: the same checks, without naming where (the common case)."""
    if depth > MAX_DEPTH:
        return False
    if isinstance(value, str):
        return text_problem(value) is None
    if isinstance(value, dict):
        return all(
            text_problem(key if isinstance(key, str) else str(key)) is None and _clean(item, depth + 1)
            for key, item in value.items()
        )
    if isinstance(value, list | tuple):
        return all(_clean(item, depth + 1) for item in value)
    return True


def data_text_problem(value: Any, path: str = "") -> tuple[str, str] | None:
    """The first (field, message) about any text in a JSON-like value (keys included), or None."""
    if _clean(value):
        return None  # the paths of every value are worked out only to name a problem
    return next(_walk(value, path), None)


def query_string_values(raw: str | bytes) -> dict[str, list[str]]:
    """A raw query string's (or form body's) values by name, decoded as UTF-8; bytes that are not UTF-8
    become lone surrogates.

    Django decodes query strings with errors="replace", which silently turns bad bytes into U+FFFD;
    this keeps them visible to `text_problem`. A str is taken as the server gave it (ASGI: UTF-8).
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogateescape")
    # Bytes beyond ASCII are percent-escaped first, so literal and escaped bytes decode alike.
    text = quote_from_bytes(raw or b"", safe=_ASCII)
    values: dict[str, list[str]] = {}
    for name, value in parse_qsl(text, keep_blank_values=True, encoding="utf-8", errors="surrogateescape"):
        values.setdefault(name, []).append(value)
    return values


def query_string_problem(raw: str | bytes) -> tuple[str, str] | None:
    """The first (parameter, message) about a raw query string, or None."""
    for name, items in query_string_values(raw).items():
        found = data_text_problem({name: None}) or next(
            (bad for item in items if (bad := data_text_problem(item, name))), None
        )
        if found:
            return found
    return None


def text_printable(value: Any) -> Any:
    """A JSON-like value with NUL and lone surrogates escaped (\\u0000, \\udc80), so an audit row can hold it."""
    if isinstance(value, str):
        if text_problem(value) is None:
            return value
        return value.replace("\x00", "\\u0000").encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {text_printable(k if isinstance(k, str) else str(k)): text_printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [text_printable(v) for v in value]
    return value
