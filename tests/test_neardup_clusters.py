"""`near_duplicate_clusters` folds its components in band by band (memory): it must give
exactly what taking every verified pair of every band at once gives."""

import numpy as np
import pytest
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from graphgen import neardup


def _all_pairs_at_once(bands, sig, rank, threshold, groups=None):
    """The clustering as it was before the fold: every band's verified pairs, then one
    connected-components pass and the greedy keep."""
    n = len(rank)
    src, dst = [], []
    for j in range(bands.shape[1]):
        order = np.lexsort((rank, bands[:, j]))
        keys = bands[order, j]
        starts = np.concatenate(([True], keys[1:] != keys[:-1]))
        group_first = order[np.maximum.accumulate(np.where(starts, np.arange(n), 0))]
        members = np.flatnonzero(~starts)
        a = np.concatenate((order[members], order[members]))
        b = np.concatenate((group_first[members], order[members - 1]))
        pick = a != b
        if groups is not None:
            pick &= groups[a] != groups[b]
        a, b = a[pick], b[pick]
        ok = neardup.estimated_jaccard(sig, a, b) >= threshold
        src.append(a[ok])
        dst.append(b[ok])
    src, dst = np.concatenate(src), np.concatenate(dst)
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n)).tocsr()
    label = connected_components(graph, directed=False)[1]

    def similarity_to(a, b):
        sims = neardup.estimated_jaccard(sig, a, b)
        return sims if groups is None else np.where(groups[a] == groups[b], 0.0, sims)

    return neardup.greedy_keep(label, rank, similarity_to, threshold)


def _signatures(rng, n, perm=32):
    """Rows made of a few dozen originals, each copy with some of its values changed."""
    originals = rng.integers(0, 1 << 16, size=(max(1, n // 12), perm), dtype=np.uint16)
    sig = originals[rng.integers(0, len(originals), size=n)].copy()
    changed = rng.random(sig.shape) < rng.choice([0.0, 0.1, 0.25, 0.6], size=(n, 1))
    sig[changed] = rng.integers(0, 1 << 16, size=int(changed.sum()), dtype=np.uint16)
    return sig


@pytest.mark.parametrize("n", [2, 7, 60, 500, 3000])
@pytest.mark.parametrize("with_groups", [False, True])
def test_folded_components_equal_all_pairs_at_once(n, with_groups):
    rng = np.random.default_rng(n + 17 * with_groups)
    sig = _signatures(rng, n)
    bands = neardup.band_keys(sig, 8, 4)
    rank = rng.permutation(n).astype(np.int64)
    groups = rng.integers(0, max(1, n // 3), size=n).astype(np.int64) if with_groups else None
    keep, sims = neardup.near_duplicate_clusters(bands, sig, rank, 0.7, groups=groups)
    want_keep, want_sims = _all_pairs_at_once(bands, sig, rank, 0.7, groups)
    assert np.array_equal(keep, want_keep)
    assert np.array_equal(sims, want_sims)
    if n >= 500:
        assert (keep != np.arange(n)).sum() > n // 4  # clusters big enough to fold several times
