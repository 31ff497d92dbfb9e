"""MathScale walk semantics, reproducibility, dedup, coverage and exemplars on small
hand-built graphs (graphgen.sample)."""

from __future__ import annotations

import json
import random
from collections import Counter
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from graphgen.graph import build_graph, rebuild
from graphgen.records import Concept, ConceptEdge, ConceptKind, EdgeKind, Extraction, SeedQuestion
from graphgen.sample import (
    ConceptGraphArrays,
    ConceptSampler,
    ExemplarIndex,
    SampleStats,
    WalkOptions,
    coverage_round_end,
    sample_concepts,
    sample_id,
    sample_walks,
)

try:
    from scipy.stats import chi2 as _chi2
except ImportError:  # pragma: no cover - scipy is optional
    _chi2 = None

# chi-square critical values at p = 0.001 for df = 1..6 (used when scipy is missing)
_CRIT_001 = {1: 10.828, 2: 13.816, 3: 16.266, 4: 18.467, 5: 20.515, 6: 22.458}


def assert_chisq(observed: dict, expected_weights: dict) -> None:
    """Observed counts match weights (goodness of fit, p >= 0.001)."""
    keys = sorted(expected_weights)
    assert set(observed) <= set(keys), f"unexpected outcomes {set(observed) - set(keys)}"
    n = sum(observed.values())
    total = sum(expected_weights.values())
    stat = sum(
        (observed.get(k, 0) - n * expected_weights[k] / total) ** 2 / (n * expected_weights[k] / total) for k in keys
    )
    df = len(keys) - 1
    crit = float(_chi2.ppf(0.999, df)) if _chi2 is not None else _CRIT_001[df]
    assert stat < crit, f"chi2={stat:.2f} >= {crit:.2f}; observed {observed}, weights {expected_weights}"


# --- hand-built graphs ------------------------------------------------------------------


def _kind(cid: str) -> ConceptKind:
    return ConceptKind.topic if cid.startswith("topic:") else ConceptKind.knowledge_point


def make_graph(freq: dict[str, int], edges: list[tuple[str, str, int]]) -> tuple[list[Concept], list[ConceptEdge]]:
    concepts = [
        Concept(id=c, kind=_kind(c), name=c.split(":", 1)[1], display_name=c, frequency=f) for c, f in sorted(freq.items())
    ]
    out = []
    for a, b, count in edges:
        ka, kb = _kind(a), _kind(b)
        if ka is ConceptKind.topic and kb is ConceptKind.topic:
            kind = EdgeKind.topic_topic
        elif ka is kb:
            kind = EdgeKind.kp_kp
        else:
            kind = EdgeKind.topic_kp
            if ka is not ConceptKind.topic:
                a, b = b, a
        if kind is not EdgeKind.topic_kp and a > b:
            a, b = b, a
        out.append(ConceptEdge(source=a, target=b, kind=kind, count=count, weight=count / 10))
    return concepts, out


def T(i) -> str:
    return f"topic:t{i}"


def K(i) -> str:
    return f"kp:k{i}"


def general_graph():
    """5 topics, 8 KPs, varied counts; topic t4 has no topic neighbour."""
    freq = {T(i): f for i, f in enumerate([5, 3, 2, 1, 1])} | {K(i): 1 + i % 3 for i in range(8)}
    edges = [
        (T(0), T(1), 3), (T(0), T(2), 1), (T(1), T(2), 2), (T(2), T(3), 4), (T(0), T(3), 1),
        (T(0), K(0), 2), (T(0), K(1), 1), (T(1), K(1), 3), (T(1), K(2), 1), (T(2), K(3), 2),
        (T(3), K(4), 1), (T(3), K(5), 2), (T(4), K(6), 1), (T(2), K(0), 1),
        (K(0), K(1), 2), (K(1), K(2), 1), (K(2), K(3), 3), (K(3), K(4), 1), (K(4), K(5), 2),
        (K(5), K(6), 1), (K(6), K(7), 4), (K(1), K(5), 2),
    ]  # fmt: skip
    return make_graph(freq, edges)


def complete_graph(n_topics: int, n_kps: int, seed: int = 0):
    """Every pair of concepts connected (random counts 1..9): a walk is never stuck while
    step ranges stay below the subgraph sizes."""
    rnd = random.Random(seed)
    topics = [T(i) for i in range(n_topics)]
    kps = [K(i) for i in range(n_kps)]
    freq = {c: rnd.randint(1, 9) for c in topics + kps}
    nodes = topics + kps
    edges = [(a, b, rnd.randint(1, 9)) for i, a in enumerate(nodes) for b in nodes[i + 1 :]]
    return make_graph(freq, edges)


def arrays(graph) -> ConceptGraphArrays:
    return ConceptGraphArrays.from_records(*graph)


def edge_sets(graph):
    concepts, edges = graph
    sets = {k: set() for k in EdgeKind}
    for e in edges:
        sets[e.kind].add((e.source, e.target))
        if e.kind is not EdgeKind.topic_kp:
            sets[e.kind].add((e.target, e.source))
    return sets


def raw(graph_arrays, n, seed=0, **opts):
    sampler = ConceptSampler(graph_arrays, WalkOptions(**opts))
    rw = sampler.raw_walks(seed, 0, n)
    ids = graph_arrays.ids
    walks = [[ids[j] for j in row[:ln]] for row, ln in zip(rw.walks.tolist(), rw.lengths.tolist())]
    return rw, walks


# --- walk semantics ---------------------------------------------------------------------


@pytest.mark.parametrize("topic_steps,kp_steps", [((1, 2), (0, 4)), ((0, 1), (1, 3)), ((2, 2), (4, 4))])
def test_walk_never_revisits_and_follows_edge_kinds(topic_steps, kp_steps):
    graph = general_graph()
    g = arrays(graph)
    sets = edge_sets(graph)
    rw, walks = raw(g, 5000, seed=1, topic_steps=topic_steps, kp_steps=kp_steps)
    for i, walk in enumerate(walks):
        nt = int(rw.n_topics[i])
        assert len(set(walk)) == len(walk), walk
        assert all(c.startswith("topic:") for c in walk[:nt])
        assert all(c.startswith("kp:") for c in walk[nt:])
        for a, b in zip(walk[: nt - 1], walk[1:nt]):
            assert (a, b) in sets[EdgeKind.topic_topic], (a, b)
        topic_steps_taken = nt - 1
        assert topic_steps_taken <= topic_steps[1]
        if not rw.stuck_topic[i]:
            assert topic_steps_taken >= topic_steps[0]
        if rw.dropped[i]:
            assert len(walk) == nt
            continue
        assert (walk[nt - 1], walk[nt]) in sets[EdgeKind.topic_kp]
        for a, b in zip(walk[nt:-1], walk[nt + 1 :]):
            assert (a, b) in sets[EdgeKind.kp_kp], (a, b)
        kp_steps_taken = len(walk) - nt - 1
        assert kp_steps_taken <= kp_steps[1]
        if not rw.stuck_kp[i]:
            assert kp_steps_taken >= kp_steps[0]


def test_stuck_means_no_unvisited_neighbour():
    graph = general_graph()
    g = arrays(graph)
    sets = edge_sets(graph)
    rw, walks = raw(g, 3000, seed=2, topic_steps=(2, 2), kp_steps=(4, 4))
    assert rw.stuck_topic.any() and rw.stuck_kp.any()
    for i, walk in enumerate(walks):
        nt = int(rw.n_topics[i])
        if rw.stuck_topic[i]:
            last = walk[nt - 1]
            assert not [b for (a, b) in sets[EdgeKind.topic_topic] if a == last and b not in walk]
        if rw.stuck_kp[i]:
            last = walk[-1]
            assert not [b for (a, b) in sets[EdgeKind.kp_kp] if a == last and b not in walk]


def test_step_counts_uniform_in_range_on_complete_graph():
    g = arrays(complete_graph(5, 10))
    rw, walks = raw(g, 20000, seed=3, topic_steps=(1, 2), kp_steps=(0, 4))
    assert not rw.dropped.any() and not rw.stuck_topic.any() and not rw.stuck_kp.any()
    t_steps = Counter((rw.n_topics - 1).tolist())
    k_steps = Counter((rw.lengths - rw.n_topics - 1).tolist())
    assert_chisq(t_steps, {1: 1, 2: 1})
    assert_chisq(k_steps, {s: 1 for s in range(5)})


def test_first_step_frequencies_match_weights():
    # one start topic (the others have frequency 0); its topic neighbours weigh 1:2:5
    freq = {T(0): 1, T(1): 0, T(2): 0, T(3): 0, K(0): 1}
    edges = [(T(0), T(1), 1), (T(0), T(2), 2), (T(0), T(3), 5)] + [(T(i), K(0), 1) for i in range(4)]
    g = arrays(make_graph(freq, edges))
    rw, walks = raw(g, 20000, seed=4, topic_steps=(1, 1), kp_steps=(0, 0))
    assert {w[0] for w in walks} == {T(0)}
    assert_chisq(Counter(w[1] for w in walks), {T(1): 1, T(2): 2, T(3): 5})


@pytest.mark.parametrize("heavy", [2, 1000])  # 1000: rejection nearly always fails -> exact fallback
def test_step_excludes_visited_with_conditional_weights(heavy):
    # K0 -> K1 (heavy) then from K1: K0 is visited, so K2:K3 must come out 1:3
    freq = {T(0): 1} | {K(i): 1 for i in range(4)}
    edges = [(T(0), K(0), 1), (K(0), K(1), heavy), (K(0), K(2), 1), (K(0), K(3), 3), (K(1), K(2), 1), (K(1), K(3), 3)]
    g = arrays(make_graph(freq, edges))
    rw, walks = raw(g, 30000, seed=5, topic_steps=(0, 0), kp_steps=(2, 2))
    first = Counter(w[2] for w in walks)
    assert_chisq(first, {K(1): heavy, K(2): 1, K(3): 3})
    second = Counter(w[3] for w in walks if w[2] == K(1))
    assert_chisq(second, {K(2): 1, K(3): 3})
    assert all(len(set(w)) == len(w) for w in walks)


def test_edge_weight_option_uses_weight_attribute():
    freq = {T(0): 1, T(1): 0, T(2): 0, K(0): 1}
    concepts, edges = make_graph(freq, [(T(0), T(1), 1), (T(0), T(2), 1), (T(1), K(0), 1), (T(2), K(0), 1)])
    edges[0] = edges[0].model_copy(update={"weight": 0.9})  # t0-t1
    edges[1] = edges[1].model_copy(update={"weight": 0.1})  # t0-t2
    g = ConceptGraphArrays.from_records(concepts, edges)
    _, by_count = raw(g, 10000, seed=6, topic_steps=(1, 1), kp_steps=(0, 0))
    _, by_weight = raw(g, 10000, seed=6, topic_steps=(1, 1), kp_steps=(0, 0), edge_weight="weight")
    assert_chisq(Counter(w[1] for w in by_count), {T(1): 1, T(2): 1})
    assert_chisq(Counter(w[1] for w in by_weight), {T(1): 9, T(2): 1})


def test_frequency_and_uniform_starts():
    concepts, edges = complete_graph(4, 4, seed=1)
    tf = {T(0): 1, T(1): 2, T(2): 3, T(3): 10}
    concepts = [c.model_copy(update={"frequency": tf.get(c.id, c.frequency)}) for c in concepts]
    g = ConceptGraphArrays.from_records(concepts, edges)
    _, freq_walks = raw(g, 16000, seed=7)
    _, unif_walks = raw(g, 16000, seed=7, start="uniform")
    assert_chisq(Counter(w[0] for w in freq_walks), tf)
    assert_chisq(Counter(w[0] for w in unif_walks), {t: 1 for t in tf})


# --- drops, stuck phases, duplicates --------------------------------------------------------


def test_topic_without_kp_neighbour_drops_walk_and_counts_it():
    # t0 -> t1 (has a KP) or t0 -> t9 (no KP): walks ending on t9 are dropped
    freq = {T(0): 1, T(1): 0, T(9): 0, K(0): 1, K(1): 1}
    edges = [(T(0), T(1), 1), (T(0), T(9), 1), (T(0), K(0), 1), (T(1), K(1), 1), (K(0), K(1), 1)]
    g = arrays(make_graph(freq, edges))
    rw, walks = raw(g, 4000, seed=8, topic_steps=(1, 1), kp_steps=(0, 0))
    assert all((w[-1] == T(9)) == bool(d) for w, d in zip(walks, rw.dropped))
    assert 0.4 < rw.dropped.mean() < 0.6
    stats = SampleStats()
    out = list(sample_concepts(g, 10, seed=8, options=WalkOptions(topic_steps=(1, 1), kp_steps=(0, 1), max_walks=500), stats=stats))
    assert stats.dropped_no_kp > 0
    assert all(T(9) not in s.topics for s in out)
    assert stats.walks == stats.generated + stats.duplicates + stats.dropped_no_kp


def test_isolated_topic_gets_stuck_and_keeps_going():
    freq = {T(0): 1, K(0): 1, K(1): 1}
    edges = [(T(0), K(0), 1), (K(0), K(1), 1)]
    g = arrays(make_graph(freq, edges))
    stats = SampleStats()
    out = list(sample_concepts(g, 5, seed=0, options=WalkOptions(max_walks=200), stats=stats))
    assert {(tuple(s.topics), tuple(s.knowledge_points)) for s in out} == {((T(0),), (K(0),)), ((T(0),), (K(0), K(1)))}
    assert stats.stuck_topic_phase == stats.walks  # every walk wanted >= 1 topic step
    assert stats.exhausted and stats.generated == 2


def test_duplicates_dropped_and_counted():
    graph = general_graph()
    g = arrays(graph)
    stats = SampleStats()
    opts = WalkOptions(max_walks=3000)
    out = list(sample_concepts(g, 10_000, seed=9, options=opts, stats=stats))
    assert stats.exhausted and stats.walks == 3000
    sets = [frozenset(s.topics + s.knowledge_points) for s in out]
    assert len(set(sets)) == len(sets) == stats.generated
    assert len({s.id for s in out}) == len(out)
    assert stats.duplicates > 0
    assert stats.walks == stats.generated + stats.duplicates + stats.dropped_no_kp
    # the emitted samples are exactly the first occurrences of the raw stream, in order
    rw, walks = raw(g, 3000, seed=9)
    firsts, seen = [], set()
    for w, d in zip(walks, rw.dropped):
        key = frozenset(w)
        if not d and key not in seen:
            seen.add(key)
            firsts.append(w)
    assert [s.walk for s in out] == firsts


def test_sample_fields_and_ids():
    g = arrays(general_graph())
    for s in sample_concepts(g, 30, seed=10):
        assert s.topics == sorted(c for c in s.walk if c.startswith("topic:"))
        assert s.knowledge_points == sorted(c for c in s.walk if c.startswith("kp:"))
        assert s.walk[0].startswith("topic:") and s.knowledge_points
        assert s.id == sample_id(reversed(s.walk)) and s.id.startswith("cs-")
        assert s.exemplar_seed_ids == []


# --- reproducibility --------------------------------------------------------------------


def test_reproducible_with_seed_and_independent_of_batching():
    g = arrays(complete_graph(6, 12))
    opts = WalkOptions()
    a = list(sample_concepts(g, 300, seed=11, options=opts))
    b = list(sample_concepts(g, 300, seed=11, options=opts))
    c = list(ConceptSampler(g, opts, batch_size=7).sample(300, seed=11))
    d = list(sample_concepts(g, 300, seed=12, options=opts))
    assert a == b == c
    assert [s.id for s in a] != [s.id for s in d]
    # a shorter run is a prefix of a longer one
    assert list(sample_concepts(g, 50, seed=11, options=opts)) == a[:50]
    # array path agrees with the record path
    wb = sample_walks(g, 300, seed=11, options=opts)
    assert [[g.ids[j] for j in row[:ln]] for row, ln in zip(wb.walks.tolist(), wb.lengths.tolist())] == [s.walk for s in a]


def test_same_samples_whatever_order_the_store_hands_records_over():
    concepts, edges = complete_graph(5, 9, seed=2)
    g1 = ConceptGraphArrays.from_records(concepts, edges)
    rnd = random.Random(0)
    c2, e2 = concepts[:], edges[:]
    rnd.shuffle(c2)
    rnd.shuffle(e2)
    # topic-kp edges given kp-first, undirected edges reversed: same graph
    e2 = [e.model_copy(update={"source": e.target, "target": e.source}) for e in e2]
    g2 = ConceptGraphArrays.from_records(c2, e2)
    ids = [c.id for c in c2]
    pos = {c: i for i, c in enumerate(ids)}
    g3 = ConceptGraphArrays.from_arrays(
        ids,
        [c.kind.value for c in c2],
        [c.frequency for c in c2],
        np.array([pos[e.source] for e in e2]),
        np.array([pos[e.target] for e in e2]),
        np.array([e.kind.value for e in e2]),
        np.array([e.count for e in e2]),
        np.array([e.weight for e in e2]),
    )
    opts = WalkOptions(coverage=True, coverage_interval=16)
    a, b, c = (list(sample_concepts(g, 200, seed=13, options=opts)) for g in (g1, g2, g3))
    assert a == b == c


def test_from_store_sqlite_matches_build_graph(tmp_path: Path):
    from graphgen.store import SQLiteStore

    rows = [json.loads(line) for line in open(Path(__file__).parents[1] / "examples" / "annotations.jsonl")][:60]
    extractions = [Extraction(seed_id=r["seed_id"], topics=r["topics"], knowledge_points=r["knowledge_points"]) for r in rows]
    concepts, edges, mentions = build_graph(extractions)
    with SQLiteStore(tmp_path / "g.db") as store:
        store.add_seeds(SeedQuestion(id=e.seed_id, question="q") for e in extractions)
        store.add_extractions(extractions)
        rebuild(store)
        g_store = ConceptGraphArrays.from_store(store)
        seed_concepts = list(store.seed_concepts())
    g_mem = ConceptGraphArrays.from_records(reversed(concepts), reversed(edges))
    assert g_store.ids == g_mem.ids
    by_seed: dict[str, list[str]] = {}
    for m in mentions:
        by_seed.setdefault(m.seed_id, []).append(m.concept_id)
    opts = WalkOptions(exemplars=3)
    a = list(sample_concepts(g_store, 100, seed=14, options=opts, exemplars=ExemplarIndex(seed_concepts)))
    b = list(sample_concepts(g_mem, 100, seed=14, options=opts, exemplars=ExemplarIndex(by_seed.items())))
    assert a == b and all(s.exemplar_seed_ids for s in a)


# --- coverage -----------------------------------------------------------------------------


def skewed_star(n_topics: int = 40):
    """t0 is 1000x more frequent than every other topic; each topic has its own KPs."""
    freq = {T(0): 1000} | {T(i): 1 for i in range(1, n_topics)}
    edges = []
    for i in range(n_topics):
        if i:
            edges.append((T(0), T(i), 1 + i % 3))
        for j in range(3):
            freq[K(f"{i}_{j}")] = 1
            edges.append((T(i), K(f"{i}_{j}"), 1 + j))
        edges.append((K(f"{i}_0"), K(f"{i}_1"), 1))
        edges.append((K(f"{i}_1"), K(f"{i}_2"), 1))
    return make_graph(freq, edges)


def skewed_pairs(n_pairs: int = 20):
    """Topics in disconnected pairs, each pair with its own KPs; pair 0 is 1000x more
    frequent and has a large complete KP subgraph (so it rarely repeats a combination):
    where a walk starts decides what it can cover."""
    freq, edges = {}, []
    for p in range(n_pairs):
        a, b = T(2 * p), T(2 * p + 1)
        freq[a] = freq[b] = 1000 if p == 0 else 1
        edges.append((a, b, 1))
        n_kp = 30 if p == 0 else 4
        kps = [K(f"{p}_{j}") for j in range(n_kp)]
        for j, kp in enumerate(kps):
            freq[kp] = 1
            edges.append((a if j % 2 else b, kp, 1))
            edges += [(kps[i], kp, 1 + (i + j) % 3) for i in range(j)] if p == 0 else ([(kps[j - 1], kp, 1)] if j else [])
    return make_graph(freq, edges)


def test_coverage_mode_reaches_more_start_topics_on_a_skewed_graph():
    g = arrays(skewed_star())
    plain, cov = SampleStats(), SampleStats()
    list(sample_concepts(g, 200, seed=15, options=WalkOptions(), stats=plain))
    list(sample_concepts(g, 200, seed=15, options=WalkOptions(coverage=True, coverage_interval=16), stats=cov))
    assert cov.start_topics_used > plain.start_topics_used + 10, (plain, cov)
    assert cov.duplicates < plain.duplicates  # fewer wasted walks on the hub
    assert cov.topics_total == 40 and cov.concepts_total == 160


def test_coverage_mode_covers_more_concepts_and_reports_it():
    g = arrays(skewed_pairs())
    plain, cov = SampleStats(), SampleStats()
    list(sample_concepts(g, 60, seed=15, options=WalkOptions(), stats=plain))
    list(sample_concepts(g, 60, seed=15, options=WalkOptions(coverage=True, coverage_interval=8), stats=cov))
    assert cov.start_topics_used > plain.start_topics_used
    assert cov.concepts_covered > plain.concepts_covered
    assert cov.concepts_total == plain.concepts_total == 40 + 30 + 19 * 4
    assert cov.topics_covered + cov.kps_covered == cov.concepts_covered
    assert 0 < plain.coverage < cov.coverage <= 1
    # coverage mode is reproducible and independent of batching as well
    opts = WalkOptions(coverage=True, coverage_interval=8)
    assert list(sample_concepts(g, 60, seed=15, options=opts)) == list(ConceptSampler(g, opts, batch_size=5).sample(60, seed=15))


def test_coverage_rounds_double_up_to_the_interval():
    def ends(interval, upto):
        out, pos = [], 0
        while pos < upto:
            pos = coverage_round_end(pos, interval)
            out.append(pos)
        return out

    assert ends(4096, 600) == [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024]
    assert ends(100, 400) == [1, 2, 4, 8, 16, 32, 64, 100, 200, 300, 400]
    assert ends(1, 4) == [1, 2, 3, 4]


@pytest.mark.parametrize("n", [20, 60, 200])
def test_coverage_acts_at_small_n_with_the_default_interval(n):
    # issue 8 item 20: with rounds of 4096 walks, coverage changed nothing below 4096 walks
    g = arrays(skewed_pairs())
    plain, cov = SampleStats(), SampleStats()
    a = list(sample_concepts(g, n, seed=15, options=WalkOptions(), stats=plain))
    b = list(sample_concepts(g, n, seed=15, options=WalkOptions(coverage=True), stats=cov))
    assert cov.walks < 4096 and WalkOptions().coverage_interval == 4096
    assert a != b
    assert cov.concepts_covered > plain.concepts_covered, (plain, cov)


def test_coverage_samples_are_a_prefix_of_a_longer_run_and_reproducible():
    g = arrays(skewed_star())
    opts = WalkOptions(coverage=True, coverage_interval=64)
    long = list(sample_concepts(g, 300, seed=3, options=opts))
    assert list(sample_concepts(g, 90, seed=3, options=opts)) == long[:90]
    assert list(ConceptSampler(g, opts, batch_size=7).sample(300, seed=3)) == long
    assert list(sample_concepts(g, 300, seed=4, options=opts)) != long


def test_cli_coverage_raises_coverage_at_n_200_and_is_deterministic(tmp_path: Path):
    from clirun import example_workspace, graphgen

    example_workspace(tmp_path)

    def run(name: str, *flags: str) -> tuple[bytes, set[str]]:
        graphgen("sample", "concepts", "-n", "200", "-o", name, "--seed", "7", "--exemplars", "0", *flags, cwd=tmp_path)
        data = (tmp_path / name).read_bytes()
        rows = [json.loads(line) for line in data.splitlines()]
        assert len(rows) == 200
        return data, {c for r in rows for c in r["topics"] + r["knowledge_points"]}

    plain, plain_concepts = run("plain.jsonl")
    cov, cov_concepts = run("cov.jsonl", "--coverage")
    assert len(cov_concepts) > len(plain_concepts)
    assert run("cov-again.jsonl", "--coverage")[0] == cov  # same --seed, same bytes
    assert run("plain-again.jsonl")[0] == plain
    # the interval is a flag (and [sample] coverage_interval); 1 re-weights after every walk
    every, every_concepts = run("cov-1.jsonl", "--coverage", "--coverage-interval", "1")
    assert every != cov and len(every_concepts) > len(plain_concepts)
    bad = graphgen("sample", "concepts", "-n", "5", "-o", "x.jsonl", "--coverage-interval", "0", cwd=tmp_path, check=False)
    assert bad.returncode != 0 and "--coverage-interval" in bad.stderr and "Traceback" not in bad.stderr


# --- options and validation ------------------------------------------------------------------


def test_options_and_input_validation():
    with pytest.raises(ValueError):
        WalkOptions(topic_steps=(2, 1))
    with pytest.raises(ValueError):
        WalkOptions(kp_steps=(-1, 2))
    g = arrays(general_graph())
    with pytest.raises(ValueError, match="ExemplarIndex"):
        sample_concepts(g, 1, options=WalkOptions(exemplars=3))
    concepts, edges = general_graph()
    bad = edges[0].model_copy(update={"kind": EdgeKind.kp_kp})
    with pytest.raises(ValueError, match="kind"):
        ConceptGraphArrays.from_records(concepts, [bad])
    ghost = edges[0].model_copy(update={"target": "topic:ghost"})
    with pytest.raises(ValueError, match="ghost"):
        ConceptGraphArrays.from_records(concepts, [ghost])
    only_kps = [c for c in concepts if c.kind is ConceptKind.knowledge_point]
    with pytest.raises(ValueError, match="topic"):
        ConceptSampler(ConceptGraphArrays.from_records(only_kps, []))


# --- exemplars ------------------------------------------------------------------------------


def brute_exemplars(seeds: dict[str, list[str]], kps: list[str], topics: list[str], k: int) -> list[str]:
    q_kp, q_tp = set(kps), set(topics)
    prim = []
    sec = []
    for sid, cids in seeds.items():
        s_kp = {c for c in cids if not c.startswith("topic:")}
        s_tp = {c for c in cids if c.startswith("topic:")}
        if q_kp & s_kp:
            prim.append((-Fraction(len(q_kp & s_kp), len(q_kp | s_kp)), sid))
        if q_tp & s_tp:
            sec.append((-Fraction(len(q_tp & s_tp), len(q_tp | s_tp)), sid))
    out = [sid for _, sid in sorted(prim)[:k]]
    out += [sid for _, sid in sorted(x for x in sec if x[1] not in out)][: k - len(out)]
    return out


def test_exemplars_equal_brute_force_jaccard_top_k():
    rnd = random.Random(16)
    topics = [T(i) for i in range(6)]
    kps = [K(i) for i in range(25)] + ["kp:rare"]
    seeds: dict[str, list[str]] = {}
    for i in range(300):
        cids = rnd.sample(topics, rnd.randint(1, 2)) + rnd.sample(kps[:25], rnd.randint(1, 5))
        seeds[f"s{rnd.randint(0, 10**6):07d}"] = cids
    seeds["s-rare"] = [T(5), "kp:rare"]
    index = ExemplarIndex((sid, cids) for sid, cids in reversed(list(seeds.items())))
    queries = [(rnd.sample(kps[:25], rnd.randint(1, 5)), rnd.sample(topics, rnd.randint(1, 3))) for _ in range(200)]
    queries += [(["kp:rare"], [T(5)]), (["kp:rare", "kp:never-seen"], [T(0), T(5)]), (["kp:never-seen"], [T(2)])]
    queries += [(["kp:never-seen"], ["topic:never-seen"])]
    for k in (1, 3, 5):
        for q_kp, q_tp in queries:
            assert index.query(q_kp, q_tp, k) == brute_exemplars(seeds, q_kp, q_tp, k), (q_kp, q_tp, k)
    assert index.query(["kp:rare"], [], 3) == ["s-rare"]
    assert index.query(["kp:never-seen"], ["topic:never-seen"], 3) == []


def test_samples_carry_the_index_exemplars():
    graph = complete_graph(4, 10, seed=3)
    g = arrays(graph)
    rnd = random.Random(17)
    ids = g.ids
    seeds = {f"seed{i:03d}": rnd.sample([c for c in ids if c.startswith("topic:")], 1)
             + rnd.sample([c for c in ids if c.startswith("kp:")], rnd.randint(1, 4)) for i in range(80)}  # fmt: skip
    index = ExemplarIndex(seeds.items())
    out = list(sample_concepts(g, 150, seed=18, options=WalkOptions(exemplars=3), exemplars=index))
    for s in out:
        assert s.exemplar_seed_ids == brute_exemplars(seeds, s.knowledge_points, s.topics, 3)


def test_jsonl_lines_equal_record_json():
    """The fast writer path gives byte-for-byte the records' JSON, exemplars included."""
    from graphgen.graph import build_graph
    from graphgen.records import Extraction
    from graphgen.sample import ConceptGraphArrays, ConceptSampler, ExemplarIndex, WalkOptions

    ex = [Extraction(seed_id=f"s{i}", topics=[f"T{i % 4}", f"T{(i + 1) % 4}"],
                     knowledge_points=[f"K{(i * j) % 13} \"q\" é" for j in range(1, 4)]) for i in range(40)]
    concepts, edges, _ = build_graph(ex)
    g = ConceptGraphArrays.from_records(concepts, edges)
    index = ExemplarIndex([(m.seed_id, [c.id for c in concepts if m.seed_id in c.seed_ids]) for m in ex])
    sampler = ConceptSampler(g, WalkOptions(exemplars=2), index)
    records = [s.model_dump_json() + "\n" for s in sampler.sample(60, seed=5)]
    lines = list(sampler.jsonl_lines(60, seed=5))
    assert lines == records and len(lines) == 60
