"""The model judge behind each gate (issue 20): precision / recall with the judge off and on,
and judge calls per 1,000 rows per gate and policy.

    python bench/bench_judge.py                 # all three gates, prints a Markdown table
    python bench/bench_judge.py --json out.json

Everything runs through graphgen's real stages and CLI against the fake OpenAI server over real
HTTP (tests/fake_openai.py), whose judge answers from a truth table holding exactly the planted
"same" pairs, so precision and recall measure graphgen's plumbing around a perfect judge (guards,
candidate search, fallback selection, both orders), and the call counts are what a real judge
would be asked. A real model's own errors are measured separately (bench/real_model.py).

- canonicalize: tests/fixtures/judge/concepts.json (40 opposite/look-alike pairs, 22
  paraphrase pairs, 124 names), and the 300 example seeds' hand-written concepts
  (examples/annotations.jsonl; judge says no to all) for the call rate on ordinary names;
  rows = concept names.
- answers: tests/fixtures/judge/answers.json (71 equivalent answers math-verify misses, 53
  look-alike wrong ones) plus 876 plain right answers: 1,000 questions, one cot path each;
  rows = questions.
- decontamination: 60 reworded GSM8K test questions plus 940 distinct GSM8K training
  questions (1,000 rows) against all 1,319 GSM8K test questions; rows = rows filtered.
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
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from clirun import SHARED, cli_env, graphgen, jsonl_rows  # noqa: E402
from fake_openai import FakeServerProcess  # noqa: E402

FIX = REPO / "tests" / "fixtures" / "judge"


def per_k(calls: int, rows: int) -> float:
    return round(1000.0 * calls / rows, 1) if rows else 0.0


def bench_canonicalize(srv: FakeServerProcess, tmp: Path) -> list[dict]:
    from graphgen.config import LLMSettings, Settings
    from graphgen.graph import rebuild
    from graphgen.normalize import concept_id
    from graphgen.records import Extraction, SeedQuestion
    from graphgen.stages import canonicalize as stage
    from graphgen.store.sqlite import SQLiteStore

    planted = json.loads((FIX / "concepts.json").read_text(encoding="utf-8"))
    apart, same = planted["apart"], planted["same"]
    names = [n for pair in apart + same for n in pair]
    db = tmp / "canon.db"
    with SQLiteStore(db) as store:
        store.add_seeds([SeedQuestion(id=f"s{i:03d}", question=f"question {i}") for i in range(len(names))])
        store.add_extractions([Extraction(seed_id=f"s{i:03d}", topics=["Arithmetic"], knowledge_points=[n],
                                          model="fake-model") for i, n in enumerate(names)])
        rebuild(store)
    example = tmp / "example"
    example.mkdir()
    graphgen("extract", REPO / "examples" / "seeds.jsonl", "--from-annotations", REPO / "examples" / "annotations.jsonl",
             cwd=example)
    out = []
    for dataset, path, truth in (("planted", db, same), ("examples", example / "graphgen.db", [])):
        for mode in ("off", "fallback", "always"):
            srv.reset()
            srv.configure(judge={"same_concept": truth})
            s = Settings(llm=LLMSettings(base_url=srv.url, api_key="sk-x", model="fake-model",
                                         cache_path=tmp / f"cache-canon-{dataset}-{mode}.db"))
            s.canonicalize.embeddings_cache = tmp / "emb.db"
            s.judge.concepts = mode
            review = tmp / f"{dataset}-{mode}.tsv"
            t0 = time.monotonic()
            with SQLiteStore(path) as store:
                report = stage.run(s, store, stage.CanonicalizeInputs(review=review))
            rows = [ln.split("\t") for ln in review.read_text(encoding="utf-8").splitlines()
                    if ln and not ln.startswith("#")][1:]
            canon = {concept_id(r[0].split(":", 1)[0], r[0].split(":", 1)[1]):
                     concept_id(r[1].split(":", 1)[0], r[1].split(":", 1)[1]) for r in rows}

            def merged(a: str, b: str) -> bool:
                ia, ib = concept_id("kp", a), concept_id("kp", b)
                return canon.get(ia, ia) == canon.get(ib, ib)

            row = {"gate": "canonicalize", "set": dataset, "mode": mode, "rows": report.concepts_before,
                   "calls": srv.stats().get("judge_calls", {}).get("same_concept", 0),
                   "merges": report.merges, "guarded": report.guarded, "seconds": round(time.monotonic() - t0, 1)}
            if dataset == "planted":
                right = sum(merged(a, b) for a, b in same)
                wrong = sum(merged(a, b) for a, b in apart)
                row.update(recall=round(right / len(same), 3), opposites_merged=wrong,
                           precision=round(right / (right + wrong), 3) if right + wrong else None)
            row["calls_per_1000_rows"] = per_k(row["calls"], row["rows"])
            out.append(row)
    return out


def bench_answers(srv: FakeServerProcess, tmp: Path) -> list[dict]:
    from graphgen.answers import final_answer

    planted = json.loads((FIX / "answers.json").read_text(encoding="utf-8"))
    equiv, wrong = planted["equivalent"], planted["wrong"]
    rows = [{"id": f"eq-{i:03d}", "answer": g, "question": f"Planted eq {i}. {{{{fake: say={a} }}}}"}
            for i, (g, a) in enumerate(equiv)]
    rows += [{"id": f"wrong-{i:03d}", "answer": g, "question": f"Planted wrong {i}. {{{{fake: say={a} }}}}"}
             for i, (g, a) in enumerate(wrong)]
    rows += [{"id": f"ok-{i:04d}", "answer": str(i), "question": f"Plain problem {i}. {{{{fake: say={i} }}}}"}
             for i in range(1000 - len(rows))]
    seeds = tmp / "answers.jsonl"
    seeds.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")

    def said(a: str) -> str:
        return final_answer(f"Approach 1: we read the problem carefully. So the answer is \\boxed{{{a}}}.")

    truth = [[g, said(a)] for g, a in equiv] + [[str(i), str(i)] for i in range(1000)]
    out = []
    for mode in ("off", "fallback", "always"):
        srv.reset()
        srv.configure(judge={"answer_match": truth})
        t0 = time.monotonic()
        graphgen("solve", seeds, "-o", tmp / f"solve-{mode}", "--style", "cot", "--paths", "1", "--judge", mode,
                 "--cache", tmp / f"cache-solve-{mode}.db", "--db", tmp / f"solve-{mode}.db", "--quiet",
                 cwd=tmp, env=cli_env(srv.url))
        verdicts = {v["question_id"]: v for v in jsonl_rows(tmp / f"solve-{mode}" / "verdicts.jsonl")}

        def ok(v: dict) -> bool:
            if mode == "off":
                return v["status"] == "verified"
            return v["judge"] is not None and v["judge"]["status"] == "verified"

        acc = sum(ok(verdicts[f"eq-{i:03d}"]) for i in range(len(equiv)))
        rej = sum(not ok(verdicts[f"wrong-{i:03d}"]) for i in range(len(wrong)))
        plain = sum(ok(v) for k, v in verdicts.items() if k.startswith("ok-"))
        calls = srv.stats().get("judge_calls", {}).get("answer_match", 0)
        out.append({"gate": "answers", "set": "planted+plain", "mode": mode, "rows": len(rows), "calls": calls,
                    "calls_per_1000_rows": per_k(calls, len(rows)),
                    "recall": round((acc + plain) / (len(equiv) + 1000 - len(equiv) - len(wrong)), 3),
                    "equivalents_accepted": f"{acc}/{len(equiv)}", "wrong_rejected": f"{rej}/{len(wrong)}",
                    "precision": round((acc + plain) / (acc + plain + len(wrong) - rej), 3),
                    "seconds": round(time.monotonic() - t0, 1)})
    return out


def bench_decontamination(srv: FakeServerProcess, tmp: Path) -> list[dict]:
    from test_judge_contamination import paraphrase  # the planted rewording, one definition

    items = [json.loads(ln) for ln in (SHARED / "data" / "benchmarks" / "gsm8k_test.jsonl").read_text(
        encoding="utf-8").splitlines()]
    bench = tmp / "gsm8k_test.jsonl"
    bench.write_text("".join(json.dumps({"id": f"item-{n}", "question": it["question"]}) + "\n"
                             for n, it in enumerate(items)), encoding="utf-8")
    n_para = 60
    train = [json.loads(ln)["question"] for ln in (SHARED / "data" / "seeds" / "gsm8k_train.jsonl").read_text(
        encoding="utf-8").splitlines()[: 1000 - n_para]]
    rows = [{"id": f"para-{i:03d}", "question": paraphrase(items[i * 20]["question"])} for i in range(n_para)]
    rows += [{"id": f"train-{i:04d}", "question": q} for i, q in enumerate(train)]
    data = tmp / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    truth = [[paraphrase(items[i * 20]["question"]), items[i * 20]["question"]] for i in range(n_para)]
    out = []
    for mode in ("off", "always"):
        srv.reset()
        srv.configure(judge={"same_problem": truth})
        t0 = time.monotonic()
        d = tmp / f"filter-{mode}"
        d.mkdir()
        graphgen("filter", data, "-o", d / "kept.jsonl", "--benchmarks", bench, "--embeddings-cache", tmp / "emb.db",
                 "--judge", mode, "--cache", tmp / f"cache-filter-{mode}.db", "--quiet", cwd=d, env=cli_env(srv.url))
        removed = {r["id"]: r["reason"]["kind"] for r in jsonl_rows(d / "kept.removed.jsonl")}
        caught = sum(f"para-{i:03d}" in removed for i in range(n_para))
        distinct = sum(k.startswith("train-") for k in removed)
        calls = srv.stats().get("judge_calls", {}).get("same_problem", 0)
        out.append({"gate": "decontamination", "set": "60 reworded + 940 distinct", "mode": mode, "rows": len(rows),
                    "calls": calls, "calls_per_1000_rows": per_k(calls, len(rows)),
                    "recall": round(caught / n_para, 3), "distinct_removed": distinct,
                    "by_ngram_rule": sum(v == "contaminated" for k, v in removed.items() if k.startswith("para-")),
                    "seconds": round(time.monotonic() - t0, 1)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    print("python " + " ".join(sys.argv))
    print("uptime at start: " + os.popen("uptime").read().strip())
    results = []
    with FakeServerProcess(latency_ms=0) as srv, tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for fn in (bench_canonicalize, bench_answers, bench_decontamination):
            sub = tmp / fn.__name__
            sub.mkdir()
            results += fn(srv, sub)
    keys = ["gate", "set", "mode", "rows", "calls", "calls_per_1000_rows", "recall", "precision",
            "opposites_merged", "equivalents_accepted", "wrong_rejected", "distinct_removed", "by_ngram_rule",
            "seconds"]
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for r in results:
        print("| " + " | ".join("" if r.get(k) is None else str(r.get(k)) for k in keys) + " |")
    print("uptime at end: " + os.popen("uptime").read().strip())
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
