"""OpenAI-compatible embeddings (OpenAI, vLLM, Ollama, LM Studio ...), asked for 384 dimensions."""

from __future__ import annotations

import openai

from learning.embedders import EMBEDDING_DIMENSIONS, EmbedderError

DEFAULT_MODEL = "text-embedding-3-small"
BATCH_SIZE = 256


class OpenAIEmbedder:
    """Calls /embeddings with dimensions=384; the SDK retries 429 and 5xx answers with backoff."""

    dimensions = EMBEDDING_DIMENSIONS

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None = None,
        model: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 3,
        http_client=None,
    ):
        if not api_key and not base_url:
            raise EmbedderError("EMBEDDER=openai needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)")
        self.model = model or DEFAULT_MODEL
        self.name = f"openai:{self.model}"
        # Local OpenAI-compatible servers often need no key; the SDK insists on one.
        self._client = openai.OpenAI(
            api_key=api_key or "unused",
            base_url=base_url or None,
            timeout=timeout,
            max_retries=max_retries,
            http_client=http_client,
        )

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), BATCH_SIZE):
            vectors.extend(self._embed_batch(texts[start : start + BATCH_SIZE]))
        return vectors

    def _embed_batch(self, texts: list[str]) -> list[list[float]]:
        try:
            response = self._client.embeddings.create(
                model=self.model, input=texts, dimensions=EMBEDDING_DIMENSIONS, encoding_format="float"
            )
        except openai.RateLimitError as exc:
            raise EmbedderError("the embeddings endpoint is rate limiting requests", retryable=True) from exc
        except openai.APIStatusError as exc:
            retryable = exc.status_code >= 500 or exc.status_code in (408, 409)
            raise EmbedderError(
                f"the embeddings endpoint answered HTTP {exc.status_code}", retryable=retryable
            ) from exc
        except (openai.APIConnectionError, openai.APITimeoutError) as exc:
            raise EmbedderError("the embeddings endpoint could not be reached", retryable=True) from exc
        data = sorted(response.data, key=lambda item: item.index)
        if len(data) != len(texts):
            raise EmbedderError(f"the embeddings endpoint returned {len(data)} vectors for {len(texts)} texts")
        vectors = [list(item.embedding) for item in data]
        for vector in vectors:
            if len(vector) != EMBEDDING_DIMENSIONS:
                raise EmbedderError(
                    f"model {self.model} returned {len(vector)} dimensions, not 384; "
                    "choose a model that supports the dimensions parameter"
                )
        return vectors
