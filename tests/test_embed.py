"""Embeddings: the real offline default model, the cache, and the OpenAI-compatible provider."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest

from graphgen.config import EmbeddingSettings, LLMSettings
from graphgen.embed import (
    DEFAULT_MODEL,
    Embedder,
    EmbeddingCache,
    EmbeddingError,
    OpenAIEmbedder,
    SentenceTransformerEmbedder,
    bundled_model_path,
    create_embedder,
    embed_texts,
    resolve_model_path,
)
from graphgen.stages.pairs import PairOptions, find_fusion_pairs
from graphgen.records import SeedQuestion

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "seeds" / "gsm8k_train.jsonl"


class CountingEmbedder(Embedder):
    """A tiny deterministic embedder that records every text it is asked to embed."""

    def __init__(self, key: str = "count:v1", dim: int = 8, batch_size: int = 4):
        self.key, self.dim, self.batch_size = key, dim, batch_size
        self.calls: list[list[str]] = []

    def embed(self, texts):
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for ch in t:
                out[i, ord(ch) % self.dim] += 1.0
            out[i, len(t) % self.dim] += 0.5
        return out

    @property
    def embedded(self) -> list[str]:
        return [t for call in self.calls for t in call]


# --- cache and embed_texts ---------------------------------------------------------------------


def test_embed_texts_caches_and_never_embeds_twice(tmp_path):
    emb = CountingEmbedder()
    texts = ["one", "two two", "three three three", "one", "four", "two two"]
    with EmbeddingCache(tmp_path / "emb.db") as cache:
        v1 = embed_texts(texts, emb, cache, progress=False)
        assert sorted(emb.embedded) == ["four", "one", "three three three", "two two"]  # repeats once
        assert cache.count(emb.key) == 4
        assert v1.shape == (6, 8) and v1.dtype == np.float32
        assert np.allclose(np.linalg.norm(v1, axis=1), 1.0, atol=1e-6)
        assert np.array_equal(v1[0], v1[3]) and np.array_equal(v1[1], v1[5])
        # rows follow the input order even though the embedder saw them longest first
        direct = emb.embed(texts)
        direct /= np.linalg.norm(direct, axis=1, keepdims=True)
        assert np.allclose(v1, direct, atol=1e-6)
        emb.calls.clear()

        v2 = embed_texts(texts, emb, cache, progress=False)
        assert emb.calls == [] and np.array_equal(v1, v2)
        v3 = embed_texts(["five", "one", "six"], emb, cache, progress=False)
        assert sorted(emb.embedded) == ["five", "six"]
        assert np.array_equal(v3[1], v1[0])
    # persistent: a new cache object on the same file
    emb.calls.clear()
    with EmbeddingCache(tmp_path / "emb.db") as cache:
        embed_texts(texts, emb, cache, progress=False)
        assert emb.calls == [] and cache.count() == 6
        # another model key does not share vectors
        other = CountingEmbedder(key="count:v2")
        embed_texts(["one"], other, cache, progress=False)
        assert other.embedded == ["one"]
        assert cache.models() == ["count:v1", "count:v2"]


def test_embed_texts_streams_in_chunks_longest_first(tmp_path):
    emb = CountingEmbedder(batch_size=2)
    texts = [("x" * (i % 13 + 1)) + str(i) for i in range(50)]
    with EmbeddingCache(tmp_path / "emb.db") as cache:
        embed_texts(texts, emb, cache, progress=False, chunk_size=8)
    assert [len(c) for c in emb.calls] == [8] * 6 + [2]
    lengths = [len(t) for t in emb.embedded]
    assert lengths == sorted(lengths, reverse=True)


def test_embed_texts_without_cache_and_empty():
    emb = CountingEmbedder()
    assert embed_texts(["a", "b"], emb, None, progress=False).shape == (2, 8)
    assert embed_texts([], emb, None, progress=False).shape[0] == 0


def test_progress_goes_to_stderr(tmp_path, capsys):
    embed_texts(["alpha", "beta"], CountingEmbedder(), EmbeddingCache(tmp_path / "e.db"), progress=True)
    out, err = capsys.readouterr()
    assert out == "" and "embedding" in err and "2/2" in err
    assert "\r" not in err  # not a terminal: plain lines (graphgen.progress), no carriage-return bar


def test_interrupted_run_keeps_finished_chunks(tmp_path):
    class Failing(CountingEmbedder):
        def embed(self, texts):
            if len(self.calls) == 2:
                raise RuntimeError("boom")
            return super().embed(texts)

    emb = Failing(batch_size=1)
    texts = [f"text {i}" for i in range(10)]
    with EmbeddingCache(tmp_path / "e.db") as cache:
        with pytest.raises(RuntimeError):
            embed_texts(texts, emb, cache, progress=False, chunk_size=3)
        assert cache.count() == 6
        again = CountingEmbedder(batch_size=1)
        embed_texts(texts, again, cache, progress=False)
        assert len(again.embedded) == 4


# --- the real default model, offline ---------------------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    return create_embedder(EmbeddingSettings())


def test_default_model_resolves_to_bundled_copy():
    path = bundled_model_path()
    assert path is not None and (path / "model.safetensors").exists()
    assert resolve_model_path(DEFAULT_MODEL) == str(path)
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == str(path)
    assert resolve_model_path(str(path)) == str(path)
    assert resolve_model_path("BAAI/bge-small-en") == "BAAI/bge-small-en"


def test_default_model_loads_offline_on_cpu(minilm):
    assert isinstance(minilm, SentenceTransformerEmbedder)
    assert minilm.key == "st:all-MiniLM-L6-v2"
    assert minilm.device == "cpu" and str(minilm.model.device) == "cpu"
    assert minilm.dimension == 384


def test_unknown_model_offline_is_a_clear_error():
    embedder = create_embedder(EmbeddingSettings(model="no-such-org/no-such-model"))  # loads on first use
    with pytest.raises(EmbeddingError, match="no-such-org/no-such-model"):
        embedder.embed(["What is 1 + 1?"])


# Two GSM8K training questions and hand-written paraphrases of them, checked by reading.
PARAPHRASES = {
    0: "In April Natalia sold hair clips to 48 friends, and in May she sold half as many. "
       "How many clips did she sell in total over the two months?",
    1: "Weng is paid $12 per hour to babysit. She babysat for 50 minutes yesterday. "
       "How much money did she make?",
    4: "Twice every week James sends a letter of 3 pages to each of 2 friends. "
       "How many pages does he write in one year?",
}


def test_real_model_finds_sensible_neighbours(minilm, tmp_path):
    rows = [json.loads(line) for _, line in zip(range(40), GSM8K.open(encoding="utf-8"))]
    seeds = [SeedQuestion(id=f"gsm8k-{i:05d}", question=r["question"], source="gsm8k") for i, r in enumerate(rows)]
    seeds += [SeedQuestion(id=f"para-{i}", question=q, source="para") for i, q in PARAPHRASES.items()]
    with EmbeddingCache(tmp_path / "emb.db") as cache:
        vecs = embed_texts([s.question for s in seeds], minilm, cache, progress=False)
        assert cache.count("st:all-MiniLM-L6-v2") == len(seeds)
    sims = vecs @ vecs.T
    np.fill_diagonal(sims, -1)
    for i in PARAPHRASES:
        p = len(rows) + list(PARAPHRASES).index(i)
        assert int(np.argmax(sims[p])) == i, seeds[int(np.argmax(sims[p]))].question
        assert sims[p, i] > 0.75
    pairs, stats = find_fusion_pairs(seeds, vecs, PairOptions(max_similarity=0.999))
    got = {(p.seed_a, p.seed_b) for p in pairs}
    for i in PARAPHRASES:
        assert (f"gsm8k-{i:05d}", f"para-{i}") in got
    # unrelated problems are far apart
    assert sims[0, 1] < 0.5


def test_real_model_cache_rows_avoid_recompute(minilm, tmp_path):
    texts = ["What is 2 + 2?", "A train travels 60 miles in 1.5 hours. What is its speed?"]
    with EmbeddingCache(tmp_path / "emb.db") as cache:
        v1 = embed_texts(texts, minilm, cache, progress=False)
        # the cached rows are what the model gives
        direct = minilm.embed(texts)
        assert np.allclose(v1, direct / np.linalg.norm(direct, axis=1, keepdims=True), atol=1e-5)

        class NoModel(Embedder):
            key = minilm.key

            def embed(self, texts):  # pragma: no cover - must not be called
                raise AssertionError("embedded again")

        assert np.array_equal(embed_texts(texts, NoModel(), cache, progress=False), v1)


# --- OpenAI-compatible endpoint over real HTTP -------------------------------------------------


def fake_vectors(texts, dim=384):
    from fake_openai import embedding_for

    return np.asarray([embedding_for(t, dim) for t in texts], dtype=np.float32)


def test_openai_provider_against_fake_server(fake_llm, llm_settings, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    settings = EmbeddingSettings(provider="openai", model="text-embedding-3-large", batch_size=3)
    emb = create_embedder(settings, llm_settings)
    assert isinstance(emb, OpenAIEmbedder) and emb.key == "openai:text-embedding-3-large"
    texts = [f"problem number {i}" for i in range(7)] + ["problem number 1", ""]
    cache_path = tmp_path / "emb.db"
    with EmbeddingCache(cache_path) as cache:
        vecs = embed_texts(texts, emb, cache, progress=False)
    assert fake_llm.stats()["total"] == 3  # 8 unique texts, 3 per request
    assert np.allclose(vecs[:7], fake_vectors(texts[:7]), atol=1e-6)
    assert np.array_equal(vecs[1], vecs[7])
    with EmbeddingCache(cache_path) as cache:
        again = embed_texts(texts, emb, cache, progress=False)
    assert fake_llm.stats()["total"] == 3 and np.array_equal(again, vecs)
    # embeddings go through the LLM layer: counted and priced in its tally
    t = emb.client.tally
    assert t.ok == 3 and t.failed == 0 and t.prompt_tokens > 0 and t.cost_usd > 0
    # the key is never logged, cached or shown
    secret = llm_settings.api_key.get_secret_value()
    emb.close()
    for f in tmp_path.iterdir():
        if f.is_file():
            assert secret.encode() not in f.read_bytes(), f
    assert secret not in caplog.text and secret not in repr(emb) and secret not in emb.key


def test_openai_provider_retries_server_errors(fake_llm, llm_settings, tmp_path):
    fake_llm.script([{"status": 500}, {"status": 429, "retry_after_ms": 50}])
    llm = llm_settings.model_copy(update={"max_retries": 3})
    emb = create_embedder(EmbeddingSettings(provider="openai", model="emb", batch_size=16), llm)
    vecs = embed_texts(["a", "b"], emb, EmbeddingCache(tmp_path / "e.db"), progress=False)
    assert np.allclose(vecs, fake_vectors(["a", "b"]), atol=1e-6)
    assert fake_llm.stats()["total"] == 3


def test_openai_provider_unreachable_is_a_clear_error(tmp_path):
    llm = LLMSettings(base_url="http://127.0.0.1:9/v1", api_key="sk-nope", max_retries=0, timeout=2)
    emb = create_embedder(EmbeddingSettings(provider="openai", model="emb"), llm)
    with pytest.raises(EmbeddingError, match="embeddings request"):
        embed_texts(["a"], emb, None, progress=False)
