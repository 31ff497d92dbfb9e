"""`graphgen solve` throughput versus a bare AsyncOpenAI loop over the same prompts.

    python bench/bench_solve.py [--questions 500] [--paths 4] [--concurrency 64] [--rounds 3]

Starts tests/fake_openai.py at 50 ms latency. In the same run, alternating rounds:
(a) a bare AsyncOpenAI loop (64 workers, SDK retries off, aiohttp transport) sending every
    path prompt `solve` would send (same messages, same response_format, temperature 0.7);
(b) `graphgen.stages.solve.run` on the same GSM8K questions, style cot, cache off: reading,
    sampling through LLMClient + run_jobs, answer extraction, math-verify checks, dedup,
    diverse selection and writing the outputs.
Reports paths/s for both; the ratio for the sampling phase (target >= 0.85) and end to end.
Then one run with --style code shows what the sandbox adds (programs/s).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import openai  # noqa: E402
from fake_openai import FakeServerProcess  # noqa: E402

from graphgen.config import LLMSettings, Settings, SolveSettings  # noqa: E402
from graphgen.llm import load_schema  # noqa: E402
from graphgen.records import CotSolution, SolveQuestion  # noqa: E402
from graphgen.stages.solve import SolveInputs, _Solver, run  # noqa: E402

SEEDS = ROOT.parent / "shared" / "data" / "seeds" / "gsm8k_train.jsonl"


def write_questions(n: int, path: Path) -> list[dict]:
    rows = []
    with SEEDS.open() as f:
        for line in f:
            rows.append(json.loads(line))
            if len(rows) == n:
                break
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def settings(url: str, concurrency: int, paths: int, style: str) -> Settings:
    return Settings(llm=LLMSettings(base_url=url, api_key="sk-bench", model="fake-model", concurrency=concurrency,
                                    max_tokens=512, cache_path=None, timeout=60),
                    solve=SolveSettings(paths=paths, style=style))


async def bare_loop(url: str, prompts: list[list[dict]], concurrency: int) -> float:
    import httpx2

    limits = httpx2.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    http = openai.DefaultAioHttpClient(limits=limits, timeout=60)
    client = openai.AsyncOpenAI(base_url=url, api_key="sk-bench", max_retries=0, http_client=http)
    schema = load_schema("cot_solution", CotSolution)
    rf = {"type": "json_schema", "json_schema": {"name": "cot_solution", "schema": schema, "strict": True}}
    it = iter(prompts)

    async def worker():
        for msgs in it:
            r = await client.chat.completions.create(model="fake-model", messages=msgs, temperature=0.7,
                                                     max_tokens=512, response_format=rf)
            assert r.choices[0].message.content

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    dt = time.perf_counter() - t0
    await client.close()
    return len(prompts) / dt


def solve_run(url: str, qfile: Path, concurrency: int, paths: int, style: str):
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        report = run(settings(url, concurrency, paths, style), None,
                     SolveInputs(files=[str(qfile)], out_dir=Path(out), quiet=True))
        wall = time.perf_counter() - t0
    return report, wall


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--questions", type=int, default=500)
    ap.add_argument("--paths", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--code-questions", type=int, default=100)
    a = ap.parse_args()
    os.environ.pop("OPENAI_API_KEY", None)
    with tempfile.TemporaryDirectory() as tmp, FakeServerProcess(latency_ms=50) as srv:
        qfile = Path(tmp) / "gsm8k.jsonl"
        rows = write_questions(a.questions, qfile)
        solver = _Solver(settings(srv.url, a.concurrency, a.paths, "cot"))
        from graphgen.readers import read_seeds

        prompts = [solver.unit(SolveQuestion(id=s.id, kind="seed", question=s.question), "cot", i).messages
                   for s in read_seeds(qfile) for i in range(a.paths)]
        n = len(prompts)
        asyncio.run(bare_loop(srv.url, prompts[:300], a.concurrency))  # warm-up
        bare, ours, sampling = [], [], []
        for _ in range(a.rounds):
            bare.append(asyncio.run(bare_loop(srv.url, prompts, a.concurrency)))
            report, wall = solve_run(srv.url, qfile, a.concurrency, a.paths, "cot")
            assert report.paths_sampled == n, report.lines()
            ours.append(n / wall)
            sampling.append(n / report.sampling_s)
        b, o, s = (statistics.median(x) for x in (bare, ours, sampling))
        print(f"latency 50 ms, concurrency {a.concurrency}, {len(rows)} GSM8K questions x {a.paths} cot paths = {n} "
              f"calls, {a.rounds} rounds; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
        print(f"  bare AsyncOpenAI loop, same prompts   median {b:7.1f} paths/s  ({' '.join(f'{x:.0f}' for x in bare)})")
        print(f"  graphgen solve, sampling phase        median {s:7.1f} paths/s  ({' '.join(f'{x:.0f}' for x in sampling)})"
              f"   ratio {s / b:.3f} (target >= 0.85)")
        print(f"  graphgen solve, end to end            median {o:7.1f} paths/s  ({' '.join(f'{x:.0f}' for x in ours)})"
              f"   ratio {o / b:.3f}")
        print(f"  last run: {'; '.join(report.lines()[1:3])}")
        cfile = Path(tmp) / "gsm8k_code.jsonl"
        write_questions(a.code_questions, cfile)
        report, wall = solve_run(srv.url, cfile, a.concurrency, a.paths, "code")
        progs = report.programs_run
        print(f"  --style code, {a.code_questions} questions: {progs} programs in {report.programs_s:.1f}s "
              f"({progs / max(report.programs_s, 1e-9):.1f} programs/s, {report.isolation}); "
              f"end to end {report.paths_sampled / wall:.1f} paths/s; sampling {report.sampling_s:.1f}s, "
              f"checking {report.checking_s:.1f}s")


if __name__ == "__main__":
    main()
