"""Benchmark: first-time embedding of the seed files through graphgen vs bare encode.

Command (from the repo root):

    HF_HUB_OFFLINE=1 PYTHONPATH=. python bench/bench_embed.py

Embeds every seed of ../shared/data/seeds/ (GSM8K `question`, MATH `problem`; 14,973
texts) three ways in one process with one loaded model:
  1. bare `SentenceTransformer.encode(texts, batch_size=B)`;
  2. `graphgen.embed.embed_texts` into an empty cache (hashing, dedup, length sort,
     chunked streaming into SQLite, progress bar) -- the target is >= 90% of 1.'s speed;
  3. `embed_texts` again with everything cached.
The cache it leaves behind (--cache) is what bench/bench_pairs.py reads.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
SEEDS_DIR = REPO.parent / "shared" / "data" / "seeds"
DEFAULT_CACHE = Path("/tmp/graphgen-bench/embeddings.db")

COMMAND = "HF_HUB_OFFLINE=1 PYTHONPATH=. python bench/bench_embed.py"


def load_bench_seeds(seeds_dir: Path = SEEDS_DIR, limit: int | None = None):
    """SeedQuestions from gsm8k_train.jsonl (`question`) and math_train.jsonl (`problem`)."""
    from graphgen.records import SeedQuestion

    seeds = []
    for name, field in (("gsm8k_train", "question"), ("math_train", "problem")):
        source = name.split("_")[0]
        with open(seeds_dir / f"{name}.jsonl", encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                if line.strip():
                    seeds.append(SeedQuestion(id=f"{source}-{i:05d}", question=json.loads(line)[field], source=source))
    return seeds[:limit] if limit else seeds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="all-MiniLM-L6-v2")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--limit", type=int, default=None, help="embed only the first N seeds")
    ap.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="cache file (recreated)")
    ap.add_argument("--first", choices=["bare", "graphgen"], default="bare", help="which runs first in round 1")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat both measurements, alternating which goes first; best of each is compared")
    args = ap.parse_args(argv)

    import numpy as np

    from graphgen.config import EmbeddingSettings
    from graphgen.embed import EmbeddingCache, create_embedder, embed_texts

    print(f"# command: {COMMAND}" + (" " + " ".join(sys.argv[1:]) if sys.argv[1:] else ""))
    seeds = load_bench_seeds(limit=args.limit)
    texts = [s.question for s in seeds]
    print(f"seeds: {len(texts)} ({sum(s.source == 'gsm8k' for s in seeds)} gsm8k, "
          f"{sum(s.source == 'math' for s in seeds)} math); model {args.model}; batch size {args.batch_size}")

    t = time.perf_counter()
    embedder = create_embedder(EmbeddingSettings(model=args.model, batch_size=args.batch_size))
    print(f"model load: {time.perf_counter() - t:.2f} s from {embedder.path} on {embedder.device}")
    import torch

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}")
    embedder.model.encode(texts[:256], batch_size=args.batch_size, show_progress_bar=False)  # warm-up

    for suffix in ("", "-wal", "-shm"):
        Path(str(args.cache) + suffix).unlink(missing_ok=True)

    # Wall time, and CPU time of this process (all threads): on a shared machine other
    # processes' load changes wall time between the two runs, CPU time much less.
    def bare() -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        out = embedder.model.encode(texts, batch_size=args.batch_size, show_progress_bar=False)
        dt, dc = time.perf_counter() - t0, time.process_time() - c0
        assert out.shape[0] == len(texts)
        return dt, dc

    def ours() -> tuple[float, float, np.ndarray]:
        with EmbeddingCache(args.cache) as cache:
            t0, c0 = time.perf_counter(), time.process_time()
            vecs = embed_texts(texts, embedder, cache, progress=True)
            return time.perf_counter() - t0, time.process_time() - c0, vecs

    bare_times, our_times, bare_cpu, our_cpu = [], [], [], []
    first = ("bare", "ours") if args.first == "bare" else ("ours", "bare")
    for r in range(args.rounds):
        for what in (first if r % 2 == 0 else first[::-1]):
            if what == "bare":
                dt, dc = bare()
                bare_times.append(dt)
                bare_cpu.append(dc)
            else:
                for suffix in ("", "-wal", "-shm"):  # cold cache every round
                    Path(str(args.cache) + suffix).unlink(missing_ok=True)
                dt, dc, vecs = ours()
                our_times.append(dt)
                our_cpu.append(dc)
            print(f"round {r + 1}: {what}: {dt:.2f} s wall, {dc:.2f} s cpu", flush=True)
    t_bare, t_ours = min(bare_times), min(our_times)
    c_bare, c_ours = min(bare_cpu), min(our_cpu)
    n_unique = len(set(texts))
    print(f"bare SentenceTransformer.encode : {t_bare:8.2f} s  ({len(texts) / t_bare:7.1f} texts/s)")
    print(f"graphgen embed_texts (cold)     : {t_ours:8.2f} s  ({len(texts) / t_ours:7.1f} texts/s, "
          f"{n_unique} unique texts embedded)")
    ratio = t_bare / t_ours
    cpu_ratio = c_bare / c_ours
    print(f"throughput ratio graphgen/bare  : {ratio:.3f} by wall time "
          f"(target >= 0.90: {'PASS' if ratio >= 0.9 else 'FAIL'}); {cpu_ratio:.3f} by process CPU time "
          f"({c_bare:.1f} s vs {c_ours:.1f} s)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")

    with EmbeddingCache(args.cache) as cache:
        t0 = time.perf_counter()
        again = embed_texts(texts, embedder, cache, progress=False)
        t_cached = time.perf_counter() - t0
        rows = cache.count(embedder.key)
    assert np.allclose(again, vecs, atol=1e-6)
    print(f"graphgen embed_texts (cached)   : {t_cached:8.2f} s  ({rows} cached rows in {args.cache})")
    return 0 if ratio >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
