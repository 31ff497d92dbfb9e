"""Benchmark `graphgen generate variants`: variants per second on GSM8K with cached code paths.

    python bench/bench_variants.py                       # all 7,473 GSM8K train questions
    python bench/bench_variants.py --limit 500 --workers 2
    python bench/bench_variants.py --make-paths examples/gsm8k_code_paths.jsonl \
        --seeds examples/seeds.jsonl                      # (re)build the example paths file

The code paths stand in for `graphgen solve`'s cached, verified paths.jsonl: three programs per
question derived from the worked solution's calculator annotations (tests/gsm8k_programs.py),
run once in the sandbox and kept when they print the `#### N` answer, written in solve's
`SolvePath` shape. Building them is not timed. The timed part is the stage as the CLI runs it
(`graphgen.stages.variants.run`): number finding, drawing, the sandbox runs of every substituted
program (the cost), agreement and kind checks, writing rows.

Baseline, measured in the same run: the sandbox alone running programs one per child, as a
stage that does not batch a draw's programs would (the original programs, repeated;
`--baseline-programs` of them, default 5,000), compared as programs per second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from gsm8k_programs import gold_answer, program_for  # noqa: E402

from graphgen.config import Settings, VariantsSettings  # noqa: E402
from graphgen.numbershift import parse_number, same_number  # noqa: E402
from graphgen.sandbox import Sandbox  # noqa: E402
from graphgen.readers import read_seeds  # noqa: E402
from graphgen.stages.variants import VariantsInputs, run  # noqa: E402


def make_paths(seed_files: list[Path], out: Path, limit: int | None, workers: int | None) -> tuple[int, int, int]:
    """Verified code paths (solve's SolvePath shape) for the GSM8K seeds of `seed_files`."""
    items = []
    for n, seed in enumerate(read_seeds(seed_files)):
        if limit is not None and n >= limit:
            break
        if not seed.solution or "<<" not in seed.solution:
            continue  # not a GSM8K worked solution
        for style in range(3):
            prog = program_for(seed.question, seed.solution, style)
            if prog:
                items.append((seed, style, prog))
    with Sandbox(workers=workers) as box:
        results = box.map([p for _, _, p in items])
    kept = 0
    questions = set()
    with out.open("w", encoding="utf-8") as fh:
        for (seed, style, prog), res in zip(items, results):
            gold = parse_number(gold_answer(seed.solution or "") if not seed.answer else seed.answer)
            lines = res.stdout.strip().splitlines() if res.ok else []
            got = parse_number(lines[-1]) if lines else None
            if gold is None or got is None or not same_number(gold, got):
                continue
            kept += 1
            questions.add(seed.id)
            fh.write(json.dumps({"id": f"{seed.id}#code{style}", "question_id": seed.id, "question_kind": "seed",
                                 "style": "code", "index": style, "text": prog, "answer": seed.answer,
                                 "correct": True}) + "\n")
    return len(items), kept, len(questions)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=Path, nargs="+", default=[REPO.parent / "shared/data/seeds/gsm8k_train.jsonl"])
    ap.add_argument("--limit", type=int)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--make-paths", type=Path, help="only write the code paths file and stop")
    ap.add_argument("--baseline-programs", type=int, default=5000, help="programs the baseline runs")
    args = ap.parse_args()
    print("$ python " + " ".join(sys.argv), f"(load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores)")
    if args.make_paths:
        made, kept, questions = make_paths(args.seeds, args.make_paths, args.limit, args.workers)
        print(f"{kept} of {made} derived programs verified, for {questions} questions -> {args.make_paths}")
        return
    with tempfile.TemporaryDirectory() as tmp:
        paths = Path(tmp) / "paths.jsonl"
        made, kept, questions = make_paths(args.seeds, paths, args.limit, args.workers)
        print(f"code paths: {kept} of {made} derived programs verified, for {questions} questions")
        settings = Settings()
        settings.variants = VariantsSettings(workers=args.workers)
        t0 = time.perf_counter()
        report = run(settings, None, VariantsInputs(paths=[paths], questions=args.seeds,
                                                    output=Path(tmp) / "variants.jsonl", quiet=True))
        stage_s = time.perf_counter() - t0
        kept_n = sum(report.kept.values())
        programs = [json.loads(line)["text"] for line in paths.open(encoding="utf-8")]
        n_base = min(args.baseline_programs, report.programs_run)
        reps = (programs * (n_base // max(1, len(programs)) + 1))[:n_base]
        with Sandbox(workers=args.workers) as box:
            box.map(programs[:args.workers])  # warm the workers, as the stage's are after its first batch
            t0 = time.perf_counter()
            box.map(reps)
            sandbox_s = time.perf_counter() - t0
    for line in report.lines():
        print(line)
    print(f"stage: {stage_s:.1f} s for {kept_n} variants = {kept_n / stage_s:.2f} variants/s; "
          f"{report.draws} draws, {report.programs_run} programs = {report.programs_run / stage_s:.1f} programs/s")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    stage_rate, base_rate = report.programs_run / stage_s, len(reps) / sandbox_s
    print(f"baseline, sandbox alone, one child per program: {len(reps)} programs in {sandbox_s:.1f} s = "
          f"{base_rate:.1f} programs/s; stage programs/s over baseline: {stage_rate / base_rate:.2f}")


if __name__ == "__main__":
    main()
