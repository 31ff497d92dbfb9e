"""Fusion pairs by embedding (exact and approximate) and by the concept graph."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from graphgen.stages.pairs import (
    GraphPairOptions,
    PairOptions,
    PairStats,
    find_fusion_pairs,
    find_graph_pairs,
    pair_id,
)
from graphgen.knn import _exact_search, pair_similarity
from graphgen.records import ConceptEdge, EdgeKind, SeedQuestion

# Six unit vectors in the plane at these angles (degrees). Nearest neighbours by angle:
# a->b (20), b->a (20), c->b (25), d->e (25), e->d (25), f->e (65).
ANGLES = {"a": 0, "b": 20, "c": 45, "d": 90, "e": 115, "f": 180}


def plane(angles: dict[str, float], sources: dict[str, str] | None = None):
    seeds = [
        SeedQuestion(id=k, question=f"question {k}", source=(sources or {}).get(k, "s"))
        for k in angles
    ]
    vecs = np.array([[math.cos(math.radians(v)), math.sin(math.radians(v))] for v in angles.values()])
    return seeds, vecs.astype(np.float32)


def as_set(pairs):
    return {(p.seed_a, p.seed_b) for p in pairs}


def test_known_neighbours():
    seeds, vecs = plane(ANGLES)
    pairs, stats = find_fusion_pairs(seeds, vecs)
    assert as_set(pairs) == {("a", "b"), ("b", "c"), ("d", "e"), ("e", "f")}
    assert stats.method == "exact"
    assert stats.picks == 6 and stats.merged_reverse == 2 and stats.pairs == 4
    sim = {(p.seed_a, p.seed_b): p.similarity for p in pairs}
    assert sim[("a", "b")] == pytest.approx(math.cos(math.radians(20)), abs=1e-5)
    assert sim[("e", "f")] == pytest.approx(math.cos(math.radians(65)), abs=1e-5)
    assert all(p.method == "embedding-exact" for p in pairs)
    # strongest first, ids from the sorted seed ids
    assert [p.similarity for p in pairs] == sorted((p.similarity for p in pairs), reverse=True)
    assert all(p.id == pair_id(p.seed_b, p.seed_a) == pair_id(p.seed_a, p.seed_b) for p in pairs)
    assert all(p.seed_a < p.seed_b for p in pairs)


def test_vectors_need_not_be_normalised():
    seeds, vecs = plane(ANGLES)
    scaled = vecs * np.arange(1, 7, dtype=np.float32)[:, None]
    assert as_set(find_fusion_pairs(seeds, scaled)[0]) == as_set(find_fusion_pairs(seeds, vecs)[0])


def test_top_k():
    seeds, vecs = plane(ANGLES)
    pairs, stats = find_fusion_pairs(seeds, vecs, PairOptions(top_k=2))
    # second neighbours: a->c, b->c, c->d, d->c, e->c(70) vs f(65) -> f, f->d(90)
    assert as_set(pairs) == {("a", "b"), ("b", "c"), ("d", "e"), ("e", "f"), ("a", "c"), ("c", "d"), ("d", "f")}
    assert stats.picks == 12


def test_same_source():
    # a's nearest is b, but b is in another dataset; within "x", a's nearest is c.
    seeds, vecs = plane(ANGLES, sources={"a": "x", "b": "y", "c": "x", "d": "y", "e": "x", "f": "y"})
    pairs, stats = find_fusion_pairs(seeds, vecs, PairOptions(same_source=True))
    src = {s.id: s.source for s in seeds}
    assert all(src[p.seed_a] == src[p.seed_b] for p in pairs)
    assert as_set(pairs) == {("a", "c"), ("c", "e"), ("b", "d"), ("d", "f")}
    assert stats.groups == 2
    # without the option the cross-source neighbour wins
    assert ("a", "b") in as_set(find_fusion_pairs(seeds, vecs)[0])


def test_max_similarity_skips_to_next_neighbour():
    seeds, vecs = plane(ANGLES)
    # cos 20 = 0.94 > 0.93: a and b may not pair; a takes c (45 deg), b takes c (25 deg)
    pairs, stats = find_fusion_pairs(seeds, vecs, PairOptions(max_similarity=0.93))
    assert all(p.similarity <= 0.93 for p in pairs)
    assert ("a", "b") not in as_set(pairs)
    assert {("a", "c"), ("b", "c")} <= as_set(pairs)
    assert stats.excluded_above_max == 2  # a->b and b->a


def test_min_similarity_drops_weak_picks():
    seeds, vecs = plane(ANGLES)
    pairs, stats = find_fusion_pairs(seeds, vecs, PairOptions(min_similarity=0.8))
    assert as_set(pairs) == {("a", "b"), ("b", "c"), ("d", "e")}  # f's best is only cos 65
    assert stats.below_min == 1
    with pytest.raises(ValueError):
        PairOptions(min_similarity=0.9, max_similarity=0.5)


def test_mutual_only():
    seeds, vecs = plane(ANGLES)
    pairs, stats = find_fusion_pairs(seeds, vecs, PairOptions(mutual_only=True))
    assert as_set(pairs) == {("a", "b"), ("d", "e")}
    assert stats.dropped_not_mutual == 2


def test_max_uses_per_seed():
    seeds, vecs = plane(ANGLES)
    pairs, stats = find_fusion_pairs(seeds, vecs, PairOptions(top_k=2, max_uses_per_seed=1))
    used = [s for p in pairs for s in (p.seed_a, p.seed_b)]
    assert len(used) == len(set(used))
    # greedy, strongest first: a-b (20), d-e (25) ... then c-? and f-? pairs only among the rest
    assert {("a", "b"), ("d", "e")} <= as_set(pairs)
    assert stats.dropped_max_uses == stats.picks - stats.merged_reverse - len(pairs)


def test_exact_duplicates_excluded():
    seeds, vecs = plane(ANGLES)
    dup = SeedQuestion(id="a2", question="  QUESTION   a ", source="s")  # same text, normalised
    seeds.append(dup)
    vecs = np.vstack([vecs, vecs[:1]])
    for opts in (PairOptions(), PairOptions(max_similarity=1.0), PairOptions(top_k=3, max_similarity=1.0)):
        pairs, stats = find_fusion_pairs(seeds, vecs, opts)
        assert stats.duplicates == 1 and stats.searched == 6
        assert all("a2" not in (p.seed_a, p.seed_b) for p in pairs)
    # a near-duplicate with different text is a candidate, unless above max_similarity
    seeds[-1] = SeedQuestion(id="a2", question="question a, reworded", source="s")
    assert ("a", "a2") in as_set(find_fusion_pairs(seeds, vecs, PairOptions(max_similarity=1.0))[0])
    assert ("a", "a2") not in as_set(find_fusion_pairs(seeds, vecs)[0])


def test_deterministic_and_order_independent():
    rng = np.random.default_rng(1)
    vecs = rng.normal(size=(300, 16)).astype(np.float32)
    seeds = [SeedQuestion(id=f"s{i:03d}", question=f"q{i}") for i in range(300)]
    p1, _ = find_fusion_pairs(seeds, vecs, PairOptions(top_k=2))
    p2, _ = find_fusion_pairs(seeds, vecs, PairOptions(top_k=2))
    assert p1 == p2
    perm = list(range(300))
    random.Random(3).shuffle(perm)
    p3, _ = find_fusion_pairs([seeds[i] for i in perm], vecs[perm], PairOptions(top_k=2))
    assert [p.id for p in p3] == [p.id for p in p1]


def test_blockwise_matches_single_block():
    rng = np.random.default_rng(2)
    vecs = rng.normal(size=(3000, 32)).astype(np.float32)
    seeds = [SeedQuestion(id=f"s{i}", question=f"q{i}") for i in range(3000)]
    small, _ = find_fusion_pairs(seeds, vecs, PairOptions(top_k=3, memory_mb=16))  # ~700 rows a block
    big, _ = find_fusion_pairs(seeds, vecs, PairOptions(top_k=3, memory_mb=1024))
    assert [p.id for p in small] == [p.id for p in big]
    assert [p.similarity for p in small] == [p.similarity for p in big]


def test_exact_search_is_bit_identical_for_every_block_size():
    # issue 8 item 22: a 1-row block (BLAS gemv) rounds differently from a big block (gemm);
    # near-ties then came out in another order, with another 6th decimal
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3000, 32)).astype(np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    rows = np.arange(len(X))
    ref_j, ref_s = _exact_search(X, rows, 3, PairOptions(), None)
    for block in (1, 2, 7, 700, 3000):
        j, s = _exact_search(X, rows, 3, PairOptions(), None, block_rows=block)
        assert np.array_equal(j, ref_j) and np.array_equal(s, ref_s), block


def tied_set():
    """Unit vectors with exact ties: every 2-hot vector (e_a + e_b)/sqrt(2) over 12 axes is at
    the same cosine 1/2 from the 20 others sharing an axis; each also has an exact duplicate
    vector (cosine 1: above max_similarity); random vectors on 12 other axes fill the blocks."""
    rng = np.random.default_rng(5)
    hot = []
    for a in range(12):
        for b in range(a + 1, 12):
            v = np.zeros(12)
            v[[a, b]] = 1.0
            hot.append(v)
    hot = np.pad(np.array(hot), ((0, 0), (0, 12)))
    x = np.concatenate([hot, hot, np.pad(rng.normal(size=(400, 12)), ((0, 0), (12, 0)))])
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    order = rng.permutation(len(x))  # ties spread over the blocks
    return x[order]


def brute_force_topk(X, k, max_similarity):
    n = len(X)
    a, b = np.divmod(np.arange(n * n), n)
    sim = pair_similarity(X, a, b).reshape(n, n)
    out = []
    for i in range(n):
        cand = [(-sim[i, j], j) for j in range(n) if j != i and sim[i, j] <= max_similarity]
        out.append([j for _s, j in sorted(cand)[:k]])
    return out


def test_mass_ties_are_rescored_in_bounded_chunks_and_keep_the_lower_index():
    # 1,200 copies of one vector: 1.4M tied candidates, more than one rescoring chunk
    rng = np.random.default_rng(9)
    v = rng.normal(size=16)
    X = np.concatenate([np.tile(v, (1200, 1)), rng.normal(size=(50, 16))])
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)
    options = PairOptions(max_similarity=1.0, recall_sample=0)
    for block in (None, 1, 333):
        j, s = _exact_search(X, np.arange(len(X)), 2, options, None, block_rows=block)
        assert j[:1200].tolist() == [[1, 2], [0, 2]] + [[0, 1]] * 1198
        assert len(set(s[:1200].ravel().tolist())) == 1  # one exact value for every tied pair


@pytest.mark.parametrize("k", [1, 3])
def test_ties_pick_the_same_neighbours_in_the_same_order_for_every_block_size(k):
    X = tied_set()
    n = len(X)
    options = PairOptions(max_similarity=0.98)
    want = brute_force_topk(X, k, options.max_similarity)
    results = []
    for block in (1, 3, 16, 100, n):
        stats = PairStats()
        j, s = _exact_search(X, np.arange(n), k, options, stats, block_rows=block)
        assert j.tolist() == want, block  # ties: the lower index first, whatever the block
        results.append((j.tolist(), s.tolist(), stats.excluded_above_max))
    assert all(r == results[0] for r in results)
    assert results[0][2] == 2 * 66  # each 2-hot vector and its duplicate, both directions

    ids = [f"t{(i * 37) % n:04d}" for i in range(n)]  # id order differs from index order
    seeds = [SeedQuestion(id=ids[i], question=f"question {i}") for i in range(n)]
    pairs, _ = find_fusion_pairs(seeds, X, PairOptions(top_k=k, memory_mb=16))
    again, _ = find_fusion_pairs(seeds, X, PairOptions(top_k=k, memory_mb=1024))
    assert [(p.id, p.similarity) for p in pairs] == [(p.id, p.similarity) for p in again]
    # the total order: similarity descending, then seed ids; there are real ties
    keys = [(-p.similarity, p.seed_a, p.seed_b) for p in pairs]
    assert keys == sorted(keys)
    sims = [p.similarity for p in pairs]
    assert sims.count(0.5) >= 40


def clustered(n_clusters=60, per=30, dim=48, noise=0.35, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))
    x = np.repeat(centres, per, axis=0) + noise * rng.normal(size=(n_clusters * per, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    seeds = [SeedQuestion(id=f"c{i // per:02d}-{i % per:02d}", question=f"q{i}", source=f"src{i % 2}")
             for i in range(len(x))]
    return seeds, x.astype(np.float32)


@pytest.mark.parametrize("index", ["ivf-pq", "ivf", "hnsw"])
@pytest.mark.parametrize("same_source", [False, True])
def test_approximate_matches_exact_on_clustered_set(index, same_source):
    seeds, vecs = clustered()
    exact, es = find_fusion_pairs(seeds, vecs, PairOptions(top_k=2, same_source=same_source))
    approx, ast = find_fusion_pairs(
        seeds, vecs, PairOptions(top_k=2, same_source=same_source, exact_threshold=0, index=index, recall_sample=500)
    )
    assert es.method == "exact" and ast.method == index
    assert all(p.method == "embedding-approx" for p in approx)
    assert as_set(approx) == as_set(exact)
    assert ast.recall == 1.0 and ast.recall_sample == min(500, 1800 // (2 if same_source else 1)) * (2 if same_source else 1)
    assert {p.id: p.similarity for p in approx} == pytest.approx({p.id: p.similarity for p in exact}, abs=1e-5)


def test_approximate_respects_filters():
    seeds, vecs = clustered(noise=0.05)  # cluster mates are near-duplicates (> 0.98)
    ex, es = find_fusion_pairs(seeds, vecs, PairOptions(max_similarity=0.98))
    ap, ast = find_fusion_pairs(seeds, vecs, PairOptions(max_similarity=0.98, exact_threshold=0, recall_sample=200))
    assert all(p.similarity <= 0.98 for p in ap)
    assert ast.excluded_above_max == es.excluded_above_max  # every cluster mate skipped
    assert ast.recall >= 0.9
    assert len(as_set(ap) & as_set(ex)) >= 0.9 * len(ex)


def test_tiny_inputs():
    seeds, vecs = plane({"a": 0})
    assert find_fusion_pairs(seeds, vecs)[0] == []
    assert find_fusion_pairs([], np.zeros((0, 2), dtype=np.float32))[0] == []
    seeds, vecs = plane({"a": 0, "b": 30})
    pairs, stats = find_fusion_pairs(seeds, vecs, PairOptions(top_k=5))
    assert as_set(pairs) == {("a", "b")}
    # groups of <= 256 seeds are searched exactly even when told otherwise
    assert find_fusion_pairs(seeds, vecs, PairOptions(exact_threshold=0))[1].method == "exact"
    with pytest.raises(ValueError):
        find_fusion_pairs(seeds, vecs[:1])


# --- graph-guided pairs ------------------------------------------------------------------------


def edge(a, b, w, count=3):
    kind = EdgeKind.kp_kp if a.startswith("kp:") and b.startswith("kp:") else (
        EdgeKind.topic_topic if a.startswith("topic:") and b.startswith("topic:") else EdgeKind.topic_kp)
    return ConceptEdge(source=a, target=b, kind=kind, count=count, weight=w)


GRAPH_SEEDS = [
    ("s1", ["kp:fractions", "topic:arithmetic"]),
    ("s2", ["kp:percent", "topic:arithmetic"]),          # shares the topic with s1 (J = 1/3)
    ("s3", ["kp:ratio", "topic:proportion"]),            # no overlap with s1; linked strongly
    ("s4", ["kp:area", "topic:geometry"]),               # linked to s5 only
    ("s5", ["kp:perimeter", "topic:geometry"]),
    ("s6", ["kp:fractions", "kp:percent", "topic:arithmetic"]),  # overlaps s1/s2 heavily
    ("s7", ["kp:limits"]),                                # isolated
]
GRAPH_EDGES = [
    edge("kp:fractions", "kp:ratio", 0.8),
    edge("kp:fractions", "topic:proportion", 0.5),
    edge("kp:fractions", "kp:percent", 0.6),
    edge("kp:percent", "kp:ratio", 0.3),
    edge("kp:area", "kp:perimeter", 0.9),
    edge("kp:limits", "kp:area", 0.9, count=1),  # weak (one seed): ignored
    edge("kp:percent", "topic:geometry", 0.01),  # below min weight: ignored
]


def graph_score(a, b):
    d = dict(GRAPH_SEEDS)
    A, B = set(d[a]), set(d[b])
    w = {}
    for e in GRAPH_EDGES:
        if e.count >= 2 and e.weight >= 0.05:
            w[(e.source, e.target)] = w[(e.target, e.source)] = e.weight
    raw = sum(w.get((c, x), 0.0) for c in A - B for x in B - A)
    s = raw * (1 - len(A & B) / len(A | B))
    return s / (1 + s)


def test_graph_pairs_bridge_linked_concepts():
    pairs, stats = find_graph_pairs(GRAPH_SEEDS, GRAPH_EDGES)
    got = {(p.seed_a, p.seed_b): p.similarity for p in pairs}
    assert stats.method == "graph" and all(p.method == "graph" for p in pairs)
    # s1's best partner is s3 (fractions-ratio 0.8 + fractions-proportion 0.5, no overlap)
    assert ("s1", "s3") in got
    assert got[("s1", "s3")] == pytest.approx(graph_score("s1", "s3"), abs=1e-6)
    assert ("s4", "s5") in got  # area-perimeter, sharing only the topic
    assert got[("s4", "s5")] == pytest.approx(graph_score("s4", "s5"), abs=1e-6)
    assert all("s7" not in k for k in got)  # only a weak edge
    assert all(0.0 <= v < 1.0 for v in got.values())
    # s6 overlaps s1 by 2/3 > max_overlap: never paired with it
    assert ("s1", "s6") not in got
    assert stats.excluded_overlap > 0


def test_graph_pairs_exact_rescoring_of_overlapping_seeds():
    # s2 and s6 share arithmetic+percent; the approximate bound counts edges out of shared
    # concepts, the exact score must not.
    pairs, _ = find_graph_pairs(GRAPH_SEEDS, GRAPH_EDGES, GraphPairOptions(max_overlap=1.0, top_k=6))
    got = {(p.seed_a, p.seed_b): p.similarity for p in pairs}
    for (a, b), sim in got.items():
        assert sim == pytest.approx(graph_score(a, b), abs=1e-6), (a, b)


def test_graph_pairs_options():
    srcs = {"s1": "x", "s2": "x", "s3": "y", "s4": "y", "s5": "y", "s6": "x", "s7": "x"}
    pairs, _ = find_graph_pairs(GRAPH_SEEDS, GRAPH_EDGES, GraphPairOptions(same_source=True), sources=srcs)
    assert all(srcs[p.seed_a] == srcs[p.seed_b] for p in pairs)
    assert ("s1", "s3") not in as_set(pairs)
    pairs, _ = find_graph_pairs(GRAPH_SEEDS, GRAPH_EDGES, GraphPairOptions(min_similarity=0.5))
    # s4-s5 scores 0.9 * (1 - 1/3) = 0.6 -> 0.375: dropped; s3-s6 1.6 -> 0.615, s1-s3 1.3 -> 0.565
    assert as_set(pairs) == {("s1", "s3"), ("s3", "s6")}
    pairs, _ = find_graph_pairs(GRAPH_SEEDS, GRAPH_EDGES, GraphPairOptions(top_k=3, max_uses_per_seed=1))
    used = [s for p in pairs for s in (p.seed_a, p.seed_b)]
    assert len(used) == len(set(used))
    assert find_graph_pairs([], [])[0] == []


def test_graph_pairs_count_seeds_without_candidates_apart_from_below_min():
    _, stats = find_graph_pairs(GRAPH_SEEDS, GRAPH_EDGES)
    assert stats.no_candidates == 1 and stats.below_min == 0  # s7: only a weak edge, no candidate
    _, stats = find_graph_pairs(GRAPH_SEEDS, GRAPH_EDGES, GraphPairOptions(min_similarity=0.5))
    # s2 (best 0.286), s4 and s5 (0.375) have candidates, all below 0.5; s7 still has none
    assert stats.no_candidates == 1 and stats.below_min == 3
    _, stats = find_graph_pairs(GRAPH_SEEDS, GRAPH_EDGES, GraphPairOptions(top_k=3))
    # s4 and s5 have one candidate each: their two empty slots are short of candidates, not below min
    assert stats.no_candidates == 1 and stats.below_min == 0
    from graphgen.stages.pairs import PairsReport

    text = "\n".join(PairsReport(stats=stats).lines())
    assert "0 below min similarity" in text and "no candidate at all for 1 of 7 seeds" in text


def test_graph_pairs_scale():
    """10k seeds over a few hundred concepts, with popular concepts (speed lives in bench/bench_pairs.py)."""
    rng = random.Random(0)
    topics = [f"topic:t{i}" for i in range(40)]
    kps = [f"kp:k{i}" for i in range(400)]
    seed_concepts = []
    for i in range(10000):
        t = rng.choice(topics[:5]) if rng.random() < 0.5 else rng.choice(topics)  # popular topics
        ks = rng.sample(kps[: 40 + (i % 360)], rng.randint(1, 4))
        seed_concepts.append((f"s{i:05d}", sorted({t, *ks})))
    edges = []
    for _ in range(3000):
        a, b = sorted(rng.sample(topics + kps, 2))
        edges.append(edge(a, b, rng.uniform(0.05, 1.0)))
    pairs, stats = find_graph_pairs(seed_concepts, edges)
    assert stats.pairs > 7000
