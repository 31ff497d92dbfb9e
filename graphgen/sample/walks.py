"""MathScale walks over `ConceptGraphArrays`, vectorised: the sampler, its stats and the
array batches it yields (semantics in graphgen.sample's docstring)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, Field

from graphgen.config import WalkOptions
from graphgen.records import ConceptSample
from graphgen.sample.arrays import (
    _CSR,
    KP_KP,
    TOPIC_KP,
    TOPIC_TOPIC,
    ConceptGraphArrays,
    WalkBatch,
)
from graphgen.sample.rng import (
    _GAMMA,
    _SLOT_KP_N,
    _SLOT_START,
    _SLOT_TOPIC_N,
    _STEP_KP0,
    _STEP_TO_KP,
    _STEP_TOPIC0,
    _U64,
    _mix,
    _seed_key,
    _step_slot,
    _uniform,
    _walk_bases,
)

if TYPE_CHECKING:  # pragma: no cover
    from graphgen.sample.exemplars import ExemplarIndex

_RETRIES = 8  # rejection attempts per step before the exact masked draw
_FALLBACK_CHUNK = 1 << 22  # adjacency entries per exact-draw chunk (bounds memory)

# ---------------------------------------------------------------------------------------
# options and stats
# ---------------------------------------------------------------------------------------


class SampleStats(BaseModel):
    """Counts for one sampling run (filled in as the iterator is consumed)."""

    walks: int = Field(0, description="walks drawn from the stream")
    generated: int = Field(0, description="distinct samples emitted")
    duplicates: int = Field(0, description="walks whose concept set was already emitted")
    dropped_no_kp: int = Field(0, description="walks dropped: last topic had no knowledge-point neighbour")
    stuck_topic_phase: int = Field(0, description="walks whose topic phase ended early (no unvisited neighbour)")
    stuck_kp_phase: int = Field(0, description="walks whose knowledge-point phase ended early")
    exhausted: bool = Field(False, description="max_walks reached before n distinct samples")
    concepts_total: int = 0
    concepts_covered: int = Field(0, description="concepts appearing in at least one emitted sample")
    topics_total: int = 0
    topics_covered: int = 0
    kps_total: int = 0
    kps_covered: int = 0
    start_topics_used: int = Field(0, description="distinct start topics among emitted samples")

    @property
    def coverage(self) -> float:
        return self.concepts_covered / self.concepts_total if self.concepts_total else 0.0


@dataclass
class RawWalks:
    """Walks as drawn (`ConceptSampler.raw_walks`): same layout as `WalkBatch`, plus
    per-walk flags. A dropped walk keeps its topics (and no knowledge point)."""

    walks: np.ndarray
    lengths: np.ndarray
    n_topics: np.ndarray
    dropped: np.ndarray
    stuck_topic: np.ndarray
    stuck_kp: np.ndarray

    def __len__(self) -> int:
        return len(self.lengths)


def coverage_round_end(pos: int, interval: int) -> int:
    """Walk index where the coverage round containing walk `pos` ends: rounds end at walks
    1, 2, 4, 8, ... (doubling, so coverage acts from the first walks on, at a cost of only
    log2(interval) extra rounds), then every `interval` walks."""
    if pos >= interval:
        return (pos // interval + 1) * interval
    return min(1 << pos.bit_length(), interval)


def sample_id(concept_ids: Iterable[str]) -> str:
    """Deterministic id of a concept combination (order-insensitive)."""
    return _sorted_sample_id(sorted(set(concept_ids)))


def _sorted_sample_id(sorted_ids: list[str]) -> str:
    return "cs-" + hashlib.sha1("\n".join(sorted_ids).encode()).hexdigest()[:20]


# ---------------------------------------------------------------------------------------
# the sampler
# ---------------------------------------------------------------------------------------


def _exact_draw(csr: _CSR, cur: np.ndarray, visited: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Exact draw among unvisited neighbours (prob ∝ w); -1 where none. Vectorised over
    walks in chunks of at most _FALLBACK_CHUNK adjacency entries."""
    out = np.full(len(cur), -1, dtype=np.int64)
    starts = csr.indptr[cur]
    lens = csr.indptr[cur + 1] - starts
    bounds = np.cumsum(lens)
    a = 0
    m = len(cur)
    while a < m:
        # largest b with entries(a..b) <= chunk (at least one walk)
        base_entries = bounds[a - 1] if a else 0
        b = int(np.searchsorted(bounds, base_entries + _FALLBACK_CHUNK, side="right"))
        b = max(b, a + 1)
        L = lens[a:b]
        tot = int(L.sum())
        if tot == 0:
            a = b
            continue
        seg_end = np.cumsum(L)
        seg_start = seg_end - L
        rep = np.repeat(np.arange(b - a), L)
        pos = np.arange(tot) - np.repeat(seg_start, L) + np.repeat(starts[a:b], L)
        nodes = csr.indices[pos]
        vis = _visited(visited[a:b], rep, nodes)
        w = np.where(vis, 0.0, csr.w[pos])
        c = np.cumsum(w)
        nz = L > 0
        base = np.zeros(b - a)
        base[nz] = np.where(seg_start[nz] > 0, c[np.maximum(seg_start[nz] - 1, 0)], 0.0)
        seg_tot = np.zeros(b - a)
        seg_tot[nz] = c[seg_end[nz] - 1] - base[nz]
        ok = seg_tot > 0
        if ok.any():
            target = base[ok] + u[a:b][ok] * seg_tot[ok]
            j = np.searchsorted(c, target, side="right")
            # rounding at the very top of a segment: fall back to its last positive entry
            last_pos = np.maximum.accumulate(np.where(w > 0, np.arange(tot), -1))
            over = j >= seg_end[ok]
            j[over] = last_pos[seg_end[ok][over] - 1]
            out[a:b][ok] = nodes[j]
        a = b
    return out


def _sorted_search(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """searchsorted(a, x, "right") with the needles sorted first: numpy's binary search
    reuses the previous bound for increasing keys, ~4x faster on large random batches."""
    if len(x) < 1024:
        return np.searchsorted(a, x, side="right")
    order = np.argsort(x)
    out = np.empty(len(x), dtype=np.int64)
    out[order] = np.searchsorted(a, x[order], side="right")
    return out


def _visited(walks: np.ndarray, rows: np.ndarray, cand: np.ndarray) -> np.ndarray:
    """cand[i] in walks[rows[i]] (column loop: faster than .any(axis=1) on narrow rows)."""
    seen = walks[rows, 0] == cand
    for c in range(1, walks.shape[1]):
        seen |= walks[rows, c] == cand
    return seen


def _step(csr: _CSR, cur: np.ndarray, walks: np.ndarray, bases: np.ndarray, step_id: int) -> np.ndarray:
    """One step for a set of walks: next node per walk, or -1 if stuck. `walks` holds the
    rows of the walk matrix for these walks (visited nodes, -1 padded)."""
    out = np.full(len(cur), -1, dtype=np.int64)
    lo = csr.indptr[cur]
    hi = csr.indptr[cur + 1]
    pending = np.flatnonzero(hi > lo)
    for attempt in range(_RETRIES):
        if len(pending) == 0:
            return out
        u = _uniform(bases[pending], _step_slot(step_id, attempt))
        j = _sorted_search(csr.cum, cur[pending] + u)
        np.minimum(j, hi[pending] - 1, out=j)
        cand = csr.indices[j]
        seen = _visited(walks, pending, cand)
        good = ~seen
        out[pending[good]] = cand[good]
        pending = pending[seen]
    if len(pending):
        u = _uniform(bases[pending], _step_slot(step_id, _RETRIES))
        out[pending] = _exact_draw(csr, cur[pending], walks[pending], u)
    return out


def _set_keys(walks: np.ndarray) -> np.ndarray:
    """64-bit order-insensitive key of each walk's node set (rows padded with -1)."""
    s = np.sort(walks, axis=1)
    h = np.full(len(s), 0x243F6A8885A308D3, dtype=_U64)
    with np.errstate(over="ignore"):
        for j in range(s.shape[1]):
            h = _mix(h ^ (s[:, j].astype(np.int64).astype(_U64) + _GAMMA))
    return h


class ConceptSampler:
    """MathScale walks over a `ConceptGraphArrays`. One sampler can run many times."""

    def __init__(
        self,
        graph: ConceptGraphArrays,
        options: WalkOptions | None = None,
        exemplars: ExemplarIndex | None = None,
        batch_size: int = 1 << 16,
    ) -> None:
        self.graph = graph
        self.options = options or WalkOptions()
        if self.options.exemplars and exemplars is None:
            raise ValueError("options.exemplars > 0 needs an ExemplarIndex")
        self.exemplar_index = exemplars
        self.batch_size = batch_size
        o = self.options
        self._tt = graph.csr(TOPIC_TOPIC, o.edge_weight)
        self._tk = graph.csr(TOPIC_KP, o.edge_weight)
        self._kk = graph.csr(KP_KP, o.edge_weight)
        self._topics = graph.topic_indices
        base = graph.frequency[self._topics] if o.start == "frequency" else np.ones(len(self._topics))
        self._start_base = np.maximum(base.astype(np.float64), 0.0)
        if len(self._topics) == 0 or self._start_base.sum() <= 0:
            raise ValueError("the graph has no topic to start a walk from")
        self._max_len = 1 + o.topic_steps[1] + 1 + o.kp_steps[1]
        self._exemplar_map = exemplars.concept_map(graph.ids) if exemplars is not None else None

    # --- one chunk of the walk stream ---------------------------------------------------
    def _walk_chunk(self, key: np.uint64, a: int, b: int, start_cum: np.ndarray):
        o = self.options
        B = b - a
        bases = _walk_bases(key, a, b)
        W = np.full((B, self._max_len), -1, dtype=np.int32)
        u0 = _uniform(bases, _SLOT_START)
        k = np.searchsorted(start_cum, u0 * start_cum[-1], side="right")
        np.minimum(k, len(start_cum) - 1, out=k)
        cur = self._topics[k].astype(np.int64)
        W[:, 0] = cur
        length = np.ones(B, dtype=np.int64)
        t_lo, t_hi = o.topic_steps
        k_lo, k_hi = o.kp_steps
        t_n = t_lo + np.floor(_uniform(bases, _SLOT_TOPIC_N) * (t_hi - t_lo + 1)).astype(np.int64)
        k_n = k_lo + np.floor(_uniform(bases, _SLOT_KP_N) * (k_hi - k_lo + 1)).astype(np.int64)
        stuck_t = np.zeros(B, dtype=bool)
        rows_all = np.arange(B)

        def advance(csr: _CSR, act: np.ndarray, step_id: int, filled: int) -> np.ndarray:
            # only the first `filled` columns can hold visited nodes at this step
            nxt = _step(csr, cur[act], W[act, :filled], bases[act], step_id)
            moved = nxt >= 0
            r = act[moved]
            W[r, length[r]] = nxt[moved]
            length[r] += 1
            cur[r] = nxt[moved]
            return act[~moved]

        for s in range(t_hi):
            act = np.flatnonzero((t_n > s) & ~stuck_t)
            if len(act) == 0:
                break
            stuck_t[advance(self._tt, act, _STEP_TOPIC0 + s, 1 + s)] = True
        n_top = length.copy()
        dropped = np.zeros(B, dtype=bool)
        dropped[advance(self._tk, rows_all, _STEP_TO_KP, 1 + t_hi)] = True
        stuck_k = dropped.copy()
        for s in range(k_hi):
            act = np.flatnonzero((k_n > s) & ~stuck_k)
            if len(act) == 0:
                break
            stuck_k[advance(self._kk, act, _STEP_KP0 + s, 2 + t_hi + s)] = True
        stuck_k &= ~dropped
        return W, length, n_top, dropped, stuck_t, stuck_k

    def raw_walks(self, seed: int, start: int, stop: int) -> RawWalks:
        """Walks `start..stop-1` of the stream for `seed` exactly as drawn: duplicates and
        dropped walks included, start weights without coverage re-weighting. For
        inspection and statistical tests; `sample_concepts` is the normal entry point."""
        W, length, n_top, dropped, stuck_t, stuck_k = self._walk_chunk(
            _seed_key(seed), start, stop, np.cumsum(self._start_base)
        )
        return RawWalks(W, length, n_top, dropped, stuck_t, stuck_k)

    # --- the stream ---------------------------------------------------------------------
    def iter_batches(self, n: int, seed: int = 0, stats: SampleStats | None = None) -> Iterator[WalkBatch]:
        """The first `n` distinct walks of the stream for `seed`, as array batches."""
        o = self.options
        g = self.graph
        st = stats if stats is not None else SampleStats()
        st.concepts_total = g.n_concepts
        st.topics_total = int(g.is_topic.sum())
        st.kps_total = g.n_concepts - st.topics_total
        key = _seed_key(seed)
        max_walks = o.max_walks if o.max_walks is not None else 10 * n + 10_000
        seen = np.zeros(0, dtype=_U64)
        concept_hits = np.zeros(g.n_concepts, dtype=np.int64)
        start_used = np.zeros(g.n_concepts, dtype=bool)
        start_w = self._start_base
        start_cum = np.cumsum(start_w)
        next_reweight = 1 if o.coverage else None
        pos = 0
        emitted = 0
        while emitted < n and pos < max_walks:
            need = n - emitted
            size = min(self.batch_size, max(256, need + need // 8 + 64), max_walks - pos)
            if next_reweight is not None:
                if pos >= next_reweight:
                    covered = concept_hits[self._topics]
                    start_w = self._start_base / np.power(1.0 + covered, o.coverage_alpha)
                    start_cum = np.cumsum(start_w)
                    next_reweight = coverage_round_end(pos, o.coverage_interval)
                size = min(size, next_reweight - pos)
            W, length, n_top, dropped, stuck_t, stuck_k = self._walk_chunk(key, pos, pos + size, start_cum)
            ok = np.flatnonzero(~dropped)
            keys = _set_keys(W[ok])
            # first occurrence within the batch, then not seen in earlier batches
            uk, first = np.unique(keys, return_index=True)
            if len(seen):
                p = np.searchsorted(seen, uk)
                p[p == len(seen)] = 0
                fresh = seen[p] != uk
                uk, first = uk[fresh], first[fresh]
            order = np.argsort(first)  # back to stream order
            cand = ok[first[order]]
            # cut at the n-th distinct sample: the stream (and stats) stop there
            if len(cand) > need:
                cand = cand[:need]
                uk = np.sort(uk[order[:need]])
                last = int(cand[-1]) + 1
            else:
                last = size
            seen = np.insert(seen, np.searchsorted(seen, uk), uk)
            st.walks += last
            nd = int(dropped[:last].sum())
            st.dropped_no_kp += nd
            st.duplicates += last - nd - len(cand)
            st.stuck_topic_phase += int(stuck_t[:last].sum())
            st.stuck_kp_phase += int(stuck_k[:last].sum())
            Wc = W[cand]
            flat = Wc[Wc >= 0]
            concept_hits += np.bincount(flat, minlength=g.n_concepts)
            start_used[Wc[:, 0]] = True
            st.generated += len(cand)
            emitted += len(cand)
            pos += last
            covered = concept_hits > 0
            st.concepts_covered = int(covered.sum())
            st.topics_covered = int((covered & g.is_topic).sum())
            st.kps_covered = st.concepts_covered - st.topics_covered
            st.start_topics_used = int(start_used.sum())
            if len(cand):
                batch = WalkBatch(Wc, length[cand], n_top[cand], (pos - last) + cand)
                if self.exemplar_index is not None and o.exemplars:
                    batch.exemplars = self.exemplar_index.query_walks(
                        batch, self._exemplar_map, o.exemplars
                    )
                yield batch
        st.exhausted = emitted < n

    def _rows(self, n: int, seed: int, stats: SampleStats | None):
        """(walk ids, sorted topic ids, sorted kp ids, exemplar seed ids) per sample."""
        g = self.graph
        pad = g.n_concepts
        names = np.array(g.ids + [""], dtype=object)  # index `pad` -> "" (padding)
        for batch in self.iter_batches(n, seed, stats):
            W = np.where(batch.walks >= 0, batch.walks, pad)
            col = np.arange(W.shape[1])[None, :]
            is_top = col < batch.n_topics[:, None]
            # node index order == concept id order, so sorting indices sorts ids
            tops = np.sort(np.where(is_top, W, pad), axis=1)
            kps = np.sort(np.where(is_top, pad, W), axis=1)
            ex = batch.exemplars
            for i, (walk, t, k, ln, nt) in enumerate(
                zip(names[W].tolist(), names[tops].tolist(), names[kps].tolist(),
                    batch.lengths.tolist(), batch.n_topics.tolist())
            ):
                yield walk[:ln], t[:nt], k[: ln - nt], ex[i] if ex is not None else []

    def sample(self, n: int, seed: int = 0, stats: SampleStats | None = None) -> Iterator[ConceptSample]:
        """The first `n` distinct samples of the stream for `seed`, as records."""
        for walk, t, k, ex in self._rows(n, seed, stats):
            # "kp:..." sorts before "topic:...": k + t is the sorted concept set
            yield ConceptSample(id=_sorted_sample_id(k + t), topics=t, knowledge_points=k, walk=walk,
                                exemplar_seed_ids=ex)

    def jsonl_lines(self, n: int, seed: int = 0, stats: SampleStats | None = None) -> Iterator[str]:
        """The same samples as `sample`, as JSON lines (ConceptSample's JSON, newline-ended),
        built without a pydantic object per sample: what `graphgen sample concepts` writes."""
        q = {i: json.dumps(i, ensure_ascii=False) for i in self.graph.ids}
        for walk, t, k, ex in self._rows(n, seed, stats):
            exemplars = ",".join(json.dumps(e, ensure_ascii=False) for e in ex)
            yield (
                f'{{"id":"{_sorted_sample_id(k + t)}","topics":[{",".join([q[c] for c in t])}],'
                f'"knowledge_points":[{",".join([q[c] for c in k])}],"walk":[{",".join([q[c] for c in walk])}],'
                f'"exemplar_seed_ids":[{exemplars}]}}\n'
            )

def sample_concepts(
    graph: ConceptGraphArrays,
    n: int,
    *,
    seed: int = 0,
    options: WalkOptions | None = None,
    exemplars: ExemplarIndex | None = None,
    stats: SampleStats | None = None,
) -> Iterator[ConceptSample]:
    """Yield the first `n` distinct MathScale concept samples for `seed` (fewer if
    `options.max_walks` runs out). Pass a `SampleStats` to have it filled in as you go."""
    return ConceptSampler(graph, options, exemplars).sample(n, seed, stats)


def sample_walks(
    graph: ConceptGraphArrays,
    n: int,
    *,
    seed: int = 0,
    options: WalkOptions | None = None,
    stats: SampleStats | None = None,
) -> WalkBatch:
    """The same stream as `sample_concepts`, as one array batch (no records built)."""
    parts = list(ConceptSampler(graph, options).iter_batches(n, seed, stats))
    if not parts:
        o = options or WalkOptions()
        width = 2 + o.topic_steps[1] + o.kp_steps[1]
        e = np.zeros(0, dtype=np.int64)
        return WalkBatch(np.zeros((0, width), dtype=np.int32), e, e, e)
    return WalkBatch(
        np.concatenate([p.walks for p in parts]),
        np.concatenate([p.lengths for p in parts]),
        np.concatenate([p.n_topics for p in parts]),
        np.concatenate([p.walk_index for p in parts]),
    )
