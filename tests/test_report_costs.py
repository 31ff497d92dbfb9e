"""Every paid LLM call on the report page (issue 20's gap): `graphgen check`'s judge and solve's
answer judge counted per stage, once, through the real CLI against the fake OpenAI server over
HTTP, and read back from `graphgen report --json` and from the page in headless Chromium.
The expected numbers come from the fake server's own count of the requests it answered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from chromium import visit
from clirun import cli_env, graphgen
from test_check import ROWS, generated_file, plant

# 10 well-posed rows, 4 the judge fails, 3 the rule fails without a call
PICK = ([r for r in ROWS if r["truth"] == "well_posed"][:10] + [r for r in ROWS if r["truth"] == "ill_posed"][:2]
        + [r for r in ROWS if r["truth"] == "proof"][:2] + [r for r in ROWS if r["truth"] == "truncated"][:3])
ASKED = len(PICK) - 3
PRICED = ("--model", "gpt-4o-mini")  # a model with a price, so every call has a cost


def cost_rows(root: Path, *reports: str) -> dict[str, dict]:
    args = [a for r in reports for a in ("--stage-report", root / r)]
    data = json.loads(graphgen("report", "--json", *args, "--db", root / "graphgen.db", cwd=root).stdout)
    return {c["stage"]: c for c in data["cost_by_stage"]}


def test_checks_judge_and_solves_judge_are_on_the_report_once(tmp_path, fake_llm):
    generated_file(tmp_path, PICK)
    plant(fake_llm)
    env = cli_env(fake_llm.url)
    db = ("--db", tmp_path / "graphgen.db")
    graphgen("check", tmp_path / "generated.jsonl", "-o", tmp_path / "checked", "--cache", "off", "--report",
             tmp_path / "check.json", *PRICED, *db, cwd=tmp_path, env=env)
    judged = fake_llm.stats()["judge_calls"]["question_check"]
    assert judged == ASKED == fake_llm.stats()["total"]
    check_llm = json.loads((tmp_path / "check.json").read_text())["llm"]
    assert check_llm["prompt_tokens"] > 0 and check_llm["cost_usd"] > 0

    # solve with its answer judge always on: the judge's calls are in solve's tally, and counted once
    graphgen("solve", tmp_path / "generated.jsonl", "-o", tmp_path / "solved", "--style", "cot", "--paths", "1",
             "--judge", "always", "--cache", "off", "--report", tmp_path / "solve.json", *PRICED, *db,
             cwd=tmp_path, env=env)
    stats = fake_llm.stats()
    answer_judged = stats["judge_calls"]["answer_match"]
    solve_calls = stats["total"] - judged - answer_judged
    assert answer_judged > 0 and solve_calls > 0

    cost = cost_rows(tmp_path, "check.json", "solve.json")
    check = cost["check"]
    assert check["calls"] == judged and check["judge_calls"] == judged  # every check call is the judge's
    assert check["prompt_tokens"] == check_llm["prompt_tokens"] > 0
    assert check["completion_tokens"] == check_llm["completion_tokens"] > 0
    assert check["cost_usd"] == pytest.approx(check_llm["cost_usd"]) and check["cost_known"]
    solve = cost["solve"]
    assert solve["calls"] == solve_calls + answer_judged and solve["judge_calls"] == answer_judged
    assert 0 < solve["judge_cost_usd"] < solve["cost_usd"]

    # a rerun asks nothing: its report shows the judgements read from the journal, paid by the first
    graphgen("check", tmp_path / "generated.jsonl", "-o", tmp_path / "checked", "--cache", "off", "--report",
             tmp_path / "check-again.json", *PRICED, *db, cwd=tmp_path, env=env)
    assert fake_llm.stats()["total"] == stats["total"]
    again = cost_rows(tmp_path, "check.json", "check-again.json")["check"]
    assert again["calls"] == judged and again["journalled"] == ASKED

    # the page shows the same row, as a person reads it
    page = tmp_path / "report.html"
    graphgen("report", "-o", page, "--stage-report", tmp_path / "check.json", "--stage-report", tmp_path / "solve.json",
             *db, cwd=tmp_path)
    seen = visit(page, {"rows": "[...[...document.querySelectorAll('section')].find(s => s.querySelector('h2')"
                                ".textContent === 'Tokens and cost').querySelectorAll('tbody tr')]"
                                ".map(tr => [...tr.querySelectorAll('td')].map(td => td.textContent))"})
    rows = {r[0]: r for r in seen.values["rows"]}
    assert rows["check"][1] == str(judged) and rows["check"][4] == f"{check_llm['prompt_tokens']:,}"
    assert rows["check"][6] == f"${check_llm['cost_usd']:.4f}" and rows["check"][7] == str(judged)
    assert rows["total"][1] == f"{judged + solve_calls + answer_judged:,}"
    assert seen.console_errors == []


def test_a_model_without_a_price_says_cost_unknown(tmp_path, fake_llm):
    generated_file(tmp_path, PICK)
    plant(fake_llm)
    graphgen("check", tmp_path / "generated.jsonl", "-o", tmp_path / "checked", "--report", tmp_path / "check.json",
             "--model", "no-such-priced-model", "--db", tmp_path / "graphgen.db", cwd=tmp_path,
             env=cli_env(fake_llm.url))
    check = cost_rows(tmp_path, "check.json")["check"]
    assert check["calls"] == ASKED and check["cost_known"] is False
    out = graphgen("report", "-o", tmp_path / "r.html", "--stage-report", tmp_path / "check.json",
                   "--db", tmp_path / "graphgen.db", cwd=tmp_path).stdout
    assert f"check cost unknown ({ASKED} calls, judge {ASKED})" in out
