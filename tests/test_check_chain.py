"""The trust chain around `graphgen check` (issue 20): check runs before solve, solve skips the
rows that failed it (graphgen.status.failed_check, decided once by check and stored), and
check's judge calls run on the same engines as every LLM stage (here the Batch API, against
the fake server's /v1/files and /v1/batches over real HTTP)."""

from __future__ import annotations

import json
from pathlib import Path

from clirun import cli_env, graphgen, jsonl_rows
from test_check import ROWS, generated_file, plant

# 12 well-posed rows, 6 the judge finds ill-posed or with several answers, 4 the rule finds cut off
PICK = ([r for r in ROWS if r["truth"] == "well_posed"][:12] + [r for r in ROWS if r["truth"] == "ill_posed"][:3]
        + [r for r in ROWS if r["truth"] == "multiple_answers"][:3] + [r for r in ROWS if r["truth"] == "truncated"][:4])
GOOD = {r["id"] for r in PICK if r["truth"] == "well_posed"}
BAD = {r["id"] for r in PICK} - GOOD


def solve(tmp_path: Path, fake_llm, *extra) -> dict:
    graphgen("solve", tmp_path / "generated.jsonl", "-o", tmp_path / "solved", "--style", "cot", "--paths", "1",
             "--db", tmp_path / "graphgen.db", "--report", tmp_path / "solve.json", "--cache", "off", *extra, cwd=tmp_path,
             env=cli_env(fake_llm.url))
    return json.loads((tmp_path / "solve.json").read_text())


def solve_calls(fake_llm) -> int:
    stats = fake_llm.stats()
    return stats["total"] - sum((stats.get("judge_calls") or {}).values())


def test_solve_skips_rows_that_failed_the_check_and_can_include_them(tmp_path, fake_llm):
    generated_file(tmp_path, PICK)
    plant(fake_llm)
    # before any check, every row is solved
    first = solve(tmp_path, fake_llm, "-o", tmp_path / "unchecked")
    assert first["questions"] == len(PICK) and first["skipped_failed_check"] == 0
    fake_llm.reset()
    plant(fake_llm)

    graphgen("check", tmp_path / "generated.jsonl", "-o", tmp_path / "checked", "--db", tmp_path / "graphgen.db",
             cwd=tmp_path, env=cli_env(fake_llm.url))
    checks = {c["row_id"]: c["status"] for c in jsonl_rows(tmp_path / "checked" / "checks.jsonl")}
    assert {i for i, s in checks.items() if s == "failed"} == BAD

    report = solve(tmp_path, fake_llm)
    verdicts = {v["question_id"] for v in jsonl_rows(tmp_path / "solved" / "verdicts.jsonl")}
    assert verdicts == GOOD and report["questions"] == len(GOOD)
    assert report["skipped_failed_check"] == len(BAD) and solve_calls(fake_llm) == len(GOOD)  # never paid for
    out = graphgen("solve", tmp_path / "generated.jsonl", "-o", tmp_path / "solved", "--style", "cot", "--paths", "1",
                   "--db", tmp_path / "graphgen.db", "--cache", "off", cwd=tmp_path, env=cli_env(fake_llm.url)).stdout
    assert f"skipped: failed check: {len(BAD)} questions" in out and solve_calls(fake_llm) == len(GOOD)

    # --include-failed-check solves them too, paying only for the rows not solved yet (resume intact)
    report = solve(tmp_path, fake_llm, "--include-failed-check")
    assert report["skipped_failed_check"] == 0 and report["questions"] == len(PICK)
    assert report["paths_already_done"] == len(GOOD) and solve_calls(fake_llm) == len(PICK)
    assert {v["question_id"] for v in jsonl_rows(tmp_path / "solved" / "verdicts.jsonl")} == GOOD | BAD
    # export still leaves them out, for the check's reason (the check gate comes first)
    graphgen("export", tmp_path / "generated.jsonl", "-o", tmp_path / "all.jsonl", "--include-all",
             "--db", tmp_path / "graphgen.db", cwd=tmp_path, env=cli_env(fake_llm.url))
    left_out = {r["metadata"]["id"]: r["metadata"]["left_out"] for r in jsonl_rows(tmp_path / "all.jsonl")}
    assert {i for i in BAD if left_out[i] in ("ill_posed", "multiple_answers", "truncated")} == BAD


def test_a_check_with_no_reply_is_no_failure_and_the_row_is_solved(tmp_path, fake_llm):
    generated_file(tmp_path, PICK[:3])
    fake_llm.script([{"status": 500, "times": 1000}])  # the judge never answers
    graphgen("check", tmp_path / "generated.jsonl", "-o", tmp_path / "checked", "--db", tmp_path / "graphgen.db",
             "--max-retries", "0", "--cache", "off", cwd=tmp_path, env=cli_env(fake_llm.url), check=False)
    assert {c["status"] for c in jsonl_rows(tmp_path / "checked" / "checks.jsonl")} == {"unknown"}
    fake_llm.reset()
    report = solve(tmp_path, fake_llm)
    assert report["skipped_failed_check"] == 0 and report["questions"] == 3


def test_check_through_the_batch_api_gives_the_online_statuses_at_half_the_price(tmp_path, fake_llm):
    generated_file(tmp_path, PICK)
    plant(fake_llm)
    env = cli_env(fake_llm.url)
    common = ("--model", "gpt-4o-mini", "--db", tmp_path / "graphgen.db")
    graphgen("check", tmp_path / "generated.jsonl", "-o", tmp_path / "online", "--cache", "off", "--report",
             tmp_path / "online.json", *common, cwd=tmp_path, env=env)
    fake_llm.reset()
    plant(fake_llm)
    (tmp_path / "graphgen.toml").write_text("[engine]\nbatch_poll_s = 0.1\n")
    out = graphgen("check", tmp_path / "generated.jsonl", "-o", tmp_path / "batched", "--batch", "--report",
                   tmp_path / "batched.json", *common, cwd=tmp_path, env=env)
    stats = fake_llm.stats()
    asked = len(PICK) - 4  # the cut-off rows are failed by rule, never sent
    assert stats["batches_created"] == 1 and stats["batch_requests"] == asked
    assert stats["judge_calls"]["question_check"] == asked and "batches: 1 submitted" in out.stderr

    def statuses(d: str) -> dict:
        return {c["row_id"]: (c["status"], c["reasons"], c["answer_type"], c["problem_type"])
                for c in jsonl_rows(tmp_path / d / "checks.jsonl")}

    assert statuses("batched") == statuses("online") and len(statuses("online")) == len(PICK)
    online, batched = (json.loads((tmp_path / f"{n}.json").read_text())["llm"] for n in ("online", "batched"))
    assert online["cost_usd"] > 0 and batched["cost_usd"] == online["cost_usd"] / 2
    # the journal has every judgement: a rerun submits nothing and asks nothing
    again = graphgen("check", tmp_path / "generated.jsonl", "-o", tmp_path / "batched", "--batch", *common,
                     cwd=tmp_path, env=env)
    assert fake_llm.stats()["batches_created"] == 1 and fake_llm.stats()["total"] == stats["total"]
    assert f"{asked} from the journal" in again.stdout


def test_variants_skip_originals_that_failed_the_check(tmp_path, fake_llm):
    from test_judge_variants import write_paths

    from graphgen.records import QuestionCheck
    from graphgen.store.sqlite import SQLiteStore

    write_paths(tmp_path / "paths.jsonl")
    with SQLiteStore(tmp_path / "g.db") as store:
        store.add_checks([QuestionCheck(row_id="cookies", row_kind="seed", key="k", status="failed",
                                        reasons=["ill_posed"]),
                          QuestionCheck(row_id="wage", row_kind="seed", key="k2", status="unknown")])

    def run(out: str, *extra) -> dict:
        graphgen("generate", "variants", "--paths", tmp_path / "paths.jsonl", "-o", tmp_path / out, "--mode", "similar",
                 "--workers", "2", "--quiet", "--db", tmp_path / "g.db", "--report", tmp_path / "r.json", *extra,
                 cwd=tmp_path, env=cli_env(fake_llm.url))
        return json.loads((tmp_path / "r.json").read_text())

    report = run("v.jsonl")
    assert report["skipped"]["failed-check"] == 1 and report["kept"] == {}  # cookies was the only one that agreed
    assert not (tmp_path / "v.jsonl").read_text()
    report = run("all.jsonl", "--include-failed-check")
    assert "failed-check" not in report["skipped"] and report["kept"] == {"similar": 1}
