"""`graphgen check` (issue 20 item 5) on planted truth, through the real CLI and the fake server
over real HTTP: 200 real well-posed questions (GSM8K, MATH), 50 ill-posed ones (a GSM8K
question without the sentence that gives a number; contradictions), 30 with several answers,
30 proofs, 30 cut off mid-sentence and 5 empty (tests/fixtures/judge/questions.json). The
fake judge answers from the planted fields of each row; the rules catch the empty and cut-off
ones without a call. Flagged rows are stored as row status and left out by export."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from clirun import cli_env, graphgen, jsonl_rows, popen

from graphgen.records import GeneratedQuestion, QuestionCheck
from graphgen.store.sqlite import SQLiteStore

PLANTED = json.loads((Path(__file__).parent / "fixtures" / "judge" / "questions.json").read_text(encoding="utf-8"))
ROWS = PLANTED["rows"]
BAD = {r["id"] for r in ROWS if r["truth"] != "well_posed"}
JUDGED = [r for r in ROWS if r["truth"] not in ("truncated", "empty")]


def generated_file(tmp_path: Path, rows=ROWS) -> Path:
    path = tmp_path / "generated.jsonl"
    path.write_text("".join(GeneratedQuestion(id=r["id"], kind="concepts", question=r["question"],
                                              solution="Worked out step by step.", answer=r["answer"],
                                              model="fake-model", prompt_version="generate_v1").model_dump_json() + "\n"
                            for r in rows), encoding="utf-8")
    return path


def plant(fake_llm) -> None:
    fake_llm.configure(judge={"question_check": {r["question"].strip(): r["plant"] for r in ROWS if r["plant"]}})


def check(tmp_path: Path, fake_llm, *extra, out: str = "checked") -> tuple[dict, dict[str, dict]]:
    gen = tmp_path / "generated.jsonl"
    graphgen("check", gen, "-o", tmp_path / out, "--report", tmp_path / f"{out}.json", "--db", tmp_path / "graphgen.db",
             *extra, cwd=tmp_path, env=cli_env(fake_llm.url))
    checks = {c["row_id"]: c for c in jsonl_rows(tmp_path / out / "checks.jsonl")}
    return json.loads((tmp_path / f"{out}.json").read_text()), checks


def test_planted_set_is_big_enough():
    kinds = {t: sum(r["truth"] == t for r in ROWS) for t in {r["truth"] for r in ROWS}}
    assert kinds["well_posed"] >= 200 and kinds["ill_posed"] >= 30 and kinds["multiple_answers"] >= 20
    assert kinds["proof"] >= 20 and kinds["truncated"] >= 20


def test_flags_the_planted_questions_stores_them_and_export_leaves_them_out(tmp_path, fake_llm):
    generated_file(tmp_path)
    plant(fake_llm)
    report, checks = check(tmp_path, fake_llm)
    failed = {i for i, c in checks.items() if c["status"] == "failed"}
    assert failed == BAD  # precision 1, recall 1 on the planted set
    by_truth = {r["id"]: r["truth"] for r in ROWS}
    want = {"ill_posed": "ill_posed", "multiple_answers": "multiple_answers", "proof": "proof",
            "truncated": "truncated", "empty": "empty_question"}
    for i in failed:
        assert checks[i]["reasons"][0] == want[by_truth[i]], (i, checks[i])
    # the rules decided the cut-off and empty ones: the judge was asked about the rest only
    assert fake_llm.stats()["judge_calls"]["question_check"] == len(JUDGED) == report["asked"]
    assert all(checks[r["id"]]["rule"] and checks[r["id"]]["judge"] is None for r in ROWS
               if r["truth"] in ("truncated", "empty"))
    # answer type: the rule's where the answer is plain (GSM8K integers), the judge's beside it
    gsm = checks["well_posed-000"]
    assert gsm["answer_type"] == "integer" and gsm["rule_answer_type"] == "integer"
    assert gsm["problem_type"] == "regular" and gsm["judge"]["well_posed"] == "yes"
    assert report["by_reason"] == {"ill_posed": 50, "multiple_answers": 30, "proof": 30, "truncated": 30,
                                   "empty_question": 5}
    # stored as row status in the workspace
    with SQLiteStore(tmp_path / "graphgen.db") as store:
        stored = {c.row_id: c for c in store.checks()}
    assert stored == {i: QuestionCheck.model_validate(c) for i, c in checks.items()}

    # export: failed rows left out by default, counted per reason
    env = cli_env(fake_llm.url)
    out = graphgen("export", tmp_path / "generated.jsonl", "-o", tmp_path / "train.jsonl", "--db",
                   tmp_path / "graphgen.db", cwd=tmp_path, env=env).stdout
    kept = {r["metadata"]["id"] for r in jsonl_rows(tmp_path / "train.jsonl")}
    assert kept == {r["id"] for r in ROWS} - BAD
    assert "50 ill-posed questions" in out and "30 proofs" in out and "30 truncated questions" in out
    assert "30 questions with more than one answer" in out and "5 empty questions" in out
    row = jsonl_rows(tmp_path / "train.jsonl")[0]["metadata"]
    assert row["check"] == "passed" and row["problem_type"] == "regular"
    # --include-all: every row, each with its status
    graphgen("export", tmp_path / "generated.jsonl", "-o", tmp_path / "all.jsonl", "--include-all", "--db",
             tmp_path / "graphgen.db", cwd=tmp_path, env=env)
    meta = {r["metadata"]["id"]: r["metadata"] for r in jsonl_rows(tmp_path / "all.jsonl")}
    assert len(meta) == len(ROWS)
    assert meta["proof-000"]["left_out"] == "proof" and meta["proof-000"]["check"] == "failed"
    assert meta["proof-000"]["answer_type"] == "proof" and meta["well_posed-000"]["left_out"] is None
    # select by type
    graphgen("export", tmp_path / "generated.jsonl", "-o", tmp_path / "ints.jsonl", "--answer-type", "integer",
             "--db", tmp_path / "graphgen.db", cwd=tmp_path, env=env)
    ints = jsonl_rows(tmp_path / "ints.jsonl")
    assert ints and all(r["metadata"]["answer_type"] == "integer" for r in ints)
    assert len(ints) < len(kept)

    # a rerun pays nothing: every judgement is a journalled unit (and in the response cache)
    before = fake_llm.stats()["total"]
    again, checks2 = check(tmp_path, fake_llm)
    assert fake_llm.stats()["total"] == before and checks2 == checks
    assert again["judge_calls"] == 0 and again["already_judged"] == len(JUDGED)


def test_judge_off_is_the_rules_alone(tmp_path, fake_llm):
    generated_file(tmp_path)
    report, checks = check(tmp_path, fake_llm, "--judge", "off")
    failed = {i for i, c in checks.items() if c["status"] == "failed"}
    assert failed == {r["id"] for r in ROWS if r["truth"] in ("truncated", "empty")}
    assert not fake_llm.stats().get("judge_calls")


def test_a_problem_type_can_be_made_to_fail_without_a_new_call(tmp_path, fake_llm):
    rows = [r for r in ROWS if r["truth"] == "well_posed"][:6]
    generated_file(tmp_path, rows)
    fake_llm.configure(judge={"question_check": {rows[0]["question"].strip(): {"problem_type": "yes_no"}}})
    _, checks = check(tmp_path, fake_llm)
    assert checks[rows[0]["id"]]["status"] == "passed" and checks[rows[0]["id"]]["problem_type"] == "yes_no"
    calls = fake_llm.stats()["total"]
    _, checks = check(tmp_path, fake_llm, "--fail-type", "yes_no", "--fail-type", "proof")
    assert checks[rows[0]["id"]]["status"] == "failed" and checks[rows[0]["id"]]["reasons"] == ["yes_no"]
    assert fake_llm.stats()["total"] == calls


def test_multiple_choice_without_options_is_a_misread_the_rule_corrects(tmp_path, fake_llm):
    # a 0.5B judge called plain word problems multiple choice; options in the question decide
    plain = [r for r in ROWS if r["truth"] == "well_posed"][0]
    mc = dict(plain, id="mc-1", question=plain["question"].strip() + "\nChoices:\nA) 3\nB) 4\nC) 5", answer="B")
    generated_file(tmp_path, [plain, mc])
    said = {"problem_type": "multiple_choice", "answer_type": "multiple_choice"}
    fake_llm.configure(judge={"question_check": {plain["question"].strip(): said, mc["question"].strip(): said}})
    _, checks = check(tmp_path, fake_llm, "--fail-type", "multiple_choice")
    wrong, right = checks[plain["id"]], checks["mc-1"]
    assert wrong["problem_type"] == "regular" and wrong["answer_type"] != "multiple_choice"
    assert wrong["status"] == "passed" and wrong["judge"]["problem_type"] == "multiple_choice"  # its reply is kept
    assert right["problem_type"] == "multiple_choice" and right["answer_type"] == "multiple_choice"
    assert right["status"] == "failed" and right["reasons"] == ["multiple_choice"]


def test_no_reply_is_unknown_never_passed_and_asked_again(tmp_path, fake_llm):
    rows = [r for r in ROWS if r["truth"] == "well_posed"][:4]
    generated_file(tmp_path, rows)
    fake_llm.script([{"invalid_schema": True, "match": "question_check", "times": 12}])
    report, checks = check(tmp_path, fake_llm, "--max-reasks", "0", "--max-retries", "0")
    assert sum(c["status"] == "unknown" for c in checks.values()) >= 1
    proc = graphgen("export", tmp_path / "generated.jsonl", "-o", tmp_path / "t.jsonl", "--db", tmp_path / "graphgen.db",
                    cwd=tmp_path, env=cli_env(fake_llm.url), check=False)
    unknown = sum(c["status"] == "unknown" for c in checks.values())
    assert f"{unknown} checks without a judge's reply" in proc.stdout + proc.stderr
    fake_llm.script([])
    _, checks = check(tmp_path, fake_llm)
    assert all(c["status"] == "passed" for c in checks.values())


def test_dry_run_estimates_and_calls_nothing(tmp_path, fake_llm):
    generated_file(tmp_path)
    proc = graphgen("check", tmp_path / "generated.jsonl", "-o", tmp_path / "c", "--dry-run", cwd=tmp_path,
                    env=cli_env(fake_llm.url))
    est = json.loads(proc.stdout)
    assert est["rows"] == len(ROWS) and est["rule_failed"] == 35 and est["judge"]["calls"] == len(JUDGED)
    assert fake_llm.stats()["total"] == 0


def test_dry_run_with_batch_prices_the_judge_at_the_batch_api_price(tmp_path, fake_llm):
    generated_file(tmp_path)

    def estimate(*extra) -> dict:
        proc = graphgen("check", tmp_path / "generated.jsonl", "-o", tmp_path / "c", "--dry-run", "--model", "gpt-4o-mini",
                        *extra, cwd=tmp_path, env=cli_env(fake_llm.url))
        return json.loads(proc.stdout)["judge"]

    online, batched = estimate(), estimate("--batch")
    assert online["pricing"] == "online" and batched["pricing"] == "Batch API: 0.5 x online"
    assert batched["calls"] == online["calls"] == len(JUDGED)
    assert online["cost_usd_estimate"] > 0 and batched["cost_usd_estimate"] == pytest.approx(online["cost_usd_estimate"] / 2)
    assert fake_llm.stats()["total"] == 0


def test_kill_9_mid_run_then_rerun_gives_the_same_statuses(tmp_path, fake_llm):
    generated_file(tmp_path)
    plant(fake_llm)
    _, want = check(tmp_path, fake_llm, "--cache", "off", out="reference")
    fake_llm.reset()
    plant(fake_llm)
    fake_llm.set_latency(100)
    env = cli_env(fake_llm.url)
    args = ("check", tmp_path / "generated.jsonl", "-o", tmp_path / "killed", "--cache", "off", "--concurrency", "4",
            "--quiet", "--db", tmp_path / "killed.db")
    proc = popen(*args, cwd=tmp_path, env=env)
    journal = tmp_path / "killed" / "judgements.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if journal.exists() and journal.read_text().count("\n") >= 40:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = journal.read_text().count("\n")
    assert 40 <= done < len(JUDGED) and not (tmp_path / "killed" / "checks.jsonl").exists()
    fake_llm.set_latency(0)
    graphgen(*args, cwd=tmp_path, env=env)
    got = {c["row_id"]: c for c in jsonl_rows(tmp_path / "killed" / "checks.jsonl")}
    assert got == want
    stats = fake_llm.stats()
    paid_twice = sum(c - 1 for c in stats["ok_by_hash"].values() if c > 1)
    assert paid_twice <= 8  # at most the requests in flight at the kill (2 x concurrency)
    assert stats["ok"] - paid_twice == len(JUDGED)
    with SQLiteStore(tmp_path / "killed.db") as store:
        assert {c.row_id: c.status for c in store.checks()} == {i: c["status"] for i, c in want.items()}


def test_pass_rate_is_stored_per_model_and_a_reference_run_leaves_the_verdicts(tmp_path, fake_llm):
    from graphgen.records import SolveVerdict

    seeds = tmp_path / "s.jsonl"
    seeds.write_text("".join(json.dumps({"id": f"d{i}", "answer": str(i),
                                         "question": f"Difficulty {i} {{{{fake: answer={i}; cot=R,R,W999,R}}}}"}) + "\n"
                             for i in range(6)), encoding="utf-8")
    env = cli_env(fake_llm.url)
    db = tmp_path / "graphgen.db"
    graphgen("solve", seeds, "-o", tmp_path / "own", "--style", "cot", "--paths", "4", "--db", db, cwd=tmp_path, env=env)
    with SQLiteStore(db) as store:
        verdicts = [v.model_dump() for v in store.verdicts()]
    for ref in ("ref-a", "ref-b"):
        out = graphgen("solve", seeds, "-o", tmp_path / ref, "--style", "cot", "--paths", "4", "--reference",
                       "--model", ref, "--db", db, cwd=tmp_path, env=env).stdout
        assert f"pass rate of {ref}: 0.750" in out and "verdicts left as they were" in out
    with SQLiteStore(db) as store:
        rates = {(r.question_id, r.model): r for r in store.pass_rates()}
        assert [v.model_dump() for v in store.verdicts()] == verdicts  # the reference runs changed no verdict
    assert len(rates) == 6 * 3 and {m for _, m in rates} == {"fake-model", "ref-a", "ref-b"}
    assert all(r.pass_rate == 0.75 and r.against == "gold" and r.paths == 4 for r in rates.values())
    assert SolveVerdict.model_validate(verdicts[0]).pass_rate == 0.75
    # the report shows each model's pass rate, and the check counts
    generated_file(tmp_path, [r for r in ROWS if r["truth"] in ("well_posed", "proof")][:210])
    plant(fake_llm)
    check(tmp_path, fake_llm)
    page = tmp_path / "report.html"
    out = graphgen("report", "-o", page, "--db", db, cwd=tmp_path, env=env).stdout
    assert "pass rate of ref-a: mean 0.750 over 6 questions" in out
    assert "question checks: 10 failed, 200 passed; failed by proof 10" in out
    html = page.read_text()
    assert 'data-plot="checks"' in html and 'data-plot="difficulty"' in html


@pytest.mark.neo4j
def test_checks_and_pass_rates_survive_graph_push_and_export_reads_them_from_neo4j(tmp_path, fake_llm, neo4j_clean):
    from graphgen.records import PassRate

    picked = ([r for r in ROWS if r["truth"] == "well_posed"][:5] + [r for r in ROWS if r["truth"] == "proof"][:3]
              + [r for r in ROWS if r["truth"] == "truncated"][:2])
    generated_file(tmp_path, picked)
    plant(fake_llm)
    check(tmp_path, fake_llm)
    with SQLiteStore(tmp_path / "graphgen.db") as store:
        store.add_pass_rates(PassRate(question_id=r["id"], model=m, paths=4, correct=c, pass_rate=c / 4, against="gold")
                             for r in picked for m, c in (("a", 1), ("b", 3)))
        checks, rates = list(store.checks()), list(store.pass_rates())
    conn = neo4j_clean
    env = cli_env(fake_llm.url, NEO4J_URI=conn.uri, NEO4J_USERNAME=conn.user, NEO4J_PASSWORD=conn.password)
    if conn.database:
        env["NEO4J_DATABASE"] = conn.database
    out = graphgen("graph", "push", "--db", tmp_path / "graphgen.db", cwd=tmp_path, env=env).stdout
    assert "10 checks, 20 pass_rates" in out
    with conn.store() as neo:
        assert list(neo.checks()) == checks and list(neo.pass_rates()) == rates
    res = graphgen("export", tmp_path / "generated.jsonl", "-o", tmp_path / "neo.jsonl", cwd=tmp_path, env=env)
    assert "3 proofs, 2 truncated questions left out" in res.stdout
    assert {r["metadata"]["id"] for r in jsonl_rows(tmp_path / "neo.jsonl")} == {r["id"] for r in picked[:5]}
