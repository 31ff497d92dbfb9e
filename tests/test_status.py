"""The trust chain (issue 18): one status per row, decided once (graphgen.status), stored in
the workspace, honoured by export. Through the real CLI, the fake OpenAI server over HTTP, the
real sandbox and a real SQLite workspace; every path is scripted in the question text
(tests/fake_openai.py `solve_path_for`), so which rows are right is known exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import cli_env, graphgen

from graphgen.records import FilterDecision, JudgeVerdict, SolveVerdict
from graphgen.status import Gates, is_verified, left_out_line, rule_verdict, verification
from graphgen.store.sqlite import SQLiteStore

MODEL = "fake-model"
BENCH_ITEM = ("A farmer has forty two sheep and buys seventeen more sheep at the county fair "
              "every spring so how many sheep does the farmer own at the end")


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


def gen(i: str, q: str, answer: str) -> dict:
    return {"id": i, "kind": "concepts", "question": q, "solution": "s", "answer": answer,
            "prompt_version": "generate_v1", "model": MODEL}


# --- the rule, and the one definition of verified ---------------------------------------------


def test_rule_verdict_cases():
    common = dict(own_answer=None, own_in_majority=False, majority="6", majority_votes=3, total_votes=8,
                  min_agreement=0.5)
    assert rule_verdict(gold="5", gold_problem=None, correct=2, **common)[:2] == ("verified", "gold")
    status, by, reason = rule_verdict(gold="5", gold_problem=None, correct=0, **common)
    assert (status, by) == ("unverified", None) and "no path reaches the gold 5 (majority 6)" in reason
    status, _, reason = rule_verdict(gold="B", gold_problem="gold is option letter B but no options", correct=0,
                                     **common)
    assert status == "unverifiable" and reason.startswith("gold is option letter")
    # no gold, no own answer: a unanimous vote is still nothing to check against
    status, _, reason = rule_verdict(gold=None, gold_problem=None, correct=0, **{**common, "majority_votes": 8})
    assert status == "unverifiable" and "no gold" in reason
    own = dict(common, own_answer="6", own_in_majority=True)
    assert rule_verdict(gold=None, gold_problem=None, correct=0, **own)[0] == "unverified"  # 3 of 8 < 0.5
    assert rule_verdict(gold=None, gold_problem=None, correct=0, **{**own, "majority_votes": 5})[:2] == \
        ("verified", "vote")
    assert rule_verdict(gold=None, gold_problem=None, correct=0,
                        **{**own, "majority_votes": 5, "own_in_majority": False})[0] == "unverified"


def test_is_verified_policies_and_old_records():
    v = SolveVerdict(question_id="q", question_kind="concepts", method="vote", paths=4, answered=4,
                     status="unverified", judge=JudgeVerdict(status="verified", model="j"))
    assert [is_verified(v, p) for p in ("rule", "judge", "both", "any")] == [False, True, False, True]
    # a record written before status existed: its flags, read in one place
    old = SolveVerdict(question_id="q", question_kind="seed", method="gold", paths=4, answered=4,
                       majority_correct=True)
    assert verification(old) == "verified" and is_verified(old)
    assert not is_verified(None)
    with pytest.raises(ValueError, match="unknown verification policy"):
        is_verified(v, "most")  # type: ignore[arg-type]


def test_gates_reasons():
    verdicts = {"a": SolveVerdict(question_id="a", question_kind="concepts", method="vote", paths=1, answered=1,
                                  status="verified", kept=["pa"]),
                "b": SolveVerdict(question_id="b", question_kind="concepts", method="vote", paths=1, answered=1,
                                  status="unverifiable")}
    decisions = {"a": FilterDecision(row_id="a", row_kind="concepts", decision="kept"),
                 "c": FilterDecision(row_id="c", row_kind="concepts", decision="near_duplicate")}
    gates = Gates(verdicts, decisions, verification=True, filtering=True)
    assert [gates.row_reason(i) for i in "abcd"] == [None, "unverifiable", "not_solved", "not_solved"]
    assert gates.row_reason("a", "failed") == "failed"
    # paths: filter saw no paths (filtering False), but a removed question takes its paths along
    paths = Gates(verdicts, decisions, verification=True, filtering=False)
    assert paths.path_reason("pa", "a") is None and paths.path_reason("px", "a") == "path_not_kept"
    assert paths.path_reason("pb", "b") == "unverifiable" and paths.path_reason("pz", "z") == "not_solved"
    assert gates.path_reason("pa", "a") == "not_filtered"  # filter saw paths, not this one
    only_filter = Gates(verdicts, decisions, verification=False, filtering=True)
    assert [only_filter.row_reason(i) for i in "abcd"] == [None, "not_filtered", "near_duplicate", "not_filtered"]
    assert left_out_line({"unverified": 1211, "near_duplicate": 84, "contaminated": 31}) == \
        "1,211 unverified, 84 near-duplicates, 31 contaminated left out"


# --- the chain through the CLI ----------------------------------------------------------------


@pytest.fixture
def chain(fake_llm, tmp_path):
    """Generated rows solved and filtered in one workspace: g1 right; g2's own answer wrong on
    every path (the majority says 7, the row 9); g3 an exact copy of g1; g4 right but a copy of a
    benchmark item; g5 right but never solved (written after solve ran)."""
    generated = [
        gen("g1", "G1 {{fake: answer=7; cot=R,R,W8,N; code=R,W9,R,R}}", "7"),
        gen("g2", "G2 {{fake: answer=7; cot=R,R,R,R; code=R,R,R,R}}", "9"),
        gen("g3", "g1 {{fake: answer=7; cot=R,R,W8,N; code=R,W9,R,R}}", "7"),
        gen("g4", BENCH_ITEM + " {{fake: answer=59; cot=R,R,R,R; code=R,R,R,R}}", "59"),
    ]
    src = write_jsonl(tmp_path / "generated.jsonl", generated)
    bench = write_jsonl(tmp_path / "bench.jsonl", [{"id": "12", "question": BENCH_ITEM + "?"}])
    env = cli_env(fake_llm.url)
    graphgen("solve", src, "-o", tmp_path / "solved", "--db", tmp_path / "ws.db", cwd=tmp_path, env=env)
    later = write_jsonl(tmp_path / "later.jsonl", generated + [gen("g5", "G5 never solved", "1")])
    filtered = graphgen("filter", later, "-o", tmp_path / "kept.jsonl", "--benchmarks", bench, "--db",
                        tmp_path / "ws.db", "--quiet", cwd=tmp_path, env=env)
    assert "recorded 5 row decisions in the workspace" in filtered.stdout
    return tmp_path, later


def test_export_is_clean_by_default_and_says_what_it_left_out(chain):
    tmp_path, later = chain
    with SQLiteStore(tmp_path / "ws.db") as store:
        decisions = {d.row_id: d.decision for d in store.filter_decisions()}
        verdicts = {v.question_id: v.status for v in store.verdicts()}
    assert decisions == {"g1": "kept", "g2": "kept", "g3": "duplicate", "g4": "contaminated", "g5": "kept"}
    assert verdicts == {"g1": "verified", "g2": "unverified", "g3": "verified", "g4": "verified"}

    res = graphgen("export", later, "--db", tmp_path / "ws.db", "-o", tmp_path / "train.jsonl", cwd=tmp_path)
    assert [r["metadata"]["id"] for r in rows(tmp_path / "train.jsonl")] == ["g1"]
    assert "wrote 1 rows" in res.stdout
    assert "1 contaminated, 1 exact duplicates, 1 never solved, 1 unverified left out" in res.stdout, res.stdout
    meta = rows(tmp_path / "train.jsonl")[0]["metadata"]
    assert (meta["verification"], meta["verified_by"], meta["filter"], meta["left_out"]) == \
        ("verified", "vote", "kept", None)

    # --include-all: every row, each with the status that would have left it out
    graphgen("export", later, "--db", tmp_path / "ws.db", "-o", tmp_path / "all.jsonl", "--include-all",
             "--layout", "alpaca", cwd=tmp_path)
    got = {r["metadata"]["id"]: r["metadata"] for r in rows(tmp_path / "all.jsonl")}
    assert {k: m["left_out"] for k, m in got.items()} == {
        "g1": None, "g2": "unverified", "g3": "duplicate", "g4": "contaminated", "g5": "not_solved"}
    assert got["g4"]["filter"] == "contaminated" and got["g2"]["verification"] == "unverified"
    # the report counts solve's cost from the workspace, without its report JSON
    page = json.loads(graphgen("report", "--json", "--db", tmp_path / "ws.db", cwd=tmp_path).stdout)
    solve_cost = next(c for c in page["cost_by_stage"] if c["stage"] == "solve")
    paid = [json.loads(line) for line in (tmp_path / "solved" / "samples.jsonl").read_text().splitlines()]
    assert solve_cost["calls"] == len(paid) == 32 and solve_cost["source"] == "the store"
    assert solve_cost["prompt_tokens"] == sum(p["usage"]["prompt_tokens"] for p in paid)


def test_path_export_keeps_only_paths_of_verified_questions_that_agree_with_the_row(chain):
    tmp_path, _ = chain
    out = tmp_path / "paths-train.jsonl"
    # --verified-only used to be ignored with --paths; now path export is always gated
    graphgen("export", "--paths", tmp_path / "solved" / "paths.jsonl", "--db", tmp_path / "ws.db", "-o", out,
             "--verified-only", cwd=tmp_path)
    train = rows(out)
    assert train and {r["metadata"]["sample_id"] for r in train} == {"g1"}  # g3 dup, g4 contaminated, g2 wrong
    assert all(r["metadata"]["answer"] == "7" for r in train)
    # without the workspace's filter decisions, g3 and g4 (verified) come back, g2 never does
    graphgen("export", "--paths", tmp_path / "solved" / "paths.jsonl", "-o", out, cwd=tmp_path)
    assert {r["metadata"]["sample_id"] for r in rows(out)} == {"g1", "g3", "g4"}


def test_nothing_left_is_one_line_and_writes_nothing(chain):
    tmp_path, _ = chain
    only_bad = write_jsonl(tmp_path / "bad.jsonl", [gen("g2", "G2 {{fake: answer=7; cot=R,R,R,R; code=R,R,R,R}}", "9")])
    out = tmp_path / "empty.jsonl"
    res = graphgen("export", only_bad, "--db", tmp_path / "ws.db", "-o", out, cwd=tmp_path, check=False)
    assert res.returncode == 1 and not out.exists()
    err = res.stderr.strip().splitlines()
    assert len(err) == 1 and "nothing to export: 1 unverified left out" in err[0] and "--include-all" in err[0]
    # the store's rows (none generated into this workspace) say so too
    res = graphgen("export", "--db", tmp_path / "ws.db", "-o", out, cwd=tmp_path, check=False)
    assert res.returncode == 1 and "nothing to export: no rows in the input" in res.stderr


def test_variants_read_the_stored_verdict(chain):
    """A path solve kept whose question is now unverified in the store is not a variant source."""
    tmp_path, _ = chain
    from graphgen.stages.variants import read_sources

    with SQLiteStore(tmp_path / "ws.db") as store:
        verdicts = {v.question_id: v for v in store.verdicts()}
    paths = tmp_path / "solved" / "paths.jsonl"
    assert {s.id for s in read_sources([paths], verdicts=verdicts)} == {"g1", "g3", "g4"}
    verdicts["g1"] = verdicts["g1"].model_copy(update={"status": "unverified", "verified": False})
    assert {s.id for s in read_sources([paths], verdicts=verdicts)} == {"g3", "g4"}


# --- multiple choice ----------------------------------------------------------------------------


def mc_seeds() -> tuple[list[dict], set[str], set[str], set[str]]:
    """AQuA-style (options list 'A)10', gold 'correct' letter) and SAT-style (options dict,
    'Answer' letter) seeds; paths answer with the option's value, its letter, or wrongly."""
    aqua, sat, right, wrong, unverifiable = [], [], set(), set(), set()
    for i in range(24):
        values = [10 + i + 3 * k for k in range(5)]
        gold = "ABCDE"[i % 5]
        value = values[i % 5]
        plan = f"cot=R,W{gold},R,R; code=R,R,R,R" if i % 2 else "cot=R,R,R,R; code=R,R,R,R"
        if i in (5, 17):  # answered wrong on every path: the next option's value
            plan = f"cot=W{values[(i + 1) % 5]}; code=W{values[(i + 1) % 5]}"
            wrong.add(f"aqua-{i}")
        else:
            right.add(f"aqua-{i}")
        aqua.append({"id": f"aqua-{i}", "question": f"Train {i} {{{{fake: answer={value}; {plan}}}}}",
                     "options": [f"{L}){v}" for L, v in zip("ABCDE", values)], "rationale": "r", "correct": gold})
    for i in range(24):
        values = [f"{k + i}/{k + 2}" for k in range(4)]
        gold = "ABCD"[i % 4]
        sat.append({"id": f"sat-{i}", "question": f"Solve {i} {{{{fake: answer={values[i % 4]}; cot=R,R; code=R,R}}}}",
                    "options": dict(zip("ABCD", values)), "Answer": gold})
        right.add(f"sat-{i}")
    # a letter gold whose options were not given: nothing to compare with
    for i in range(2):
        sat.append({"id": f"bare-{i}", "question": f"Bare {i} {{{{fake: answer=4; cot=R,R; code=R,R}}}}", "Answer": "C"})
        unverifiable.add(f"bare-{i}")
    return aqua + sat, right, wrong, unverifiable


def test_multiple_choice_letters_and_values_both_match(fake_llm, tmp_path):
    seeds, right, wrong, unverifiable = mc_seeds()
    src = write_jsonl(tmp_path / "mc.jsonl", seeds)
    res = graphgen("solve", src, "-o", tmp_path / "solved", "--db", tmp_path / "ws.db", "--paths", "2",
                   cwd=tmp_path, env=cli_env(fake_llm.url))
    v = {r["question_id"]: r for r in rows(tmp_path / "solved" / "verdicts.jsonl")}
    # the solver saw the options with their letters
    assert "Choices:\nA)10\nB)13" in v["aqua-0"]["question"] and "Choices:\nA) 0/2\nB) 1/3" in v["sat-0"]["question"]
    verified = {k for k, x in v.items() if x["status"] == "verified"}
    rate = len(verified & right) / len(right)
    assert rate >= 0.95, (rate, sorted(right - verified))
    assert all(v[k]["status"] == "unverified" for k in wrong)
    for k in unverifiable:
        assert v[k]["status"] == "unverifiable"
        assert v[k]["status_reason"] == "the gold answer is option letter C but the question shows no options"
    # a path that answered with the letter counts as correct, like those that gave the value
    assert v["aqua-1"]["correct"] == 4
    assert "2 unverifiable" in res.stdout and "unverifiable: 2 x the gold answer is option letter C" in res.stdout


@pytest.mark.neo4j
def test_status_survives_graph_push_and_export_reads_it_from_neo4j(chain, neo4j_clean):
    """After `graph push`, export on Neo4j leaves out exactly what it leaves out on SQLite
    (push used to drop verdicts: `--verified-only` on Neo4j found none)."""
    tmp_path, later = chain
    conn = neo4j_clean
    env = cli_env(None, NEO4J_URI=conn.uri, NEO4J_USERNAME=conn.user, NEO4J_PASSWORD=conn.password)
    if conn.database:
        env["NEO4J_DATABASE"] = conn.database
    out = graphgen("graph", "push", "--db", tmp_path / "ws.db", cwd=tmp_path, env=env)
    assert "4 verdicts, 5 filter_decisions" in out.stdout
    res = graphgen("export", later, "-o", tmp_path / "neo.jsonl", cwd=tmp_path, env=env)
    assert "1 contaminated, 1 exact duplicates, 1 never solved, 1 unverified left out" in res.stdout
    assert [r["metadata"]["id"] for r in rows(tmp_path / "neo.jsonl")] == ["g1"]
