"""Decontamination CPU against the script a user would write instead (issue 21, target 1).

    python bench/bench_decontam_cpu.py [--rows 100000] [--rounds 3]

Rows: 100,000 questions = 96,000 training questions (GSM8K + MATH train, cycled, every
copy after the first with its numbers shifted so rows differ) and 4,000 planted benchmark
copies (random items of the six benchmark files, seed 21), 1,000 of each kind: exact, every
number + 3, wrapped in a sentence before and after, one middle word replaced.

Compared in child processes, alternating, CPU time (user + sys of the child, imports
included: what the user's shell would report), against the six files of
../shared/data/benchmarks/:

- graphgen: ``graphgen filter ROWS --seeds --no-exact --no-near --quiet --benchmarks DIR``
  (decontamination only), once with a cold benchmark-index cache (first run) and then warm;
  ``python -m graphgen_cli`` imports graphgen from PYTHONPATH (``PYTHONPATH=.`` for this checkout;
  the bench prints where it comes from);
- baseline: a plain 13-gram script (below, ~30 lines: lower-case, split on whitespace, a set
  of joined 13-gram strings of the benchmark questions, a row is contaminated when any of
  its 13-grams is in the set).

Recall per planted kind is counted from each side's removals; the figure is the ratio of
the medians of CPU time. Both sides run with bytecode cached as an installed package has it
(one untimed warm-up each; the machine's PYTHONDONTWRITEBYTECODE is dropped for the children,
whose bytecode goes to a private PYTHONPYCACHEPREFIX under the work directory).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

# The plain script a user would write (run as its own process, like graphgen).
BASELINE = r'''
import json, sys, pathlib
N = 13
def question(row):
    for body in ("body", "Body"):
        if row.get(body):
            return row[body] + " " + (row.get("question") or row.get("Question") or "")
    return row.get("question") or row.get("problem") or row.get("input") or row.get("Question") or ""
def grams(text):
    w = text.lower().split()
    return {" ".join(w[i:i + N]) for i in range(len(w) - N + 1)}
bench = set()
for path in sorted(pathlib.Path(sys.argv[2]).glob("*.jsonl")):
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                bench |= grams(question(json.loads(line)))
with open(sys.argv[1], encoding="utf-8") as fh, open(sys.argv[3], "w", encoding="utf-8") as out:
    for line in fh:
        row = json.loads(line)
        if not grams(row["question"]).isdisjoint(bench):
            out.write(row["id"] + "\n")
'''


def _jsonl(path: Path):
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def _bench_question(row: dict) -> str:
    for body in ("body", "Body"):
        if row.get(body):
            return f"{row[body].strip()} {(row.get('question') or row.get('Question')).strip()}"
    return row.get("question") or row.get("problem") or row.get("input") or ""


def build_rows(n: int, path: Path) -> list[dict]:
    rng = random.Random(21)
    train = [r["question"] for r in _jsonl(DATA / "seeds" / "gsm8k_train.jsonl")]
    train += [r["problem"] for r in _jsonl(DATA / "seeds" / "math_train.jsonl")]
    bench = [_bench_question(r) for f in sorted((DATA / "benchmarks").glob("*.jsonl")) for r in _jsonl(f)]
    number = re.compile(r"\d+")
    rows = []
    for k in range(n - 4000):
        q = train[k % len(train)]
        if k >= len(train):
            q = number.sub(lambda m: str(int(m.group()) + 1 + k // len(train)), q)
        rows.append({"id": f"train-{k}", "question": q})
    planted = []
    for k, text in enumerate(rng.sample(bench, 4000)):
        kind = ("exact", "numbers", "wrapped", "word")[k % 4]
        q = text
        if kind == "numbers":
            q = number.sub(lambda m: str(int(m.group()) + 3), text)
        elif kind == "wrapped":
            q = "Here is a practice problem for you. " + text + " Show your work step by step."
        elif kind == "word":
            words = text.split()
            mid = len(words) // 2
            for j in list(range(mid, len(words))) + list(range(mid)):
                if words[j].isalpha() and len(words[j]) > 3:
                    words[j] = "zebra"
                    break
            q = " ".join(words)
        planted.append({"id": f"plant-{kind}-{k}", "question": q})
    rows += planted
    rng.shuffle(rows)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return planted


def timed(cmd: list[str], env: dict | None = None) -> float:
    """CPU seconds (user + sys) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def recall(planted: list[dict], removed: set[str]) -> dict[str, float]:
    by, hit = collections.Counter(), collections.Counter()
    for r in planted:
        kind = r["id"].split("-")[1]
        by[kind] += 1
        hit[kind] += r["id"] in removed
    return {k: round(hit[k] / by[k], 3) for k in sorted(by)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    print("$ python bench/bench_decontam_cpu.py", " ".join(sys.argv[1:]))
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())
    where = subprocess.run([sys.executable, "-c", "import graphgen_cli, graphgen; print(graphgen_cli.__file__, graphgen.__file__)"],
                           capture_output=True, text=True).stdout.strip()
    print("graphgen from:", where)
    work = args.work or Path(tempfile.mkdtemp(prefix="decon-cpu-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = work / "rows.jsonl"
    planted = build_rows(args.rows, rows)
    bench_dir = DATA / "benchmarks"
    script = work / "ngram13.py"
    script.write_text(BASELINE, encoding="utf-8")
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    # Bytecode as an installed package has it (pip compiles on install): this machine sets
    # PYTHONDONTWRITEBYTECODE, which made every run compile graphgen's modules again (~0.07 s);
    # both sides get one untimed warm-up that fills a private bytecode cache.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(GRAPHGEN_CACHE_DIR=str(cache), PYTHONPYCACHEPREFIX=str(work / "pycache"))
    out = work / "kept.jsonl"
    gg = [sys.executable, "-m", "graphgen_cli", "filter", str(rows), "--seeds", "-o", str(out),
          "--benchmarks", str(bench_dir), "--no-exact", "--no-near", "--quiet"]
    base = [sys.executable, str(script), str(rows), str(bench_dir), str(work / "baseline.removed")]
    cpu: dict[str, list[float]] = {"graphgen": [], "baseline": []}
    timed(gg, {**env, "GRAPHGEN_CACHE_DIR": str(work / "cache-warmup")})
    timed(base, env)
    cold = timed(gg, env)  # the first run builds the benchmark index cache
    for r in range(args.rounds):
        order = ("graphgen", "baseline") if r % 2 == 0 else ("baseline", "graphgen")
        for side in order:
            cpu[side].append(timed(gg if side == "graphgen" else base, env))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in cpu.items() if v), flush=True)
    removed_gg = {json.loads(line)["id"] for line in out.with_name("kept.removed.jsonl").read_text().splitlines()}
    removed_base = set((work / "baseline.removed").read_text().split())
    train_fp_gg = sum(1 for i in removed_gg if i.startswith("train-"))
    train_fp_base = sum(1 for i in removed_base if i.startswith("train-"))
    g, b = statistics.median(cpu["graphgen"]), statistics.median(cpu["baseline"])
    print(f"\nrows {args.rows}, planted 4000; CPU s (user+sys, child process, median of {args.rounds})")
    print(f"graphgen filter (decontamination only): cold cache {cold:.2f} s, warm {g:.2f} s "
          f"{[round(x, 2) for x in cpu['graphgen']]}")
    print(f"plain 13-gram script:                   {b:.2f} s {[round(x, 2) for x in cpu['baseline']]}")
    print(f"ratio baseline / graphgen: warm {b / g:.2f}x, cold {b / cold:.2f}x")
    print(f"recall graphgen {recall(planted, removed_gg)}; training rows removed {train_fp_gg}")
    print(f"recall baseline {recall(planted, removed_base)}; training rows removed {train_fp_base}")
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
