"""`graphgen filter` against the real benchmark files, with planted truth.

One run of the real CLI over a planted input: exact copies, near copies (a few words
changed), benchmark items copied verbatim, with their numbers changed, and embedded in a
longer question, from all six benchmark files; plus distinct templated questions that share
most of their wording. Recall on every planted kind must be >= 0.99 and nothing distinct
may be removed.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from clirun import EXAMPLES, SHARED, graphgen
from graphgen import neardup

BENCH_DIR = SHARED / "data" / "benchmarks"
EXAMPLES_BENCH = EXAMPLES / "benchmarks"
SEEDS_DIR = SHARED / "data" / "seeds"
BENCHMARKS = ["gsm8k_test", "math_test", "svamp", "asdiv", "mawps", "college_math"]
PER_BENCHMARK = 40


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _bench_question(row: dict) -> str:
    for body in ("body", "Body"):
        if row.get(body):
            q = row.get("question") or row.get("Question")
            return f"{row[body].strip()} {q.strip()}"
    for name in ("question", "problem", "input"):
        if row.get(name):
            return row[name]
    raise KeyError(row)


def _change_numbers(text: str, rng: random.Random) -> str:
    return re.sub(r"\d+", lambda m: str(int(m.group()) + rng.randint(1, 9)), text)


def _change_words(text: str, rng: random.Random, vocab: list[str]) -> str:
    """Replace one word in every 25 (at least one, at most three) by another word."""
    parts = text.split(" ")
    idx = [i for i, w in enumerate(parts) if re.fullmatch(r"[A-Za-z]{3,}[,.]?", w)]
    for i in rng.sample(idx, min(len(idx), 3, max(1, len(neardup.words(text)) // 25))):
        parts[i] = rng.choice(vocab)
    return " ".join(parts)


def _shingles(text: str) -> set:
    """The word 1..2-gram shingles the filter's MinHash estimates Jaccard over (numbers
    masked in rows of at least NEAR_MASK_MIN_WORDS words, the default)."""
    w = neardup.words(text)
    if sum(t.isalpha() for t in w) >= neardup.NEAR_MASK_MIN_WORDS:
        w = [t if t.isalpha() else "#" for t in w]
    return {tuple(w[i:i + k]) for k in (1, 2) for i in range(len(w) - k + 1)}


def _jaccard(a: str, b: str) -> float:
    """True Jaccard of the shingle sets the filter's MinHash estimates."""
    x, y = _shingles(a), _shingles(b)
    return len(x & y) / max(1, len(x | y))


NAMES = ["Ava", "Ben", "Chloe", "Diego", "Emma", "Farah", "Gus", "Hana", "Ivan", "Jade", "Kofi", "Lena"]
THINGS = ["apples", "marbles", "stickers", "pencils", "books", "coins", "shells", "cards", "stamps", "cookies"]
VERBS = ["finds", "buys", "is given", "wins", "collects", "bakes"]


def _templated(n: int, rng: random.Random) -> list[str]:
    """Distinct questions sharing one template's wording ("How many ... does X have?")."""
    out, seen = [], set()
    while len(out) < n:
        a, b = rng.sample(NAMES, 2)
        thing, other = rng.sample(THINGS, 2)
        verb = rng.choice(VERBS)
        x, y, z = rng.randint(2, 90), rng.randint(2, 90), rng.randint(2, 9)
        q = (f"{a} has {x} {thing} and {y} {other}. {a} {verb} {z} times as many {thing} as {b} "
             f"gave away. How many {thing} does {a} have now?")
        if q not in seen:
            seen.add(q)
            out.append(q)
    return out


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    rng = random.Random(11)
    work = tmp_path_factory.mktemp("filter")
    seeds = [r["question"] for r in _jsonl(SEEDS_DIR / "gsm8k_train.jsonl")[:3000]]
    seeds += [r["problem"] for r in _jsonl(SEEDS_DIR / "math_train.jsonl")[:3000]]
    vocab = sorted({w for q in seeds[:300] for w in re.findall(r"[a-z]{4,}", q)})
    rows, truth = [], {}

    def add(question: str, expect: str | None, **extra) -> str:
        row_id = f"r{len(rows):05d}"
        rows.append({"id": row_id, "kind": "concepts", "question": question, "solution": "s", "answer": "1", **extra})
        truth[row_id] = expect
        return row_id

    originals = rng.sample(range(len(seeds)), 600)
    exact_of, near_of = {}, {}
    for k, i in enumerate(originals[:150]):
        first = add(seeds[i], None)
        exact_of[add("  " + seeds[i].upper().replace(" ", "   ") + " ", "duplicate")] = first
    long_enough = [i for i in originals[150:] if len(neardup.words(seeds[i])) >= 25][:150]
    for i in long_enough:
        first = add(seeds[i], None)
        near = _change_words(seeds[i], rng, vocab)
        # a copy the filter must remove is one clearly above the 0.8 threshold (true shingle
        # Jaccard >= 0.85): at 0.78-0.84 the 128-value MinHash estimate falls on either side
        # by chance (its standard error is ~0.035), so such copies test the hash, not the filter
        near_of[add(near, "near_duplicate" if _jaccard(near, seeds[i]) >= 0.85 else None)] = first
    bench_of = {}
    for name in BENCHMARKS:
        items = [_bench_question(r) for r in _jsonl(BENCH_DIR / f"{name}.jsonl")]
        picks = rng.sample(items, PER_BENCHMARK * 3)
        for q in picks[:PER_BENCHMARK]:
            bench_of[add(q, "contaminated")] = name
        # numbers changed: items long enough for an n-gram of words between the numbers
        numeric = [q for q in picks[PER_BENCHMARK:] if re.search(r"\d", q) and len(neardup.words(q)) >= 13]
        for q in numeric[:PER_BENCHMARK]:
            bench_of[add(_change_numbers(q, rng), "contaminated-numbers")] = name
        for q in picks[2 * PER_BENCHMARK:]:
            bench_of[add(f"Here is a harder version for practice. {q} Then explain each step and "
                         f"check the result with a second method.", "contaminated-embedded")] = name
    distinct = [add(q, "distinct") for q in _templated(300, rng)]
    inputs = _write(work / "generated.jsonl", rows)
    graphgen("filter", inputs, "-o", work / "out" / "kept.jsonl", "--benchmarks", BENCH_DIR, "--quiet", cwd=work)
    kept = {r["id"]: r for r in _jsonl(work / "out" / "kept.jsonl")}
    removed = {r["id"]: r for r in _jsonl(work / "out" / "kept.removed.jsonl")}
    report = json.loads((work / "out" / "kept.report.json").read_text())
    return dict(rows=rows, truth=truth, kept=kept, removed=removed, report=report, exact_of=exact_of,
                near_of=near_of, bench_of=bench_of, distinct=distinct, work=work)


def _recall(planted, expect: str, check) -> float:
    ids = [i for i, e in planted["truth"].items() if e == expect]
    assert len(ids) >= 100 or expect.startswith("contaminated"), (expect, len(ids))
    hits = sum(1 for i in ids if i in planted["removed"] and check(i, planted["removed"][i]["reason"]))
    return hits / len(ids)


def test_every_row_is_kept_or_removed_once(planted):
    assert len(planted["kept"]) + len(planted["removed"]) == len(planted["rows"])
    assert not set(planted["kept"]) & set(planted["removed"])
    # kept rows are written exactly as read
    by_id = {r["id"]: r for r in planted["rows"]}
    assert all(row == by_id[i] for i, row in planted["kept"].items())
    assert all(r["row"] == by_id[i] for i, r in planted["removed"].items())


def test_exact_copies_are_removed_against_the_kept_original(planted):
    def ok(i, reason):
        if reason["kind"] == "contaminated":  # the original is a benchmark copy too
            return True
        return reason["kind"] == "duplicate" and reason["of"] == planted["exact_of"][i] and reason["of"] in planted["kept"]

    assert _recall(planted, "duplicate", ok) >= 0.99


def test_near_copies_are_removed_with_their_similarity(planted):
    def ok(i, reason):
        if reason["kind"] == "contaminated":
            return True
        return (reason["kind"] == "near_duplicate" and reason["of"] == planted["near_of"][i]
                and reason["similarity"] >= 0.8 and reason["cluster"] == reason["of"])

    assert _recall(planted, "near_duplicate", ok) >= 0.99


@pytest.mark.parametrize("kind", ["contaminated", "contaminated-numbers", "contaminated-embedded"])
def test_benchmark_copies_are_removed_naming_benchmark_item_and_ngram(planted, kind):
    def ok(i, reason):
        return (reason["kind"] == "contaminated" and reason["benchmark"] in BENCHMARKS
                and reason["item_id"] and reason["ngram"] and reason["field"] == "question")

    assert _recall(planted, kind, ok) >= 0.99
    # every benchmark file contributed planted copies, and each is reported
    names = {planted["bench_of"][i] for i, e in planted["truth"].items() if e == kind}
    assert names == set(BENCHMARKS)


def test_distinct_templated_questions_are_all_kept(planted):
    # distinct: below 0.7 true Jaccard (MinHash estimates err by ~0.035) to every other templated question. Two instances that
    # differ only in their numbers and one name are a number-shifted copy with one word
    # replaced, which the default (numbers masked, issue 21) removes on purpose.
    by_id = {r["id"]: r["question"] for r in planted["rows"]}
    shingles = {i: _shingles(by_id[i]) for i in planted["distinct"]}
    distinct = [i for i in planted["distinct"]
                if all(len(shingles[i] & shingles[j]) < 0.7 * len(shingles[i] | shingles[j])
                       for j in planted["distinct"] if j != i)]
    assert len(distinct) >= 80
    lost = [planted["removed"][i]["reason"]["message"] for i in distinct if i not in planted["kept"]]
    assert lost == []


def test_report_counts_per_benchmark_and_kind(planted):
    report = planted["report"]
    assert report["kept"] == len(planted["kept"]) and report["removed"] == len(planted["removed"])
    by_name = {b["name"]: b for b in report["benchmarks"]}
    assert set(by_name) == set(BENCHMARKS)
    for name in BENCHMARKS:
        assert by_name[name]["items"] > 100
        assert by_name[name]["items_matched"] >= PER_BENCHMARK
        assert by_name[name]["rows_removed"] >= 1 and by_name[name]["examples"]
    removed_kinds = {r["reason"]["kind"] for r in planted["removed"].values()}
    assert {"duplicate", "near_duplicate", "contaminated"} <= removed_kinds
    assert report["removed_by_kind"]["contaminated"] == sum(b["rows_removed"] for b in report["benchmarks"])
    assert report["clusters"]["near_duplicate"] >= 100


def test_keep_rule_verified_first_then_earliest_and_export_reads_kept(tmp_path):
    q = "A baker makes 24 muffins and sells them in boxes of 4. How many boxes does the baker fill?"
    rows = [
        {"id": "g1", "kind": "concepts", "question": q, "solution": "24/4=6", "answer": "6"},
        {"id": "g2", "kind": "concepts", "question": q.lower(), "solution": "6", "answer": "6", "verified": True},
        {"id": "g3", "kind": "concepts", "question": q + " ", "solution": "6", "answer": "6", "verified": True},
        {"id": "g4", "kind": "concepts", "status": "failed", "question": "", "error": "timeout"},
    ]
    src = _write(tmp_path / "gen.jsonl", rows)
    proc = graphgen("filter", src, "-o", "kept.jsonl", "--quiet", cwd=tmp_path)
    assert "no benchmarks given" in proc.stdout
    kept = _jsonl(tmp_path / "kept.jsonl")
    assert [r["id"] for r in kept] == ["g2"]
    removed = {r["id"]: r["reason"] for r in _jsonl(tmp_path / "kept.removed.jsonl")}
    assert removed["g1"]["of"] == "g2" and removed["g3"]["of"] == "g2"
    assert removed["g4"]["kind"] == "failed"
    graphgen("export", "kept.jsonl", "-o", "train.jsonl", "--layout", "alpaca", cwd=tmp_path)
    exported = _jsonl(tmp_path / "train.jsonl")
    assert [r["metadata"]["id"] for r in exported] == ["g2"]


def test_solutions_short_items_and_seed_files(tmp_path):
    bench = _write(tmp_path / "mini_bench.jsonl", [
        {"question": "Simplify $\\sqrt{245}$.", "answer": "7\\sqrt{5}"},
        {"question": "Tom has 3 red balls and 4 blue balls in a bag and picks two without looking. "
                     "What is the chance both are red?", "answer": "1/7"},
    ])
    seeds = _write(tmp_path / "seeds.jsonl", [
        {"question": "First simplify $\\sqrt{245}$ and then add 3.", "answer": "x"},
        {"question": "What is 2+2?", "answer": "4", "solution": "As in: Tom has 3 red balls and 4 blue "
                     "balls in a bag and picks two without looking, 2+2=4"},
        {"question": "Simplify $\\sqrt{246}$.", "answer": "y"},
        {"question": "Simplify $\\sqrt{246}$.", "answer": "y"},  # same question, same content id
    ])
    graphgen("filter", seeds, "--seeds", "-o", "kept.jsonl", "--benchmarks", bench, "--quiet", cwd=tmp_path)
    assert [r["question"] for r in _jsonl(tmp_path / "kept.jsonl")] == ["What is 2+2?", "Simplify $\\sqrt{246}$."]
    contaminated, duplicate = [r["reason"] for r in _jsonl(tmp_path / "kept.removed.jsonl")]
    assert contaminated["match"] == "contained" and contaminated["ngram"] == "simplify sqrt 245"
    assert duplicate["kind"] == "duplicate"
    graphgen("filter", seeds, "--seeds", "-o", "kept.jsonl", "--benchmarks", bench, "--solutions",
             "--ngram", "8", "--quiet", cwd=tmp_path)
    reasons = {r["reason"].get("field") for r in _jsonl(tmp_path / "kept.removed.jsonl")}
    assert reasons == {"question", "solution", None}


def test_short_items_with_other_numbers_or_one_word_changed_are_contaminated(tmp_path):
    # issue 18: no window of 13 words is free of the change in these, so the n-gram rule missed them
    bench = _write(tmp_path / "mini_bench.jsonl", [
        {"question": "What is the largest prime factor of 1337?", "answer": "191"},
        {"question": "A baker makes 24 muffins and sells them in boxes of 6. How many boxes does the "
                     "baker fill?", "answer": "4"},
        {"question": "Simplify $\\sqrt{245}$.", "answer": "7\\sqrt{5}"},
    ])
    seeds = _write(tmp_path / "seeds.jsonl", [
        {"id": "numbers", "question": "What is the largest prime factor of 3328?"},
        {"id": "word", "question": "A baker makes 24 muffins and sells them in crates of 6. How many boxes does "
                                   "the baker fill?"},
        {"id": "two-words", "question": "A baker makes 24 cookies and sells them in bags of 6. How many "
                                        "boxes does the baker fill?"},
        {"id": "bare", "question": "Simplify $\\sqrt{246}$."},  # one word: the numbers are the problem
        {"id": "other", "question": "What is the sum of the prime factors of 1337?"},
    ])
    graphgen("filter", seeds, "--seeds", "-o", "kept.jsonl", "--benchmarks", bench, "--no-near", "--quiet",
             cwd=tmp_path)
    assert [r["id"] for r in _jsonl(tmp_path / "kept.jsonl")] == ["two-words", "bare", "other"]
    removed = {r["id"]: r["reason"] for r in _jsonl(tmp_path / "kept.removed.jsonl")}
    assert removed["numbers"]["match"] == "contained-numbers" and removed["numbers"]["item_id"]
    assert removed["word"]["match"] == "one-word-changed" and "one word changed" in removed["word"]["message"]
    graphgen("filter", seeds, "--seeds", "-o", "kept2.jsonl", "--benchmarks", bench, "--no-number-variants",
             "--no-near", "--quiet", cwd=tmp_path)
    assert [r["id"] for r in _jsonl(tmp_path / "kept2.removed.jsonl")] == ["word"]


def test_benchmark_without_question_field_is_one_line(tmp_path):
    bad = _write(tmp_path / "weird.jsonl", [{"prompt_text": "x", "gold": 1}])
    src = _write(tmp_path / "gen.jsonl", [{"id": "a", "question": "What is 1+1?"}])
    proc = graphgen("filter", src, "-o", "kept.jsonl", "--benchmarks", bad, cwd=tmp_path, check=False)
    assert proc.returncode == 1
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and "weird.jsonl" in err[0] and "prompt_text, gold" in err[0]
    assert "--benchmark-question-field" in err[0] and "Traceback" not in proc.stderr
    graphgen("filter", src, "-o", "kept.jsonl", "--benchmarks", bad, "--benchmark-question-field", "prompt_text",
             "--quiet", cwd=tmp_path)
    assert not (tmp_path / "kept.removed.jsonl").read_text()


def test_bad_rows_stop_or_go_to_rejects(tmp_path):
    src = tmp_path / "gen.jsonl"
    src.write_text('{"id": "a", "question": "What is 1+1?"}\n{not json\n{"id": "b", "question": "What is 2+3?"}\n')
    proc = graphgen("filter", src, "-o", "kept.jsonl", cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "gen.jsonl:2" in proc.stderr and "--skip-invalid" in proc.stderr
    assert not (tmp_path / "kept.jsonl").exists()
    graphgen("filter", src, "-o", "kept.jsonl", "--skip-invalid", "--quiet", cwd=tmp_path)
    assert [r["id"] for r in _jsonl(tmp_path / "kept.jsonl")] == ["a", "b"]
    (rej,) = _jsonl(tmp_path / "rejects.jsonl")
    assert rej["line"] == 2 and rej["reason"].startswith("invalid_json")


def test_parquet_input_and_settings_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    q = "Lily reads 12 pages on Monday and twice as many on Tuesday. How many pages did she read?"
    pq.write_table(pa.Table.from_pylist([{"id": "p1", "question": q}, {"id": "p2", "question": q.upper()},
                                         {"id": "p3", "question": "Compute 7 * 8."}]), tmp_path / "rows.parquet")
    bench = _write(tmp_path / "b.jsonl", [{"problem": "Compute 7 * 8."}])
    (tmp_path / "graphgen.toml").write_text(f'[filter]\nbenchmarks = ["{bench}"]\n')
    proc = graphgen("filter", "rows.parquet", "-o", "kept.jsonl", "--json", "--quiet", cwd=tmp_path)
    report = json.loads(proc.stdout)
    assert report["removed_by_kind"] == {"duplicate": 1, "contaminated": 1}
    assert [r["id"] for r in _jsonl(tmp_path / "kept.jsonl")] == ["p1"]


def test_semantic_duplicates_and_benchmark_paraphrases(tmp_path):
    bench = EXAMPLES_BENCH / "gsm8k_test_sample.jsonl"
    rows = [
        {"id": "t1", "question": "Tom has 12 apples and gives 3 to Mary. How many apples does Tom have left?"},
        {"id": "t2", "question": "Tom has 12 apples and he gives 3 of them to Mary. How many apples does Tom have now?"},
        {"id": "s1", "question": "Sara has 15 marbles and loses 4 in the park. How many marbles does Sara still have?"},
        {"id": "p1", "question": "Each day Janet's ducks lay 16 eggs. Every morning she eats three of them for "
                                 "breakfast and uses four to bake muffins for her friends. She sells the rest at the "
                                 "farmers' market for $2 per egg. How many dollars does she make each day at the market?"},
        {"id": "p2", "question": "To make a robe you need 2 bolts of blue fiber and half as much white fiber. "
                                 "How many bolts are needed in total?"},
    ]
    src = _write(tmp_path / "gen.jsonl", rows)
    env_args = ("--benchmarks", bench, "--embeddings-cache", tmp_path / "emb.db", "--quiet")
    # without --semantic the rewordings pass: they share too few shingles
    graphgen("filter", src, "-o", "plain.jsonl", "--removed", "plain-removed.jsonl", *env_args, cwd=tmp_path)
    assert len(_jsonl(tmp_path / "plain.jsonl")) == 5
    graphgen("filter", src, "-o", "kept.jsonl", "--semantic", *env_args, cwd=tmp_path)
    assert [r["id"] for r in _jsonl(tmp_path / "kept.jsonl")] == ["t1", "s1", "p1", "p2"]
    (dup,) = _jsonl(tmp_path / "kept.removed.jsonl")
    assert dup["id"] == "t2" and dup["reason"]["kind"] == "semantic_duplicate" and dup["reason"]["of"] == "t1"
    assert dup["reason"]["similarity"] >= 0.95
    flagged = {r["id"]: r["reason"] for r in _jsonl(tmp_path / "kept.flagged.jsonl")}
    assert set(flagged) == {"p1", "p2"}
    assert flagged["p1"]["item_id"] == "gsm8k_test_sample-1" and flagged["p1"]["similarity"] >= 0.9
    assert flagged["p2"]["item_id"] == "gsm8k_test_sample-2"
    graphgen("filter", src, "-o", "kept.jsonl", "--semantic", "--drop-paraphrases", *env_args, cwd=tmp_path)
    assert [r["id"] for r in _jsonl(tmp_path / "kept.jsonl")] == ["t1", "s1"]
    removed = {r["id"]: r["reason"]["kind"] for r in _jsonl(tmp_path / "kept.removed.jsonl")}
    assert removed == {"t2": "semantic_duplicate", "p1": "paraphrase", "p2": "paraphrase"}
    report = json.loads((tmp_path / "kept.report.json").read_text())
    assert report["benchmarks"][0]["paraphrases"] == 2 and report["clusters"]["semantic_duplicate"] == 1


def test_decontamination_needs_the_item_covered_and_names_every_shared_ngram(tmp_path):
    """A sibling problem that shares one stock sentence with a long benchmark item is not a copy
    (real case: MATH train/test problems sharing 'express your answer as a decimal to the nearest
    tenth'); a copy, or a copy inside a longer question, is, and the reason lists every n-gram
    it shares and how much of the item they cover."""
    stem = "What is the value of x? Express your answer as a decimal to the nearest tenth of a unit please."
    item = ("A rectangular garden is twelve meters long and seven meters wide and a path one meter wide runs "
            "around the outside of the garden. " + stem)
    bench = _write(tmp_path / "bench.jsonl", [{"id": "b1", "question": item}])
    sibling = ("Two trains leave the station at noon, one going north at forty miles an hour and the other "
               "going south at fifty-five miles an hour, and they keep going for hours. " + stem)
    rows = [{"id": "sib", "kind": "concepts", "question": sibling},
            {"id": "copy", "kind": "concepts", "question": "Here is one to try. " + item + " Show your work."}]
    src = _write(tmp_path / "gen.jsonl", rows)
    graphgen("filter", src, "-o", "kept.jsonl", "--benchmarks", bench, "--quiet", cwd=tmp_path)
    assert [r["id"] for r in _jsonl(tmp_path / "kept.jsonl")] == ["sib"]
    (removed,) = _jsonl(tmp_path / "kept.removed.jsonl")
    reason = removed["reason"]
    assert removed["id"] == "copy" and reason["coverage"] == 1.0 and len(reason["ngrams"]) >= 10
    assert reason["ngrams"][0] == reason["ngram"] and "and" in reason["message"] and "100% of the item covered" in reason["message"]
    # the old rule (any one shared 13-gram) removes the sibling too
    graphgen("filter", src, "-o", "old.jsonl", "--benchmarks", bench, "--min-item-coverage", "0", "--quiet", cwd=tmp_path)
    assert _jsonl(tmp_path / "old.jsonl") == []
    # boilerplate: an n-gram two benchmark items share never matches when --boilerplate-items 2
    bench2 = _write(tmp_path / "bench2.jsonl", [{"id": "b1", "question": item},
                                                {"id": "b2", "question": "Find the area of the circle. " + stem}])
    graphgen("filter", src, "-o", "b.jsonl", "--benchmarks", bench2, "--min-item-coverage", "0",
             "--boilerplate-items", "2", "--quiet", cwd=tmp_path)
    assert [r["id"] for r in _jsonl(tmp_path / "b.jsonl")] == ["sib"]
    report = json.loads((tmp_path / "b.report.json").read_text())
    assert report["settings"]["boilerplate_ngrams_dropped"] > 0
    assert any("nearest tenth" in k for k in report["settings"]["boilerplate_examples"])


def _variant(vid: str, original: str, a: int, b: int) -> dict:
    q = (f"A shop sells {a} pencils in the morning and {b} pencils in the afternoon, each pencil costing the "
         "same amount of money, and the owner writes every sale into a notebook at the end of the day. "
         "How many pencils did the shop sell in total during the whole day?")
    row = {"id": vid, "kind": "variant" if original else "concepts", "question": q, "solution": "s",
           "answer": str(a + b)}
    if original:
        row["variant"] = {"original_id": original, "original_question": "q", "original_answer": "1",
                          "mode": "similar", "draw": "0.0", "seed": 1}
    return row


def test_variants_of_one_question_are_not_near_duplicates_of_each_other(tmp_path):
    rows = [_variant("o1", "", 12, 30)] + [_variant(f"v{k}", "o1", 12 + k, 30 + 2 * k) for k in range(1, 5)]
    # the same texts without lineage are near duplicates of each other
    rows += [dict(_variant(f"x{k}", "", 12 + k, 30 + 2 * k), id=f"x{k}") for k in (1, 2)]
    src = _write(tmp_path / "gen.jsonl", rows)
    graphgen("filter", src, "-o", "kept.jsonl", "--quiet", cwd=tmp_path)
    kept = [r["id"] for r in _jsonl(tmp_path / "kept.jsonl")]
    removed = {r["id"]: r["reason"] for r in _jsonl(tmp_path / "kept.removed.jsonl")}
    assert kept == ["o1", "v1", "v2", "v3", "v4"]
    # x1 and x2 are copies of v1 and v2 (other lineages): removed against a row of the family
    assert set(removed) == {"x1", "x2"} and {r["kind"] for r in removed.values()} <= {"duplicate", "near_duplicate"}
    # without their lineage, the same four texts are near duplicates of each other
    plain = _write(tmp_path / "plain.jsonl", [dict(_variant(f"y{k}", "", 12 + k, 30 + 2 * k)) for k in range(1, 5)])
    graphgen("filter", plain, "-o", "plain-kept.jsonl", "--quiet", cwd=tmp_path)
    assert {r["reason"]["kind"] for r in _jsonl(tmp_path / "plain-kept.removed.jsonl")} == {"near_duplicate"}


def test_filter_reads_every_row_graphgen_writes(tmp_path):
    q1 = "A baker makes 24 muffins and sells them in boxes of 4. How many boxes does the baker fill?"
    q2 = "A farmer plants 7 rows of 9 trees each and then 5 more trees. How many trees are planted?"
    gen = [{"id": "g1", "kind": "concepts", "question": q1, "solution": "24/4", "answer": "6"},
           {"id": "g2", "kind": "concepts", "question": q2, "solution": "63+5", "answer": "68"},
           {"id": "g3", "kind": "concepts", "question": q1.upper(), "solution": "6", "answer": "6"}]
    src = _write(tmp_path / "gen.jsonl", gen)
    for layout in ("alpaca", "sharegpt", "chatml", "raw"):
        graphgen("export", src, "-o", f"{layout}.jsonl", "--layout", layout, cwd=tmp_path)
        res = graphgen("filter", f"{layout}.jsonl", "-o", f"kept-{layout}.jsonl", "--quiet", cwd=tmp_path)
        assert "rejected 0" in res.stdout, (layout, res.stdout)
        assert [r["metadata"]["id"] for r in _jsonl(tmp_path / f"kept-{layout}.jsonl")] == ["g1", "g2"], layout
        (dup,) = _jsonl(tmp_path / f"kept-{layout}.removed.jsonl")
        assert dup["id"] == "g3" and dup["reason"]["of"] == "g1", layout
    # solve's paths: question text from the verdicts.jsonl next to them; paths of one question
    # are siblings, a path of another question with the same text is a duplicate
    solved = tmp_path / "solved"
    solved.mkdir()
    _write(solved / "verdicts.jsonl", [
        {"question_id": "q1", "question_kind": "seed", "question": q1, "method": "gold", "paths": 2, "answered": 2},
        {"question_id": "q9", "question_kind": "seed", "question": q1, "method": "gold", "paths": 1, "answered": 1},
        {"question_id": "q2", "question_kind": "seed", "question": q2, "method": "gold", "paths": 1, "answered": 1}])
    path = lambda pid, qid, text: {"id": pid, "question_id": qid, "question_kind": "seed", "style": "cot",  # noqa: E731
                                   "index": 0, "text": text, "answer": "6", "correct": True}
    _write(solved / "paths.jsonl", [path("p1", "q1", "24/4 = 6"), path("p2", "q1", "4 * 6 = 24 so 6"),
                                    path("p3", "q2", "63 + 5 = 68"), path("p4", "q9", "six")])
    graphgen("filter", solved / "paths.jsonl", "-o", "kept-paths.jsonl", "--quiet", cwd=tmp_path)
    assert [r["id"] for r in _jsonl(tmp_path / "kept-paths.jsonl")] == ["p1", "p2", "p3"]
    (dup,) = _jsonl(tmp_path / "kept-paths.removed.jsonl")
    assert dup["id"] == "p4" and dup["reason"]["kind"] == "duplicate"
