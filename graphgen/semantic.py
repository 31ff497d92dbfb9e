"""`graphgen filter --semantic`: near duplicates and benchmark paraphrases by embedding.

Rows still kept after the n-gram and MinHash checks are embedded through the embedding
cache (`graphgen.embed`, so nothing is embedded twice across runs), as are the benchmark
questions. Then:

- semantic near duplicates: each row's nearest neighbours (`graphgen.knn.nearest_neighbours`:
  exact blockwise search, a faiss index for large sets) at cosine >= ``semantic_threshold``
  are linked, and inside each connected group rows are kept by the same rule as the other
  duplicates (verified first, then earliest), each removed row being within the threshold of
  the row it is reported against;
- paraphrases: a row whose nearest benchmark question (faiss inner-product search) is at
  cosine >= ``paraphrase_threshold`` gets a ``paraphrase`` reason; the caller removes it
  only with ``drop_paraphrases``.

Memory: the vectors of the rows searched (n x d float32, 1.5 KB per row for MiniLM).
"""

from __future__ import annotations

import numpy as np

from graphgen.config import Settings
from graphgen.records import FilterReason

NEIGHBOURS = 8  # per row; a group larger than this still links through its members
SEMANTIC_KIND = 3


def _embed(settings: Settings, texts: list[str], quiet: bool) -> np.ndarray:
    from graphgen.embed import EmbeddingCache, create_embedder, embed_texts

    embedder = create_embedder(settings.embedding, settings.llm)
    try:
        with EmbeddingCache(settings.filter.embeddings_cache) as cache:
            return embed_texts(texts, embedder, cache, progress=not quiet)
    finally:
        embedder.close()


def semantic_pass(settings: Settings, texts: list[str], candidates: np.ndarray, rank: np.ndarray,
                  items: list[tuple[str, str, str]], keep_of: np.ndarray, similarity: np.ndarray,
                  kind_of: np.ndarray, quiet: bool = False) -> dict[int, FilterReason]:
    """Mark semantic duplicates among `candidates` (row indices) in keep_of / similarity /
    kind_of; return paraphrase reasons for the rows left kept."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    from graphgen.config import PairOptions
    from graphgen.knn import nearest_neighbours
    from graphgen.neardup import greedy_keep

    opts = settings.filter
    if not len(candidates):
        return {}
    X = _embed(settings, [texts[i] for i in candidates], quiet)
    n = len(candidates)
    if n > 1:
        j, s, _method = nearest_neighbours(X, min(NEIGHBOURS, n - 1), PairOptions(max_similarity=1.0, recall_sample=0))
        ok = (j >= 0) & (s >= opts.semantic_threshold)
        src = np.broadcast_to(np.arange(n)[:, None], j.shape)[ok]
        dst = j[ok]
        if len(src):
            graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n)).tocsr()
            _count, label = connected_components(graph, directed=False)
            local_keep, sims = greedy_keep(label, rank[candidates], lambda a, b: X[a] @ X[b],
                                           opts.semantic_threshold)
            dup = local_keep != np.arange(n)
            keep_of[candidates[dup]] = candidates[local_keep[dup]]
            similarity[candidates[dup]] = sims[dup]
            kind_of[candidates[dup]] = SEMANTIC_KIND
    paraphrases: dict[int, FilterReason] = {}
    if items:
        import faiss

        B = _embed(settings, [text for _b, _i, text in items], quiet)
        index = faiss.IndexFlatIP(B.shape[1])
        index.add(B)
        still = np.flatnonzero(kind_of[candidates] == 0)
        for start in range(0, len(still), 4096):
            rows = still[start:start + 4096]
            s, j = index.search(np.ascontiguousarray(X[rows]), 1)
            for r, sim, item in zip(rows.tolist(), s[:, 0].tolist(), j[:, 0].tolist()):
                if item >= 0 and sim >= opts.paraphrase_threshold:
                    bench, item_id, _text = items[item]
                    paraphrases[int(candidates[r])] = FilterReason(
                        kind="paraphrase", benchmark=bench, item_id=item_id, similarity=round(float(sim), 4),
                        message=f"possible paraphrase of {bench}:{item_id} (cosine {sim:.3f})")
    return paraphrases
