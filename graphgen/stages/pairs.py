"""Fusion pairs: which two seed problems to fuse (MathFusion), by embedding or by graph.

`find_fusion_pairs` pairs each seed with its top-k nearest other seeds by cosine
similarity (graphgen.knn: exact and blockwise, a faiss index above a size, with a recall
check). The returned `PairStats` say which method was used and how many candidates each
filter removed.

`find_graph_pairs` (beyond MathFusion) pairs seeds whose concepts are joined by strong
co-occurrence edges but which share few concepts, so a fusion bridges related ideas.

Both return pairs deduplicated as unordered pairs, `seed_a` < `seed_b` by id, with
deterministic ids (hash of the sorted seed ids) in a deterministic order: strongest
first (similarity rounded to 6 decimals), ties by ids. Every similarity that decides a pick, a
filter or the order is float64 (graphgen.knn.pair_similarity), so neither the pairs nor their
order depend on the block size (`memory_mb`), the BLAS kernel or the numpy version.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, Field

from graphgen.config import GraphPairOptions, PairOptions, Settings
from graphgen.knn import SearchStats, _block_rows, nearest_neighbours
from graphgen.normalize import normalize_question
from graphgen.records import ConceptEdge, FusionPair, SeedQuestion
from graphgen.stage import StageError, StageReport

if TYPE_CHECKING:
    from graphgen.store.base import GraphStore

__all__ = ["GraphPairOptions", "PairOptions", "PairStats", "PairsInputs", "PairsReport", "find_fusion_pairs",
           "find_graph_pairs", "run"]

# --- options and stats -------------------------------------------------------------------


class PairStats(SearchStats):
    method: str = Field("", description="'exact', 'ivf-pq', 'ivf', 'hnsw' or 'graph' ('+' joins several groups)")
    seeds: int = 0
    duplicates: int = Field(0, description="seeds skipped as exact duplicates of an earlier seed")
    searched: int = Field(0, description="seeds that took part in the search")
    groups: int = Field(0, description="groups searched separately (sources when same_source)")
    picks: int = Field(0, description="directed (seed -> neighbour) picks kept by the search")
    excluded_overlap: int = Field(0, description="graph: candidates skipped for too much concept overlap")
    below_min: int = Field(0, description="neighbour slots left empty: best remaining below min_similarity")
    no_candidates: int = Field(0, description="graph: seeds with no candidate at all (no strongly linked seed "
                                              "within max_overlap), not counted in below_min")
    merged_reverse: int = Field(0, description="picks merged with the reverse pick (a->b and b->a)")
    dropped_not_mutual: int = 0
    dropped_max_uses: int = 0
    pairs: int = 0
    seconds: float = 0.0


# --- helpers -------------------------------------------------------------------------------

def pair_id(a: str, b: str) -> str:
    lo, hi = sorted((a, b))
    return "pair-" + hashlib.sha256(f"{lo}\x00{hi}".encode()).hexdigest()[:16]


def _dedupe_seeds(seeds: Sequence[SeedQuestion]) -> np.ndarray:
    """Indices of the seeds kept: the first of every group of exact duplicates."""
    seen: set[str] = set()
    keep = []
    for i, s in enumerate(seeds):
        key = normalize_question(s.question).casefold()  # duplicates up to case
        if key not in seen:
            seen.add(key)
            keep.append(i)
    return np.asarray(keep, dtype=np.int64)


def _groups(sources: Sequence[str], idx: np.ndarray, same_source: bool) -> list[np.ndarray]:
    if not same_source:
        return [idx]
    by: dict[str, list[int]] = {}
    for i in idx.tolist():
        by.setdefault(sources[i], []).append(i)
    return [np.asarray(by[k], dtype=np.int64) for k in sorted(by)]


def _finalise(
    ids: Sequence[str],
    qa: np.ndarray,
    nb: np.ndarray,
    sims: np.ndarray,
    methods: np.ndarray,
    method_names: Sequence[str],
    options: PairOptions,
    stats: PairStats,
) -> list[FusionPair]:
    """Directed picks (qa -> nb) to unordered, filtered, ordered FusionPairs."""
    n = len(ids)
    stats.picks = len(qa)
    if not len(qa):
        return []
    lo, hi = np.minimum(qa, nb), np.maximum(qa, nb)
    key = lo * n + hi
    uniq, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    best = np.full(len(uniq), -np.inf, dtype=np.float64)
    np.maximum.at(best, inverse, sims.astype(np.float64))
    meth = np.zeros(len(uniq), dtype=np.int64)
    np.maximum.at(meth, inverse, methods)
    stats.merged_reverse = int(len(qa) - len(uniq))
    keep = np.ones(len(uniq), dtype=bool)
    if options.mutual_only:
        keep = counts >= 2
        stats.dropped_not_mutual = int(np.count_nonzero(~keep))
    uniq, best, meth = uniq[keep], best[keep], meth[keep]
    a_idx, b_idx = uniq // n, uniq % n
    # ids sorted so that seed_a < seed_b by id
    id_arr = np.asarray(ids, dtype=object)
    ida, idb = id_arr[a_idx], id_arr[b_idx]
    swap = ida > idb
    ida, idb = np.where(swap, idb, ida), np.where(swap, ida, idb)
    a_idx, b_idx = np.where(swap, b_idx, a_idx), np.where(swap, a_idx, b_idx)
    rounded = np.round(best, 6)
    # strongest first; ties by seed ids (string order via ranks)
    rank = np.empty(n, dtype=np.int64)
    rank[np.argsort(id_arr, kind="stable")] = np.arange(n)
    order = np.lexsort((rank[b_idx], rank[a_idx], -rounded))
    uses = np.zeros(n, dtype=np.int64)
    cap = options.max_uses_per_seed
    pairs: list[FusionPair] = []
    for i in order.tolist():
        a, b = int(a_idx[i]), int(b_idx[i])
        if cap is not None:
            if uses[a] >= cap or uses[b] >= cap:
                stats.dropped_max_uses += 1
                continue
            uses[a] += 1
            uses[b] += 1
        sa, sb = ida[i], idb[i]
        pairs.append(
            FusionPair.model_construct(
                id=pair_id(sa, sb), seed_a=sa, seed_b=sb, similarity=float(rounded[i]),
                method=method_names[int(meth[i])],
            )
        )
    stats.pairs = len(pairs)
    return pairs


# --- embedding pairs -------------------------------------------------------------------------


def find_fusion_pairs(
    seeds: Sequence[SeedQuestion],
    vectors: np.ndarray,
    options: PairOptions | None = None,
) -> tuple[list[FusionPair], PairStats]:
    """For each seed, its top-k nearest other seeds by cosine similarity.

    `vectors[i]` embeds `seeds[i]` (normalised here if it is not). Exact duplicates (same
    normalised question) are collapsed to their first occurrence. With `same_source`,
    each source is searched on its own.
    """
    options = options or PairOptions()
    t0 = time.perf_counter()
    seeds = list(seeds)
    X = np.asarray(vectors, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] != len(seeds):
        raise ValueError(f"vectors has shape {X.shape}; expected ({len(seeds)}, d)")
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    if not np.allclose(norms, 1.0, atol=1e-3):
        X = X / np.where(norms == 0, 1.0, norms)
    stats = PairStats(seeds=len(seeds))
    keep = _dedupe_seeds(seeds)
    stats.duplicates = len(seeds) - len(keep)
    stats.searched = len(keep)
    groups = _groups([s.source for s in seeds], keep, options.same_source)
    stats.groups = len(groups)
    k = options.top_k
    qa_all, nb_all, sim_all, meth_all, used = [], [], [], [], []
    method_names = ["embedding-exact", "embedding-approx"]
    for g in groups:
        if len(g) < 2:
            continue
        j, s, method = nearest_neighbours(np.ascontiguousarray(X[g]), k, options, stats)
        used.append(method)
        code = 0 if method == "exact" else 1
        ok = (j >= 0) & (s >= options.min_similarity)
        stats.below_min += int(np.count_nonzero(~ok[:, : min(k, len(g) - 1)]))
        rows = np.broadcast_to(np.arange(len(g))[:, None], j.shape)
        qa_all.append(g[rows[ok]])
        nb_all.append(g[j[ok]])
        sim_all.append(s[ok])
        meth_all.append(np.full(int(ok.sum()), code, dtype=np.int64))
    stats.method = "+".join(dict.fromkeys(used)) or "exact"
    cat = lambda parts, dt: np.concatenate(parts) if parts else np.empty(0, dtype=dt)  # noqa: E731
    pairs = _finalise(
        [s.id for s in seeds],
        cat(qa_all, np.int64),
        cat(nb_all, np.int64),
        cat(sim_all, np.float64),
        cat(meth_all, np.int64),
        method_names,
        options,
        stats,
    )
    stats.seconds = round(time.perf_counter() - t0, 3)
    return pairs, stats


# --- graph-guided pairs ------------------------------------------------------------------------


def find_graph_pairs(
    seed_concepts: Iterable[tuple[str, Sequence[str]]],
    edges: Iterable[ConceptEdge],
    options: GraphPairOptions | None = None,
    sources: dict[str, str] | None = None,
) -> tuple[list[FusionPair], PairStats]:
    """Pairs of seeds whose concepts are linked by strong co-occurrence edges but which
    share few concepts (Jaccard overlap <= max_overlap), top-k per seed by score.

    `seed_concepts` is `GraphStore.seed_concepts()`, `edges` is `GraphStore.edges()`;
    `sources` (seed id -> source) is needed for `same_source`. Works on sparse matrices
    in row blocks (seed x concept incidence times strong-edge weights), never on Python
    all-pairs loops.
    """
    from scipy import sparse

    options = options or GraphPairOptions()
    t0 = time.perf_counter()
    ids: list[str] = []
    sets: list[frozenset[int]] = []
    concept_index: dict[str, int] = {}
    for seed_id, concepts in seed_concepts:
        cs = frozenset(concept_index.setdefault(c, len(concept_index)) for c in concepts)
        if cs:
            ids.append(seed_id)
            sets.append(cs)
    n, C = len(ids), len(concept_index)
    stats = PairStats(method="graph", seeds=n, searched=n, groups=1)
    weight: dict[tuple[int, int], float] = {}
    for e in edges:
        if e.count < options.min_edge_count or e.weight < options.min_edge_weight:
            continue
        a, b = concept_index.get(e.source), concept_index.get(e.target)
        if a is None or b is None or a == b:
            continue
        weight[(a, b)] = weight[(b, a)] = float(e.weight)
    if n < 2 or not weight:
        stats.seconds = round(time.perf_counter() - t0, 3)
        return [], stats

    rows = np.repeat(np.arange(n), [len(s) for s in sets])
    cols = np.fromiter((c for s in sets for c in sorted(s)), dtype=np.int64, count=len(rows))
    M = sparse.csr_matrix((np.ones(len(rows), dtype=np.float32), (rows, cols)), shape=(n, C))
    wk = np.asarray(list(weight.keys()), dtype=np.int64)
    W = sparse.csr_matrix((np.asarray(list(weight.values()), dtype=np.float32), (wk[:, 0], wk[:, 1])), shape=(C, C))
    MW = (M @ W).tocsr()
    Mt = M.T.tocsr()
    size = np.asarray([len(s) for s in sets], dtype=np.float32)
    src = None
    if options.same_source:
        if sources is None:
            raise ValueError("same_source needs `sources` (seed id -> source)")
        names = sorted({sources.get(i, "") for i in ids})
        code = {s: i for i, s in enumerate(names)}
        src = np.asarray([code[sources.get(i, "")] for i in ids])
        stats.groups = len(names)

    def exact_score(a: int, b: int) -> float:
        A, B = sets[a], sets[b]
        only_a, only_b = A - B, B - A
        raw = 0.0
        for c in only_a:
            for d in only_b:
                raw += weight.get((c, d), 0.0)
        shared = len(A & B)
        return raw * (1.0 - shared / (len(A) + len(B) - shared))

    k = options.top_k
    qa, nb, sims = [], [], []
    step = _block_rows(n, options.memory_mb, factor=3)
    width = min(n, k + 8)  # candidates rescored per row before the bound is checked
    for start in range(0, n, step):
        stop = min(n, start + step)
        b = stop - start
        r_ = np.arange(b)
        # Upper bound of each score: every edge weight between A's and B's concepts,
        # exact when A and B share nothing; pairs that share concepts are rescored.
        U = (MW[start:stop] @ Mt).toarray()
        SH = (M[start:stop] @ Mt).tocoo()  # shared concept counts (sparse)
        rr, cc, sh = SH.row, SH.col, SH.data
        jac = sh / (size[start + rr] + size[cc] - sh)
        over = (jac > options.max_overlap) & (start + rr != cc)
        stats.excluded_overlap += int(np.count_nonzero(U[rr[over], cc[over]] > 0))
        U[rr[over], cc[over]] = 0.0
        ok = ~over
        U[rr[ok], cc[ok]] *= (1.0 - jac[ok]).astype(np.float32)
        U[r_, r_ + start] = 0.0
        shared = np.zeros(U.shape, dtype=bool)
        shared[rr, cc] = True
        if src is not None:
            U[src[start:stop, None] != src[None, :]] = 0.0
        w = min(width + 1, n)
        top = np.argpartition(U, n - w, axis=1)[:, n - w :]
        topv = np.take_along_axis(U, top, axis=1)
        for i in range(b):
            a = start + i
            order = np.lexsort((top[i], -topv[i]))
            cand, vals = top[i][order], topv[i][order]
            if vals[0] <= 0:  # nothing links this seed to another: no similarity to be below
                stats.no_candidates += 1
                continue
            full = False
            while True:
                scored: list[tuple[float, int]] = []
                lim = len(cand) if full else min(len(cand), w - 1)
                for b_, v in zip(cand[:lim].tolist(), vals[:lim].tolist()):
                    if v <= 0:
                        break
                    sc = exact_score(a, b_) if shared[i, b_] else v
                    if sc > 0:
                        scored.append((sc / (1.0 + sc), b_))
                scored.sort(key=lambda t: (-t[0], t[1]))
                if full or lim == len(cand) or vals[lim] <= 0:
                    break
                bound = float(vals[lim])
                good = [t for t in scored if t[0] <= options.max_similarity]
                if len(good) >= k and good[k - 1][0] >= bound / (1.0 + bound):
                    break
                # the bound is not beaten: rank the whole row (rare)
                row = U[i]
                cand = np.flatnonzero(row > 0)
                cand = cand[np.lexsort((cand, -row[cand]))]
                vals = row[cand]
                full = True
            picked = []
            for sim, b_ in scored:
                if sim > options.max_similarity:
                    stats.excluded_above_max += 1
                    continue
                picked.append((sim, b_))
                if len(picked) == k:
                    break
            kept = [(sim, b_) for sim, b_ in picked if sim >= options.min_similarity]
            stats.below_min += len(picked) - len(kept)  # slots short of candidates are not "below"
            picked = kept
            for sim, b_ in picked:
                qa.append(a)
                nb.append(b_)
                sims.append(sim)
    pairs = _finalise(
        ids,
        np.asarray(qa, dtype=np.int64),
        np.asarray(nb, dtype=np.int64),
        np.asarray(sims, dtype=np.float64),
        np.zeros(len(qa), dtype=np.int64),
        ["graph"],
        options,
        stats,
    )
    stats.seconds = round(time.perf_counter() - t0, 3)
    return pairs, stats


# --- the stage: run(settings, store, inputs) -> PairsReport ---------------------------------


class PairsInputs(BaseModel):
    """One `graphgen sample fusion-pairs` invocation."""

    output: Path = Field(description="pairs JSONL (written atomically)")
    seed_files: list[Path] = Field(
        default_factory=list, description="stored first, and only they are paired; empty: every stored seed")
    prefix_ids: bool = Field(False, description="seed_files: make native ids <source>-<id>")
    quiet: bool = Field(False, description="no embedding progress bar")


class PairsReport(StageReport):
    stage: str = "sample fusion-pairs"
    output: str = ""
    written: int = 0
    stats: PairStats = Field(default_factory=PairStats)

    def lines(self) -> list[str]:
        st = self.stats
        recall = f", recall vs exact {st.recall:.3f} on {st.recall_sample}" if st.recall is not None else ""
        return [
            f"wrote {self.written} pairs to {self.output} from {st.seeds} seeds; search: {st.method}{recall}; "
            f"{st.seconds:.1f}s",
            f"dropped: {st.duplicates} duplicate seeds, {st.excluded_above_max} above max similarity, "
            f"{st.below_min} below min similarity, {st.dropped_not_mutual} not mutual, "
            f"{st.dropped_max_uses} over max uses"
            + (f"; no candidate at all for {st.no_candidates} of {st.seeds} seeds" if st.method == "graph" else ""),
            *StageReport.lines(self)[1:],
        ]


def _store_seed_files(store: GraphStore, inputs: PairsInputs, chunk: int = 2000) -> list[str]:
    """Stream seed files into the store a chunk at a time; the ids read, in file order."""
    from graphgen.jsonl import chunked
    from graphgen.readers import read_seeds, store_seeds

    ids: list[str] = []
    for batch in chunked(read_seeds(inputs.seed_files, prefix_ids=inputs.prefix_ids), chunk):
        store_seeds(store, batch)
        ids.extend(s.id for s in batch)
    return ids


def run(settings: Settings, store: GraphStore, inputs: PairsInputs) -> PairsReport:
    """Fusion pairs (MathFusion) among the stored seeds (or those of `inputs.seed_files`),
    by embedding search or by the concept graph (`settings.pairs.method`)."""
    from graphgen.jsonl import write_jsonl

    t0 = time.perf_counter()
    cfg = settings.pairs
    ids = _store_seed_files(store, inputs) if inputs.seed_files else None
    report = PairsReport(output=str(inputs.output))
    if cfg.method == "graph":
        wanted = set(ids) if ids is not None else None
        sources = {s.id: s.source for s in store.seeds(ids)}
        pairs, report.stats = find_graph_pairs(
            ((sid, cids) for sid, cids in store.seed_concepts() if wanted is None or sid in wanted),
            store.edges(), cfg.graph, sources=sources)
    else:
        from graphgen.embed import EmbeddingCache, create_embedder, embed_texts

        seeds = list(store.seeds(ids))  # the search needs every vector at once
        if not seeds:
            raise StageError("no seeds in the store: pass SEEDS files or run `graphgen extract` first")
        embedder = create_embedder(settings.embedding, settings.llm)
        with EmbeddingCache(cfg.embeddings_cache) as cache:
            vectors = embed_texts([s.question for s in seeds], embedder, cache, progress=not inputs.quiet)
        pairs, report.stats = find_fusion_pairs(seeds, vectors, cfg.embedding)
    report.written = write_jsonl(pairs, inputs.output)
    report.elapsed_s = time.perf_counter() - t0
    return report
