"""`graphgen check` (issue 20 item 5): precision / recall of "failed" on the planted set with
the judge off (rules alone) and on, judge calls per 1,000 rows, what a rerun pays, and how
often the rule pre-checks flag real (well-posed) questions.

    python bench/bench_check.py                 # prints a Markdown table
    python bench/bench_check.py --json out.json

Through the real CLI against the fake OpenAI server over real HTTP (tests/fake_openai.py),
whose judge answers each question from the planted fields of tests/fixtures/judge/questions.json
(200 real GSM8K/MATH questions, 50 ill-posed, 30 with several answers, 30 proofs, 30 cut off,
5 empty): the figures measure graphgen's plumbing around a perfect judge (which rows reach
it, how its reply becomes a status) and count the calls a real judge would be asked. The last
rows run the rules alone over every GSM8K and MATH training question (../shared/data/seeds).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from clirun import SHARED, cli_env, graphgen, jsonl_rows  # noqa: E402
from fake_openai import FakeServerProcess  # noqa: E402

from graphgen.records import GeneratedQuestion  # noqa: E402

ROWS = json.loads((REPO / "tests" / "fixtures" / "judge" / "questions.json").read_text(encoding="utf-8"))["rows"]


def per_k(calls: int, rows: int) -> float:
    return round(1000.0 * calls / rows, 1) if rows else 0.0


def write_rows(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(GeneratedQuestion(id=r["id"], kind="concepts", question=r["question"], solution="s",
                                              answer=r["answer"], model="m", prompt_version="generate_v1").model_dump_json()
                            + "\n" for r in rows), encoding="utf-8")
    return path


def scores(checks: dict[str, dict], truth: dict[str, str]) -> dict:
    flagged = {i for i, c in checks.items() if c["status"] == "failed"}
    bad = {i for i, t in truth.items() if t != "well_posed"}
    tp = len(flagged & bad)
    per_class = {t: f"{sum(1 for i in flagged if truth[i] == t)}/{sum(1 for x in truth.values() if x == t)}"
                 for t in sorted(set(truth.values())) if t != "well_posed"}
    return {"recall": round(tp / len(bad), 3) if bad else None,
            "precision": round(tp / len(flagged), 3) if flagged else None,
            "well_posed_flagged": len(flagged - bad), "per_class": per_class}


def run_check(tmp: Path, srv: FakeServerProcess, rows_file: Path, mode: str, out: str) -> tuple[dict, dict]:
    graphgen("check", rows_file, "-o", tmp / out, "--judge", mode, "--report", tmp / f"{out}.json", "--quiet",
             "--db", tmp / f"{out}.db", "--cache", tmp / f"{out}-cache.db", cwd=tmp, env=cli_env(srv.url))
    checks = {c["row_id"]: c for c in jsonl_rows(tmp / out / "checks.jsonl")}
    return json.loads((tmp / f"{out}.json").read_text()), checks


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    results = []
    srv = FakeServerProcess(latency_ms=0).start()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-check-") as d:
            tmp = Path(d)
            planted = write_rows(tmp / "planted.jsonl", ROWS)
            truth = {r["id"]: r["truth"] for r in ROWS}
            for mode in ("off", "always"):
                srv.reset()
                srv.configure(judge={"question_check": {r["question"].strip(): r["plant"] for r in ROWS if r["plant"]}})
                rep, checks = run_check(tmp, srv, planted, mode, f"planted-{mode}")
                calls = srv.stats().get("judge_calls", {}).get("question_check", 0)
                before = srv.stats()["total"]
                again, _ = run_check(tmp, srv, planted, mode, f"planted-{mode}")
                results.append({"set": "planted (345)", "mode": mode, "rows": len(ROWS), "judge_calls": calls,
                                "per_1000": per_k(calls, len(ROWS)), "rerun_calls": srv.stats()["total"] - before,
                                **scores(checks, truth)})
            # the rules alone on every real training question (all well-posed as far as anyone knows)
            real = []
            for name, field, answer in (("gsm8k_train", "question", "answer"), ("math_train", "problem", "answer")):
                for i, line in enumerate((SHARED / "data" / "seeds" / f"{name}.jsonl").open(encoding="utf-8")):
                    r = json.loads(line)
                    real.append({"id": f"{name}-{i}", "question": r[field],
                                 "answer": str(r[answer]).split("####")[-1].strip(), "truth": "well_posed"})
            rows_file = write_rows(tmp / "real.jsonl", real)
            rep, checks = run_check(tmp, srv, rows_file, "off", "real-off")
            flagged = [c for c in checks.values() if c["status"] == "failed"]
            results.append({"set": f"GSM8K + MATH train ({len(real):,})", "mode": "off", "rows": len(real),
                            "judge_calls": 0, "per_1000": 0.0, "rule_flagged": len(flagged),
                            "rule_flagged_by_reason": rep["by_reason"],
                            "rule_answer_types": rep["answer_types"],
                            "flagged_examples": [(c["row_id"], c["rule"]) for c in flagged[:8]]})
    finally:
        srv.stop()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print("| set | judge | rows | judge calls | calls / 1,000 rows | rerun calls | recall | precision | well-posed flagged | per class |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "recall" in r:
            per = ", ".join(f"{k} {v}" for k, v in r["per_class"].items())
            print(f"| {r['set']} | {r['mode']} | {r['rows']:,} | {r['judge_calls']:,} | {r['per_1000']} | "
                  f"{r['rerun_calls']} | {r['recall']} | {r['precision']} | {r['well_posed_flagged']} | {per} |")
        else:
            print(f"| {r['set']} | {r['mode']} | {r['rows']:,} | 0 | 0 | – | – | – | {r['rule_flagged']} | "
                  f"{r['rule_flagged_by_reason']} |")
    for r in results:
        if "rule_answer_types" in r:
            print(f"\nrule answer types on {r['set']}: {r['rule_answer_types']}")
            for ex in r["flagged_examples"]:
                print(f"  flagged: {ex}")


if __name__ == "__main__":
    main()
