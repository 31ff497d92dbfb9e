"""Seed input: every format, field auto-detection, stable ids, every bad-input case."""

from __future__ import annotations

import gzip
import json
import re
import shutil
from itertools import islice
from pathlib import Path

import pytest

from graphgen.records import RejectedRow, SeedQuestion
from graphgen.readers import (
    FieldMap,
    SeedInputError,
    SeedReadStats,
    read_benchmark_questions,
    read_seeds,
    stable_seed_id,
    write_rejects,
)

FIX = Path(__file__).parent / "fixtures" / "seeds"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def seeds_of(*paths, **kw) -> list[SeedQuestion]:
    out = list(read_seeds([str(p) for p in paths], **kw))
    assert all(isinstance(s, SeedQuestion) for s in out)
    return out


# --- formats --------------------------------------------------------------------------


def test_jsonl_autodetects_fields_and_skips_blank_lines():
    s = seeds_of(FIX / "good.jsonl")
    assert len(s) == 3
    gsm, math, own = s
    # GSM8K: the `answer` holds the worked solution ending in '#### N'
    assert gsm.question.startswith("Tom has 3 apples")
    assert gsm.answer == "7"
    assert gsm.solution.endswith("#### 7") and "<<3+4=7>>" in gsm.solution
    assert gsm.source == "good" and gsm.id == stable_seed_id(gsm.question, "good")
    # MATH style: problem / solution / answer / unique_id
    assert (math.id, math.question, math.solution, math.answer) == (
        "math/1", "What is $2^5$?", "$2^5 = 32$.", "32")
    # own id, numeric final_answer
    assert (own.id, own.answer, own.solution) == ("own-3", "40", None)


def test_json_list_and_data_wrapper():
    s = seeds_of(FIX / "good.json", FIX / "good_data.json")
    assert [x.answer for x in s] == ["42", "3", "12"]
    assert s[1].id == "7" and s[2].id == "c-1"
    assert s[2].question == "How many legs do 3 cats have?" and s[2].source == "good_data"


def test_csv_and_tsv():
    s = seeds_of(FIX / "good.csv")
    assert [x.id for x in s] == ["c1", "c2"]
    assert s[0].answer == "2.5" and s[0].solution == "10/4 = 2.5"
    assert s[1].question == "A line through (0,0) and (1,2).\nWhat is its slope?"
    assert s[1].solution is None  # empty CSV cell = absent
    (t,) = seeds_of(FIX / "good.tsv")
    assert t.question.startswith("Joan has 5 shells") and t.answer == "8.0"  # CSV text kept as written


def test_gzip_jsonl(tmp_path):
    gz = tmp_path / "packed.jsonl.gz"
    gz.write_bytes(gzip.compress((FIX / "good.jsonl").read_bytes()))
    s = seeds_of(gz)
    assert len(s) == 3 and s[0].source == "packed"


def _rows():
    return [
        {"question": f"What is {i} + {i}?", "answer": f"{i}+{i}=<<{i}+{i}={2*i}>>{2*i}\n#### {2*i}"}
        for i in range(10_000)
    ]


def test_parquet_in_batches(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "many.parquet"
    pq.write_table(pa.Table.from_pylist(_rows()), path, row_group_size=1000)
    stats = SeedReadStats()
    s = seeds_of(path, stats=stats)
    assert len(s) == 10_000 == stats.ok == stats.read
    assert s[9999].answer == "19998" and s[0].source == "many"
    assert len({x.id for x in s}) == 10_000


def test_hf_dataset_directory_round_trip(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = _rows()[:20]
    ds = datasets.Dataset.from_list(rows)
    ds.save_to_disk(str(tmp_path / "single"))
    s = seeds_of(tmp_path / "single")
    assert [x.question for x in s] == [r["question"] for r in rows]
    assert s[3].answer == "6" and s[0].source == "single"

    dd = datasets.DatasetDict({
        "train": datasets.Dataset.from_list(rows[:15]),
        "test": datasets.Dataset.from_list(rows[15:]),
    })
    dd.save_to_disk(str(tmp_path / "dd"))
    assert len(seeds_of(tmp_path / "dd")) == 20
    only_test = seeds_of(f"{tmp_path / 'dd'}:test")
    assert [x.question for x in only_test] == [r["question"] for r in rows[15:]]
    with pytest.raises(SeedInputError, match=r"no split 'dev'"):
        seeds_of(f"{tmp_path / 'dd'}:dev")


def test_explicit_field_map_and_source():
    s = seeds_of(FIX / "good.tsv", field_map=FieldMap(question="input", answer="target"),
                 source="mawps")
    assert s[0].source == "mawps" and s[0].id.startswith("mawps-")
    with pytest.raises(SeedInputError) as e:
        seeds_of(FIX / "good.tsv", field_map=FieldMap(answer="gold"))
    assert "good.tsv:2" in str(e.value) and "'gold'" in str(e.value) and "--answer-field" in str(e.value)


def test_stable_ids():
    a = stable_seed_id("What is  1 + 1?\n", "src")
    assert a == stable_seed_id("What is 1 + 1?", "src")  # whitespace-normalised
    assert a != stable_seed_id("What is 1 + 2?", "src")
    assert a.startswith("src-") and len(a) == len("src-") + 16
    first = [x.id for x in seeds_of(FIX / "good.jsonl")]
    assert first == [x.id for x in seeds_of(FIX / "good.jsonl")]


# --- real files ------------------------------------------------------------------------


@pytest.mark.skipif(not (SHARED / "seeds").exists(), reason="shared data not mounted")
def test_autodetect_real_gsm8k_and_math():
    gsm = list(islice(read_seeds(SHARED / "seeds" / "gsm8k_train.jsonl"), 50))
    assert len(gsm) == 50 and all(isinstance(s, SeedQuestion) for s in gsm)
    assert gsm[0].answer == "72" and gsm[0].solution.endswith("#### 72")
    assert all(s.answer and "####" not in s.answer and s.solution for s in gsm)
    assert all(s.id.startswith("gsm8k_train-") for s in gsm)

    math = list(islice(read_seeds(SHARED / "seeds" / "math_train.jsonl"), 50))
    assert len(math) == 50
    assert all(s.question and s.answer and s.solution is None for s in math)
    assert math[0].id == "test/prealgebra/947.json" and math[0].answer == "16"


@pytest.mark.skipif(not (SHARED / "benchmarks").exists(), reason="shared data not mounted")
@pytest.mark.parametrize("name,first_id,starts", [
    ("svamp", "svamp-chal-777", "There are 87 oranges and 290 bananas in Philip's collection. If the"),
    ("asdiv", "asdiv-0", "Seven red apples and two green apples are in the basket. How many apples"),
    ("mawps", "mawps-0", "Joan found 70 seashells on the beach."),
    ("college_math", "college_math-1", "Simplify: $-10-4(n-5)$"),
    ("math_test", "math_test-test/prealgebra/126.json", "What is $10.0000198"),
    ("gsm8k_test", "gsm8k_test-1", "Janet’s ducks lay 16 eggs"),
])
def test_benchmark_questions(name, first_id, starts):
    rows = list(read_benchmark_questions(SHARED / "benchmarks" / f"{name}.jsonl"))
    assert rows[0][0] == first_id and rows[0][1].startswith(starts)
    assert len({i for i, _ in rows}) == len(rows)
    assert all(isinstance(t, str) and t.strip() for _, t in rows)
    if name == "svamp":  # Body + Question joined
        assert rows[0][1].endswith("How big is each group of bananas?")


def test_benchmark_questions_bad_input():
    with pytest.raises(SeedInputError, match=r"missing_question.jsonl:2: no question field"):
        list(read_benchmark_questions(FIX / "missing_question.jsonl"))
    with pytest.raises(SeedInputError, match="empty file"):
        list(read_benchmark_questions(FIX / "empty.jsonl"))


# --- bad input: raising ------------------------------------------------------------------

BAD = [
    # file, location in the message, words the message must contain, reason code
    ("invalid_json.jsonl", "invalid_json.jsonl:2:", ["invalid JSON", "col", "--skip-invalid"], "invalid_json"),
    ("not_object.jsonl", "not_object.jsonl:2:", ["list, not an object"], "not_object"),
    ("missing_question.jsonl", "missing_question.jsonl:2:",
     ["no question field", "row has: text, answer", "--question-field"], "missing_question"),
    ("empty_question.jsonl", "empty_question.jsonl:2:", ["'question' is empty"], "empty_question"),
    ("non_string_question.jsonl", "non_string_question.jsonl:2:", ["is a int, not a string"],
     "non_string_question"),
    ("duplicate_id.jsonl", "duplicate_id.jsonl:3:", ["duplicate id 'q1'", "duplicate_id.jsonl:1"],
     "duplicate_id"),
    ("bad_row.csv", "bad_row.csv:3:", ["3 fields but the header has 2"], "malformed_row"),
    ("empty.jsonl", "empty.jsonl:", ["empty file"], "empty_file"),
    ("blank_lines.jsonl", "blank_lines.jsonl:", ["empty file"], "empty_file"),
    ("empty_list.json", "empty_list.json:", ["empty file"], "empty_file"),
    ("seeds.xml", "seeds.xml:", ["unknown file type '.xml'", ".jsonl"], "unknown_file_type"),
    ("broken.json", "broken.json:", ["invalid JSON", "line 2"], "unreadable_file"),
    ("broken.parquet", "broken.parquet:", ["not a readable Parquet file"], "unreadable_file"),
    ("does_not_exist.jsonl", "does_not_exist.jsonl:", ["no such file", "check the path"], "missing_file"),
]


@pytest.mark.parametrize("name,where,words,reason", BAD, ids=[b[0] for b in BAD])
def test_bad_input_raises_one_clear_line(name, where, words, reason):
    with pytest.raises(SeedInputError) as e:
        list(read_seeds(FIX / name))
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(str(FIX / name)), msg
    assert where in msg, msg
    for w in words:
        assert w in msg, msg
    assert isinstance(e.value, ValueError) and e.value.reason == reason


@pytest.mark.parametrize("name,where,words,reason", BAD, ids=[b[0] for b in BAD])
def test_bad_input_skip_invalid_rejects(name, where, words, reason):
    stats = SeedReadStats()
    out = list(read_seeds(FIX / name, skip_invalid=True, stats=stats))
    rejects = [r for r in out if isinstance(r, RejectedRow)]
    assert rejects and all(r.reason.startswith(reason + ":") for r in rejects)
    assert rejects[0].file == str(FIX / name)
    assert stats.read == stats.ok + stats.rejected == len(out)
    assert stats.by_reason == {reason: len(rejects)}


def test_duplicate_id_first_wins_and_normalised_text_duplicates():
    out = list(read_seeds(FIX / "duplicate_id.jsonl", skip_invalid=True))
    ok = [x for x in out if isinstance(x, SeedQuestion)]
    rej = [x for x in out if isinstance(x, RejectedRow)]
    assert [x.id for x in ok[:2]] == ["q1", "q2"] and ok[0].question == "What is 1 + 1?"
    assert len(ok) == 3  # q1, q2, first "What is 5 + 5?"
    assert [r.line for r in rej] == [3, 5]  # "What  is 5 + 5?" and "What is 5 + 5? " hash alike
    assert '"What is 3 + 3?"' in rej[0].raw


def test_mixed_bad_file_counts_add_up_and_rejects_file(tmp_path):
    stats = SeedReadStats()
    out = list(read_seeds(FIX / "mixed_bad.jsonl", skip_invalid=True, stats=stats))
    assert stats.read == 8 == len(out)
    assert stats.ok == 2 and stats.rejected == 6 and stats.read == stats.ok + stats.rejected
    assert stats.by_reason == {
        "invalid_json": 1, "not_object": 1, "missing_question": 1, "empty_question": 1,
        "non_string_question": 1, "duplicate_id": 1,
    }
    rej = [r for r in out if isinstance(r, RejectedRow)]
    assert [r.line for r in rej] == [2, 3, 4, 5, 6, 7]
    assert rej[0].raw == '{"question": "broken'
    assert "rejected 6" in stats.summary()

    path = tmp_path / "out" / "rejects.jsonl"
    assert write_rejects(rej, path) == 6
    back = [RejectedRow.model_validate_json(line) for line in path.read_text().splitlines()]
    assert back == rej


def test_raw_is_truncated(tmp_path):
    p = tmp_path / "big.jsonl"
    p.write_text(json.dumps({"question": 1, "pad": "x" * 10_000}) + "\n")
    (r,) = read_seeds(p, skip_invalid=True)
    assert isinstance(r, RejectedRow) and 2000 <= len(r.raw) <= 2100


def test_skip_invalid_goes_on_to_next_file():
    stats = SeedReadStats()
    out = list(read_seeds([FIX / "does_not_exist.jsonl", FIX / "good.jsonl"], skip_invalid=True,
                          stats=stats))
    assert isinstance(out[0], RejectedRow) and out[0].line == 0
    assert stats.ok == 3 and stats.rejected == 1 and stats.by_reason == {"missing_file": 1}


def test_parquet_row_errors_name_the_row(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "p.parquet"
    pq.write_table(pa.Table.from_pylist([{"question": "ok?"}, {"question": None}]), path)
    with pytest.raises(SeedInputError, match=r"p\.parquet: row 2: question field 'question' is null"):
        list(read_seeds(path))


def test_invalid_utf8_line(tmp_path):
    p = tmp_path / "enc.jsonl"
    p.write_bytes(b'{"question": "fine?"}\n{"question": "bad \xff"}\n')
    with pytest.raises(SeedInputError, match=r"enc\.jsonl:2: invalid UTF-8"):
        list(read_seeds(p))
    out = list(read_seeds(p, skip_invalid=True))
    assert out[1].reason.startswith("invalid_encoding")


def test_copy_of_fixture_keeps_label(tmp_path):
    # The message names the path as the user gave it.
    shutil.copy(FIX / "invalid_json.jsonl", tmp_path / "seeds.jsonl")
    with pytest.raises(SeedInputError) as e:
        list(read_seeds(str(tmp_path / "seeds.jsonl")))
    assert str(e.value) == (
        f"{tmp_path / 'seeds.jsonl'}:2: invalid JSON (Expecting ',' delimiter: col 31); "
        "fix the line or pass --skip-invalid"
    )


def test_math_boxed_answer_and_bare_gsm8k_marker():
    boxed, bare = seeds_of(FIX / "math_original.jsonl")
    assert boxed.answer == "\\frac{1}{2}" and boxed.solution.startswith("We add")
    assert (bare.answer, bare.solution) == ("5", None)  # '#### 5' alone is no worked solution


def test_json_error_text_has_no_doubled_words(tmp_path):
    # json's messages for these end in "at" ("Unterminated string starting at"): the
    # position follows after a colon, as in Python's own text, never as "at at col 25"
    p = tmp_path / "seeds.jsonl"
    p.write_text('{"id": "a", "question": "What is 1 + 1?"}\n{"id": "b", "question": "oops}')  # no newline: a control character
    with pytest.raises(SeedInputError) as e:
        list(read_seeds(p))
    assert str(e.value).endswith(":2: invalid JSON (Unterminated string starting at: col 25); "
                                 "fix the line or pass --skip-invalid")
    q = tmp_path / "seeds.json"
    q.write_text('[{"id": "a", "question": "oops}]')
    with pytest.raises(SeedInputError) as e:
        list(read_seeds(q))
    assert "invalid JSON (Unterminated string starting at: line 1 col 26)" in str(e.value)
    assert not re.search(r"\b(\w+) \1\b", str(e.value))


def test_extra_fields_are_metadata_and_carp_fields_are_detected(tmp_path):
    """MATH `level`/`type`, Minerva `type` are kept (as metadata, in the store too); CARP's
    `content` and `steps` are its question and solution."""
    from graphgen.readers import read_seeds
    from graphgen.store.sqlite import SQLiteStore

    src = tmp_path / "mixed.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in [
        {"problem": "Find $x$ if $2x=6$.", "solution": "$x=\\boxed{3}$", "level": "Level 2", "type": "Algebra"},
        {"problem": "A star's flux ...", "solution": "\\boxed{4}", "type": "Introduction to Astronomy (8.282J Spring 2006)",
         "idx": 7, "extra": {"nested": True}},
        {"content": "小明有3个苹果，又买了5个，现在有几个？", "steps": "3+5=8", "answer": "8", "grade": 3},
    ]) + "\n", encoding="utf-8")
    math, minerva, carp = read_seeds(src)
    assert math.metadata == {"level": "Level 2", "type": "Algebra"} and math.answer == "3"
    assert minerva.metadata == {"type": "Introduction to Astronomy (8.282J Spring 2006)"}  # idx is the id
    assert carp.question.startswith("小明") and carp.solution == "3+5=8" and carp.metadata == {"grade": 3}
    with SQLiteStore(tmp_path / "ws.db") as store:
        store.add_seeds([math, minerva, carp])
        assert {s.id: s.metadata for s in store.seeds()} == {s.id: s.metadata for s in (math, minerva, carp)}
