"""Seed identity across files and text changes (issue 8 items 1 and 19): the real CLI, a real
SQLite workspace, a real HTTP LLM server."""

import json
import re
import sqlite3

import pytest

from clirun import cli_env, graphgen


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _rows(prefix, n):
    # two datasets that both number their rows 0, 1, 2 ...
    return [{"id": i, "question": f"{prefix} question {i}: how many apples are {i} + {i + 3}?", "answer": str(2 * i + 3)}
            for i in range(n)]


def _db(path, sql):
    con = sqlite3.connect(path)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_colliding_ids_across_files_are_refused_then_kept_apart_with_prefix_ids(tmp_path, fake_llm):
    env = cli_env(fake_llm.url)
    a = _write(tmp_path / "alpha.jsonl", _rows("Alpha", 32))
    b = _write(tmp_path / "beta.jsonl", _rows("Beta", 32))
    graphgen("extract", a, "--quiet", cwd=tmp_path, env=env)
    before = _db(tmp_path / "graphgen.db", "SELECT s.id, s.question, e.topics FROM seeds s JOIN extractions e ON e.seed_id = s.id ORDER BY s.id")
    assert len(before) == 32

    out = graphgen("extract", b, "--quiet", cwd=tmp_path, env=env, check=False)
    assert out.returncode == 1
    err = out.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert "already used in this workspace" in err and "'alpha'" in err and "--prefix-ids" in err
    # nothing of the second file overwrote the first
    assert _db(tmp_path / "graphgen.db", "SELECT s.id, s.question, e.topics FROM seeds s JOIN extractions e ON e.seed_id = s.id ORDER BY s.id") == before

    out = graphgen("extract", b, "--prefix-ids", "--quiet", cwd=tmp_path, env=env)
    assert "extracted 32" in out.stdout
    seeds = dict(_db(tmp_path / "graphgen.db", "SELECT id, source FROM seeds"))
    assert len(seeds) == 64 and seeds["0"] == "alpha" and seeds["beta-0"] == "beta"


def test_both_files_in_one_run_name_the_fix(tmp_path):
    a = _write(tmp_path / "alpha.jsonl", _rows("Alpha", 3))
    b = _write(tmp_path / "beta.jsonl", _rows("Beta", 3))
    out = graphgen("extract", a, b, "--dry-run", cwd=tmp_path, check=False)
    assert out.returncode == 1
    assert "beta.jsonl:1: duplicate id '0' (first seen at" in out.stderr and "--prefix-ids" in out.stderr


def test_changed_question_text_drops_the_stale_extraction(tmp_path, fake_llm):
    env = cli_env(fake_llm.url)
    rows = _rows("Alpha", 5)
    seeds = _write(tmp_path / "alpha.jsonl", rows)
    graphgen("extract", seeds, "--quiet", cwd=tmp_path, env=env)
    old = dict(_db(tmp_path / "graphgen.db", "SELECT seed_id, knowledge_points FROM extractions"))
    rows[2]["question"] = "A train travels 120 km in 2 hours. What is its average speed in km per hour?"
    _write(seeds, rows)
    out = graphgen("extract", seeds, "--quiet", cwd=tmp_path, env=env)
    assert "1 stored seeds have a new question text" in out.stderr
    assert "already done 4" in out.stdout and "extracted 1" in out.stdout
    new = dict(_db(tmp_path / "graphgen.db", "SELECT seed_id, knowledge_points FROM extractions"))
    assert new["2"] != old["2"] and {k: v for k, v in new.items() if k != "2"} == {k: v for k, v in old.items() if k != "2"}


def test_duplicate_question_error_says_how_to_keep_both_or_drop_one(tmp_path):
    seeds = _write(tmp_path / "s.jsonl", [{"question": "What is 2 + 2?"}, {"question": "What is 2 + 2?"}])
    out = graphgen("extract", seeds, "--dry-run", cwd=tmp_path, check=False)
    assert out.returncode == 1
    assert "s.jsonl:2: the same question as" in out.stderr
    assert "--id-field" in out.stderr and "--skip-invalid" in out.stderr


def test_an_existing_workspace_migrates_and_then_drops_stale_extractions(tmp_path):
    # a workspace made before migration 0002: only 0001 applied
    from graphgen.store.sqlite import MIGRATIONS, SQLiteStore

    db = tmp_path / "old.db"
    con = sqlite3.connect(db)
    con.executescript(MIGRATIONS[0][1])
    con.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at TEXT)")
    con.execute("INSERT INTO _migrations VALUES ('0001_initial', datetime('now'))")
    con.execute("INSERT INTO seeds VALUES ('7', 'old text', NULL, NULL, 'a')")
    con.execute("INSERT INTO extractions VALUES ('7', '[\"T\"]', '[\"K\"]', 'm', 'v', NULL)")
    con.commit()
    con.close()
    from graphgen.records import SeedQuestion

    with SQLiteStore(db) as store:
        assert store.extracted_seed_ids() == {"7"}
        store.add_seeds([SeedQuestion(id="7", question="old text", source="a")])
        assert store.extracted_seed_ids() == {"7"}  # same text: kept
        store.add_seeds([SeedQuestion(id="7", question="new text", source="a")])
        assert store.extracted_seed_ids() == set()
    names = [r[0] for r in _db(db, "SELECT name FROM _migrations ORDER BY name")]
    assert names[:2] == ["0001_initial", "0002_seed_text_change_drops_extraction"]  # later migrations follow


def _text_change_drops_extraction(store):
    from graphgen.records import Extraction, SeedQuestion

    store.add_seeds([SeedQuestion(id="7", question="old text", source="a"),
                     SeedQuestion(id="8", question="other", source="a")])
    store.add_extractions([Extraction(seed_id=i, topics=["T"], knowledge_points=["K"]) for i in ("7", "8")])
    store.add_seeds([SeedQuestion(id="7", question="old text", source="a", answer="3")])
    assert store.extracted_seed_ids() == {"7", "8"}  # same text: the extraction stays
    store.add_seeds([SeedQuestion(id="7", question="new text", source="a")])
    assert store.extracted_seed_ids() == {"8"}
    assert [e.seed_id for e in store.extractions()] == ["8"]


def test_sqlite_store_drops_extraction_when_text_changes(tmp_path):
    from graphgen.store.sqlite import SQLiteStore

    with SQLiteStore(tmp_path / "w.db") as store:
        _text_change_drops_extraction(store)


@pytest.mark.neo4j
def test_neo4j_store_drops_extraction_when_text_changes(neo4j_store):
    _text_change_drops_extraction(neo4j_store)


def test_a_truncated_gz_says_how_many_rows_were_read_before_the_break(tmp_path):
    import gzip

    data = "".join(json.dumps({"question": f"What is {i} plus {i}?"}) + "\n" for i in range(3000)).encode()
    packed = gzip.compress(data)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(packed[: len(packed) // 2])
    out = graphgen("extract", cut, "--dry-run", cwd=tmp_path, check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    err = out.stderr.strip()
    assert "cut short" in err and "rows were read up to the break" in err and "lost" in err
    read = int(re.search(r"(\d+) rows were read", err).group(1))
    assert 0 < read < 3000
    out = graphgen("extract", cut, "--dry-run", "--skip-invalid", cwd=tmp_path)
    assert json.loads(out.stdout)["seeds"] == read
    assert "1 rejected rows (a dry run writes no file): line" in out.stderr and ": truncated_file:" in out.stderr
    assert not (tmp_path / "rejects.jsonl").exists()


def test_a_megabyte_question_is_rejected_with_its_reason(tmp_path):
    seeds = _write(tmp_path / "s.jsonl", [{"question": "x" * 2_000_000}, {"question": "What is 1 + 1?"}])
    out = graphgen("extract", seeds, "--dry-run", "--skip-invalid", cwd=tmp_path)
    assert json.loads(out.stdout)["seeds"] == 1
    assert "line 1: question_too_long: " in out.stderr and "2,000,000 characters" in out.stderr
    assert not (tmp_path / "rejects.jsonl").exists()  # a dry run lists its rejects and writes no file


def test_multiple_choice_seeds_keep_their_choices_and_the_field_map_is_shown(tmp_path, fake_llm):
    rows = [
        {"question": "A car covers 60 km in 1.5 hours. Which of the following is its speed?",
         "options": ["A)30", "B)40", "C)45", "D)50", "E)60"], "rationale": "60 / 1.5 = 40", "correct": "B"},
        {"question": "Which of the following is prime?", "options": ["4", "6", "7", "9"],
         "rationale": "7 has no divisors but 1 and 7", "correct": "C"},
    ]
    seeds = _write(tmp_path / "aqua.jsonl", rows)
    out = graphgen("extract", seeds, "--quiet", cwd=tmp_path, env=cli_env(fake_llm.url))
    assert ("fields: " + str(seeds) + ": question <- 'question', solution <- 'rationale', answer <- 'correct', "
            "choices <- 'options', id <- (content hash)") in out.stderr
    stored = {q: (s, a) for q, s, a in _db(tmp_path / "graphgen.db", "SELECT question, solution, answer FROM seeds")}
    first = next(q for q in stored if q.startswith("A car"))
    assert first.endswith("Choices:\nA)30\nB)40\nC)45\nD)50\nE)60") and stored[first] == ("60 / 1.5 = 40", "B")
    second = next(q for q in stored if q.startswith("Which"))
    assert second.endswith("Choices:\nA) 4\nB) 6\nC) 7\nD) 9")


def test_the_field_map_names_parts_filled_by_the_gsm8k_and_math_rules(tmp_path):
    seeds = _write(tmp_path / "gsm.jsonl", [{"question": "What is 2 + 3?", "answer": "2 + 3 = 5\n#### 5"}])
    maths = _write(tmp_path / "math.jsonl", [{"problem": "Compute $2+3$.", "solution": "It is $\\boxed{5}$."}])
    out = graphgen("extract", seeds, maths, "--dry-run", cwd=tmp_path)
    assert f"{seeds}: question <- 'question', solution <- 'answer' (a worked text ending in '#### N'), " \
           "answer <- 'answer'" in out.stderr
    assert f"{maths}: question <- 'problem', solution <- 'solution', answer <- 'solution' (its last \\boxed{{}})" \
        in out.stderr
