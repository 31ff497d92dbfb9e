"""`generate variants --judge` (issue 20): the answer judge behind the rule that decides whether
a number-shifted variant's programs agree. Programs that print one answer in two forms
("60 dollars" and 60, "Total: 15" and 15) never agree by the rule (equal numbers, else
math-verify); a look-alike pair that agrees only on the original numbers ("15 pens" from
6 + 3 + 3 and 12 from 4 * 3) must stay rejected. Through the real CLI, the real sandbox and the
fake OpenAI server over real HTTP, which answers judge prompts from a truth table (a printed
answer and its bare number are the same answer)."""

from __future__ import annotations

import json
from pathlib import Path

from clirun import cli_env, graphgen, jsonl_rows

QUESTIONS = {
    # one answer in two forms: the rule cannot match them, the judge can
    "wage": ("Weng earns 12 dollars an hour and works 5 hours. How many dollars does she earn?",
             ["pay = 12 * 5\nprint(f'{pay} dollars')\n", "rate = 12\nhours = 5\nprint(rate * hours)\n"]),
    "apples": ("Ann has 7 red apples and 8 green apples. How many apples does she have?",
               ["print('Total:', 7 + 8)\n", "red = 7\ngreen = 8\nprint(red + green)\n"]),
    # a look-alike: right and wrong programs agree only on the original numbers
    "pens": ("Lia has 6 red pens and 3 blue pens, and buys 3 more. How many pens does she have?",
             ["n = 6 + 3 + 3\nprint(f'{n} pens')\n", "print(4 * 3)\n"]),
    # the rule is right: both print the same number
    "cookies": ("Tom bakes 9 cookies and then 4 more. How many cookies does he have?",
                ["print(9 + 4)\n", "a = 9\nb = 4\nprint(a + b)\n"]),
}
ANSWERS = {"wage": "60", "apples": "15", "pens": "12", "cookies": "13"}
SAME = [[f"{n} dollars", str(n)] for n in range(2000)] + [[f"Total: {n}", str(n)] for n in range(2000)]


# the rule matches 13.0 with 13 (equal numbers); a judge that does not know it says no
FLOAT = {"pies": ("Sue bakes 9 pies and then 4 more. How many pies does she have?",
                  ["print(float(9 + 4))\n", "a = 9\nb = 4\nprint(a + b)\n"])}


def write_paths(path: Path, extra: dict | None = None) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for qid, (question, programs) in {**QUESTIONS, **(extra or {})}.items():
            for i, prog in enumerate(programs):
                fh.write(json.dumps({"id": f"{qid}-p{i}", "question_id": qid, "question": question, "style": "code",
                                     "index": i, "text": prog, "answer": ANSWERS.get(qid, "13"), "correct": True}) + "\n")
    return path


def variants(tmp_path: Path, fake_llm, out: str, *extra, db: str = "g.db", cache: str = "cache.db") -> dict:
    graphgen("generate", "variants", "--paths", tmp_path / "paths.jsonl", "-o", tmp_path / out, "--mode", "similar",
             "--per-question", "3", "--seed", "5", "--workers", "2", "--quiet", "--db", tmp_path / db,
             "--cache", cache if cache == "off" else tmp_path / cache, "--report", tmp_path / "r.json", *extra,
             cwd=tmp_path, env=cli_env(fake_llm.url))
    return json.loads((tmp_path / "r.json").read_text())


def judge_calls(fake_llm) -> int:
    return (fake_llm.stats().get("judge_calls") or {}).get("answer_match", 0)


def by_question(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(r["variant"]["original_id"], []).append(r)
    return out


def test_fallback_makes_the_variants_the_rule_cannot_match_and_keeps_look_alikes_out(tmp_path, fake_llm):
    write_paths(tmp_path / "paths.jsonl")
    fake_llm.configure(judge={"answer_match": SAME})

    # the rule alone: only the plain question agrees
    off = variants(tmp_path, fake_llm, "v.jsonl")
    assert off["kept"] == {"similar": 3} and off["judge"] is None and judge_calls(fake_llm) == 0
    assert set(by_question(jsonl_rows(tmp_path / "v.jsonl"))) == {"cookies"}

    # the judge behind it, same output: the variants rejected for disagreement are drawn again
    fb = variants(tmp_path, fake_llm, "v.jsonl", "--judge", "fallback")
    rows = by_question(jsonl_rows(tmp_path / "v.jsonl"))
    assert set(rows) == {"cookies", "wage", "apples"} and len(rows["wage"]) == len(rows["apples"]) == 3
    assert fb["already_done"] == 3 and fb["kept"] == {"similar": 6}
    for qid, form in (("wage", "{} dollars"), ("apples", "Total: {}")):
        for r in rows[qid]:
            lin = r["variant"]
            # the row's answer is the bare number; the solution shows the program that printed it
            assert r["answer"].isdigit() and r["answer"] != ANSWERS[qid]
            assert r["solution"].endswith(f"```output\n{r['answer']}\n```")
            # rule and judge side by side: the rule's no is kept as it was
            assert lin["rule_agreed"] is False and lin["rule"].startswith("no agreement")
            assert form.format(r["answer"]) in lin["rule"]
            j = lin["judge"]
            assert j["status"] == "verified" and j["mode"] == "fallback" and j["asked"] == 1 and j["accepted"] == 2
            assert j["prompt_version"] == "judge_answer_v1" and j["model"] == "fake-model"
    # the look-alike stays out: the judge says no, and the reject says why
    rejects = [r for r in jsonl_rows(tmp_path / "v.rejects.jsonl") if r["original_id"] == "pens"]
    assert rejects[-1]["judge"] == "fallback" and "judge: no agreement by the judge" in rejects[-1]["detail"]
    assert "pens" not in rows
    j = fb["judge"]
    # asked only where the rule found no agreement: 3 tries for each pens variant, 1 draw each for the
    # others; draws that shift to the same numbers ask the same question, paid once
    assert j["asked"] == j["pairs"] == 3 * 3 + 2 * 3
    assert 0 < j["calls"] == judge_calls(fake_llm) <= j["pairs"]
    assert j["kept_judge_only"] == 6 and j["kept_rule_only"] == 0 and fb["llm"]["ok"] == j["calls"]

    # a rerun pays nothing and changes nothing
    before, lines = fake_llm.stats()["total"], (tmp_path / "v.jsonl").read_text()
    again = variants(tmp_path, fake_llm, "v.jsonl", "--judge", "fallback")
    assert fake_llm.stats()["total"] == before and again["already_done"] == 12
    assert (tmp_path / "v.jsonl").read_text() == lines

    # export: one definition of agreed (graphgen.status.variant_agreed), four policies
    def export(policy: str) -> tuple[int, str]:
        out = tmp_path / f"train-{policy}.jsonl"
        proc = graphgen("export", tmp_path / "v.jsonl", "--verified-by", policy, "-o", out, "--db", tmp_path / "g.db",
                        cwd=tmp_path, env=cli_env(fake_llm.url), check=False)
        return len(jsonl_rows(out)) if proc.returncode == 0 else 0, proc.stdout + proc.stderr

    n, said = export("rule")
    assert n == 3 and "6 variants whose programs agree only under another --verified-by" in said
    assert export("any")[0] == 9 and export("judge")[0] == 6
    # both: the cookies variants were made with the judge off (no judge's verdict), the others by the judge only
    n, said = export("both")
    assert n == 0 and "9 variants whose programs agree only under another --verified-by left out" in said


def test_judgements_are_journalled_so_a_fresh_run_without_cache_pays_nothing(tmp_path, fake_llm):
    write_paths(tmp_path / "paths.jsonl")
    fake_llm.configure(judge={"answer_match": SAME})
    first = variants(tmp_path, fake_llm, "v.jsonl", "--judge", "fallback", cache="off")
    calls = judge_calls(fake_llm)
    assert calls == first["judge"]["calls"] > 0
    journal = jsonl_rows(tmp_path / "v.judgements.jsonl")
    assert len(journal) == calls and all(j["task"] == "answer_match" for j in journal)
    # the rows are gone (another workspace, the output rewritten), the journal is not
    (tmp_path / "v.jsonl").unlink()
    (tmp_path / "v.rejects.jsonl").unlink()
    again = variants(tmp_path, fake_llm, "v.jsonl", "--judge", "fallback", db="other.db", cache="off")
    assert judge_calls(fake_llm) == calls and again["judge"]["calls"] == 0
    assert again["judge"]["from_journal"] == calls and again["kept"] == first["kept"]


def test_always_asks_about_every_pair_of_distinct_answers_and_records_the_judges_no(tmp_path, fake_llm):
    write_paths(tmp_path / "paths.jsonl", FLOAT)
    # a judge that knows only the dollar form: "Total: 15" and 15, 13.0 and 13 are "different" to it
    fake_llm.configure(judge={"answer_match": SAME[:2000]})
    rep = variants(tmp_path, fake_llm, "v.jsonl", "--judge", "always")
    rows = by_question(jsonl_rows(tmp_path / "v.jsonl"))
    assert set(rows) == {"cookies", "wage", "pies"}
    for r in rows["cookies"]:  # both programs print the same text: nothing to ask, both verdicts agree
        assert r["variant"]["rule_agreed"] and r["variant"]["judge"]["status"] == "verified"
        assert r["variant"]["judge"]["asked"] == 0
    for r in rows["pies"]:  # kept by the rule; the judge's no stands beside it, never over it
        lin = r["variant"]
        assert lin["rule_agreed"] and lin["rule"].startswith("2 of 2 programs agree")
        assert lin["judge"]["status"] == "unverified" and lin["judge"]["asked"] == 1 and r["answer"].isdigit()
    j = rep["judge"]
    assert j["kept_judge_only"] == 3 and j["kept_rule_only"] == 3
    assert j["calls"] == judge_calls(fake_llm) > 0


def test_code_paths_only_solves_judge_kept_are_sources_with_the_judge_on_and_not_rule_agreed(tmp_path):
    from graphgen.records import JudgeVerdict, SolveVerdict
    from graphgen.stages.variants import read_sources

    paths = write_paths(tmp_path / "paths.jsonl")
    # solve's rule verified "cookies"; only its judge verified "wage" (60 dollars is not 60 to math-verify)
    verdicts = {
        "cookies": SolveVerdict(question_id="cookies", question_kind="seed", method="gold", paths=2, answered=2, status="verified",
                                kept=["cookies-p0", "cookies-p1"]),
        "wage": SolveVerdict(question_id="wage", question_kind="seed", method="gold", paths=2, answered=2, status="unverified",
                             judge=JudgeVerdict(status="verified", kept=["wage-p0", "wage-p1"])),
    }
    rule = {s.id: s for s in read_sources([paths], verdicts=verdicts)}
    any_ = {s.id: s for s in read_sources([paths], verdicts=verdicts, policy="any")}
    assert "wage" not in rule and all(p.by_rule for p in rule["cookies"].paths)
    assert [p.by_rule for p in any_["wage"].paths] == [False, False]
    assert all(p.by_rule for p in any_["cookies"].paths)
