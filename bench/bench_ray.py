"""The Ray engine's overhead against the single-process engine, same work, same run.

    PYTHONPATH=. python bench/bench_ray.py [--n 4000] [--latency-ms 100] [--concurrency 64]

Starts tests/fake_openai.py (fixed latency per request), then runs the same N extraction
jobs (GSM8K questions, cache off) through graphgen.engine.run_llm_jobs twice:
(a) engine "local" (run_jobs in this process), (b) engine "ray" on a fresh local Ray
(`ray_address = "local"`: the CPUs of this machine as tasks, blocks of --block-size).
Prints wall times, the Ray start-up (ray.init plus the worker probe, timed on its own), and
the ratio (b)/(a) with and without start-up. With an endpoint that takes `latency` per request
and `concurrency` requests in flight, both are bounded by N * latency / concurrency.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from fake_openai import FakeServerProcess  # noqa: E402

from graphgen.config import EngineSettings, LLMSettings  # noqa: E402
from graphgen.engine import run_llm_jobs  # noqa: E402
from graphgen.stages.extract import ConceptExtractor  # noqa: E402
from graphgen.llm import LLMClient  # noqa: E402
from graphgen.records import SeedQuestion  # noqa: E402

SEEDS = ROOT.parent / "shared" / "data" / "seeds" / "gsm8k_train.jsonl"


def seeds(n: int) -> list[SeedQuestion]:
    out = []
    with SEEDS.open(encoding="utf-8") as fh:
        for i, line in enumerate(fh):
            if i >= n:
                break
            out.append(SeedQuestion(id=f"s{i}", question=json.loads(line)["question"]))
    while len(out) < n:  # more than the file holds: distinct copies
        out.append(SeedQuestion(id=f"s{len(out)}", question=out[len(out) % 7000].question + f" ({len(out)})"))
    return out


def run(engine: EngineSettings, settings: LLMSettings, items: list[SeedQuestion], state: Path) -> tuple[float, int]:
    extractor = ConceptExtractor()
    got = []
    t = time.perf_counter()
    totals = run_llm_jobs(LLMClient(settings), (extractor.job(s) for s in items), lambda j, r: got.append(j.key),
                          total=len(items), quiet=True, engine=engine, state_dir=state)
    wall = time.perf_counter() - t
    assert totals.ok == len(items) == len(set(got)), (totals.ok, len(got))
    return wall, totals.ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=4000)
    p.add_argument("--latency-ms", type=float, default=100)
    p.add_argument("--concurrency", type=int, default=64)
    p.add_argument("--block-size", type=int, default=200)
    args = p.parse_args()
    items = seeds(args.n)
    with FakeServerProcess(latency_ms=args.latency_ms) as srv, tempfile.TemporaryDirectory() as tmp:
        settings = LLMSettings(base_url=srv.url, api_key="sk-bench", model="fake-model",
                               concurrency=args.concurrency, cache_path=None)
        import ray

        from graphgen.engine.ray_cluster import check_workers, connect

        t = time.perf_counter()
        connect("local")
        check_workers(ray)
        startup = time.perf_counter() - t
        ray.shutdown()
        local_s, _ = run(EngineSettings(kind="local"), settings, items, Path(tmp) / "a")
        ray_s, _ = run(EngineSettings(kind="ray", ray_address="local", block_size=args.block_size), settings,
                       items, Path(tmp) / "b")
    bound = args.n * args.latency_ms / 1000 / args.concurrency
    print(f"n={args.n} latency={args.latency_ms:g}ms concurrency={args.concurrency} block={args.block_size}")
    print(f"bound (n x latency / concurrency): {bound:.1f}s")
    print(f"local engine: {local_s:.1f}s ({args.n / local_s:.0f}/s)")
    print(f"ray engine:   {ray_s:.1f}s ({args.n / ray_s:.0f}/s), of which Ray start-up ~{startup:.1f}s")
    print(f"ratio ray/local: {ray_s / local_s:.2f} (without start-up: {(ray_s - startup) / local_s:.2f})")


if __name__ == "__main__":
    main()
