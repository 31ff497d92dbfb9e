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


def judge_contamination(settings: Settings, texts: list[str], candidates: np.ndarray,
                        items: list[tuple[str, str, str]], quiet: bool = False):
    """Paraphrase decontamination with the model judge ([judge] contamination): each row's
    `contamination_top_k` nearest benchmark questions at cosine >= `contamination_floor` are
    asked about in both orders ("same problem?" row/item and item/row, as NeMo-Skills does:
    a model's answer can depend on which text comes first); either yes removes the row.
    Returns ({row index: paraphrase reason carrying benchmark, item, cosine and the judge's
    answer}, the Judge (for its tally), pairs asked)."""
    import faiss

    from graphgen.judge import Judge, JudgeAsk

    judge = Judge(settings, quiet=quiet)
    if not len(candidates) or not items:
        return {}, judge, 0
    opts = settings.judge
    X = _embed(settings, [texts[i] for i in candidates], quiet)
    B = _embed(settings, [text for _b, _i, text in items], quiet)
    index = faiss.IndexFlatIP(B.shape[1])
    index.add(B)
    k = min(opts.contamination_top_k, len(items))
    pairs: list[tuple[int, int, float]] = []  # (row index, item index, cosine)
    for start in range(0, len(candidates), 4096):
        block = np.arange(start, min(start + 4096, len(candidates)))
        s, j = index.search(np.ascontiguousarray(X[block]), k)
        for r, sims, its in zip(block.tolist(), s.tolist(), j.tolist()):
            pairs.extend((int(candidates[r]), it, sim) for sim, it in zip(sims, its)
                         if it >= 0 and sim >= opts.contamination_floor)

    def asks(row: int, item: int) -> tuple[JudgeAsk, JudgeAsk]:
        a, b = texts[row], items[item][2]
        return (JudgeAsk(task="same_problem", first=a, second=b), JudgeAsk(task="same_problem", first=b, second=a))

    got = judge.run((x for row, item, _s in pairs for x in asks(row, item)), label="judge contamination")
    found: dict[int, FilterReason] = {}
    for row, item, sim in sorted(pairs, key=lambda p: (p[0], -p[2])):
        if row in found:
            continue
        replies = [got.get(judge.key(x)) for x in asks(row, item)]
        yes = [r for r in replies if r is not None and r.yes]
        if yes:
            bench, item_id, _text = items[item]
            answer = "; ".join(f"{order}: {r.line()}" for order, r in zip(("row first", "item first"), replies)
                               if r is not None)
            found[row] = FilterReason(
                kind="paraphrase", benchmark=bench, item_id=item_id, similarity=round(float(sim), 4), judge=answer,
                message=f"paraphrase of {bench}:{item_id} by the judge (cosine {sim:.3f}; {answer})")
    return found, judge, len(pairs)
