"""Rebuild examples/seeds.jsonl from the shared seed files (the rule is in examples/README.md).

    python examples/select_seeds.py [SEEDS_DIR] [BENCHMARKS_DIR] > examples/seeds.jsonl

GSM8K: 0-based lines 37, 74, ..., 7400 of gsm8k_train.jsonl (every 37th line, 200 rows).
MATH: 20 problems per level 1-5; per level, every subject gets 3 except one (the L-th in
alphabetical order gets 2); inside a (subject, level) cell of n rows in file order, the q
picks are the rows at positions floor((j + 0.5) * n / q), j = 0..q-1. A pick whose problem
text also appears in the MATH test benchmark is replaced by the next row of the cell.
"""

import json
import sys
from pathlib import Path

seeds = Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data/seeds")
bench = Path(sys.argv[2] if len(sys.argv) > 2 else "../shared/data/benchmarks")


def rows(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


out = []
gsm = rows(seeds / "gsm8k_train.jsonl")
for k in range(1, 201):
    i = 37 * k
    r = gsm[i]
    out.append({"id": f"gsm8k-train-{i:05d}", "question": r["question"], "solution": r["answer"],
                "answer": r["answer"].rsplit("####", 1)[1].strip(), "source": "gsm8k"})

math = rows(seeds / "math_train.jsonl")
test_problems = {r["problem"].strip() for r in rows(bench / "math_test.jsonl")}
subjects = sorted({r["subject"] for r in math})
assert len(subjects) == 7, subjects
picked = []
for level in range(1, 6):
    for s_idx, subject in enumerate(subjects):
        cell = [i for i, r in enumerate(math) if r["subject"] == subject and r["level"] == f"Level {level}"]
        q = 2 if s_idx == level - 1 else 3
        for j in range(q):
            pos = int((j + 0.5) * len(cell) / q)
            while math[cell[pos]]["problem"].strip() in test_problems:
                pos += 1
            picked.append(cell[pos])
assert len(picked) == 100 == len(set(picked))
for i in sorted(picked):
    r = math[i]
    out.append({"id": f"math-train-{i:05d}", "question": r["problem"], "solution": None,
                "answer": r["answer"], "source": "math"})

for o in out:
    sys.stdout.write(json.dumps(o, ensure_ascii=False) + "\n")
