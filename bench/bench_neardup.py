"""Near duplicates against datatrove's MinHash pipeline (issue 21, target 2).

    python bench/bench_neardup.py [--rows 100000] [--rounds 2] [--graphgen-only]

Rows: 80,000 originals and 20,000 planted copies of random originals. Originals are the
14,973 GSM8K + MATH training questions and 65,027 two-question composites ("A B", distinct
random pairs), so many originals share half their text with others (a precision test).
Copies, 5,000 of each kind: every number shifted (+1..9 each); numbers shifted and one word
replaced; 1-3 words replaced (one per 25); a sentence added before and after.

An original and its copies form a group. A removed row is right when it belongs to a group
with more than one row and some row of its group is kept; precision = right / removed;
recall per kind = copies of that kind removed / planted.

Compared, each in one child process, CPU time = user + sys (imports included), alternating:
- graphgen: ``graphgen filter ROWS -o KEPT --quiet`` (exact + near duplicates, no benchmarks),
  with its default and with ``--near-numbers exact`` (the behaviour before issue 21);
- datatrove 0.10: its documented MinHash pipeline (signatures, buckets, clusters, filter;
  5-gram shingles, 14 buckets x 8 hashes, digits normalised to 0), local executor, 1 task.
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

DATATROVE = r'''
import sys
from datatrove.executor import LocalPipelineExecutor
from datatrove.pipeline.dedup import MinhashDedupSignature
from datatrove.pipeline.dedup.minhash import (MinhashConfig, MinhashDedupBuckets, MinhashDedupCluster,
                                              MinhashDedupFilter)
from datatrove.pipeline.readers import JsonlReader
from datatrove.pipeline.writers.jsonl import JsonlWriter

data, work = sys.argv[1], sys.argv[2]
config = MinhashConfig()
def reader():
    return JsonlReader(data, text_key="question", id_key="id", glob_pattern="rows.jsonl")
steps = [
    ([reader(), MinhashDedupSignature(output_folder=f"{work}/sigs", config=config)], 1),
    ([MinhashDedupBuckets(input_folder=f"{work}/sigs", output_folder=f"{work}/buckets", config=config)],
     config.num_buckets),
    ([MinhashDedupCluster(input_folder=f"{work}/buckets", output_folder=f"{work}/remove", config=config)], 1),
    ([reader(), MinhashDedupFilter(input_folder=f"{work}/remove",
                                   exclusion_writer=JsonlWriter(f"{work}/removed", compression=None)),
      JsonlWriter(f"{work}/kept", compression=None)], 1),
]
for k, (pipeline, tasks) in enumerate(steps):
    LocalPipelineExecutor(pipeline=pipeline, tasks=tasks, workers=1,
                          logging_dir=f"{work}/logs{k}").run()
'''


def _jsonl(path: Path):
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def build(n: int, path: Path) -> dict[str, tuple[int, str]]:
    """Write the rows; return row id -> (group, kind)."""
    rng = random.Random(21)
    seeds = [r["question"] for r in _jsonl(DATA / "seeds" / "gsm8k_train.jsonl")]
    seeds += [r["problem"] for r in _jsonl(DATA / "seeds" / "math_train.jsonl")]
    n_copies = n // 5
    originals = list(seeds)
    pairs = set()
    while len(originals) < n - n_copies:
        a, b = sorted(rng.sample(range(len(seeds)), 2))
        # halves of similar length, each pair once and in one order: a composite is then at
        # most about half similar to any other original
        if (a, b) not in pairs and 0.7 <= len(seeds[a]) / len(seeds[b]) <= 1.4:
            pairs.add((a, b))
            originals.append(seeds[a] + " " + seeds[b])
    vocab = sorted({w for q in seeds[:2000] for w in re.findall(r"[a-z]{4,}", q)})
    number = re.compile(r"\d+")

    def shift(q: str) -> str:
        return number.sub(lambda m: str(int(m.group()) + rng.randint(1, 9)), q)

    def words(q: str, k: int) -> str:
        parts = q.split(" ")
        idx = [i for i, w in enumerate(parts) if re.fullmatch(r"[A-Za-z]{3,}[,.]?", w)]
        for i in rng.sample(idx, min(len(idx), k)):
            parts[i] = rng.choice(vocab)
        return " ".join(parts)

    rows, truth = [], {}
    for g, q in enumerate(originals):
        rows.append({"id": f"a{g:06d}", "kind": "concepts", "question": q})
        truth[f"a{g:06d}"] = (g, "original")
    kinds = ["numbers", "numbers+word", "words", "wrapped"]
    for k in range(n_copies):
        g = rng.randrange(len(originals))
        q, kind = originals[g], kinds[k % 4]
        if kind == "numbers":
            q = shift(q)
        elif kind == "numbers+word":
            q = words(shift(q), 1)
        elif kind == "words":
            q = words(q, max(1, min(3, len(q.split()) // 25)))
        else:
            q = "Here is a problem for practice. " + q + " Explain each step."
        row_id = f"b{k:06d}"
        rows.append({"id": row_id, "kind": "concepts", "question": q})
        truth[row_id] = (g, kind)
    rng.shuffle(rows)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return truth


def score(truth: dict[str, tuple[int, str]], removed: set[str]) -> dict:
    size = collections.Counter(g for g, _k in truth.values())
    kept_groups = {g for i, (g, _k) in truth.items() if i not in removed}
    right = sum(1 for i in removed if size[truth[i][0]] > 1 and truth[i][0] in kept_groups)
    by, hit = collections.Counter(), collections.Counter()
    for i, (g, kind) in truth.items():
        if kind != "original":
            by[kind] += 1
            # found: the copy or its original went, and a row of the group stayed (either
            # side may be the one kept: datatrove keeps one of a cluster by its own order)
            hit[kind] += (i in removed or f"a{g:06d}" in removed) and g in kept_groups
    originals = sum(1 for i in removed if size[truth[i][0]] == 1)
    return {"removed": len(removed), "precision": round(right / max(1, len(removed)), 3),
            "originals without copies removed": originals,
            **{f"recall {k}": round(hit[k] / by[k], 3) for k in sorted(by)}}


def timed(cmd: list[str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if proc.returncode:
        raise SystemExit(f"{cmd[:4]} failed:\n{proc.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--work", type=Path, default=None)
    ap.add_argument("--graphgen-only", action="store_true")
    args = ap.parse_args()
    print("$ python bench/bench_neardup.py", " ".join(sys.argv[1:]))
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(), flush=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="neardup-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = work / "rows.jsonl"
    truth = build(args.rows, rows)
    (work / "dt_minhash.py").write_text(DATATROVE, encoding="utf-8")
    sides = {
        "graphgen (default)": lambda: [sys.executable, "-m", "graphgen_cli", "filter", str(rows), "-o",
                                       str(work / "gg.jsonl"), "--quiet"],
        "graphgen --near-numbers exact": lambda: [sys.executable, "-m", "graphgen_cli", "filter", str(rows), "-o",
                                                  str(work / "ggx.jsonl"), "--quiet", "--near-numbers", "exact"],
    }
    if not args.graphgen_only:
        sides["datatrove MinHash"] = lambda: [sys.executable, str(work / "dt_minhash.py"), str(work),
                                              str(work / "dt")]
    cpu: dict[str, list[float]] = {k: [] for k in sides}
    for r in range(args.rounds):
        names = list(sides) if r % 2 == 0 else list(reversed(sides))
        for name in names:
            if name.startswith("datatrove"):
                shutil.rmtree(work / "dt", ignore_errors=True)
            cpu[name].append(timed(sides[name]()))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in cpu.items()), flush=True)
    results = {}
    results["graphgen (default)"] = {json.loads(line)["id"] for line in (work / "gg.removed.jsonl").open()}
    results["graphgen --near-numbers exact"] = {json.loads(line)["id"] for line in (work / "ggx.removed.jsonl").open()}
    if not args.graphgen_only:
        removed = set()
        for f in (work / "dt" / "removed").glob("*.jsonl"):
            removed |= {json.loads(line)["id"] for line in f.open()}
        results["datatrove MinHash"] = removed
    print(f"\nrows {args.rows} ({args.rows // 5} planted copies); CPU s = user + sys of the child, median of {args.rounds}")
    for name in sides:
        print(f"{name:32s} CPU {statistics.median(cpu[name]):7.2f} s {[round(x, 2) for x in cpu[name]]}  "
              + json.dumps(score(truth, results[name])))
    if not args.graphgen_only:
        base = statistics.median(cpu["datatrove MinHash"])
        for name in sides:
            print(f"datatrove / {name}: {base / statistics.median(cpu[name]):.2f}x")
    print("uptime:", subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip())


if __name__ == "__main__":
    main()
