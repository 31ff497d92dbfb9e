"""Decontamination false positives and recall (issue 18).

    python bench/bench_decontamination.py [--data ../shared/data] [--work /tmp/decon]

False positives: the first 500 GSM8K and first 500 MATH training questions (none is a
benchmark copy) filtered against every benchmark file; each removal is printed with its
reason. Recall: 1,000 benchmark items drawn at random (seed 18) from all benchmark files,
each planted once as one of four copies in turn: exact; every number + 3; wrapped in a
sentence before and after; one word (> 3 letters, from the middle) replaced. Both sets go
through `graphgen filter --seeds` together (dedup off: decontamination only), once per
setting: the old rule (any shared 13-gram: --min-item-coverage 0) and the defaults.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graphgen.config import FilterSettings  # noqa: E402
from graphgen.readers import load_benchmarks  # noqa: E402

SETTINGS = {
    "any shared 13-gram (before)": ["--min-item-coverage", "0"],
    "boilerplate >= 10 items only": ["--min-item-coverage", "0", "--boilerplate-items", "10"],
    "defaults (item covered >= 0.5)": [],
}


def plant(bench_dir: Path, out: Path) -> None:
    items, _ = load_benchmarks(FilterSettings(benchmarks=[bench_dir]))
    rng = random.Random(18)
    rows = []
    for k, (bench, item_id, text) in enumerate(rng.sample(items, 1000)):
        kind = ("exact", "numbers", "wrapped", "word")[k % 4]
        q = text
        if kind == "numbers":
            q = re.sub(r"\d+", lambda m: str(int(m.group()) + 3), text)
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
        rows.append({"id": f"plant-{kind}-{k}", "question": q, "planted": f"{bench}:{item_id}", "kind_": kind})
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path("/tmp/graphgen-decon"))
    args = ap.parse_args()
    print("python bench/bench_decontamination.py", " ".join(sys.argv[1:]))
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    train = [line for name in ("gsm8k_train.jsonl", "math_train.jsonl")
             for line in (args.data / "seeds" / name).read_text(encoding="utf-8").splitlines()[:500]]
    plant(args.data / "benchmarks", work / "planted.jsonl")
    planted = [json.loads(line) for line in (work / "planted.jsonl").read_text().splitlines()]
    (work / "mixed.jsonl").write_text("\n".join(train) + "\n" + (work / "planted.jsonl").read_text())
    for label, flags in SETTINGS.items():
        out = work / f"kept-{len(flags)}.jsonl"
        subprocess.run([sys.executable, "-m", "graphgen_cli", "filter", str(work / "mixed.jsonl"), "--seeds",
                        "-o", str(out), "--benchmarks", str(args.data / "benchmarks"), "--no-exact", "--no-near",
                        "--quiet", *flags], check=True, capture_output=True, cwd=work)
        removed = {}
        for line in out.with_name(out.stem + ".removed.jsonl").read_text().splitlines():
            r = json.loads(line)
            removed[r["id"]] = r["reason"]
        by, hit = collections.Counter(), collections.Counter()
        for r in planted:
            by[r["kind_"]] += 1
            hit[r["kind_"]] += r["id"] in removed
        fps = {k: v for k, v in removed.items() if not k.startswith("plant-")}
        print(f"\n{label}: false positives {len(fps)} of 1000; recall {sum(hit.values())}/1000 "
              + ", ".join(f"{k} {hit[k]}/{by[k]}" for k in by))
        for k, reason in fps.items():
            cov = reason.get("coverage")
            print(f"  {k}: {reason['match']} {reason['benchmark']}:{reason['item_id']}"
                  + (f" covers {cov:.0%}" if cov is not None else "") + f" \"{reason.get('ngram', '')[:70]}\"")


if __name__ == "__main__":
    main()
