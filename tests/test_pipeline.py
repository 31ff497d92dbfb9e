"""`graphgen run` end to end (issue 18): the whole chain against the fake OpenAI server over
HTTP with planted truth, through the real CLI, SQLite workspace and sandbox.

The fake (tests/fake_openai.py `PLANT`) answers every fifth generation with a wrong answer
(its solve paths still say A + 2B for "what is A + B times 2"), and every fourth with a copy
of a benchmark item (exact, or wrapped in a sentence). Variants are made from the generated
rows' programs and solved. The exported dataset must hold no row or path of a wrongly answered
question, no planted copy, and every distinct right row; the report's figures must equal
counts computed from the files; a kill -9 anywhere and a rerun give the same dataset."""

from __future__ import annotations

import json
import random
import re
import signal
import time
from pathlib import Path

import pytest
from clirun import cli_env, graphgen, popen

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
GEN_Q = re.compile(r"what is (\d+) \+ (\d+) times 2", re.IGNORECASE)
BENCH = [f"At the county fair in spring the judges asked farmer number {k} a question about his sheep and "
         f"his goats, so tell me what is {10 + k} + {20 + k} times 2?" for k in range(6)]
COPIES = BENCH[:3] + [f"Here is a warm up question for you. {BENCH[k]} Show your work." for k in range(3, 6)]


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def truth(question: str) -> int:
    a, b = (int(x) for x in GEN_Q.search(question).groups())
    return a + 2 * b


def planted(question: str) -> bool:
    """A copy of a benchmark item, also with its numbers changed (a variant of a copy)."""
    mask = lambda t: re.sub(r"\d+", "#", " ".join(t.split()))  # noqa: E731
    return any(mask(item) in mask(question) for item in BENCH)


def run_pipeline(ws: Path, env: dict, check: bool = True):
    bench = ws / "bench.jsonl"
    if not bench.exists():
        bench.write_text("".join(json.dumps({"id": f"b{k}", "question": q}) + "\n" for k, q in enumerate(BENCH)))
    return graphgen("run", EXAMPLES / "seeds.jsonl", "--from-annotations", EXAMPLES / "annotations.jsonl",
                     "-n", "40", "-o", "out", "--benchmarks", bench, "--quiet", cwd=ws, env=env, check=check)


@pytest.fixture
def planted_llm(fake_llm):
    fake_llm.configure(plant={"wrong_every": 5, "copies": COPIES, "copy_every": 4})
    return fake_llm


def test_run_exports_only_right_distinct_uncontaminated_rows(planted_llm, tmp_path):
    env = cli_env(planted_llm.url)
    res = run_pipeline(tmp_path, env)
    out = tmp_path / "out"
    stages = re.findall(r"^== (.+)$", res.stdout, re.MULTILINE)
    # check before solve (solve skips the rows that failed it), variants checked before they are solved
    assert stages == ["extract", "sample concepts", "generate questions", "check", "solve", "variants",
                      "check variants", "solve variants", "filter", "export", "export paths", "report"]
    generated = rows(out / "generated.jsonl") + rows(out / "variants.jsonl")
    wrong = {r["id"] for r in generated if int(r["answer"]) != truth(r["question"])}
    copies = {r["id"] for r in generated if planted(r["question"])}
    # the planted truth is there, so every assertion below could fail
    assert len(wrong) >= 3 and len(copies) >= 3 and rows(out / "variants.jsonl")
    train = rows(out / "train.jsonl")
    exported = {t["metadata"]["id"]: t for t in train}
    assert exported and not (set(exported) & wrong) and not (set(exported) & copies)
    for t in train:  # the answer a model trains on is right
        question = t["messages"][0]["content"]
        assert int(t["metadata"]["answer"]) == truth(question) and not planted(question)
        assert t["metadata"]["verification"] == "verified" and t["metadata"]["filter"] == "kept"
        assert t["metadata"]["check"] == "passed"  # the fake judge finds every generated question well-posed
    # every distinct right row is in: a right row left out is a duplicate of a row of the dataset
    removed = {r["id"]: r["reason"] for r in rows(out / "kept.removed.jsonl")}
    for r in generated:
        if r["id"] in wrong or r["id"] in copies or r["id"] in exported:
            continue
        reason = removed.get(r["id"])
        assert reason and reason["kind"] in ("duplicate", "near_duplicate"), (r["id"], reason)
    # paths: only of verified questions, each with the right answer
    paths = rows(out / "train_paths.jsonl")
    assert paths and all(int(float(p["metadata"]["answer"])) == truth(p["messages"][0]["content"]) for p in paths)
    assert not {p["metadata"]["sample_id"] for p in paths} & (wrong | copies)
    # a path carries its question's lineage: its concepts (and a variant's original), as the question's row does
    by_question = {r["id"]: r for r in generated}
    for p in paths:
        q = by_question[p["metadata"]["sample_id"]]
        assert p["metadata"]["concept_ids"] == q["concept_ids"] and q["concept_ids"]
        assert (p["metadata"]["variant"] is None) == (q.get("variant") is None)

    # the report's figures are the files' counts
    reports = {p.stem.split("-", 1)[1]: json.loads(p.read_text()) for p in sorted((out / "reports").iterdir())}
    page = reports["report"]
    verdicts = rows(out / "solved" / "verdicts.jsonl") + rows(out / "solved-variants" / "verdicts.jsonl")
    status = {}
    for v in verdicts:
        key = f"verified by {v['verified_by']}" if v["status"] == "verified" else v["status"]
        status[key] = status.get(key, 0) + 1
    assert page["verification_status"] == {"generated": status}
    assert status.get("unverified", 0) >= len(wrong)  # every wrong row was caught by the vote
    by_kind = {}
    for reason in removed.values():
        by_kind[reason["kind"]] = by_kind.get(reason["kind"], 0) + 1
    assert page["removed_by_reason"] == by_kind and by_kind.get("contaminated", 0) >= 1
    summary = reports["export"]["summary"]
    assert summary["written"] == len(train) and summary["written"] + sum(summary["left_out"].values()) == len(generated)
    assert summary["left_out"]["unverified"] == status.get("unverified", 0)
    solve_cost = next(c for c in page["cost_by_stage"] if c["stage"] == "solve")
    solve_llm = [r["llm"] for r in (json.loads(p.read_text()) for p in (out / "reports").iterdir())
                 if r["stage"] == "solve"]
    # both solve runs (questions and variants) counted; calls are the paid ones, cache hits apart
    assert solve_cost["calls"] == sum(t["ok"] + t["failed"] - t["cached"] for t in solve_llm)
    assert solve_cost["cached"] == sum(t["cached"] for t in solve_llm)
    # check's judge is paid for too (questions and variants): on the page, as many calls as the server answered
    check_cost = next(c for c in page["cost_by_stage"] if c["stage"] == "check")
    judged = planted_llm.stats()["judge_calls"]["question_check"]
    assert check_cost["calls"] == check_cost["judge_calls"] == judged > 0 and check_cost["prompt_tokens"] > 0

    # a second run pays nothing and writes the same dataset
    before = planted_llm.stats()["total"]
    run_pipeline(tmp_path, env)
    assert planted_llm.stats()["total"] == before
    assert rows(out / "train.jsonl") == train


def test_kill_9_anywhere_and_rerun_gives_the_same_dataset(planted_llm, tmp_path):
    env = cli_env(planted_llm.url)
    reference = tmp_path / "ref"
    reference.mkdir()
    run_pipeline(reference, env)
    by_id = lambda rs: sorted(rs, key=lambda r: r["metadata"]["id"])  # noqa: E731  (file order = finish order)
    want = by_id(rows(reference / "out" / "train.jsonl"))
    want_paths = by_id(rows(reference / "out" / "train_paths.jsonl"))
    planted_llm.configure(latency_ms=5)  # slow enough to be killed mid-stage
    rng = random.Random(18)
    ws = tmp_path / "killed"
    ws.mkdir()
    (ws / "bench.jsonl").write_text((reference / "bench.jsonl").read_text())
    for _ in range(3):
        bench = ws / "bench.jsonl"
        proc = popen("run", EXAMPLES / "seeds.jsonl", "--from-annotations", EXAMPLES / "annotations.jsonl",
                     "-n", "40", "-o", "out", "--benchmarks", bench, "--quiet", cwd=ws, env=env)
        time.sleep(rng.uniform(0.5, 4.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.communicate()
    run_pipeline(ws, env)
    assert by_id(rows(ws / "out" / "train.jsonl")) == want
    assert by_id(rows(ws / "out" / "train_paths.jsonl")) == want_paths


def test_run_says_extraction_failed_when_no_seed_gave_a_concept(fake_llm, tmp_path):
    # every reply names the problem's numbers: each seed is asked three times and fails
    fake_llm.script([{"content": json.dumps({"topics": ["Adding 3 and 4"], "knowledge_points": ["3 + 4 = 7"]}),
                      "times": 50}])
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"s{k}", "question": f"What is {k} + 4?"}) + "\n" for k in range(2)))
    res = graphgen("run", seeds, "-n", "4", "-o", "out", "--quiet", cwd=tmp_path, env=cli_env(fake_llm.url),
                   check=False)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "extraction gave the graph no topic to sample from" in res.stderr
    assert "extract-failures.jsonl" in res.stderr and "run `graphgen extract` first" not in res.stderr
    failures = rows(tmp_path / "out" / "extract-failures.jsonl")
    assert {f["seed_id"] for f in failures} == {"s0", "s1"}
    assert all("name the problem's numbers" in f["error"] for f in failures)


def test_run_says_generation_wrote_nothing_instead_of_an_empty_file_error(fake_llm, tmp_path):
    fake_llm.script([{"invalid_schema": True, "times": 100}])  # every generation reply misses the schema
    res = graphgen("run", EXAMPLES / "seeds.jsonl", "--from-annotations", EXAMPLES / "annotations.jsonl", "-n", "3",
                   "-o", "out", "--no-fusion", "--quiet", cwd=tmp_path, env=cli_env(fake_llm.url), check=False)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "generation wrote no rows" in res.stderr and "generated.failed.jsonl" in res.stderr
    assert "empty file" not in res.stderr
    failed = rows(tmp_path / "out" / "generated.failed.jsonl")
    assert failed and all(r["status"] == "failed" for r in failed)
