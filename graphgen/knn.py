"""Nearest neighbours by inner product (cosine on L2-normalised rows), exact or approximate.

Used by fusion pairs (`graphgen sample fusion-pairs`), canonicalize's candidate search (per
concept kind) and semantic near-duplicate search in `filter`. Search is exact and blockwise (a block of query rows against all rows at a time, so
memory stays bounded) up to `PairOptions.exact_threshold` rows; above it a faiss index takes
over (default: IVF with 4-bit PQ fast-scan lists and exact re-ranking of the best candidates;
IVF-Flat or HNSW as options), with a recall check against exact search on a sample. In exact
search the float32 block products only shortlist; every similarity that decides a pick is
`pair_similarity` (float64, summed in dimension order), so results do not depend on the block
size, the BLAS kernel or the numpy version.
"""

from __future__ import annotations

import math

import numpy as np
from pydantic import BaseModel, Field, PrivateAttr

from graphgen.config import PairOptions


class SearchStats(BaseModel):
    """What a neighbour search did: filtered neighbours and, when approximate, its recall."""

    excluded_above_max: int = Field(
        0, description="neighbours skipped as more similar than max_similarity (directed)"
    )
    recall: float | None = Field(None, description="approximate search: recall of exact top-k on a sample")
    recall_sample: int = 0
    _recall_hits: int = PrivateAttr(0)
    _recall_total: int = PrivateAttr(0)


MIN_APPROX = 256  # groups this small are always searched exactly


def _block_rows(n_cols: int, memory_mb: int, factor: int = 2) -> int:
    return max(1, min(8192, (memory_mb << 20) // max(1, n_cols * 4 * factor)))


def _f32_error(X: np.ndarray) -> float:
    """Bound (doubled, for safety) on |float32 matmul - exact| for two rows of X: a d-term
    float32 dot product errs by at most ~d * 2**-24 * sum|x_i y_i| <= d * 2**-24 * |x| |y|."""
    sq = float(np.einsum("ij,ij->i", X, X, dtype=np.float64).max()) if X.size else 1.0
    return (X.shape[1] + 4) * 2.0**-23 * max(sq, 1.0)


def pair_similarity(X: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Inner products X[a[i]] . X[b[i]] as float64, bit-identical whatever block, batch or
    order the pair comes in (a BLAS matmul's rounding depends on the block's shape, so two
    block sizes could rank near-ties differently): float32 products are exact in float64
    and are summed in dimension order by elementwise adds, the same for X[a].X[b] and X[b].X[a]."""
    out = np.zeros(len(a), dtype=np.float64)
    d = X.shape[1]
    chunk = max(1, (16 << 20) // (8 * max(d, 1)))
    for start in range(0, len(a), chunk):
        P = np.ascontiguousarray((X[a[start : start + chunk]].astype(np.float64) * X[b[start : start + chunk]]).T)
        acc = out[start : start + chunk]
        for row in P:
            acc += row
    return out


def _drop_above(X: np.ndarray, q: np.ndarray, S: np.ndarray, limit: float, delta: float) -> int:
    """Set S[i, j] = -inf where X[q[i]] . X[j] > limit; return how many. Entries within
    `delta` of the limit, where float32 cannot tell, are decided by `pair_similarity`."""
    flat = np.flatnonzero(S > limit - delta)  # 1-D: much faster than a 2-D nonzero
    r, c = np.divmod(flat, S.shape[1])
    over = S.flat[flat] > limit + delta
    band = ~over
    over[band] = pair_similarity(X, q[r[band]], c[band]) > limit
    S.flat[flat[over]] = -np.inf
    return int(np.count_nonzero(over))


_RESCORE_CHUNK = 1 << 20  # candidate pairs rescored at once (bounds memory under mass ties)


def _topk_rows(X: np.ndarray, q: np.ndarray, S: np.ndarray, k: int, delta: float) -> tuple[np.ndarray, np.ndarray]:
    """Top-k columns j of each row i of S by `pair_similarity(X[q[i]], X[j])`, descending
    (ties: lower column first); slots without a finite candidate are -1 / -inf.

    S (a float32 block of X[q] @ X.T, -inf where excluded) only shortlists: every column
    within 2*delta of the row's k-th largest S may belong to the exact top k, and all of
    them are rescored, so the result is the same whatever block S was computed in."""
    B, m = S.shape
    kth = S.max(axis=1) if k == 1 else np.partition(S, m - k, axis=1)[:, m - k]
    # rows with fewer than k finite entries: every finite entry (never the -inf ones)
    floor = np.maximum(kth.astype(np.float64) - 2 * delta, float(np.finfo(np.float32).min))
    mask = S >= floor[:, None].astype(np.float32)
    out_j = np.full((B, k), -1, dtype=np.int64)
    out_s = np.full((B, k), -np.inf, dtype=np.float64)
    # usually ~k candidates a row; under mass ties, rescore a bounded number at a time
    if np.count_nonzero(mask) <= _RESCORE_CHUNK:
        parts = [(0, B)]
    else:
        ends = np.cumsum(np.count_nonzero(mask, axis=1))
        parts, a = [], 0
        while a < B:
            b = max(a + 1, int(np.searchsorted(ends, (ends[a - 1] if a else 0) + _RESCORE_CHUNK, side="right")))
            parts.append((a, b))
            a = b
    for a, b in parts:
        r, c = np.divmod(np.flatnonzero(mask[a:b]), m)
        r += a
        sim = pair_similarity(X, q[r], c)
        order = np.lexsort((c, -sim, r))
        r, c, sim = r[order], c[order], sim[order]
        rank = np.arange(len(r)) - np.searchsorted(r, r, side="left")  # place within its row
        top = rank < k
        out_j[r[top], rank[top]] = c[top]
        out_s[r[top], rank[top]] = sim[top]
    return out_j, out_s


def _rowwise_order(vals: np.ndarray, cols: np.ndarray) -> np.ndarray:
    # sort by value descending, then column ascending; rows are short (k)
    order = np.argsort(cols, axis=1, kind="stable")
    v = np.take_along_axis(vals, order, axis=1)
    order2 = np.argsort(-v, axis=1, kind="stable")
    return np.take_along_axis(order, order2, axis=1)


def _pq_subquantizers(d: int) -> int | None:
    """PQ sub-quantizers for d dims (about 8 dims each; fast-scan wants an even count)."""
    for per in (8, 4, 2, 6, 12, 16):
        if d % per == 0 and (d // per) % 2 == 0:
            return d // per
    return None


def _exact_search(
    X: np.ndarray,
    queries: np.ndarray,
    k: int,
    options: PairOptions,
    stats: SearchStats | None,
    block_rows: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact filtered top-k of rows `queries` of X against all rows of X (blockwise; rows
    per block from `options.memory_mb` unless `block_rows` is given).

    Returns (neighbour indices into X, `pair_similarity` values), shape (len(queries), k);
    empty slots have index -1 and similarity -inf. The result does not depend on the block
    size: float32 blocks only shortlist, `pair_similarity` decides order and filters.
    """
    m = X.shape[0]
    k_eff = min(k, m - 1)
    out_j = np.full((len(queries), k), -1, dtype=np.int64)
    out_s = np.full((len(queries), k), -np.inf, dtype=np.float64)
    if k_eff <= 0:
        return out_j, out_s
    step = block_rows or _block_rows(m, options.memory_mb)
    delta = _f32_error(X)
    XT = X.T
    for start in range(0, len(queries), step):
        q = queries[start : start + step]
        S = X[q] @ XT
        S[np.arange(len(q)), q] = -np.inf
        if options.max_similarity < 1.0:
            above = _drop_above(X, q, S, options.max_similarity, delta)
            if stats is not None:
                stats.excluded_above_max += above
        j, s = _topk_rows(X, q, S, k_eff, delta)
        out_j[start : start + len(q), :k_eff] = j
        out_s[start : start + len(q), :k_eff] = s
    return out_j, out_s


def _approx_search(
    X: np.ndarray, k: int, options: PairOptions, stats: SearchStats
) -> tuple[np.ndarray, np.ndarray]:
    """Filtered top-k of every row of X by a faiss index; same output as _exact_search."""
    import faiss

    m, d = X.shape
    rng = np.random.default_rng(options.random_seed)
    ivf = None
    if options.index == "hnsw":
        index = faiss.IndexHNSWFlat(d, options.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = max(40, options.hnsw_m * 2)
        index.add(X)
    else:
        nlist = options.nlist or max(1, min(int(2 * math.sqrt(m)), m // 40))
        n_train = min(m, nlist * 40)
        train = X if n_train == m else X[np.sort(rng.choice(m, n_train, replace=False))]
        # spherical k-means for the coarse quantizer (few iterations: it only routes queries)
        km = faiss.Kmeans(d, nlist, niter=10, spherical=True, seed=options.random_seed,
                          max_points_per_centroid=1 << 20, verbose=False)
        km.train(train)
        quantizer = faiss.IndexFlatIP(d)
        quantizer.add(km.centroids)
        pq_m = _pq_subquantizers(d)
        if options.index == "ivf-pq" and pq_m:
            # 4-bit PQ fast-scan lists, then exact inner products on the best candidates
            ivf = faiss.IndexIVFPQFastScan(quantizer, d, nlist, pq_m, 4, faiss.METRIC_INNER_PRODUCT)
            ivf.train(train[: min(len(train), 10_000)])
            index = faiss.IndexRefineFlat(ivf)
            index.k_factor = options.refine_factor
        else:
            ivf = index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            index.train(train)  # the quantizer is trained already: nothing to do
        index.add(X)
        ivf.nprobe = min(nlist, options.nprobe or max(8, nlist // 56))

    def search(rows: np.ndarray, kk: int) -> tuple[np.ndarray, np.ndarray]:
        if options.index == "hnsw":
            index.hnsw.efSearch = max(options.ef_search, kk)
        s, j = index.search(X[rows], kk)
        return j, s

    out_j = np.full((m, k), -1, dtype=np.int64)
    out_s = np.full((m, k), -np.inf, dtype=np.float32)
    pending = np.arange(m)
    kk = min(m, k + 8)
    batch = 32768
    while len(pending):
        retry = []
        for start in range(0, len(pending), batch):
            rows = pending[start : start + batch]
            j, s = search(rows, kk)
            invalid = (j < 0) | (j == rows[:, None])
            above = (s > options.max_similarity) & ~invalid
            good = ~invalid & ~above
            # rows whose k-th valid candidate may lie beyond the kk returned
            n_good = good.sum(axis=1)
            last = s[:, -1]
            need_more = (n_good < k) & (last >= options.min_similarity) & (j[:, -1] >= 0) & (kk < m)
            done = ~need_more
            stats.excluded_above_max += int(np.count_nonzero(above[done]))
            s = np.where(good, s, -np.inf).astype(np.float32)
            j = np.where(good, j, -1)
            order = _rowwise_order(s, np.where(good, j, np.iinfo(np.int64).max))[:, :k]
            j = np.take_along_axis(j, order, axis=1)
            s = np.take_along_axis(s, order, axis=1)
            out_j[rows[done], : j.shape[1]] = j[done]
            out_s[rows[done], : s.shape[1]] = s[done]
            retry.append(rows[need_more])
        pending = np.concatenate(retry) if retry else np.empty(0, dtype=np.int64)
        kk = min(m, kk * 4)
    if options.recall_sample:
        sample = np.sort(rng.choice(m, min(m, options.recall_sample), replace=False))
        ej, es = _exact_search(X, sample, k, options, None)
        hits = total = 0
        for a_row, e_row, e_sim in zip(out_j[sample], ej, es):
            want = {int(x) for x, v in zip(e_row, e_sim) if x >= 0 and v >= options.min_similarity}
            total += len(want)
            hits += len(want & {int(x) for x in a_row if x >= 0})
        stats.recall_sample += len(sample)
        stats._recall_hits += hits
        stats._recall_total += total
        stats.recall = stats._recall_hits / stats._recall_total if stats._recall_total else 1.0
    return out_j, out_s


def nearest_neighbours(X: np.ndarray, k: int, options: PairOptions | None = None,
                       stats: SearchStats | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Top-k other rows of X for every row by inner product: (indices, similarities, method).

    Exact and blockwise up to `options.exact_threshold` rows, a faiss index above it.
    Empty slots have index -1; the `max_similarity` filter of `options` applies.
    """
    options = options or PairOptions()
    stats = stats if stats is not None else SearchStats()
    if len(X) > max(options.exact_threshold, MIN_APPROX):
        j, s = _approx_search(X, k, options, stats)
        return j, s, options.index
    j, s = _exact_search(X, np.arange(len(X)), k, options, stats)
    return j, s, "exact"
