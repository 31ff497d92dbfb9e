"""solve's answer judge (issue 20) on planted truth, through the real CLI and the fake server
over real HTTP: 71 equivalent answers math-verify rejects or cannot parse ("three" for 3,
"1 < x \\le 3" for (1, 3], "It is Tuesday") and 53 look-alike wrong ones ("x = -3" for 3,
"\\$100" for 1000, "[1, 3]" for (1, 3]). The judge answers from a truth table of the
equivalent pairs. Judge off: the rule alone; fallback: the judge only where the rule said no;
always: the judge on every path. Export picks rule / judge / both / any."""

from __future__ import annotations

import json
from pathlib import Path

from clirun import cli_env, graphgen, jsonl_rows

from graphgen.answers import final_answer

PLANTED = json.loads((Path(__file__).parent / "fixtures" / "judge" / "answers.json").read_text(encoding="utf-8"))
EQUIV, WRONG = PLANTED["equivalent"], PLANTED["wrong"]


def said(answer: str) -> str:
    """The final answer solve extracts from a fake path that states `answer` (what the judge sees)."""
    return final_answer(f"Approach 1: we read the problem carefully. So the answer is \\boxed{{{answer}}}.")


def seeds_file(tmp_path: Path) -> Path:
    rows = []
    for kind, pairs in (("eq", EQUIV), ("wrong", WRONG)):
        for i, (gold, answer) in enumerate(pairs):
            rows.append({"id": f"{kind}-{i:03d}", "answer": gold,
                         "question": f"Planted problem {kind} {i}: what is the value? {{{{fake: say={answer} }}}}"})
    path = tmp_path / "seeds.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def solve(tmp_path: Path, fake_llm, mode: str, out: str) -> tuple[dict, dict[str, dict]]:
    seeds = seeds_file(tmp_path)
    graphgen("solve", seeds, "-o", tmp_path / out, "--style", "cot", "--paths", "1", "--judge", mode,
             "--report", tmp_path / f"{out}.json", "--db", tmp_path / "graphgen.db", cwd=tmp_path,
             env=cli_env(fake_llm.url))
    verdicts = {v["question_id"]: v for v in jsonl_rows(tmp_path / out / "verdicts.jsonl")}
    return json.loads((tmp_path / f"{out}.json").read_text()), verdicts


def truth(fake_llm) -> None:
    fake_llm.configure(judge={"answer_match": [[gold, said(answer)] for gold, answer in EQUIV]})


def rates(verdicts: dict[str, dict], verified) -> tuple[float, float]:
    """(recall on equivalent pairs, share of wrong pairs rejected)."""
    eq = [verified(verdicts[f"eq-{i:03d}"]) for i in range(len(EQUIV))]
    wr = [not verified(verdicts[f"wrong-{i:03d}"]) for i in range(len(WRONG))]
    return sum(eq) / len(eq), sum(wr) / len(wr)


def by_rule(v: dict) -> bool:
    return v["status"] == "verified"


def by_judge(v: dict) -> bool:
    return v["judge"] is not None and v["judge"]["status"] == "verified"


def test_planted_sets_are_big_enough_and_every_path_states_its_answer():
    assert len(EQUIV) >= 50 and len(WRONG) >= 50
    assert all(said(a) for _, a in EQUIV + WRONG)


def test_rule_alone_misses_every_planted_equivalent(tmp_path, fake_llm):
    report, verdicts = solve(tmp_path, fake_llm, "off", "off")
    assert rates(verdicts, by_rule) == (0.0, 1.0)
    assert all(v["judge"] is None for v in verdicts.values())
    assert "judge_calls" not in fake_llm.stats() or not fake_llm.stats()["judge_calls"]


def test_fallback_accepts_the_equivalents_and_rejects_the_look_alikes(tmp_path, fake_llm):
    truth(fake_llm)
    report, verdicts = solve(tmp_path, fake_llm, "fallback", "fb")
    assert rates(verdicts, by_rule) == (0.0, 1.0)  # the rule's verdict is kept as it was
    assert rates(verdicts, by_judge) == (1.0, 1.0)
    j = report["judge"]
    # every planted path was rejected by the rule, so fallback asked about each once
    assert j["asked"] == len(EQUIV) + len(WRONG) == fake_llm.stats()["judge_calls"]["answer_match"]
    assert j["verified_judge_only"] == len(EQUIV) and j["verified_rule_only"] == 0
    v = verdicts["eq-000"]
    assert v["judge"]["mode"] == "fallback" and v["judge"]["kept"] and v["kept"] == []
    assert "by the judge" in v["judge"]["reason"]
    # the path carries the judge's reason; paths.jsonl holds the judge-kept path
    paths = {p["id"]: p for p in jsonl_rows(tmp_path / "fb" / "paths.jsonl")}
    assert paths[v["judge"]["kept"][0]]["judge"].startswith("yes: ")
    # a rerun pays for nothing: paths and judgements are cached units
    before = fake_llm.stats()["total"]
    again, verdicts2 = solve(tmp_path, fake_llm, "fallback", "fb")
    assert fake_llm.stats()["total"] == before and verdicts2 == verdicts

    # export: one definition of verified, four policies
    def export(policy: str) -> int:
        out = tmp_path / f"train-{policy}.jsonl"
        proc = graphgen("export", "--paths", tmp_path / "fb" / "paths.jsonl", "--verified-by", policy, "-o", out,
                        "--db", tmp_path / "graphgen.db", cwd=tmp_path, env=cli_env(fake_llm.url), check=False)
        return len(jsonl_rows(out)) if proc.returncode == 0 else 0

    assert export("rule") == 0 and export("both") == 0
    assert export("judge") == len(EQUIV) == export("any")


def test_always_judges_every_path_and_fallback_calls_the_judge_only_where_the_rule_said_no(tmp_path, fake_llm):
    # a set where the rule is right on most rows: 200 plain right answers besides the planted ones
    rows = [{"id": f"ok-{i:03d}", "answer": str(i), "question": f"Plain problem {i}. {{{{fake: say={i} }}}}"}
            for i in range(200)]
    rows += [{"id": f"eq-{i:03d}", "answer": g, "question": f"Planted problem eq {i}: {{{{fake: say={a} }}}}"}
             for i, (g, a) in enumerate(EQUIV[:10])]
    seeds = tmp_path / "mixed.jsonl"
    seeds.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    calls = {}
    for mode in ("fallback", "always"):
        fake_llm.reset()
        fake_llm.configure(judge={"answer_match": [[g, said(a)] for g, a in EQUIV] + [[str(i), str(i)] for i in range(200)]})
        graphgen("solve", seeds, "-o", tmp_path / mode, "--style", "cot", "--paths", "1", "--judge", mode,
                 "--cache", tmp_path / f"cache-{mode}.db", "--report", tmp_path / f"{mode}.json",
                 cwd=tmp_path, env=cli_env(fake_llm.url))
        report = json.loads((tmp_path / f"{mode}.json").read_text())
        calls[mode] = fake_llm.stats()["judge_calls"]["answer_match"]
        assert report["judge"]["verified"] == len(rows)
    assert calls == {"fallback": 10, "always": len(rows)}  # fallback: 10 calls per 210 rows
