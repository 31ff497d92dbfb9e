"""The concept graph as arrays: concepts indexed in id order, one CSR adjacency per edge kind
(neighbours sorted by id), built from records or straight from a store."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from graphgen.records import Concept, ConceptEdge, ConceptKind, EdgeKind

if TYPE_CHECKING:  # pragma: no cover
    from graphgen.store.base import GraphStore

# edge-kind codes used by the array fast path
TOPIC_TOPIC, TOPIC_KP, KP_KP = 0, 1, 2
_KIND_CODE = {EdgeKind.topic_topic: TOPIC_TOPIC, EdgeKind.topic_kp: TOPIC_KP, EdgeKind.kp_kp: KP_KP}
_KIND_CODE_STR = {k.value: v for k, v in _KIND_CODE.items()}

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
