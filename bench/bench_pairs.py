"""Benchmark: fusion pairing of the cached seed embeddings, and of 200,000 vectors.

Command (from the repo root; run bench/bench_embed.py first so the cache exists):

    PYTHONPATH=. python bench/bench_pairs.py

Part 1 reads the 14,973 seed embeddings of ../shared/data/seeds/ from the cache written by
bench_embed.py and pairs them (exact blockwise search): target <= 5 s.
Part 2 pairs 200,000 384-d vectors -- the real seed vectors repeated with Gaussian noise
(each copy at cosine ~0.8-0.98 of its original), or clustered random vectors with
--synthetic -- through the approximate (faiss) path: target <= 60 s, peak memory < 4 GiB,
recall of the true nearest neighbour >= 0.95 on a sample checked against exact search.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_embed import DEFAULT_CACHE, load_bench_seeds  # noqa: E402

from graphgen.embed import Embedder, EmbeddingCache, embed_texts  # noqa: E402
from graphgen.stages.pairs import PairOptions, find_fusion_pairs  # noqa: E402
from graphgen.records import SeedQuestion  # noqa: E402

COMMAND = "PYTHONPATH=. python bench/bench_pairs.py"


class CacheOnly(Embedder):
    """Reads vectors from the cache; fails if anything would have to be embedded."""

    def __init__(self, key: str):
        self.key = key

    def embed(self, texts):
        raise SystemExit(f"{len(texts)} texts are not in the cache: run bench/bench_embed.py first")


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def part1(args) -> tuple[list[SeedQuestion], np.ndarray]:
    seeds = load_bench_seeds()
    t0 = time.perf_counter()
    with EmbeddingCache(args.cache) as cache:
        vecs = embed_texts([s.question for s in seeds], CacheOnly(args.key), cache, progress=False)
    t_read = time.perf_counter() - t0
    print(f"\n== part 1: {len(seeds)} seeds, vectors {vecs.shape} from cache {args.cache} ({t_read:.2f} s)")
    for label, opts in (
        ("top-1, default filters", PairOptions()),
        ("top-1, same source", PairOptions(same_source=True)),
        ("top-3", PairOptions(top_k=3)),
        ("top-1, mutual, max 2 uses", PairOptions(mutual_only=True, max_uses_per_seed=2)),
    ):
        t0 = time.perf_counter()
        pairs, stats = find_fusion_pairs(seeds, vecs, opts)
        dt = time.perf_counter() - t0
        print(f"{label:28s}: {dt:6.2f} s (+{t_read:.2f} s cache read) -> {stats.pairs} pairs, method {stats.method}, "
              f"{stats.duplicates} duplicate seeds, {stats.excluded_above_max} near-duplicate candidates skipped "
              f"[{'PASS' if dt + t_read <= 5 else 'FAIL'} <= 5 s]")
    best = pairs and max(pairs, key=lambda p: p.similarity)
    byid = {s.id: s.question for s in seeds}
    if best:
        print(f"  e.g. {best.similarity:.3f}: {byid[best.seed_a][:90]!r}\n      ~ {byid[best.seed_b][:90]!r}")
    return seeds, vecs


def make_200k(args, base: np.ndarray | None) -> np.ndarray:
    rng = np.random.default_rng(0)
    n, d = args.n, 384
    if base is None or args.synthetic:
        centres = rng.standard_normal((n // 10, d), dtype=np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        base = centres
        kind = f"clustered random ({len(base)} centres)"
    else:
        kind = f"the {len(base)} real seed vectors repeated"
    src = np.arange(n) % len(base)
    sigma = rng.uniform(0.01, 0.04, size=(n, 1)).astype(np.float32)
    x = base[src] + sigma * rng.standard_normal((n, d), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    print(f"\n== part 2: {n} x {d} vectors: {kind} with noise sigma 0.01-0.04 per dimension")
    return x


def part2(args, base: np.ndarray | None) -> bool:
    x = make_200k(args, base)
    seeds = [SeedQuestion(id=f"v{i:06d}", question=f"vector {i}") for i in range(len(x))]
    opts = PairOptions(index=args.index, recall_sample=args.sample, exact_threshold=50_000)
    t0 = time.perf_counter()
    pairs, stats = find_fusion_pairs(seeds, x, opts)
    dt = time.perf_counter() - t0
    peak = peak_rss_mib()
    print(f"pairing: {dt:.2f} s, method {stats.method}, {stats.pairs} pairs "
          f"({stats.picks} picks, {stats.merged_reverse} merged, {stats.excluded_above_max} above max skipped)")
    print(f"library recall check (filtered top-1 vs exact, {stats.recall_sample} queries): {stats.recall:.4f}")
    # independent check: exact nearest neighbour (same max_similarity filter) by brute force here
    rng = np.random.default_rng(123)
    sample = rng.choice(len(x), args.sample, replace=False)
    S = x[sample] @ x.T
    S[np.arange(len(sample)), sample] = -np.inf
    S[S > opts.max_similarity] = -np.inf
    nn = np.argmax(S, axis=1)
    have = {(p.seed_a, p.seed_b) for p in pairs}
    hits = sum(tuple(sorted((seeds[i].id, seeds[j].id))) in have for i, j in zip(sample, nn))
    recall = hits / len(sample)
    ok_t, ok_m, ok_r = dt <= 60, peak < 4096, min(recall, stats.recall or 0) >= 0.95
    print(f"bench recall check (pair with exact nearest neighbour present, {len(sample)} queries): {recall:.4f}")
    print(f"peak RSS of this process: {peak:.0f} MiB")
    print(f"time {'PASS' if ok_t else 'FAIL'} (<= 60 s), memory {'PASS' if ok_m else 'FAIL'} (< 4 GiB), "
          f"recall {'PASS' if ok_r else 'FAIL'} (>= 0.95)")
    return ok_t and ok_m and ok_r


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    ap.add_argument("--key", default="st:all-MiniLM-L6-v2", help="model key in the cache")
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--index", choices=["ivf-pq", "ivf", "hnsw"], default="ivf-pq")
    ap.add_argument("--sample", type=int, default=2000, help="queries checked against exact search")
    ap.add_argument("--synthetic", action="store_true", help="part 2 on clustered random vectors")
    ap.add_argument("--skip-part1", action="store_true")
    args = ap.parse_args(argv)
    print(f"# command: {COMMAND}" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else ""))
    import faiss

    print(f"faiss {faiss.__version__}, omp threads {faiss.omp_get_max_threads()}")
    base = None
    if not args.skip_part1:
        _, base = part1(args)
    ok = part2(args, base)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
