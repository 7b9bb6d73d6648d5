"""Embedders: text -> 384-dimensional vectors, behind one small interface.

Kinds: "local" (built in, no download, deterministic), "openai" (any OpenAI-compatible
embeddings endpoint, asked for dimensions=384) and "sentence-transformers" (a locally installed
384-dimensional model such as all-MiniLM-L6-v2). Vendor packages are imported only inside
their adapter module, when that kind is selected.
"""

from __future__ import annotations

import importlib
from typing import Protocol, runtime_checkable

EMBEDDING_DIMENSIONS = 384


class EmbedderError(Exception):
    """An embedder could not produce vectors. `retryable` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = False):
        super().__init__(message)
        self.retryable = retryable


@runtime_checkable
class Embedder(Protocol):
    name: str
    dimensions: int

    def embed(self, texts: list[str]) -> list[list[float]]: ...


# kind -> "module:Class", imported lazily so an unused vendor SDK is never loaded.
EMBEDDER_KINDS: dict[str, str] = {
    "local": "learning.embedders.local:LocalEmbedder",
    "openai": "learning.embedders.openai_compatible:OpenAIEmbedder",
    "sentence-transformers": "learning.embedders.sentence_transformer:SentenceTransformerEmbedder",
}


def embedder_class(kind: str) -> type:
    try:
        target = EMBEDDER_KINDS[kind]
    except KeyError:
        raise EmbedderError(
            f"EMBEDDER={kind!r} is not a known embedder; expected one of {', '.join(sorted(EMBEDDER_KINDS))}"
        ) from None
    module_name, _, class_name = target.partition(":")
    return getattr(importlib.import_module(module_name), class_name)


def embedder_create(*, kind: str, model: str = "", api_key: str | None = None, base_url: str | None = None) -> Embedder:
    """Build an embedder of one kind from explicit settings (credentials passed in, never read here)."""
    cls = embedder_class(kind)
    if kind == "local":
        return cls()
    if kind == "openai":
        return cls(api_key=api_key, base_url=base_url, model=model or None)
    return cls(model_name=model or None)


_cached: tuple[tuple, Embedder] | None = None


def embedder_from_settings() -> Embedder:
    """The platform's embedder as configured by EMBEDDER, EMBEDDING_MODEL, OPENAI_API_KEY, OPENAI_BASE_URL."""
    global _cached
    from django.conf import settings

    key = (
        settings.EMBEDDER,
        settings.EMBEDDING_MODEL,
        settings.OPENAI_API_KEY,
        settings.OPENAI_BASE_URL,
    )
    if _cached is not None and _cached[0] == key:
        return _cached[1]
    embedder = embedder_create(
        kind=settings.EMBEDDER or "local",
        model=settings.EMBEDDING_MODEL or "",
        api_key=settings.OPENAI_API_KEY,
        base_url=settings.OPENAI_BASE_URL,
    )
    if embedder.dimensions != EMBEDDING_DIMENSIONS:
        raise EmbedderError(f"embedder {embedder.name} gives {embedder.dimensions} dimensions, Nectar needs 384")
    _cached = (key, embedder)
    return embedder


__all__ = [
    "EMBEDDER_KINDS",
    "EMBEDDING_DIMENSIONS",
    "Embedder",
    "EmbedderError",
    "embedder_class",
    "embedder_create",
    "embedder_from_settings",
]
