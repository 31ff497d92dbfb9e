"""Few-shot exemplars for generation prompts (MathScale): for a concept sample, the seeds
whose knowledge-point sets are closest by Jaccard similarity, via an inverted index.

For a sample, the ``k`` seeds with the highest knowledge-point Jaccard (ties: smaller seed
id first). Candidates come from the inverted index (KP -> seeds), so only seeds sharing at
least one KP are scored. If fewer than ``k`` seeds share a KP, the remaining slots are
filled with seeds sharing a *topic*, ranked by topic-set Jaccard (ties by seed id); if that
is still fewer than ``k``, the list is shorter.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from graphgen.sample.arrays import WalkBatch

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
