"""`graphgen solve` end to end through the real CLI, the fake OpenAI server over HTTP and
the real sandbox: every path of every question is scripted in the question text (see
tests/fake_openai.py `solve_path_for`), so verdicts, votes and kept sets are known exactly."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from clirun import cli_env, graphgen, popen

from graphgen.answers import AnswerChecker, final_answer, program_answer
from graphgen.rows import stable_id
from graphgen.paths import normalize_code, normalize_prose, select_diverse
from graphgen.store.sqlite import SQLiteStore

MODEL = "fake-model"


def path_id(qid: str, style: str, index: int, temperature: float = 0.7) -> str:
    return stable_id("p", qid, style, index, f"solve_{style}_v2", MODEL, temperature)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


# --- answers, normalisation, diversity ---------------------------------------------------


def test_final_answer_extraction():
    assert final_answer("so $x = \\boxed{\\frac{3}{4}}$ and done") == "\\frac{3}{4}"
    assert final_answer("first \\boxed{1} then \\boxed{2}.") == "2"
    assert final_answer("Natalia sold 48+24 = 72 clips.\n#### 72") == "72"
    assert final_answer("Adding up, the answer is 1,250.") == "1,250"
    assert final_answer("The final answer: 17") == "17"
    assert final_answer("I could not finish.") is None
    assert program_answer("debug line\n0.75\n\n") == "0.75"
    assert program_answer("") is None


def test_equivalence_is_mathematical_not_textual():
    c = AnswerChecker(timeout_s=5)
    assert c.equivalent("\\frac{3}{4}", "0.75")
    assert c.equivalent("0.5", "1/2")
    assert c.equivalent("1,000", "1000")
    assert c.equivalent("2\\sqrt{2}", "\\sqrt{8}")
    assert c.equivalent("(1,2]", "(1, 2]")
    assert c.equivalent("\\{1,2\\}", "\\{2,1\\}")
    assert not c.equivalent("18", "19")
    assert not c.equivalent("[1,2]", "(1,2)")
    before = c.checks
    assert c.equivalent("\\frac{3}{4}", "0.75")  # cached
    assert c.checks == before and c.cache_hits >= 1
    assert c.groups(["3/4", "0.75", "1", None, "1.0"]) == [[0, 1], [2, 4]]


def test_code_normalisation_renames_in_order_of_appearance():
    a = "# total cost\nprice = 3\nqty = 4\ndef cost(p, q):\n    '''doc'''\n    return p * q\nprint(cost(price, qty))\n"
    b = "x = 3\ny = 4\ndef f(a, b):\n    return a * b  # product\nprint(f(x, y))"
    assert normalize_code(a) == normalize_code(b)
    assert normalize_code(a) != normalize_code(b.replace("a * b", "a + b"))
    assert "math.sqrt" in normalize_code("import math\nv = math.sqrt(2)\nprint(v)")
    assert normalize_prose("Total:  1,000.50 dollars") == normalize_prose("total: 1000.5  DOLLARS")


def test_select_diverse_maximises_summed_edit_distance():
    texts = ["aaaa", "aaab", "zzzz", "aazz"]
    # from "aaaa": farthest is "zzzz" (4); then "aazz" (2 + 2) beats "aaab" (1 + 4 = 5)? no: 5 > 4
    assert select_diverse(texts, 3) == [0, 2, 1]
    assert select_diverse(texts, 1) == [0]
    assert select_diverse(texts, 10) == [0, 2, 1, 3]
    assert select_diverse([], 3) == []


# --- the stage through the CLI -----------------------------------------------------------

SEEDS = [
    # right everywhere; attempt 2 is a duplicate of attempt 1 in both styles
    {"id": "easy", "question": "Easy {{fake: answer=12; cot=R,D,R,R; code=R,D,R,R}}", "answer": "12"},
    # mostly wrong: the majority (6) is wrong; one crash, one endless loop, one without answer
    {"id": "hard", "question": "Hard {{fake: answer=5; cot=W6,W6,R,N; code=CRASH,LOOP,W6,R}}", "answer": "5"},
    # gold 0.5 as a decimal, programs print 0.5, prose says \boxed{1/2}
    {"id": "frac", "question": "Half {{fake: answer=1/2; cot=R,R,R,R; code=R,R,R,R}}", "answer": "0.5"},
]
GSM8K_STYLE = {"question": "Gsm {{fake: answer=72; cot=R,R,W70,R; code=R,R,R,R}}",
               "answer": "Natalia sold 48 + 24 = 72 clips.\n#### 72"}
MATH_STYLE = {"problem": "Math {{fake: answer=\\frac{3}{4}; cot=R,R,R,R; code=W1,W1,W1,W1}}",
              "solution": "We get $\\boxed{\\frac{3}{4}}$."}


def test_verdicts_votes_and_kept_sets_are_exact(fake_llm, tmp_path):
    seeds = write_jsonl(tmp_path / "seeds.jsonl", SEEDS)
    gsm = write_jsonl(tmp_path / "gsm.jsonl", [GSM8K_STYLE])
    math = write_jsonl(tmp_path / "math.jsonl", [MATH_STYLE])
    out = tmp_path / "solved"
    res = graphgen("solve", seeds, gsm, math, "-o", out, "--program-timeout", "1", "--db", tmp_path / "ws.db",
                   "--report", tmp_path / "report.json", cwd=tmp_path, env=cli_env(fake_llm.url))
    v = {r["question_id"]: r for r in rows(out / "verdicts.jsonl")}
    assert set(v) == {"easy", "hard", "frac", *(k for k in v if k.startswith(("gsm-", "math-")))}
    assert len(v) == 5

    easy = v["easy"]
    assert (easy["method"], easy["paths"], easy["correct"], easy["pass_rate"]) == ("gold", 8, 8, 1.0)
    assert easy["votes"] == {"12": 8} and easy["majority_correct"] is True and easy["duplicates"] == 2
    assert len(easy["kept"]) == 3

    hard = v["hard"]
    assert hard["paths"] == 8 and hard["answered"] == 5  # crash, loop and one prose path without answer
    # agreement counts every sampled path, the crashed and answerless ones too: 3 of 8
    assert hard["votes"] == {"6": 3, "5": 2} and hard["majority"] == "6" and hard["agreement"] == 0.375
    assert hard["correct"] == 2 and hard["pass_rate"] == 0.25 and hard["majority_correct"] is False
    # two paths reach the gold: verified by gold, though the majority is wrong
    assert (hard["status"], hard["verified_by"], hard["verified"]) == ("verified", "gold", True)
    assert (easy["status"], easy["verified_by"]) == ("verified", "gold")
    assert sorted(hard["kept"]) == sorted([path_id("hard", "code", 3), path_id("hard", "cot", 2)])

    frac = v["frac"]
    assert frac["correct"] == 8 and frac["majority_correct"] is True  # 1/2 == 0.5, by math-verify

    gsm_v = next(r for k, r in v.items() if k.startswith("gsm"))
    assert gsm_v["gold"] == "72" and gsm_v["gold_from"] == "####" and gsm_v["correct"] == 7
    math_v = next(r for k, r in v.items() if k.startswith("math"))
    assert math_v["gold"] == "\\frac{3}{4}" and math_v["gold_from"] == "boxed"
    assert math_v["correct"] == 4 and math_v["votes"] == {"1": 4, "\\frac{3}{4}": 4}

    # paths.jsonl holds exactly the kept paths, each correct, with lineage
    kept = rows(out / "paths.jsonl")
    assert sorted(p["id"] for p in kept) == sorted(i for r in v.values() for i in r["kept"])
    assert all(p["correct"] is True for p in kept)
    assert {p["question_id"] for p in kept} == set(v)
    assert all(p["model"] == MODEL and p["prompt_version"].startswith("solve_") for p in kept)
    # the easy question keeps no two paths that normalise alike
    easy_kept = [p for p in kept if p["question_id"] == "easy"]
    norms = [normalize_code(p["text"]) if p["style"] == "code" else normalize_prose(p["text"]) for p in easy_kept]
    assert len(set(norms)) == 3

    # failures: a crash, a timeout, and the prose path without answer, with their raw text
    fails = rows(out / "failures.jsonl")
    kinds = sorted((f["kind"], f["reason"].split(":")[0]) for f in fails if f["question_id"] == "hard")
    assert kinds == [("no_answer", "no final answer found (\\boxed{}, ####, 'the answer is', or printed)"),
                     ("program", "crash"), ("program", "timeout")]
    assert any("1 / 0" in f["raw"] for f in fails)

    # the summary: per source file
    report = json.loads((tmp_path / "report.json").read_text())
    s = report["per_source"]["seeds.jsonl"]
    assert s["questions"] == 3 and s["paths"] == 24 and s["correct"] == 18
    assert s["program_failures"] == {"crash": 1, "timeout": 1}
    assert s["kept_histogram"] == {"2": 1, "3": 2}
    assert abs(s["pass_at_1"] - (1 + 0.25 + 1) / 3) < 1e-6 and abs(s["majority_accuracy"] - 2 / 3) < 1e-6
    assert "seeds.jsonl: 3 questions; 24 paths; 18 correct" in res.stdout

    # verdicts reached the store
    with SQLiteStore(tmp_path / "ws.db") as store:
        stored = {x.question_id: x for x in store.verdicts()}
    assert set(stored) == set(v) and stored["hard"].votes == {"6": 3, "5": 2}

    # one training row per kept path
    graphgen("export", "--paths", out / "paths.jsonl", "-o", tmp_path / "train.jsonl", cwd=tmp_path)
    train = rows(tmp_path / "train.jsonl")
    assert len(train) == len(kept)
    assert {t["metadata"]["kind"] for t in train} == {"path"}
    assert all(t["messages"][0]["content"] in {x["question"] for x in v.values()} for t in train)


def test_diversity_picks_are_exact_for_one_style(fake_llm, tmp_path):
    seeds = write_jsonl(tmp_path / "s.jsonl", [{"id": "q", "question": "Q {{fake: answer=3; cot=R,R,R,R}}", "answer": "3"}])
    graphgen("solve", seeds, "-o", tmp_path / "o", "--style", "cot", "--keep", "3", cwd=tmp_path,
             env=cli_env(fake_llm.url))
    (verdict,) = rows(tmp_path / "o" / "verdicts.jsonl")
    # attempt i's text repeats one sentence i times: from attempt 1, the farthest is 4, then 2
    # and 3 tie on summed distance and the earlier wins
    assert verdict["kept"] == [path_id("q", "cot", 0), path_id("q", "cot", 3), path_id("q", "cot", 1)]


def test_generated_rows_are_verified_by_vote(fake_llm, tmp_path):
    def gen(i, q, answer):
        return {"id": f"g{i}", "kind": "concepts", "question": q, "solution": "s", "answer": answer,
                "prompt_version": "generate_v1", "model": MODEL}

    generated = write_jsonl(tmp_path / "generated.jsonl", [
        gen(1, "G1 {{fake: answer=7; cot=R,R,W8,N; code=R,W9,R,R}}", "7"),    # agrees: verified
        gen(2, "G2 {{fake: answer=7; cot=R,R,R,R; code=R,R,R,R}}", "9"),      # row's answer is wrong
        gen(3, "G3 {{fake: answer=0; cot=W1,W2,W3,W4; code=N,N,N,N}}", "5"),  # no majority at all
    ])
    out = tmp_path / "o"
    graphgen("solve", generated, "-o", out, "--min-agreement", "0.5", cwd=tmp_path, env=cli_env(fake_llm.url))
    v = {r["question_id"]: r for r in rows(out / "verdicts.jsonl")}
    g1, g2, g3 = v["g1"], v["g2"], v["g3"]
    # the row's own answer + 2 prose + 3 programs say 7
    assert g1["method"] == "vote" and g1["votes"] == {"7": 6, "8": 1, "9": 1}
    # every sampled path is a vote (the 8 paths and the row's own answer), answered or not
    assert g1["verified"] is True and g1["correct"] == 5 and g1["agreement"] == pytest.approx(6 / 9, abs=1e-6)
    assert (g1["status"], g1["verified_by"]) == ("verified", "vote")
    assert g2["verified"] is False and g2["majority"] == "7" and g2["votes"] == {"9": 1, "7": 8}
    # a majority that contradicts the row's own answer keeps nothing: no path is "correct"
    assert g2["status"] == "unverified" and g2["correct"] == 0 and g2["kept"] == []
    assert "disagrees with the row's answer 9" in g2["status_reason"]
    assert g3["verified"] is False and g3["correct"] == 0 and g3["kept"] == []
    assert g3["agreement"] == pytest.approx(1 / 9, abs=1e-6) and g3["status"] == "unverified"
    assert {p["question_id"] for p in rows(out / "paths.jsonl")} == {"g1"}
    graphgen("export", generated, "--verified-only", "--verdicts", out / "verdicts.jsonl",
             "-o", tmp_path / "train.jsonl", cwd=tmp_path)
    assert [r["metadata"]["id"] for r in rows(tmp_path / "train.jsonl")] == ["g1"]


def test_a_program_reading_the_api_key_sees_nothing(fake_llm, tmp_path):
    seeds = write_jsonl(tmp_path / "s.jsonl", [{"id": "q", "question": "Q {{fake: answer=1; code=ENV}}", "answer": "1"}])
    out = tmp_path / "o"
    graphgen("solve", seeds, "-o", out, "--style", "code", "--paths", "2", cwd=tmp_path, env=cli_env(fake_llm.url))
    (run,) = {r["run"]["stdout"] for r in rows(out / "runs.jsonl")}
    assert run.strip() == "noenv"
    for f in out.iterdir():
        assert "sk-test-FAKE-KEY" not in f.read_text()


def test_dry_run_prices_the_paths_and_calls_nothing(fake_llm, tmp_path):
    seeds = write_jsonl(tmp_path / "s.jsonl", SEEDS)
    res = graphgen("solve", seeds, "-o", tmp_path / "o", "--paths", "3", "--dry-run", cwd=tmp_path,
                   env=cli_env(fake_llm.url))
    est = json.loads(res.stdout)
    assert est["calls"] == 3 * 3 * 2 and est["questions"] == 3 and est["already_done"] == 0
    assert fake_llm.stats()["total"] == 0


def test_bad_input_is_one_line(fake_llm, tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"text": "no question field here"}])
    res = graphgen("solve", bad, "-o", tmp_path / "o", cwd=tmp_path, env=cli_env(fake_llm.url), check=False)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "bad.jsonl:1" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_kill_9_and_resume_loses_nothing_and_pays_once(fake_llm, tmp_path):
    n = 40
    seeds = write_jsonl(tmp_path / "s.jsonl", [
        {"id": f"k{i}", "question": f"Kill test {i} {{{{fake: answer={i}; cot=R,R,W999,R; code=R,R,R,R}}}}",
         "answer": str(i)} for i in range(n)])
    fake_llm.set_latency(100)
    out = tmp_path / "o"
    args = ("solve", seeds, "-o", out, "--concurrency", "4", "--cache", "off", "--quiet")
    env = cli_env(fake_llm.url)
    proc = popen(*args, cwd=tmp_path, env=env)
    samples = out / "samples.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if samples.exists() and samples.read_text().count("\n") >= 60:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = samples.read_text().count("\n")
    assert 60 <= partial < 2 * 4 * n  # killed mid-run
    assert not (out / "verdicts.jsonl").exists()
    fake_llm.set_latency(0)
    graphgen(*args, cwd=tmp_path, env=env)
    ids = [r["id"] for r in rows(samples)]
    assert len(ids) == len(set(ids)) == 2 * 4 * n  # nothing lost, nothing twice
    stats = fake_llm.stats()
    paid_twice = sum(c - 1 for c in stats["ok_by_hash"].values() if c > 1)
    assert paid_twice <= 2 * 4  # at most the requests in flight at the kill (2 x concurrency)
    assert stats["ok"] - paid_twice == 2 * 4 * n
    v = rows(out / "verdicts.jsonl")
    assert len(v) == n and all(r["correct"] == 7 for r in v)


@pytest.mark.neo4j
def test_verdicts_in_neo4j_are_linked_to_their_question(neo4j_store, neo4j_clean):
    from graphgen.records import SeedQuestion, SolveVerdict

    store = neo4j_store
    store.add_seeds([SeedQuestion(id="s1", question="What is 1+1?", answer="2")])
    nasty = "x'}) DETACH DELETE n //"
    verdicts = [
        SolveVerdict(question_id="s1", question_kind="seed", method="gold", paths=4, answered=4,
                     votes={"2": 3, nasty: 1}, majority="2", agreement=0.75, correct=3, pass_rate=0.75,
                     majority_correct=True, kept=["p-1", "p-2"]),
        SolveVerdict(question_id="g-unknown", question_kind="concepts", method="vote", paths=2, answered=0),
    ]
    assert store.add_verdicts(verdicts) == 2
    assert store.add_verdicts(verdicts[:1]) == 1  # idempotent: replaced, not duplicated
    assert list(store.verdicts()) == sorted(verdicts, key=lambda v: v.question_id)
    with neo4j_clean.driver() as driver:
        records, _, _ = driver.execute_query(
            "MATCH (s:Seed)-[:HAS_VERDICT]->(v:Verdict) RETURN s.id AS s, v.pass_rate AS p", database_=neo4j_clean.database)
        assert [(r["s"], r["p"]) for r in records] == [("s1", 0.75)]
        records, _, _ = driver.execute_query("MATCH (v:Verdict) RETURN count(v) AS n", database_=neo4j_clean.database)
        assert records[0]["n"] == 2


def test_gold_detection_and_answer_field_override(tmp_path):
    from graphgen.stages.solve import SolveInputs, read_questions

    f = write_jsonl(tmp_path / "custom.jsonl", [
        {"id": "c1", "question": "Q1?", "final": "\\frac{1}{2}", "answer": "not this one"},
        {"id": "c2", "question": "Q2?", "final": "7"},
    ])
    qs = list(read_questions(SolveInputs(files=[str(f)]), None, "final"))
    assert [(q.id, q.gold, q.gold_from) for q in qs] == [("c1", "\\frac{1}{2}", "final"), ("c2", "7", "final")]
    qs = list(read_questions(SolveInputs(files=[str(f)], skip_invalid=True), None, None))
    # detected: the `answer` field when present; no gold at all -> judged by vote
    assert [(q.id, q.gold) for q in qs] == [("c1", "not this one"), ("c2", None)]


def test_difficulty_aware_samples_more_for_hard_questions(fake_llm, tmp_path):
    seeds = write_jsonl(tmp_path / "s.jsonl", [
        {"id": "hard", "question": "H {{fake: answer=3; cot=W9,W9,W9,R}}", "answer": "3"},
        {"id": "easy", "question": "E {{fake: answer=4; cot=R,R,R,R}}", "answer": "4"},
    ])
    out = tmp_path / "o"
    graphgen("solve", seeds, "-o", out, "--style", "cot", "--difficulty-aware", "--max-paths", "16",
             cwd=tmp_path, env=cli_env(fake_llm.url))
    v = {r["question_id"]: r for r in rows(out / "verdicts.jsonl")}
    # hard: 1 correct of 4 -> 2 more distinct needed at pass rate 0.25 -> 8 more paths; attempts
    # 8 and 12 are right again, so it reaches --keep 3 in the second round
    assert v["hard"]["paths"] == 12 and v["hard"]["correct"] == 3 and len(v["hard"]["kept"]) == 3
    assert v["easy"]["paths"] == 4 and len(v["easy"]["kept"]) == 3
    assert fake_llm.stats()["ok"] == 16


def test_no_failures_means_no_failures_file(fake_llm, tmp_path):
    seeds = write_jsonl(tmp_path / "s.jsonl", [
        {"id": "a", "question": "A {{fake: answer=4; cot=R,R; code=R,R}}", "answer": "4"}])
    out = tmp_path / "o"
    out.mkdir()
    (out / "failures.jsonl").write_text('{"kind": "llm", "reason": "an earlier run"}\n', encoding="utf-8")
    res = graphgen("solve", seeds, "-o", out, "--paths", "2", "--style", "both", cwd=tmp_path,
                   env=cli_env(fake_llm.url))
    assert rows(out / "verdicts.jsonl")[0]["correct"] == 4
    assert not (out / "failures.jsonl").exists() and "failures:" not in res.stdout
