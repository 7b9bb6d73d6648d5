import json
import sys
import types

import httpx2
import numpy as np
import pytest

from learning.embedders import EMBEDDING_DIMENSIONS, Embedder, EmbedderError, embedder_create, embedder_from_settings
from learning.embedders.local import LocalEmbedder
from learning.embedders.openai_compatible import OpenAIEmbedder


def cos(a, b):
    return float(np.dot(a, b))


def test_local_embedder_is_deterministic_normalised_and_384_dimensional():
    embedder = LocalEmbedder()
    first, second = embedder.embed(["Top customers by revenue", "Top customers by revenue"])
    assert first == second
    assert len(first) == EMBEDDING_DIMENSIONS
    assert abs(np.linalg.norm(first) - 1.0) < 1e-9
    assert isinstance(embedder, Embedder)
    # Hashing uses blake2b, so the vector is the same in every process.
    assert round(first[np.argmax(np.abs(first))], 6) == round(
        LocalEmbedder().embed(["Top customers by revenue"])[0][np.argmax(np.abs(first))], 6
    )


def test_local_embedder_ranks_paraphrases_above_unrelated_text():
    embedder = LocalEmbedder()
    query, paraphrase, unrelated_1, unrelated_2 = embedder.embed(
        [
            "best clients ranked by sales over the past quarter",
            "top customers by total revenue in the last three months",
            "employees hired per department",
            "warehouse temperature sensor readings",
        ]
    )
    assert cos(query, paraphrase) > cos(query, unrelated_1) + 0.15
    assert cos(query, paraphrase) > cos(query, unrelated_2) + 0.15


def test_local_embedder_links_churn_words_to_inactivity():
    embedder = LocalEmbedder()
    q, churn, other = embedder.embed(
        ["customers with no activity lately", "churned buyers", "monthly revenue per store"]
    )
    assert cos(q, churn) > cos(q, other)


def test_empty_text_embeds_to_the_zero_vector_without_error():
    assert LocalEmbedder().embed([""]) == [[0.0] * EMBEDDING_DIMENSIONS]


def test_registry_builds_the_configured_embedder(settings):
    settings.EMBEDDER = "local"
    assert embedder_from_settings().name == "local-hash-v1"
    with pytest.raises(EmbedderError, match="not a known embedder"):
        embedder_create(kind="word2vec")


# --- OpenAI-compatible, against recorded-shape HTTP responses ------------------------------------


def _embedding_response(request, dims=EMBEDDING_DIMENSIONS):
    body = json.loads(request.content)
    return httpx2.Response(
        200,
        json={
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": [0.01 * (i + 1)] * dims}
                for i in range(len(body["input"]))
            ],
            "model": body["model"],
            "usage": {"prompt_tokens": 8, "total_tokens": 8},
        },
    )


def _client(handler):
    return httpx2.Client(transport=httpx2.MockTransport(handler))


def test_openai_embedder_asks_for_384_dimensions_and_returns_vectors_in_order():
    seen = []

    def handler(request):
        seen.append(request)
        return _embedding_response(request)

    embedder = OpenAIEmbedder(
        api_key="sk-test-fake",
        base_url="https://llm.example.test/v1",
        model="text-embedding-3-small",
        http_client=_client(handler),
    )
    vectors = embedder.embed(["a", "b"])
    assert [v[0] for v in vectors] == [0.01, 0.02]
    assert len(vectors[0]) == 384
    request = seen[0]
    assert request.method == "POST"
    assert request.url.path == "/v1/embeddings"
    assert request.headers["authorization"] == "Bearer sk-test-fake"
    body = json.loads(request.content)
    assert body == {
        "model": "text-embedding-3-small",
        "input": ["a", "b"],
        "dimensions": 384,
        "encoding_format": "float",
    }


def test_openai_embedder_retries_rate_limits_and_server_errors_then_succeeds():
    answers = iter([429, 500])

    def handler(request):
        status = next(answers, 200)
        if status != 200:
            return httpx2.Response(status, headers={"retry-after-ms": "1"}, json={"error": {"message": "busy"}})
        return _embedding_response(request)

    embedder = OpenAIEmbedder(
        api_key="sk-test-fake", base_url="https://llm.example.test/v1", http_client=_client(handler)
    )
    assert len(embedder.embed(["x"])[0]) == 384


def test_openai_embedder_reports_a_retryable_error_when_rate_limited_past_its_retries():
    def handler(request):
        return httpx2.Response(429, headers={"retry-after-ms": "1"}, json={"error": {"message": "slow down"}})

    embedder = OpenAIEmbedder(
        api_key="sk-test-fake", base_url="https://llm.example.test/v1", max_retries=1, http_client=_client(handler)
    )
    with pytest.raises(EmbedderError) as caught:
        embedder.embed(["x"])
    assert caught.value.retryable is True
    assert "sk-test-fake" not in str(caught.value)


def test_openai_embedder_rejects_a_model_that_ignores_the_dimensions_parameter():
    embedder = OpenAIEmbedder(
        api_key="sk-test-fake",
        base_url="https://llm.example.test/v1",
        http_client=_client(lambda request: _embedding_response(request, dims=1536)),
    )
    with pytest.raises(EmbedderError, match="1536 dimensions") as caught:
        embedder.embed(["x"])
    assert caught.value.retryable is False


def test_openai_embedder_refuses_bad_credentials_without_retrying():
    calls = []

    def handler(request):
        calls.append(request)
        return httpx2.Response(401, json={"error": {"message": "bad key"}})

    embedder = OpenAIEmbedder(
        api_key="sk-test-fake", base_url="https://llm.example.test/v1", http_client=_client(handler)
    )
    with pytest.raises(EmbedderError) as caught:
        embedder.embed(["x"])
    assert caught.value.retryable is False
    assert len(calls) == 1


# --- sentence-transformers --------------------------------------------------------------------------


def _fake_sentence_transformers(monkeypatch, dims):
    module = types.ModuleType("sentence_transformers")

    class SentenceTransformer:
        def __init__(self, name, device=None):
            self.name = name

        def get_sentence_embedding_dimension(self):
            return dims

        def encode(self, texts, normalize_embeddings, convert_to_numpy):
            return np.ones((len(texts), dims)) / np.sqrt(dims)

    module.SentenceTransformer = SentenceTransformer
    monkeypatch.setitem(sys.modules, "sentence_transformers", module)


def test_sentence_transformers_embedder_uses_a_384_dimensional_model(monkeypatch):
    _fake_sentence_transformers(monkeypatch, 384)
    embedder = embedder_create(kind="sentence-transformers", model="all-MiniLM-L6-v2")
    assert embedder.name == "st:all-MiniLM-L6-v2"
    assert len(embedder.embed(["hello"])[0]) == 384


def test_sentence_transformers_embedder_refuses_a_model_of_another_size(monkeypatch):
    _fake_sentence_transformers(monkeypatch, 768)
    with pytest.raises(EmbedderError, match="768 dimensions"):
        embedder_create(kind="sentence-transformers", model="all-mpnet-base-v2")


def test_sentence_transformers_embedder_explains_a_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(EmbedderError, match="pip install sentence-transformers"):
        embedder_create(kind="sentence-transformers")
