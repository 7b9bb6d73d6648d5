"""A locally installed sentence-transformers model; it must produce 384 dimensions itself."""

from __future__ import annotations

from learning.embedders import EMBEDDING_DIMENSIONS, EmbedderError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class SentenceTransformerEmbedder:
    """Embeds on this machine with a 384-dimensional model such as all-MiniLM-L6-v2 (normalised)."""

    dimensions = EMBEDDING_DIMENSIONS

    def __init__(self, *, model_name: str | None = None, device: str | None = None):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderError(
                "EMBEDDER=sentence-transformers needs the sentence-transformers package "
                "(pip install sentence-transformers) and a 384-dimensional model"
            ) from exc
        self.model_name = model_name or DEFAULT_MODEL
        self.name = f"st:{self.model_name}"
        try:
            self._model = SentenceTransformer(self.model_name, device=device)
        except Exception as exc:  # the library raises many kinds (OSError, HF hub errors, ...)
            raise EmbedderError(f"could not load sentence-transformers model {self.model_name}: {exc}") from exc
        size = self._model.get_sentence_embedding_dimension()
        if size != EMBEDDING_DIMENSIONS:
            raise EmbedderError(
                f"model {self.model_name} produces {size} dimensions; Nectar stores 384. "
                "Use a 384-dimensional model such as sentence-transformers/all-MiniLM-L6-v2."
            )

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors = self._model.encode(list(texts), normalize_embeddings=True, convert_to_numpy=True)
        return [[float(v) for v in row] for row in vectors]
