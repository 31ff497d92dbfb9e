"""`graphgen generate variants`: GSM8K-style questions with known programs, run through the
real sandbox; agreement and rejection rules, --seed reproducibility, resume, export, --rewrite
through the fake OpenAI server."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest
from clirun import cli_env, graphgen

from graphgen.config import Settings, VariantsSettings
from graphgen.numbershift import find_numbers, parse_number
from graphgen.sandbox import Sandbox
from graphgen.stages.variants import VariantsInputs, _Draw, _Unit, judge, read_sources, run

# question, answer, programs (all correct on the original numbers), the answer as a function
# of the question's numbers in order (None: no exact check)
FIXTURES = {
    "apples": ("Tom has 15 apples. Ann has 15 apples and 4 pears. How many fruits do they have?", "34",
               ["print(15 + 15 + 4)\n", "tom = 15\nann = 15\npears = 4\nprint(tom + ann + pears)\n",
                "def total(a, p):\n    return 2 * a + p\n\nprint(total(15, 4))\n"],
               lambda n: 2 * n[0] + n[2]),
    "wages": ("Weng earns $12.50 an hour. She worked 4 hours on Monday and 3 hours on Tuesday. "
              "How much did she earn in dollars?", "87.5",
              ["rate = 12.50\nprint(rate * (4 + 3))\n", "print(12.5 * 4 + 12.5 * 3)\n"],
              lambda n: n[0] * (n[1] + n[2])),
    "jacket": ("A $80 jacket is 25% off. What is the sale price in dollars?", "60",
               ["price = 80\nprint(price * (1 - 25 / 100))\n", "print(80 - 80 * 0.25)\n"],
               lambda n: n[0] * (1 - n[1] / 100)),
    "marbles": ("Sam had 40 marbles and gave away 3/4 of them. How many marbles are left?", "10",
                ["m = 40\nprint(m - m * 3 / 4)\n", "print(40 * (1 - 3 / 4))\n"],
                lambda n: n[0] - n[0] * n[1]),
    "lunch": ("Ann had 20 dollars and spent 18 dollars on lunch. How many dollars are left?", "2",
              ["print(20 - 18)\n", "money = 20\nspent = 18\nleft = money - spent\nprint(left)\n"],
              lambda n: n[0] - n[1]),
    "cookies": ("12 cookies are shared equally among 4 kids. How many cookies does each kid get?", "3",
                ["print(12 / 4)\n", "c = 12\nk = 4\nprint(c / k)\n"],
                lambda n: n[0] / n[1]),
    # one right and one wrong program that agree only on the original numbers (6 + 3 + 3 = 4 * 3)
    "pens": ("Lia has 6 red pens and 3 blue pens, and buys 3 more. How many pens does she have?", "12",
             ["print(6 + 3 + 3)\n", "print(4 * 3)\n"], None),
    # a typed-in intermediate (270) cannot vote: the question is not tried
    "overtime": ("Tina makes $18 an hour and works 10 hours a day for 5 days. How much does she make?", "990",
                 ["print(18 * 8 * 5 + 270)\n", "print(18 * 8 * 5 + 270 + 0)\n"], None),
    "words": ("Ali has two bags with twice as many apples in the second. How many apples?", "3",
              ["print(1 + 2)\n", "a = 1\nprint(a + 2 * a)\n"], None),
}


def write_paths(path: Path, names=FIXTURES) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for name in names:
            question, answer, programs, _ = FIXTURES[name]
            for i, prog in enumerate(programs):
                fh.write(json.dumps({"id": f"{name}-p{i}", "question_id": name, "question_kind": "seed",
                                     "question": question, "style": "code", "index": i, "text": prog,
                                     "answer": answer, "correct": True}) + "\n")
            # a wrong path and a prose path are never used
            fh.write(json.dumps({"id": f"{name}-wrong", "question_id": name, "style": "code", "index": 9,
                                 "text": "print(-1)\n", "answer": "-1", "correct": False}) + "\n")
            fh.write(json.dumps({"id": f"{name}-cot", "question_id": name, "style": "cot", "index": 0,
                                 "text": "It is \\boxed{1}", "answer": answer, "correct": True}) + "\n")
    return path


def settings(**variants) -> Settings:
    s = Settings()
    s.variants = VariantsSettings(**{"workers": 2, **variants})
    return s


def rows_of(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_variants_keep_consistent_numbers_and_correct_answers(tmp_path):
    paths = write_paths(tmp_path / "paths.jsonl")
    out = tmp_path / "variants.jsonl"
    report = run(settings(per_question=4), None, VariantsInputs(paths=[paths], output=out, quiet=True))
    rows = rows_of(out)
    assert rows and sum(report.kept.values()) == len(rows)
    # the summary says which sandbox ran the programs and what bound them (issue 22)
    assert report.isolation in ("bwrap", "process")
    line = next(x for x in report.lines() if x.startswith("programs: "))
    assert f"run in the sandbox ({report.isolation})" in line and "sandbox limits: " in line
    by_original: dict[str, list[dict]] = {}
    for row in rows:
        assert row["kind"] == "variant" and row["status"] == "ok" and row["strategy"] == row["variant"]["mode"]
        by_original.setdefault(row["variant"]["original_id"], []).append(row)
    for name, got in by_original.items():
        question, answer, _, formula = FIXTURES[name]
        for row in got:
            v = row["variant"]
            assert v["original_question"] == question and v["original_answer"] == answer
            assert len(v["programs"]) >= 2 and len(v["path_ids"]) == len(v["programs"])
            assert all(pid.startswith(f"{name}-p") for pid in v["path_ids"])
            assert row["question"] != question
            for change in v["numbers"]:
                assert change["new"] in row["question"] and change["original"] != change["new"]
            if formula is not None:
                numbers = [n.value if n.kind != "fraction" else Fraction(n.num, n.den) for n in find_numbers(row["question"])]
                expected = formula(numbers)
                assert abs(parse_number(row["answer"]) - expected) < Fraction(1, 10**6), (row["question"], row["answer"])
    # the repeated 15 moved together, the 2 of "2 * a" in code never moved
    for row in by_original["apples"]:
        n = find_numbers(row["question"])
        assert n[0].value == n[1].value
        assert "2 * a" in "".join(row["variant"]["programs"]) or len(row["variant"]["programs"]) == 2
    # money keeps its cents and the share stays a share
    for row in by_original["wages"]:
        assert find_numbers(row["question"])[0].text.startswith("$") and find_numbers(row["question"])[0].places == 2
    for row in by_original.get("jacket", []):
        assert 0 < find_numbers(row["question"])[1].value <= 100
    assert "pens" not in by_original and "overtime" not in by_original and "words" not in by_original

    rejects = rows_of(out.with_name("variants.rejects.jsonl"))
    reasons = {r["original_id"]: set(r["reasons"]) for r in rejects}
    assert reasons["pens"] == {"no-agreement"}
    assert "count-fractional" in reasons["cookies"]
    assert "count-negative" in reasons["lunch"]
    assert reasons["words"] == {"no-numbers"}  # number words are not numbers to shift
    assert all(len(r["reasons"]) <= 3 for r in rejects)
    assert report.skipped == {"too-few-code-paths": 1} and report.programs_with_typed_intermediates == 2
    assert report.questions == len(FIXTURES) and report.questions_tried == len(FIXTURES) - 1
    per_mode = {m: report.kept.get(m, 0) + report.rejected.get(m, 0) for m in ("distribution", "similar", "scale")}
    assert per_mode == {m: 4 * (len(FIXTURES) - 1) for m in per_mode}
    assert sum(report.draws_rejected.values()) == report.draws - len(rows)
    text = "\n".join(report.lines())
    assert "kept per mode" in text and "no-agreement" in text


def test_same_seed_same_variants_other_seed_other_variants_and_resume(tmp_path):
    paths = write_paths(tmp_path / "paths.jsonl", ["apples", "wages", "marbles", "lunch"])
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    run(settings(seed=11, per_question=2), None, VariantsInputs(paths=[paths], output=a, quiet=True))
    run(settings(seed=11, per_question=2, workers=1), None, VariantsInputs(paths=[paths], output=b, quiet=True))
    run(settings(seed=12, per_question=2), None, VariantsInputs(paths=[paths], output=c, quiet=True))
    assert a.read_bytes() == b.read_bytes() and a.read_bytes()
    assert a.with_name("a.rejects.jsonl").read_bytes() == b.with_name("b.rejects.jsonl").read_bytes()
    assert {r["question"] for r in rows_of(a)} != {r["question"] for r in rows_of(c)}
    # resume: everything is done; a torn last line (a kill mid-write) is cut and redone
    before = a.read_bytes()
    again = run(settings(seed=11, per_question=2), None, VariantsInputs(paths=[paths], output=a, quiet=True))
    assert a.read_bytes() == before and sum(again.kept.values()) == 0
    assert again.already_done == again.variants_wanted == 4 * 3 * 2
    lines = before.decode().splitlines(keepends=True)
    a.write_text("".join(lines[:-1]) + lines[-1][:25], encoding="utf-8")
    third = run(settings(seed=11, per_question=2), None, VariantsInputs(paths=[paths], output=a, quiet=True))
    assert sum(third.kept.values()) == 1 and a.read_bytes() == before


def test_judge_rules_on_real_sandbox_runs():
    with Sandbox(workers=2) as box:
        results = box.map(["print(1 / 0)\n", "print(7)\n", "print(7.000000000000001)\n", "print(8)\n",
                           "print(-3)\n", "print(2.5)\n", "print(140)\n", "x\n"])
    zero, seven, seven_f, eight, neg, frac, big, crash = results
    assert zero.reason == "crash" and crash.reason == "crash"

    def draw(question="How many apples?", answer="5") -> _Draw:
        return _Draw(_Unit("u", read_one(question, answer), [], [], "similar", 0), 0)

    d = draw()
    assert judge(d, [zero, zero, seven], 2) is None and d.reason == "division-by-zero"
    d = draw()
    assert judge(d, [crash, seven], 2) is None and d.reason == "program-crash"
    d = draw()
    assert judge(d, [seven, eight], 2) is None and d.reason == "no-agreement"
    d = draw()
    assert judge(d, [seven, seven_f, eight], 2)[0] == "7"  # float noise agrees; 2 of 3 is a majority
    d = draw()
    assert judge(d, [neg, neg], 2) is None and d.reason == "count-negative"
    d = draw()
    assert judge(d, [frac, frac], 2) is None and d.reason == "count-fractional"
    d = draw("What percentage of the apples are red?", "40")
    assert judge(d, [big, big], 2) is None and d.reason == "share-over-100"
    d = draw("How much does it cost?", "2.5")
    assert judge(d, [frac, frac, seven], 2)[0] == "2.5"


def read_one(question: str, answer: str):
    from graphgen.stages.variants import VariantSource

    return VariantSource(id="q", question=question, answer=answer)


def test_read_sources_takes_question_text_and_gold_from_seed_files(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    q = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?"
    seeds.write_text(json.dumps({"question": q, "answer": "48/2 = <<48/2=24>>24\n#### 72"}) + "\n", encoding="utf-8")
    from graphgen.readers import stable_seed_id

    qid = stable_seed_id(q, "seeds")
    paths = tmp_path / "paths.jsonl"
    paths.write_text("".join(json.dumps({"id": f"p{i}", "question_id": qid, "style": "code", "index": i,
                                         "text": f"```python\n{prog}```", "answer": "72", "correct": True}) + "\n"
                             for i, prog in enumerate(["print(48 + 48 / 2)\n", "a = 48\nprint(a * 3 / 2)\n"])),
                     encoding="utf-8")
    (src,) = read_sources([paths], [seeds])
    assert src.question == q and src.answer == "72" and [p.program for p in src.paths][1] == "a = 48\nprint(a * 3 / 2)\n"
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "print(1)"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="bad.jsonl:1: not a code path row"):
        list(read_sources([bad]))


def test_export_handles_variant_rows(tmp_path):
    from graphgen.stages.export import export_rows
    from graphgen.rows import read_rows

    paths = write_paths(tmp_path / "paths.jsonl", ["apples", "wages"])
    out = tmp_path / "v.jsonl"
    run(settings(), None, VariantsInputs(paths=[paths], output=out, quiet=True))
    n = len(rows_of(out))
    summary = export_rows(read_rows([out]), tmp_path / "train.jsonl", layout="chatml")
    assert summary.written == n and summary.by_kind == {"variant": n}
    exported = rows_of(tmp_path / "train.jsonl")
    assert all(r["metadata"]["variant"]["original_id"] in ("apples", "wages") for r in exported)
    assert all("```python" in r["messages"][1]["content"] and "The answer is: " in r["messages"][1]["content"]
               for r in exported)
    assert set(summary.by_topic) <= {"variant:distribution", "variant:similar", "variant:scale"}
    export_rows(read_rows([out]), tmp_path / "train.parquet", fmt="parquet", layout="raw")


def test_cli_with_rewrite_through_the_fake_server(tmp_path, fake_llm):
    paths = tmp_path / "paths.jsonl"
    q = "Albert buys 2 large pizzas and 3 small pizzas. How many pizzas does he buy?"
    paths.write_text("".join(json.dumps({"id": f"p{i}", "question_id": "albert", "question": q, "style": "code",
                                         "index": i, "text": prog, "answer": "5", "correct": True}) + "\n"
                             for i, prog in enumerate(["print(2 + 3)\n", "large = 2\nsmall = 3\nprint(large + small)\n"])),
                     encoding="utf-8")
    # a reply that changes a number must not be used
    fake_llm.script([{"content": json.dumps({"question": "Albert buys 7 large pizzas."}), "times": 1}])
    env = cli_env(fake_llm.url)
    res = graphgen("generate", "variants", "--paths", paths, "-o", tmp_path / "v.jsonl", "--mode", "scale",
                   "--per-question", "6", "--seed", "3", "--rewrite", "--workers", "2", "--quiet",
                   "--db", tmp_path / "g.db", "--cache", tmp_path / "cache.db", "--report", tmp_path / "r.json",
                   cwd=tmp_path, env=env)
    report = json.loads((tmp_path / "r.json").read_text())
    rows = rows_of(tmp_path / "v.jsonl")
    assert rows and report["kept"]["scale"] == len(rows) and report["llm"]["ok"] == len(rows)
    assert report["rewrite_kept_original"] == {"numbers-changed": 1}
    rewritten = [r for r in rows if r["variant"]["rewritten"]]
    assert len(rewritten) == len(rows) - 1
    for r in rewritten:
        assert r["prompt_version"] == "variants_rewrite_v1" and r["model"] == "fake-model"
        assert "1 large pizzas" not in r["question"] and "1 small pizzas" not in r["question"]
    assert any("1 large pizza " in r["question"] or "1 small pizza." in r["question"] for r in rewritten)
    assert "kept per mode: scale" in res.stdout
    # the store has them too, so `export` with no inputs finds them
    graphgen("export", "-o", tmp_path / "train.jsonl", "--db", tmp_path / "g.db", cwd=tmp_path, env=env)
    assert len(rows_of(tmp_path / "train.jsonl")) == len(rows)
    # bad input is one line, not a traceback
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{not json\n", encoding="utf-8")
    res = graphgen("generate", "variants", "--paths", bad, "-o", tmp_path / "x.jsonl", "--db", tmp_path / "g.db",
                   cwd=tmp_path, env=env, check=False)
    assert res.returncode == 1 and "bad.jsonl:1: not JSON" in res.stderr and "Traceback" not in res.stderr


def test_the_store_is_the_system_of_record_for_variants(tmp_path):
    """Rows reach the store before the file: a kill between the two leaves the store ahead,
    and the next run copies those rows to the file instead of making them again; rows only
    the file holds (an older workspace) are added to the store."""
    from graphgen.store import SQLiteStore

    paths = write_paths(tmp_path / "paths.jsonl", ["apples", "wages"])
    out = tmp_path / "v.jsonl"
    with SQLiteStore(tmp_path / "g.db") as store:
        first = run(settings(), store, VariantsInputs(paths=[paths], output=out, quiet=True))
        rows = rows_of(out)
        assert len(rows) == sum(first.kept.values()) >= 4
        assert store.generated_ids() == {r["id"] for r in rows}
        lines = out.read_text(encoding="utf-8").splitlines(keepends=True)
        out.write_text("".join(lines[:-3]), encoding="utf-8")  # the file lost its last 3 rows
        again = run(settings(), store, VariantsInputs(paths=[paths], output=out, quiet=True))
        assert sum(again.kept.values()) == 0 and again.copied_from_store == 3
        assert sorted(r["id"] for r in rows_of(out)) == sorted(r["id"] for r in rows)
        assert "3 variants the store already held" in "\n".join(again.lines())
    with SQLiteStore(tmp_path / "fresh.db") as fresh:  # a store that lags behind the file
        third = run(settings(), fresh, VariantsInputs(paths=[paths], output=out, quiet=True))
        assert third.copied_to_store == len(rows) and sum(third.kept.values()) == 0
        assert fresh.generated_ids() == {r["id"] for r in rows}


def test_a_second_run_on_the_same_output_is_refused(tmp_path):
    from graphgen.rows import OutputBusyError, lock_output

    paths = write_paths(tmp_path / "paths.jsonl", ["apples"])
    out = tmp_path / "v.jsonl"
    with lock_output(out):  # what another run holds while it writes
        with pytest.raises(OutputBusyError, match="another graphgen run is writing this file"):
            run(settings(), None, VariantsInputs(paths=[paths], output=out, quiet=True))
    assert out.read_bytes() == b""
    run(settings(), None, VariantsInputs(paths=[paths], output=out, quiet=True))
    assert rows_of(out)


def test_a_path_line_that_is_not_json_names_its_column(tmp_path):
    # json's message ends in "at" here: the column follows a colon, never "at at"
    bad = tmp_path / "paths.jsonl"
    bad.write_text('{"question_id": "q", "text": "print(1)}\n', encoding="utf-8")
    with pytest.raises(ValueError) as e:
        list(read_sources([bad]))
    assert str(e.value) == f"{bad}:1: not JSON (Invalid control character at: col 40)"


def test_multiple_choice_questions_are_not_number_shifted(tmp_path):
    # new numbers would leave the options stale (none of them right): skipped, with the reason counted
    question = "A box holds 12 eggs. How many eggs are in 3 boxes?\nChoices:\nA) 36\nB) 15\nC) 9\nD) 4"
    paths = tmp_path / "paths.jsonl"
    paths.write_text("".join(json.dumps({"id": f"mc-p{i}", "question_id": "mc", "question_kind": "seed",
                                         "question": question, "style": "code", "index": i, "text": prog,
                                         "answer": "A", "correct": True}) + "\n"
                             for i, prog in enumerate(["print(12 * 3)\n", "e = 12\nprint(e * 3)\n"])))
    out = tmp_path / "variants.jsonl"
    report = run(settings(per_question=2), None, VariantsInputs(paths=[paths], output=out, quiet=True))
    assert report.skipped == {"multiple-choice": 1} and report.questions_tried == 0
    assert not out.exists() or rows_of(out) == []
    assert any("multiple-choice 1" in line for line in report.lines())
