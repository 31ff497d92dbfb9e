"""MathScale concept sampling: vectorised random walks over the weighted concept graph.

Pure library: records (or numpy arrays) in, `ConceptSample` records out. Nothing here knows
which graph store the graph came from; `ConceptGraphArrays.from_store(store)` only calls the
store interface's `concepts()` and `edges()`.

Walk semantics (MathScale, Tang et al. 2024), for one walk
-----------------------------------------------------------
1. **Start.** Pick a topic with probability proportional to its `frequency`
   (``start="frequency"``) or uniformly among all topics (``start="uniform"``). In coverage
   mode the start weight is further divided by ``(1 + c)**coverage_alpha`` where ``c`` is the
   number of samples emitted so far that contain that topic (see *Coverage* below).
2. **Topic phase.** Draw ``t`` uniformly from ``topic_steps = (min, max)`` (inclusive), then
   take up to ``t`` steps on the topic subgraph (topic-topic edges). Each step moves from the
   current node to a neighbour of the allowed kind that the walk has *not visited yet*, with
   probability proportional to the edge's ``count`` (``edge_weight="count"``, MathScale's
   co-occurrence) or ``weight`` (``edge_weight="weight"``). Edges with a non-positive weight
   are never taken. If no unvisited neighbour with positive weight exists, the phase stops
   early ("stuck"; counted in ``SampleStats.stuck_topic_phase``) and the walk goes on.
3. **Topic -> knowledge point.** Exactly one step along a topic-kp edge from the *last*
   visited topic. If that topic has no knowledge-point neighbour with positive weight, the
   walk is **dropped** (no sample; counted in ``SampleStats.dropped_no_kp``); it is not
   retried from another topic - the next walk of the stream simply takes its place.
4. **Knowledge-point phase.** Draw ``k`` uniformly from ``kp_steps`` and take up to ``k``
   steps on the kp-kp subgraph by the same rule; stuck -> the phase stops early (counted in
   ``SampleStats.stuck_kp_phase``) and the walk ends there.

A sample's ``walk`` is the visit order (start topic first); ``topics`` and
``knowledge_points`` are the visited concepts of each kind, **sorted by id** (canonical, so
equal combinations have equal lists). So with the defaults a sample has 2-3 topics
(1 + 1..2 steps) and 1-5 knowledge points, fewer when the walk got stuck.

Stream, duplicates, reproducibility
-----------------------------------
Walks form an infinite stream numbered 0, 1, 2, ...; every random number walk ``i`` uses is
a counter-based hash of ``(seed, i, draw slot)`` (SplitMix64 finaliser), never a shared
generator state. Hence the output depends only on (graph, seed, options): not on the batch
size used internally, nor on the store the graph came from (concepts are indexed in id
order, adjacency sorted by neighbour id). Walks are read in stream order; a walk whose
concept *set* (topics + knowledge points) was already emitted is dropped and counted in
``duplicates``. ``sample_concepts(graph, n)`` yields the first ``n`` distinct combinations
of the stream, or fewer when ``max_walks`` walks did not produce ``n`` (``exhausted``).
Duplicate detection inside the sampler uses a 64-bit hash of the node-index set (the chance
of a false "duplicate" is ~ N^2 / 2^65, i.e. ~3e-8 for a million samples).

The sample id is ``"cs-"`` + the first 20 hex digits of SHA-1 over the sorted concept ids
joined by newlines: it depends only on the combination, so a resumed generation run can key
on it, and the same combination sampled from a rebuilt graph keeps its id.

`ConceptSampler.raw_walks(seed, start, stop)` returns stream positions as drawn (duplicates
and dropped walks included, with per-walk stuck/dropped flags) for inspection and tests;
`ConceptSampler.iter_batches` / `sample_walks` give the emitted samples as arrays, which is
~3-5x cheaper than building `ConceptSample` records.

Step choice is exact: a neighbour is drawn from the whole adjacency row (binary search in
normalised cumulative weights) and rejected if already visited, up to ``_RETRIES`` times;
walks still rejected after that draw from the exact masked distribution. Rejection keeps
the conditional distribution ``w(v) / sum of unvisited w`` exactly, so the fallback only
affects speed.

Coverage
--------
With ``coverage=True`` the stream is cut into rounds of ``coverage_interval`` walks; before
each round the start weights become ``base(topic) / (1 + c(topic))**coverage_alpha`` with
``c`` the number of samples emitted so far containing the topic (``base`` = frequency or 1
according to ``start``). Rounds are fixed by walk index, so coverage mode is reproducible
too. Every run reports concepts covered / total (``SampleStats``), coverage mode or not.

Exemplars
---------
``ExemplarIndex`` returns, for a sample, the ``k`` seeds whose knowledge-point sets have the
highest Jaccard similarity with the sample's knowledge points (ties: smaller seed id first).
Candidates come from an inverted index (KP -> seeds), so only seeds sharing at least one KP
are scored. If fewer than ``k`` seeds share a KP, the remaining slots are filled with seeds
sharing a *topic*, ranked by topic-set Jaccard (ties by seed id); if that is still fewer
than ``k``, the list is shorter.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, Field, model_validator

from graphgen.records import Concept, ConceptEdge, ConceptKind, ConceptSample, EdgeKind

if TYPE_CHECKING:  # pragma: no cover
    from graphgen.store.base import GraphStore

__all__ = [
    "ConceptGraphArrays",
    "WalkOptions",
    "SampleStats",
    "WalkBatch",
    "RawWalks",
    "ConceptSampler",
    "ExemplarIndex",
    "sample_concepts",
    "sample_walks",
    "sample_id",
]

# edge-kind codes used by the array fast path
TOPIC_TOPIC, TOPIC_KP, KP_KP = 0, 1, 2
_KIND_CODE = {EdgeKind.topic_topic: TOPIC_TOPIC, EdgeKind.topic_kp: TOPIC_KP, EdgeKind.kp_kp: KP_KP}
_KIND_CODE_STR = {k.value: v for k, v in _KIND_CODE.items()}

_RETRIES = 8  # rejection attempts per step before the exact masked draw
_FALLBACK_CHUNK = 1 << 22  # adjacency entries per exact-draw chunk (bounds memory)

_U64 = np.uint64
_GAMMA = _U64(0x9E3779B97F4A7C15)
_M1 = _U64(0xBF58476D1CE4E5B9)
_M2 = _U64(0x94D049BB133111EB)
_TWO_M53 = float(2.0**-53)


# ---------------------------------------------------------------------------------------
# counter-based random numbers
# ---------------------------------------------------------------------------------------


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser (vectorised, wrapping uint64 arithmetic)."""
    z = (z ^ (z >> _U64(30))) * _M1
    z = (z ^ (z >> _U64(27))) * _M2
    return z ^ (z >> _U64(31))


def _seed_key(seed: int) -> np.uint64:
    with np.errstate(over="ignore"):
        return _mix(np.array([seed & 0xFFFFFFFFFFFFFFFF ^ 0x5DEECE66D], dtype=_U64))[0]


def _walk_bases(key: np.uint64, start: int, stop: int) -> np.ndarray:
    idx = np.arange(start, stop, dtype=_U64)
    with np.errstate(over="ignore"):
        return _mix(key + idx * _GAMMA)


def _uniform(bases: np.ndarray, slot: int) -> np.ndarray:
    """One uniform in [0, 1) per walk for draw `slot`."""
    with np.errstate(over="ignore"):
        h = _mix(bases + _U64(slot + 1) * _GAMMA)
    return (h >> _U64(11)).astype(np.float64) * _TWO_M53


# draw-slot layout: a walk's random numbers are addressed by slot, never by call order
_SLOT_START, _SLOT_TOPIC_N, _SLOT_KP_N = 0, 1, 2
_STEP_STRIDE = 64  # slots per step: _RETRIES rejection draws + 1 fallback draw


def _step_slot(step_id: int, attempt: int) -> int:
    return 3 + step_id * _STEP_STRIDE + attempt


_STEP_TOPIC0, _STEP_TO_KP, _STEP_KP0 = 0, 1000, 1001


# ---------------------------------------------------------------------------------------
# the graph as arrays
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CSR:
    """Adjacency of one walk phase for one weighting: rows are node indices."""

    indptr: np.ndarray  # int64, n+1
    indices: np.ndarray  # int32, neighbour node index
    w: np.ndarray  # float64, > 0
    cum: np.ndarray  # float64: row + inclusive cumulative share; last entry of row r == r+1

    @property
    def degree(self) -> np.ndarray:
        return np.diff(self.indptr)


def _build_csr(n: int, rows: np.ndarray, cols: np.ndarray, w: np.ndarray) -> _CSR:
    keep = w > 0
    rows, cols, w = rows[keep], cols[keep], w[keep].astype(np.float64)
    order = np.lexsort((cols, rows))
    rows, cols, w = rows[order], cols[order].astype(np.int32), w[order]
    counts = np.bincount(rows, minlength=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    if len(w):
        c = np.cumsum(w)
        starts = indptr[:-1]
        ends = indptr[1:]
        nonempty = counts > 0
        base = np.zeros(n, dtype=np.float64)
        s_ne = starts[nonempty]
        base[nonempty] = np.where(s_ne > 0, c[np.maximum(s_ne - 1, 0)], 0.0)
        total = np.zeros(n, dtype=np.float64)
        total[nonempty] = c[ends[nonempty] - 1] - base[nonempty]
        cum = rows.astype(np.float64) + (c - base[rows]) / total[rows]
        cum[ends[nonempty] - 1] = np.arange(n, dtype=np.float64)[nonempty] + 1.0
    else:
        cum = np.zeros(0, dtype=np.float64)
    return _CSR(indptr, cols, w, cum)


class ConceptGraphArrays:
    """The concept graph as numpy arrays, built once and walked many times.

    Concepts are indexed in id order (``ids[i]``); each edge kind is kept as undirected
    adjacency in CSR form (topic-kp only from the topic side, the only direction a walk
    uses), with both ``count`` and ``weight`` kept so either weighting can be walked.
    Self-loops are ignored; repeated edges add up.
    """

    def __init__(
        self,
        ids: list[str],
        is_topic: np.ndarray,
        frequency: np.ndarray,
        edge_src: np.ndarray,
        edge_dst: np.ndarray,
        edge_kind: np.ndarray,
        edge_count: np.ndarray,
        edge_weight: np.ndarray,
    ) -> None:
        # callers go through from_arrays / from_records, which sort and validate
        self.ids = ids
        self.is_topic = is_topic
        self.frequency = frequency
        self._edges = (edge_src, edge_dst, edge_kind, edge_count, edge_weight)
        self._csr: dict[tuple[int, str], _CSR] = {}
        self._index: dict[str, int] | None = None

    # --- construction -----------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        ids: Sequence[str],
        kinds: Sequence[str] | np.ndarray,
        frequency: Sequence[float] | np.ndarray,
        edge_src: np.ndarray,
        edge_dst: np.ndarray,
        edge_kind: np.ndarray,
        edge_count: np.ndarray,
        edge_weight: np.ndarray | None = None,
    ) -> ConceptGraphArrays:
        """Fast path. `kinds`: per concept "topic"/"kp" (or a bool array, True = topic);
        `edge_src`/`edge_dst`: indices into `ids`; `edge_kind`: 0 topic-topic, 1 topic-kp,
        2 kp-kp (or EdgeKind values); `edge_weight` defaults to `edge_count`."""
        ids = list(ids)
        n = len(ids)
        if len(set(ids)) != n:
            raise ValueError("concept ids must be unique")
        kinds_arr = np.asarray(kinds)
        if kinds_arr.dtype == bool:
            is_topic = kinds_arr.copy()
        else:
            vals = [k.value if isinstance(k, ConceptKind) else str(k) for k in kinds_arr.tolist()]
            bad = {v for v in vals if v not in ("topic", "kp")}
            if bad:
                raise ValueError(f"unknown concept kind(s): {sorted(bad)}")
            is_topic = np.array([v == "topic" for v in vals], dtype=bool)
        freq = np.asarray(frequency, dtype=np.float64)
        if len(is_topic) != n or len(freq) != n:
            raise ValueError("ids, kinds and frequency must have the same length")
        src = np.asarray(edge_src, dtype=np.int64)
        dst = np.asarray(edge_dst, dtype=np.int64)
        ek = np.asarray(edge_kind)
        if ek.dtype.kind in "OUS":
            ek = np.array([_KIND_CODE_STR[k.value if isinstance(k, EdgeKind) else str(k)] for k in ek.tolist()])
        ek = ek.astype(np.int8)
        cnt = np.asarray(edge_count, dtype=np.float64)
        wgt = cnt if edge_weight is None else np.asarray(edge_weight, dtype=np.float64)
        m = len(src)
        if not (len(dst) == len(ek) == len(cnt) == len(wgt) == m):
            raise ValueError("edge arrays must have the same length")
        if m and (src.min() < 0 or dst.min() < 0 or src.max() >= n or dst.max() >= n):
            raise ValueError("edge endpoint index out of range")
        if m and (ek.min() < 0 or ek.max() > 2):
            raise ValueError("edge kind codes must be 0, 1 or 2")

        # canonical order: concepts sorted by id, so any store gives the same indexing
        order = np.array(sorted(range(n), key=ids.__getitem__), dtype=np.int64)
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        ids_sorted = [ids[i] for i in order.tolist()]
        is_topic = is_topic[order]
        freq = freq[order]
        src, dst = rank[src], rank[dst]

        # orient topic-kp edges topic -> kp, and check kinds agree with the endpoints
        tk = ek == TOPIC_KP
        flip = tk & ~is_topic[src]
        src, dst = np.where(flip, dst, src), np.where(flip, src, dst)
        ts, td = is_topic[src], is_topic[dst]
        ok = np.where(ek == TOPIC_TOPIC, ts & td, np.where(ek == KP_KP, ~ts & ~td, ts & ~td))
        if not ok.all():
            i = int(np.flatnonzero(~ok)[0])
            raise ValueError(
                f"edge {ids_sorted[src[i]]!r} - {ids_sorted[dst[i]]!r}: kind code {int(ek[i])} "
                "does not match its endpoints' kinds"
            )
        loop = src == dst
        if loop.any():
            keep = ~loop
            src, dst, ek, cnt, wgt = src[keep], dst[keep], ek[keep], cnt[keep], wgt[keep]
        return cls(ids_sorted, is_topic, freq, src, dst, ek, cnt, wgt)

    @classmethod
    def from_records(cls, concepts: Iterable[Concept], edges: Iterable[ConceptEdge]) -> ConceptGraphArrays:
        """From any iterables of records (e.g. a store's `concepts()` and `edges()`, or
        `graphgen.graph.build_graph`). Edges are consumed in one streaming pass into typed
        arrays; no per-edge object is kept."""
        ids: list[str] = []
        kinds: list[bool] = []
        freq: list[int] = []
        for c in concepts:
            ids.append(c.id)
            kinds.append(c.kind is ConceptKind.topic or c.kind == "topic")
            freq.append(c.frequency)
        index = {cid: i for i, cid in enumerate(ids)}
        if len(index) != len(ids):
            raise ValueError("duplicate concept id")
        src: list[int] = []
        dst: list[int] = []
        kind: list[int] = []
        cnt: list[int] = []
        wgt: list[float] = []
        code = _KIND_CODE
        try:
            for e in edges:
                src.append(index[e.source])
                dst.append(index[e.target])
                kind.append(code[e.kind])
                cnt.append(e.count)
                wgt.append(e.weight)
        except KeyError as exc:
            raise ValueError(f"edge endpoint {exc.args[0]!r} is not a concept") from None
        return cls.from_arrays(
            ids,
            np.array(kinds, dtype=bool),
            np.array(freq, dtype=np.float64),
            np.array(src, dtype=np.int64),
            np.array(dst, dtype=np.int64),
            np.array(kind, dtype=np.int8),
            np.array(cnt, dtype=np.float64),
            np.array(wgt, dtype=np.float64),
        )

    @classmethod
    def from_store(cls, store: GraphStore) -> ConceptGraphArrays:
        return cls.from_records(store.concepts(), store.edges())

    # --- access -----------------------------------------------------------------------
    @property
    def n_concepts(self) -> int:
        return len(self.ids)

    @property
    def n_edges(self) -> int:
        return len(self._edges[0])

    @property
    def topic_indices(self) -> np.ndarray:
        return np.flatnonzero(self.is_topic)

    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {cid: i for i, cid in enumerate(self.ids)}
        return self._index

    def csr(self, kind: int, edge_weight: str = "count") -> _CSR:
        """Adjacency used by one walk phase (kind: TOPIC_TOPIC, TOPIC_KP or KP_KP)."""
        key = (kind, edge_weight)
        got = self._csr.get(key)
        if got is None:
            src, dst, ek, cnt, wgt = self._edges
            sel = ek == kind
            s, d = src[sel], dst[sel]
            w = (cnt if edge_weight == "count" else wgt)[sel]
            if kind == TOPIC_KP:  # walked only topic -> kp
                got = _build_csr(self.n_concepts, s, d, w)
            else:
                got = _build_csr(self.n_concepts, np.concatenate([s, d]), np.concatenate([d, s]), np.concatenate([w, w]))
            self._csr[key] = got
        return got



# ---------------------------------------------------------------------------------------
# options and stats
# ---------------------------------------------------------------------------------------


class WalkOptions(BaseModel):
    """How walks are drawn (see the module docstring for the exact semantics)."""

    topic_steps: tuple[int, int] = Field((1, 2), description="steps on the topic subgraph (min, max)")
    kp_steps: tuple[int, int] = Field((0, 4), description="steps on the knowledge-point subgraph (min, max)")
    start: Literal["frequency", "uniform"] = Field("frequency", description="start-topic distribution")
    edge_weight: Literal["count", "weight"] = Field(
        "count", description="edge attribute steps are proportional to (MathScale: co-occurrence count)"
    )
    coverage: bool = Field(False, description="bias starts toward topics covered least so far")
    coverage_alpha: float = Field(1.0, ge=0, description="start weight / (1 + times covered) ** alpha")
    coverage_interval: int = Field(4096, ge=1, description="walks between coverage re-weightings")
    exemplars: int = Field(0, ge=0, description="k few-shot seeds per sample (needs an ExemplarIndex)")
    max_walks: int | None = Field(
        None, ge=1, description="give up after this many walks (default 10 * n + 10,000)"
    )

    @model_validator(mode="after")
    def _ranges(self) -> WalkOptions:
        for name in ("topic_steps", "kp_steps"):
            lo, hi = getattr(self, name)
            if lo < 0 or hi < lo:
                raise ValueError(f"{name} must satisfy 0 <= min <= max, got {(lo, hi)}")
        return self


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
class WalkBatch:
    """Emitted walks of one batch, as arrays (the fast path; `ConceptSampler.iter_batches`).

    walks: int32 (m, max_len), node indices in visit order, padded with -1;
    lengths: nodes per walk; n_topics: the first n_topics entries are topics, the rest KPs;
    walk_index: position of each walk in the stream."""

    walks: np.ndarray
    lengths: np.ndarray
    n_topics: np.ndarray
    walk_index: np.ndarray
    exemplars: list[list[str]] | None = None

    def __len__(self) -> int:
        return len(self.lengths)


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
        next_reweight = o.coverage_interval if o.coverage else None
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
                    next_reweight = pos + o.coverage_interval
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


# ---------------------------------------------------------------------------------------
# exemplars
# ---------------------------------------------------------------------------------------


def _inverted(n_keys: int, owner: np.ndarray, key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR key -> sorted owners."""
    order = np.lexsort((owner, key))
    indptr = np.zeros(n_keys + 1, dtype=np.int64)
    np.cumsum(np.bincount(key, minlength=n_keys), out=indptr[1:])
    return indptr, owner[order].astype(np.int64)


class ExemplarIndex:
    """Few-shot exemplars by knowledge-point Jaccard, via an inverted index.

    Built from `(seed_id, concept_ids)` pairs (e.g. `store.seed_concepts()`); concept ids
    starting with ``topic:`` are topics, every other id is a knowledge point."""

    def __init__(self, seed_concepts: Iterable[tuple[str, Sequence[str]]]) -> None:
        pairs = sorted((sid, sorted(set(cids))) for sid, cids in seed_concepts)
        self.seed_ids = [sid for sid, _ in pairs]
        if len(set(self.seed_ids)) != len(self.seed_ids):
            raise ValueError("duplicate seed id")
        vocab: dict[str, int] = {}
        kp_owner: list[int] = []
        kp_key: list[int] = []
        tp_owner: list[int] = []
        tp_key: list[int] = []
        for s, (_, cids) in enumerate(pairs):
            for c in cids:
                v = vocab.setdefault(c, len(vocab))
                if c.startswith("topic:"):
                    tp_owner.append(s)
                    tp_key.append(v)
                else:
                    kp_owner.append(s)
                    kp_key.append(v)
        self.vocab = vocab
        nv, ns = len(vocab), len(pairs)
        ko, kk = np.array(kp_owner, dtype=np.int64), np.array(kp_key, dtype=np.int64)
        to, tk = np.array(tp_owner, dtype=np.int64), np.array(tp_key, dtype=np.int64)
        self._kp_post = _inverted(nv, ko, kk)
        self._tp_post = _inverted(nv, to, tk)
        self._kp_size = np.bincount(ko, minlength=ns).astype(np.float64)
        self._tp_size = np.bincount(to, minlength=ns).astype(np.float64)

    def __len__(self) -> int:
        return len(self.seed_ids)

    def concept_map(self, ids: Sequence[str]) -> np.ndarray:
        """vocab index for each of `ids` (-1 if no seed mentions it)."""
        return np.array([self.vocab.get(c, -1) for c in ids], dtype=np.int64)

    # --- queries ------------------------------------------------------------------------
    def query(self, knowledge_points: Iterable[str], topics: Iterable[str] = (), k: int = 3) -> list[str]:
        """The k seed ids closest to one sample (see the module docstring). Knowledge
        points no seed mentions still count in the sample's set size."""
        kp_set, tp_set = set(knowledge_points), set(topics)
        kq = sorted(v for v in (self.vocab.get(c, -1) for c in kp_set) if v >= 0)
        tq = sorted(v for v in (self.vocab.get(c, -1) for c in tp_set) if v >= 0)
        K = np.full((1, max(len(kq), 1)), -1, dtype=np.int64)
        K[0, : len(kq)] = kq
        T = np.full((1, max(len(tq), 1)), -1, dtype=np.int64)
        T[0, : len(tq)] = tq
        return self.query_many(
            K, T, k, kp_size=np.array([float(len(kp_set))]), tp_size=np.array([float(len(tp_set))])
        )[0]

    def query_walks(self, batch: WalkBatch, concept_map: np.ndarray, k: int) -> list[list[str]]:
        W = batch.walks
        col = np.arange(W.shape[1])[None, :]
        valid = W >= 0
        is_kp = valid & (col >= batch.n_topics[:, None])
        is_tp = valid & (col < batch.n_topics[:, None])
        mapped = np.where(valid, concept_map[np.maximum(W, 0)], -1)
        K = np.where(is_kp, mapped, -1)
        T = np.where(is_tp, mapped, -1)
        kp_size = is_kp.sum(axis=1).astype(np.float64)
        tp_size = is_tp.sum(axis=1).astype(np.float64)
        return self.query_many(K, T, k, kp_size=kp_size, tp_size=tp_size)

    def _scored(self, post, sizes, Q, qsize, rows):
        """(row, seed, jaccard) for every (query row, seed sharing >= 1 key) pair."""
        indptr, owners = post
        r_idx, c_idx = np.nonzero(Q[rows] >= 0)
        keys = Q[rows][r_idx, c_idx]
        a, b = indptr[keys], indptr[keys + 1]
        L = b - a
        tot = int(L.sum())
        if tot == 0:
            e = np.zeros(0, dtype=np.int64)
            return e, e, np.zeros(0)
        rep = np.repeat(rows[r_idx], L)
        off = np.arange(tot) - np.repeat(np.cumsum(L) - L, L)
        seeds = owners[np.repeat(a, L) + off]
        ns = len(self.seed_ids)
        pair, inter = np.unique(rep * ns + seeds, return_counts=True)
        r, s = pair // ns, pair % ns
        jac = inter / (sizes[s] + qsize[r] - inter)
        return r, s, jac

    @staticmethod
    def _topk(r: np.ndarray, s: np.ndarray, jac: np.ndarray, cap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row, the `cap[row]` pairs with the highest jac (ties: smaller seed index).
        Pairs must be sorted by (row, seed), as np.unique leaves them. Result: grouped by
        row, best first. k selection rounds of segment reductions, no full sort."""
        if len(r) == 0:
            return r, s
        starts = np.flatnonzero(np.r_[True, r[1:] != r[:-1]])
        seg_len = np.diff(np.r_[starts, len(r)])
        caps = cap[r[starts]]
        j = jac.astype(np.float64, copy=True)
        idx = np.arange(len(r))
        big = len(r)
        picks = []
        for rnd in range(int(caps.max(initial=0))):
            best = np.maximum.reduceat(j, starts)
            live = (best >= 0) & (caps > rnd)
            if not live.any():
                break
            first = np.minimum.reduceat(np.where(j == np.repeat(best, seg_len), idx, big), starts)
            sel = first[live]
            picks.append(sel)
            j[sel] = -1.0
        if not picks:
            return r[:0], s[:0]
        sel = np.concatenate(picks)  # round by round: stable sort by row keeps rank order
        sel = sel[np.argsort(r[sel], kind="stable")]
        return r[sel], s[sel]

    def query_many(
        self,
        kps: np.ndarray,
        topics: np.ndarray,
        k: int,
        *,
        kp_size: np.ndarray | None = None,
        tp_size: np.ndarray | None = None,
        chunk: int = 4096,
    ) -> list[list[str]]:
        """Vectorised queries. `kps` / `topics`: (m, w) vocab indices padded with -1;
        `kp_size` / `tp_size`: the sample's set sizes (default: valid entries per row)."""
        m = len(kps)
        if kp_size is None:
            kp_size = (kps >= 0).sum(axis=1).astype(np.float64)
        if tp_size is None:
            tp_size = (topics >= 0).sum(axis=1).astype(np.float64)
        out: list[list[str]] = [[] for _ in range(m)]
        if k <= 0 or m == 0:
            return out
        sid = self.seed_ids
        for a in range(0, m, chunk):
            rows = np.arange(a, min(a + chunk, m))
            r, s, jac = self._scored(self._kp_post, self._kp_size, kps, kp_size, rows)
            r, s = self._topk(r, s, jac, np.full(m, k))
            have = np.bincount(r - a, minlength=len(rows))
            short = rows[have < k]
            if len(short):
                r2, s2, jac2 = self._scored(self._tp_post, self._tp_size, topics, tp_size, short)
                if len(r2):
                    ns = len(sid)
                    taken = np.isin(r2 * ns + s2, r * ns + s)
                    r2, s2, jac2 = r2[~taken], s2[~taken], jac2[~taken]
                    # fallbacks rank after every primary of their row: cap at k - have
                    cap = np.zeros(m, dtype=np.int64)
                    cap[rows] = k - have
                    r2, s2 = self._topk(r2, s2, jac2, cap)
                    r = np.concatenate([r, r2])
                    s = np.concatenate([s, s2])
            # primaries come first for each row, fallbacks after: stable sort by row
            order = np.argsort(r, kind="stable")
            for ri, si in zip(r[order].tolist(), s[order].tolist()):
                out[ri].append(sid[si])
        return out
