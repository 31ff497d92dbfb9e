"""Stage throughput against the fake LLM server, versus a bare AsyncOpenAI loop, same run.

    python bench/bench_pipeline.py extract            # issue 2: graphgen extract, 15k seeds
    python bench/bench_pipeline.py generate --n 100000  # issue 3: 100k generated rows, memory

extract: the 14,973 seeds of ../shared/data/seeds through graphgen's extraction stage
(seed reading, SQLite store, run_jobs + LLMClient, graph rebuild) at 50 ms latency and
concurrency 64, then the same prompts through a bare AsyncOpenAI loop; then again at 500 ms
against the bound concurrency / latency. The LLM-phase rate is compared (reading seeds and
rebuilding the graph are reported separately).
generate: N samples -> N generated rows (50 ms, concurrency 64) in a child process whose
peak RSS is reported, against a bare loop over the same prompts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "bench")]

SEED_FILES = sorted((ROOT.parent / "shared/data/seeds").glob("*.jsonl"))


def settings(url: str, concurrency: int, cache: str | None = None):
    from graphgen.config import LLMSettings

    return LLMSettings(base_url=url, api_key="sk-bench", model="fake-model", concurrency=concurrency,
                       max_tokens=1024, cache_path=cache, timeout=60)


async def bare(url: str, prompts: list[list[dict]], concurrency: int, schema_name: str, output) -> float:
    """The baseline: AsyncOpenAI, N workers, same transport as graphgen, no extras."""
    import httpx2
    import openai

    from graphgen.llm import output_schema

    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    client = openai.AsyncOpenAI(base_url=url, api_key="sk-bench", max_retries=0,
                                http_client=openai.DefaultAioHttpClient(limits=limits, timeout=60))
    rf = {"type": "json_schema", "json_schema": {"name": schema_name, "schema": output_schema(output).schema, "strict": True}}
    it = iter(prompts)

    async def worker():
        for msgs in it:
            r = await client.chat.completions.create(model="fake-model", messages=msgs, temperature=0.0,
                                                     max_tokens=1024, response_format=rf)
            output.model_validate_json(r.choices[0].message.content)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    rate = len(prompts) / (time.perf_counter() - t0)
    await client.close()
    return rate


def run_extract(url: str, concurrency: int, workdir: Path) -> dict:
    from graphgen.stages import extract
    from graphgen.config import Settings, StoreSettings
    from graphgen.store.sqlite import SQLiteStore

    db = workdir / f"extract-{time.time_ns()}.db"
    cfg = Settings(llm=settings(url, concurrency), store=StoreSettings(path=db))
    inputs = extract.ExtractInputs(seed_files=SEED_FILES, failures=workdir / "failures.jsonl", quiet=True)
    t0 = time.perf_counter()
    with SQLiteStore(db) as store:
        report = extract.run(cfg, store, inputs)
        t1 = time.perf_counter()
        prompts = [extract.ConceptExtractor().messages(s) for s in store.seeds()]
    assert report.extracted == report.read, report
    return {"seeds": report.extracted, "llm_rate": report.extracted / report.llm_seconds,
            "other_s": t1 - t0 - report.llm_seconds, "total_s": t1 - t0, "prompts": prompts}


def bench_extract(args) -> None:
    from fake_openai import FakeServerProcess

    from graphgen.records import ExtractionOutput

    c = args.concurrency
    with FakeServerProcess(latency_ms=50) as srv, tempfile.TemporaryDirectory() as tmp:
        rows = []
        for r in range(args.rounds):  # alternate so a busy neighbour hurts both alike
            ours = run_extract(srv.url, c, Path(tmp))
            base = asyncio.run(bare(srv.url, ours.pop("prompts"), c, "extraction", ExtractionOutput))
            rows.append((ours, base))
            print(f"round {r}: graphgen extract LLM phase {ours['llm_rate']:.0f} seeds/s, bare loop {base:.0f} req/s, "
                  f"ratio {ours['llm_rate'] / base:.3f}; read+store+graph rebuild "
                  f"{ours['other_s']:.1f}s, end to end {ours['total_s']:.1f}s for {ours['seeds']} seeds")
        ratios = sorted(o["llm_rate"] / b for o, b in rows)
        print(f"latency 50 ms, concurrency {c}: median ratio graphgen/bare {ratios[len(ratios) // 2]:.3f} (target >= 0.85); "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        srv.set_latency(500)
        ours = run_extract(srv.url, c, Path(tmp))
        bound = c / 0.5
        print(f"latency 500 ms, concurrency {c}: graphgen extract {ours['llm_rate']:.1f} seeds/s, bound {bound:.0f}/s, "
              f"ratio {ours['llm_rate'] / bound:.3f} (target >= 0.90)")


def child_generate(url: str, n: int, concurrency: int, workdir: str) -> None:
    """In a fresh process: example graph -> n samples -> n generated rows; peak RSS."""
    from graphgen.graph import rebuild
    from graphgen.stages.extract import read_annotations
    from graphgen.stages.generate import QuestionGenerator, run_units
    from graphgen.jsonl import read_jsonl, write_jsonl
    from graphgen.llm import LLMClient
    from graphgen.records import ConceptSample
    from graphgen.sample import ConceptGraphArrays, WalkOptions, sample_concepts
    from graphgen.readers import read_seeds
    from graphgen.store.sqlite import SQLiteStore

    work = Path(workdir)
    store = SQLiteStore(work / "g.db")
    seeds = list(read_seeds([ROOT / "examples/seeds.jsonl"]))
    store.add_seeds(seeds)
    store.add_extractions(read_annotations(ROOT / "examples/annotations.jsonl", {s.id for s in seeds}))
    rebuild(store)
    # the example graph has fewer distinct combinations than n: make each sample distinct by
    # numbering, as a larger graph would
    base = list(sample_concepts(ConceptGraphArrays.from_store(store), 5000, seed=0, options=WalkOptions(max_walks=200000)))
    samples = (s.model_copy(update={"id": f"{s.id}-{i}"}) for i in range(n) for s in [base[i % len(base)]])
    write_jsonl(samples, work / "samples.jsonl")
    gen = QuestionGenerator(store, "fake-model")
    started = time.monotonic()
    summary = run_units(gen.units(read_jsonl(work / "samples.jsonl", ConceptSample)), LLMClient(settings(url, concurrency)),
                        work / "generated.jsonl", store=store, total=n, quiet=True)
    elapsed = time.monotonic() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = summary.totals
    print(json.dumps({"ok": t.ok, "failed": t.failed, "llm_seconds": elapsed, "peak_rss_mib": peak}))


def bench_generate(args) -> None:
    from fake_openai import FakeServerProcess

    from graphgen.stages.generate import QuestionGenerator
    from graphgen.jsonl import read_jsonl
    from graphgen.records import ConceptSample, GeneratedQA
    from graphgen.store.sqlite import SQLiteStore

    c = args.concurrency
    with FakeServerProcess(latency_ms=50) as srv, tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, __file__, "child-generate", srv.url, str(args.n), str(c), tmp],
                             capture_output=True, text=True)
        if out.returncode:
            sys.exit(out.stderr)
        ours = json.loads(out.stdout.strip().splitlines()[-1])
        rate = ours["ok"] / ours["llm_seconds"]
        with SQLiteStore(Path(tmp) / "g.db") as store:
            gen = QuestionGenerator(store, "fake-model")
            m = min(args.n, args.baseline_n)
            prompts = [u.messages for _, u in zip(range(m), gen.units(read_jsonl(Path(tmp) / "samples.jsonl", ConceptSample)))]
        base = asyncio.run(bare(srv.url, prompts, c, "generated_qa", GeneratedQA))
        print(f"generate {args.n} rows, latency 50 ms, concurrency {c}: graphgen {rate:.0f} rows/s "
              f"({ours['ok']} ok, {ours['failed']} failed, {ours['llm_seconds']:.0f}s), peak RSS {ours['peak_rss_mib']:.0f} MiB "
              f"(target < 500); bare loop over {m} of the same prompts {base:.0f} req/s; ratio {rate / base:.3f} (target >= 0.85)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child-generate":
        child_generate(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        sys.exit()
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["extract", "generate"])
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--baseline-n", type=int, default=20_000)
    args = ap.parse_args()
    print("command: python bench/bench_pipeline.py " + " ".join(sys.argv[1:]))
    bench_extract(args) if args.what == "extract" else bench_generate(args)
