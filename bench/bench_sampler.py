"""Sampler benchmark: MathScale concept walks, vectorised (graphgen.sample) vs a
straightforward per-walk Python loop over networkx adjacency, on the same random graph.

    PYTHONPATH=. python bench/bench_sampler.py [--samples 1000000] [--baseline-walks 5000]

Graph: 10,000 concepts (500 topics, 9,500 knowledge points) and 1,000,000 edges
(50,000 topic-topic, 300,000 topic-kp, 650,000 kp-kp) with power-law endpoint popularity
(skewed degrees) and Zipf-distributed co-occurrence counts (skewed weights). Both samplers
walk the same graph with the same semantics (1-2 topic steps, 1 topic->kp step, 0-4 kp
steps, no revisits, steps proportional to count, starts proportional to frequency,
duplicate combinations dropped). Peak memory is ru_maxrss, read after the vectorised part
(before networkx and record objects exist) and at the end. Coverage mode is timed against
the plain stream in the same run, and its concept coverage compared at small n.
"""

from __future__ import annotations

import argparse
import gc
import random
import resource
import shlex
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from graphgen.jsonl import write_lines
from graphgen.records import ConceptEdge, ConceptKind, EdgeKind
from graphgen.sample import (
    KP_KP,
    TOPIC_KP,
    TOPIC_TOPIC,
    ConceptGraphArrays,
    ConceptSampler,
    ExemplarIndex,
    SampleStats,
    WalkOptions,
    sample_concepts,
    sample_walks,
)


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def random_graph(n_topics: int, n_kps: int, m_tt: int, m_tk: int, m_kk: int, seed: int):
    rng = np.random.default_rng(seed)
    ids = [f"topic:t{i:05d}" for i in range(n_topics)] + [f"kp:k{i:05d}" for i in range(n_kps)]
    kinds = np.r_[np.ones(n_topics, bool), np.zeros(n_kps, bool)]

    def popularity(n: int) -> np.ndarray:
        p = 1.0 / (np.arange(n) + 10.0) ** 0.8
        p = p[rng.permutation(n)]
        return p / p.sum()

    pt, pk = popularity(n_topics), popularity(n_kps)
    freq = np.r_[np.ceil(pt * 20 * n_topics * 10), np.ceil(pk * 5 * n_kps * 10)]

    def pairs(m: int, na: int, pa, nb: int, pb, off_a: int, off_b: int, undirected: bool):
        got = np.zeros(0, dtype=np.int64)
        while len(got) < m:
            a = rng.choice(na, size=3 * m, p=pa) + off_a
            b = rng.choice(nb, size=3 * m, p=pb) + off_b
            if undirected:
                a, b = np.minimum(a, b), np.maximum(a, b)
                keep = a != b
                a, b = a[keep], b[keep]
            got = np.unique(np.r_[got, a * 100_000 + b])
        got = rng.choice(got, size=m, replace=False)
        return got // 100_000, got % 100_000

    s1, d1 = pairs(m_tt, n_topics, pt, n_topics, pt, 0, 0, True)
    s2, d2 = pairs(m_tk, n_topics, pt, n_kps, pk, 0, n_topics, False)
    s3, d3 = pairs(m_kk, n_kps, pk, n_kps, pk, n_topics, n_topics, True)
    src = np.r_[s1, s2, s3]
    dst = np.r_[d1, d2, d3]
    kind = np.r_[np.full(m_tt, TOPIC_TOPIC), np.full(m_tk, TOPIC_KP), np.full(m_kk, KP_KP)].astype(np.int8)
    count = np.minimum(rng.zipf(1.8, size=len(src)), 5000).astype(np.float64)
    weight = np.minimum(count / np.sqrt(freq[src] * freq[dst]), 1.0)
    return ids, kinds, freq, src, dst, kind, count, weight


# --- the straightforward baseline ---------------------------------------------------------


def baseline_walks(G, n_walks: int, seed: int, topic_steps=(1, 2), kp_steps=(0, 4)):
    """Per-walk Python loop over networkx adjacency with random.choices."""
    rnd = random.Random(seed)
    topics = [v for v, d in G.nodes(data=True) if d["kind"] == "topic"]
    cum = []
    acc = 0.0
    for t in topics:
        acc += G.nodes[t]["frequency"]
        cum.append(acc)
    seen_sets = set()
    out = []
    dropped = dups = 0

    def step(cur, kind, visited):
        nbrs, weights = [], []
        for v, d in G[cur].items():
            if G.nodes[v]["kind"] == kind and v not in visited:
                nbrs.append(v)
                weights.append(d["count"])
        if not nbrs:
            return None
        return rnd.choices(nbrs, weights=weights)[0]

    for _ in range(n_walks):
        cur = rnd.choices(topics, cum_weights=cum)[0]
        walk = [cur]
        visited = {cur}
        for _ in range(rnd.randint(*topic_steps)):
            nxt = step(cur, "topic", visited)
            if nxt is None:
                break
            walk.append(nxt)
            visited.add(nxt)
            cur = nxt
        nxt = step(cur, "kp", visited)
        if nxt is None:
            dropped += 1
            continue
        walk.append(nxt)
        visited.add(nxt)
        cur = nxt
        for _ in range(rnd.randint(*kp_steps)):
            nxt = step(cur, "kp", visited)
            if nxt is None:
                break
            walk.append(nxt)
            visited.add(nxt)
            cur = nxt
        key = frozenset(walk)
        if key in seen_sets:
            dups += 1
            continue
        seen_sets.add(key)
        out.append(walk)
    return out, dropped, dups


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=1_000_000)
    ap.add_argument("--baseline-walks", type=int, default=5_000)
    ap.add_argument("--records", type=int, default=1_000_000, help="samples to materialise as ConceptSample records")
    ap.add_argument("--exemplar-samples", type=int, default=100_000)
    ap.add_argument("--exemplar-seeds", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args(argv)

    print("command: PYTHONPATH=. python " + " ".join(shlex.quote(a) for a in sys.argv))
    print(f"python {sys.version.split()[0]}, numpy {np.__version__}")

    t0 = time.perf_counter()
    ids, kinds, freq, src, dst, kind, count, weight = random_graph(500, 9_500, 50_000, 300_000, 650_000, args.seed)
    print(f"random graph: {len(ids):,} concepts, {len(src):,} edges ({time.perf_counter() - t0:.1f} s to generate)")

    t0 = time.perf_counter()
    g = ConceptGraphArrays.from_arrays(ids, kinds, freq, src, dst, kind, count, weight)
    for k in (TOPIC_TOPIC, TOPIC_KP, KP_KP):
        g.csr(k, "count")
    t_build = time.perf_counter() - t0
    print(f"ConceptGraphArrays.from_arrays + CSR: {t_build:.2f} s")

    opts = WalkOptions()
    st = SampleStats()
    gc.collect()
    t0 = time.perf_counter()
    wb = sample_walks(g, args.samples, seed=args.seed, options=opts, stats=st)
    t_vec = time.perf_counter() - t0
    assert len(wb) == args.samples, (len(wb), st)
    print(
        f"vectorised sample_walks: {len(wb):,} samples in {t_vec:.2f} s "
        f"({len(wb) / t_vec:,.0f} samples/s; {t_vec / len(wb) * 1e6:.2f} us/sample)"
    )
    print(
        f"  stats: walks={st.walks:,} duplicates={st.duplicates:,} dropped_no_kp={st.dropped_no_kp:,} "
        f"stuck_topic={st.stuck_topic_phase:,} stuck_kp={st.stuck_kp_phase:,} "
        f"coverage={st.concepts_covered:,}/{st.concepts_total:,}"
    )
    lens = wb.lengths
    print(f"  walk length mean {lens.mean():.2f} (min {lens.min()}, max {lens.max()}); topics/sample mean {wb.n_topics.mean():.2f}")
    mem_vec = peak_mib()
    print(f"  peak memory (ru_maxrss) so far: {mem_vec:,.0f} MiB")
    del wb

    # coverage mode (rounds of 1, 2, 4, ... walks, then every coverage_interval) against the
    # plain stream just timed, same n and seed; and concept coverage at a small n
    st_cov = SampleStats()
    gc.collect()
    t0 = time.perf_counter()
    wb = sample_walks(g, args.samples, seed=args.seed, options=WalkOptions(coverage=True), stats=st_cov)
    t_cov = time.perf_counter() - t0
    print(
        f"coverage mode sample_walks: {len(wb):,} samples in {t_cov:.2f} s ({t_cov / t_vec:.2f}x the plain stream); "
        f"coverage={st_cov.concepts_covered:,}/{st_cov.concepts_total:,} (plain {st.concepts_covered:,})"
    )
    del wb
    for n_small in (200, 2000):
        small = {}
        for cov in (False, True):
            s_st = SampleStats()
            sample_walks(g, n_small, seed=args.seed, options=WalkOptions(coverage=cov), stats=s_st)
            small[cov] = s_st
        print(
            f"  n={n_small:,}: concepts covered {small[False].concepts_covered:,} plain, "
            f"{small[True].concepts_covered:,} with coverage; start topics {small[False].start_topics_used} -> "
            f"{small[True].start_topics_used}"
        )

    # exemplars: k=3 closest seeds by KP Jaccard among synthetic seeds (1-2 topics, 1-5 KPs
    # each, drawn by concept frequency), for a smaller run
    rng = np.random.default_rng(args.seed)
    tp, kp = np.flatnonzero(kinds), np.flatnonzero(~kinds)
    pt, pk = freq[tp] / freq[tp].sum(), freq[kp] / freq[kp].sum()
    seeds = [
        (f"seed{i:06d}", [ids[j] for j in np.r_[rng.choice(tp, rng.integers(1, 3), replace=False, p=pt),
                                                rng.choice(kp, rng.integers(1, 6), replace=False, p=pk)]])
        for i in range(args.exemplar_seeds)
    ]  # fmt: skip
    t0 = time.perf_counter()
    index = ExemplarIndex(seeds)
    t_idx = time.perf_counter() - t0
    sampler = ConceptSampler(g, WalkOptions(exemplars=3), index)
    t0 = time.perf_counter()
    n_ex = sum(len(b) for b in sampler.iter_batches(args.exemplar_samples, seed=args.seed))
    t_ex = time.perf_counter() - t0
    print(
        f"exemplars: ExemplarIndex over {len(seeds):,} seeds built in {t_idx:.2f} s; {n_ex:,} samples with k=3 "
        f"exemplars in {t_ex:.2f} s ({t_ex / n_ex * 1e6:.2f} us/sample incl. the walk)"
    )
    del seeds, index, sampler

    st2 = SampleStats()
    t0 = time.perf_counter()
    n_rec = 0
    for s in sample_concepts(g, args.records, seed=args.seed, options=opts, stats=st2):
        n_rec += 1
    t_rec = time.perf_counter() - t0
    print(
        f"vectorised sample_concepts (ConceptSample records, ids hashed): {n_rec:,} in {t_rec:.2f} s "
        f"({t_rec / max(n_rec, 1) * 1e6:.2f} us/sample)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        n_lines = write_lines(ConceptSampler(g, opts).jsonl_lines(args.records, seed=args.seed), Path(tmp) / "s.jsonl")
        t_cli = time.perf_counter() - t0
    print(
        f"what `graphgen sample concepts` does (walks -> JSONL file): {n_lines:,} in {t_cli:.2f} s "
        f"({t_cli / max(n_lines, 1) * 1e6:.2f} us/sample)"
    )
    mem_rec = peak_mib()
    print(f"  peak memory (ru_maxrss) so far: {mem_rec:,.0f} MiB")

    # same graph through records (what a store hands over), to time the record path
    kind_names = {TOPIC_TOPIC: EdgeKind.topic_topic, TOPIC_KP: EdgeKind.topic_kp, KP_KP: EdgeKind.kp_kp}
    from graphgen.records import Concept

    concepts = [
        Concept.model_construct(id=i, kind=ConceptKind.topic if t else ConceptKind.knowledge_point, name=i, display_name=i, frequency=int(f), seed_ids=[])
        for i, t, f in zip(ids, kinds.tolist(), freq.tolist())
    ]

    def edge_records():
        for a, b, k, c, w in zip(src.tolist(), dst.tolist(), kind.tolist(), count.tolist(), weight.tolist()):
            yield ConceptEdge.model_construct(source=ids[a], target=ids[b], kind=kind_names[k], count=int(c), weight=w, seed_ids=[])

    t0 = time.perf_counter()
    for _ in edge_records():
        pass
    t_gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    g2 = ConceptGraphArrays.from_records(concepts, edge_records())
    for k in (TOPIC_TOPIC, TOPIC_KP, KP_KP):
        g2.csr(k, "count")
    t_rec_build = time.perf_counter() - t0
    print(
        f"ConceptGraphArrays.from_records, {len(src):,} streamed ConceptEdge records: {t_rec_build:.2f} s "
        f"(making the records alone, no graph: {t_gen:.2f} s)"
    )
    del g2, concepts

    import networkx as nx

    t0 = time.perf_counter()
    G = nx.Graph()
    G.add_nodes_from((i, {"kind": "topic" if t else "kp", "frequency": float(f)}) for i, t, f in zip(ids, kinds.tolist(), freq.tolist()))
    G.add_edges_from((ids[a], ids[b], {"count": c}) for a, b, c in zip(src.tolist(), dst.tolist(), count.tolist()))
    print(f"networkx graph: {G.number_of_nodes():,} nodes, {G.number_of_edges():,} edges ({time.perf_counter() - t0:.1f} s to build)")

    t0 = time.perf_counter()
    walks, dropped, dups = baseline_walks(G, args.baseline_walks, args.seed)
    t_base = time.perf_counter() - t0
    per = t_base / max(len(walks), 1)
    print(
        f"baseline per-walk loop (networkx G[u] + random.choices): {args.baseline_walks:,} walks -> "
        f"{len(walks):,} samples in {t_base:.2f} s ({per * 1e6:,.0f} us/sample; "
        f"extrapolated {per * args.samples:,.0f} s for {args.samples:,})"
    )
    bl = np.array([len(w) for w in walks])
    print(f"  walk length mean {bl.mean():.2f}; dropped {dropped}, duplicates {dups}")
    ratio = per * args.samples / t_vec
    print()
    print(f"RESULT vectorised: {args.samples:,} samples in {t_vec:.2f} s (target <= 10 s): {'PASS' if t_vec <= 10 else 'FAIL'}")
    print(
        f"RESULT records   : {n_rec:,} ConceptSample records in {t_rec:.2f} s "
        f"({per / (t_rec / max(n_rec, 1)):,.0f}x the baseline per sample)"
    )
    print(f"RESULT speed-up vs baseline (per sample): {ratio:,.0f}x (target >= 50x): {'PASS' if ratio >= 50 else 'FAIL'}")
    print(f"RESULT peak memory: {mem_vec:,.0f} MiB after the vectorised run, {mem_rec:,.0f} MiB after records, {peak_mib():,.0f} MiB at the end (networkx graph included)")


if __name__ == "__main__":
    main()
