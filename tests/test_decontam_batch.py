"""The batch decontamination of issue 21: the numpy tokeniser and the array matcher must
decide exactly what the word-by-word algorithm they replaced decided.

The reference below is the earlier algorithm (regex tokens, one Python loop per window, a
masked copy accepted when its run of equal masked words covers NUMBER_VARIANT_COVER of the
item), run on real benchmark items, real training questions and planted copies.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import unicodedata

from clirun import REPO, SHARED
from graphgen import neardup
from graphgen.config import FilterSettings
from graphgen.readers.benchmarks import load_benchmarks

BENCH_DIR = SHARED / "data" / "benchmarks"
SEEDS_DIR = SHARED / "data" / "seeds"


def _items():
    items, _ = load_benchmarks(FilterSettings(benchmarks=[BENCH_DIR]))
    return items


def _training(n: int) -> list[str]:
    rows = []
    for name, field in (("gsm8k_train.jsonl", "question"), ("math_train.jsonl", "problem")):
        lines = (SEEDS_DIR / name).read_text(encoding="utf-8").splitlines()[:n]
        rows += [json.loads(line)[field] for line in lines]
    return rows


def test_tokens_are_the_regex_tokens_of_the_normalised_text():
    texts = [text for _b, _i, text in _items()[::7]] + _training(300) + [
        "", "1.2.3.4 and 12.5. then .5 and 3.", "x2y ß Straße ²³ ½ ３．５ ＡＢＣ", "a\x00b 7\x00",
        "naïve café e\u0301 Ω", "$\\frac{1}{2}$ is 0.5", "under_score __init__ 4_5",
    ]
    tokens, text = neardup.tokenize(texts)
    assert len(tokens) == len(texts)
    for row, original in enumerate(texts):
        expected = re.findall(r"\d+(?:\.\d+)?|[^\W\d_]+", neardup.normalise_question(original.replace("\x00", " ")))
        assert text[row] == expected, original
        a, b = tokens.offsets[row], tokens.offsets[row + 1]
        assert tokens.is_number[a:b].tolist() == [not w.isalpha() for w in expected], original
    # equal tokens hash alike wherever they are, different ones differently
    flat = [w for row in range(len(texts)) for w in text[row]]
    seen: dict[str, int] = {}
    for w, h in zip(flat, tokens.hashes.tolist()):
        assert seen.setdefault(w, h) == h
    assert len(set(seen.values())) == len(seen)


def test_ascii_rows_take_the_byte_path_with_the_same_tokens_and_hashes():
    """ASCII rows are tokenised on their bytes, the others on code points: both give the
    regex's tokens and the same hash per token, mixed in one batch or not."""
    rng = random.Random(3)
    texts = ["".join(rng.choice("12..9 aAbZ_-\n\x00") for _ in range(rng.randint(0, 30))) for _ in range(400)]
    texts += ["1.2.3.4.5", "a1.2b3.4.5.6c", "..1..2..", "9.", ".9", "3.14159 and 2.71.8"]
    for batch in (texts, texts + ["½ ５.５ café"]):
        tokens, text = neardup.tokenize(batch)
        slow, _ = neardup._tokenize_code_points([unicodedata.normalize("NFKC", t) for t in batch], False)
        assert tokens.hashes.tolist() == slow.hashes.tolist()
        assert tokens.offsets.tolist() == slow.offsets.tolist()
        assert tokens.is_number.tolist() == slow.is_number.tolist()
        for row, original in enumerate(batch):
            expected = re.findall(r"\d+(?:\.\d+)?|[^\W\d_]+", neardup.normalise_question(original.replace("\x00", " ")))
            assert text[row] == expected, original


def _reference(index: neardup.BenchmarkIndex, rows: list[str]) -> dict[int, dict[int, str]]:
    """The earlier word-by-word matcher: row -> {item: kind} of accepted pairs."""
    find = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+").findall
    item_words = [find(neardup.normalise_question(t)) for _b, _i, t in index.items]
    item_masked = [[w if w.isalpha() else "#" for w in ws] for ws in item_words]
    n, out = index.n, {}
    for r, text in enumerate(rows):
        mine = find(neardup.normalise_question(text))
        mine_masked = [w if w.isalpha() else "#" for w in mine]
        found: dict[int, str] = {}
        grams: dict[tuple, list[tuple[int, int]]] = {}
        masked_grams: dict[tuple, list[tuple[int, int]]] = {}
        for i, ws in enumerate(item_words):
            if 0 < len(ws) < n:
                if any(mine[s:s + len(ws)] == ws for s in range(len(mine) - len(ws) + 1)):
                    found.setdefault(i, "contained")
                continue
            for p in range(len(ws) - n + 1):
                grams.setdefault(tuple(ws[p:p + n]), []).append((i, p))
                if sum(w != "#" for w in item_masked[i][p:p + n]) >= index.min_words:
                    masked_grams.setdefault(tuple(item_masked[i][p:p + n]), []).append((i, p))
        for s in range(len(mine) - n + 1):
            for i, _p in grams.get(tuple(mine[s:s + n]), []):
                found.setdefault(i, "ngram")
        for s in range(len(mine) - n + 1):
            if sum(w != "#" for w in mine_masked[s:s + n]) < index.min_words:
                continue
            for i, p in masked_grams.get(tuple(mine_masked[s:s + n]), []):
                if i in found:
                    continue
                theirs = item_masked[i]
                left = 0
                while s - left > 0 and p - left > 0 and mine_masked[s - left - 1] == theirs[p - left - 1]:
                    left += 1
                right = 0
                while (s + n + right < len(mine_masked) and p + n + right < len(theirs)
                       and mine_masked[s + n + right] == theirs[p + n + right]):
                    right += 1
                if left + n + right >= neardup.NUMBER_VARIANT_COVER * len(theirs):
                    found[i] = "ngram-numbers"
        for i, ws in enumerate(item_words):  # short items: numbers masked, or one word changed in place
            if i in found or not ws:
                continue
            words = sum(w.isalpha() for w in ws)
            if (len(ws) < n and words < len(ws) and words >= neardup.SHORT_MASKED_MIN_WORDS
                    and any(mine_masked[s:s + len(ws)] == item_masked[i] for s in range(len(mine) - len(ws) + 1))):
                found[i] = "contained-numbers"
            elif 8 <= len(ws) < 2 * n and any(
                    sum(a != b for a, b in zip(mine[s:s + len(ws)], ws)) <= neardup.SHORT_CHANGED_WORDS
                    and all(a == b or b.isalpha() for a, b in zip(mine[s:s + len(ws)], ws))
                    for s in range(len(mine) - len(ws) + 1)):
                found[i] = "one-word-changed"
        if found:
            out[r] = found
    return out


def test_batch_matcher_accepts_exactly_what_the_word_by_word_matcher_did():
    items = _items()
    rng = random.Random(21)
    picks = rng.sample(range(len(items)), 160)
    index = neardup.BenchmarkIndex([items[i] for i in picks] + rng.sample(items, 240))
    rows = _training(150)
    for k, i in enumerate(picks):
        text = items[i][2]
        kind = k % 4
        if kind == 1:
            text = re.sub(r"\d+", lambda m: str(int(m.group()) + 3), text)
        elif kind == 2:
            text = "Here is a practice problem. " + text + " Show your work."
        elif kind == 3:
            words = text.split()
            words[len(words) // 2] = "zebra"
            text = " ".join(words)
        rows.append(text)
    # a matrix of numbers: the masked run passes through windows with too few words to index
    rows.append("Find $\\begin{pmatrix} 9 & 6 \\\\ 7 & 8 \\end{pmatrix} + \\begin{pmatrix} 11 & 13 \\\\ 2 & 4 "
                "\\end{pmatrix}$ and write the answer as a matrix of integers.")
    expected = _reference(index, rows)
    got: dict[int, dict[int, str]] = {}
    for start in range(0, len(rows), 97):  # several batches, as the filter sends them
        tokens, text = neardup.tokenize(rows[start:start + 97])
        for r, hits in index.match(tokens, text).items():
            got[start + r] = {h.item: h.kind for h in hits}
            for h in hits:
                assert 0 < h.coverage <= 1
                assert h.ngram and h.ngram in " ".join(text[r])
    assert got == expected
    first = len(rows) - 1 - len(picks)
    # copies that keep every word (exact, wrapped) are all found; short items with a number
    # or a word changed may have no n-gram left, by design of n-gram matching
    whole = {first + k for k in range(len(picks)) if k % 4 in (0, 2)}
    assert whole <= set(got)
    assert len(set(range(first, first + len(picks))) & set(got)) >= 0.8 * len(picks)


def test_filter_imports_no_llm_client(tmp_path):
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"id": "a", "question": "What is 2 + 2?"}) + "\n", encoding="utf-8")
    code = ("import sys\nfrom graphgen_cli.main import cli\n"
            "try:\n    cli.main(sys.argv[1:], standalone_mode=False)\nfinally:\n"
            "    print('openai' in sys.modules, 'graphgen.llm.client' in sys.modules)\n")
    proc = subprocess.run([sys.executable, "-c", code, "filter", str(rows), "--seeds", "-o", str(tmp_path / "kept.jsonl"),
                           "--benchmarks", str(BENCH_DIR / "svamp.jsonl"), "--quiet"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "False False"


def test_saved_index_matches_as_the_built_one(tmp_path):
    items = _items()[::5]
    rows = [text for _b, _i, text in items[:60]] + _training(40)
    built = neardup.BenchmarkIndex.cached(items, tmp_path, n=13, number_variants=True, boilerplate_items=0)
    assert len(list(tmp_path.glob("benchmark-index-*.npz"))) == 1
    loaded = neardup.BenchmarkIndex.cached(items, tmp_path, n=13, number_variants=True, boilerplate_items=0)
    other = neardup.BenchmarkIndex.cached(items, tmp_path, n=10, number_variants=True, boilerplate_items=0)
    assert len(list(tmp_path.glob("benchmark-index-*.npz"))) == 2  # other options, another file
    tokens, text = neardup.tokenize(rows)

    def decided(index):
        return {r: [(h.item, h.kind, round(h.coverage, 6), h.ngrams) for h in hits]
                for r, hits in index.match(tokens, text).items()}

    assert decided(loaded) == decided(built)
    assert len(decided(built)) >= 60
    assert decided(other) != decided(built)


def test_number_shifted_copies_are_near_duplicates_but_short_number_problems_stay(tmp_path):
    """Issue 21: copies whose numbers were shifted (the commonest near copy a generator makes)
    are near duplicates by default; short problems whose numbers are the problem are not;
    `--near-numbers exact` is the behaviour before."""
    from clirun import graphgen

    seeds = [q for q in _training(200) if len(neardup.words(q)) >= 25][:120]
    rng = random.Random(5)
    rows = [{"id": f"a{k:03d}", "kind": "concepts", "question": q} for k, q in enumerate(seeds)]
    shifted = {}
    for k, q in enumerate(seeds):
        copy = re.sub(r"\d+", lambda m: str(int(m.group()) + rng.randint(1, 9)), q)
        if copy != q:
            shifted[f"b{k:03d}"] = f"a{k:03d}"
            rows.append({"id": f"b{k:03d}", "kind": "concepts", "question": copy})
    short = ["Compute $\\cos 72^\\circ$.", "Compute $\\cos 90^\\circ$.", "What is the units digit of $23^{23}$?",
             "What is the units digit of $31^3+13^3$?"]
    rows += [{"id": f"s{k}", "kind": "concepts", "question": q} for k, q in enumerate(short)]
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    removed = {}
    for mode in ("default", "exact"):
        out = tmp_path / f"{mode}.jsonl"
        graphgen("filter", path, "-o", out, "--no-exact", "--quiet",
                 *(["--near-numbers", "exact"] if mode == "exact" else []), cwd=tmp_path)
        removed[mode] = {r["id"]: r["reason"] for r in map(json.loads, out.with_name(f"{mode}.removed.jsonl").open())}
    found = [i for i, of in shifted.items() if removed["default"].get(i, {}).get("of") == of]
    assert len(shifted) >= 100 and len(found) >= 0.95 * len(shifted)
    assert not any(i.startswith("s") for i in removed["default"])  # short number problems all kept
    assert sum(1 for i in shifted if i in removed["exact"]) < 0.5 * len(shifted)


def test_a_cached_benchmark_set_is_used_only_for_the_same_bytes(tmp_path):
    """The items of a benchmark set come from the cache only while its files hold the same
    bytes (and are read with the same options); any change reads the files again."""
    from graphgen.readers import benchmark_source

    bench = tmp_path / "bench.jsonl"
    rows = [{"id": 1, "question": "What is the sum of the first ten positive odd integers and then twice that?"},
            {"id": 2, "question": "Simplify 5 + 4i"}]
    bench.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    settings = FilterSettings(benchmarks=[bench])
    loads = []

    def index():
        _files, key = benchmark_source(settings)
        return neardup.BenchmarkIndex.cached_source(
            key, lambda: loads.append(1) or load_benchmarks(settings)[0], tmp_path / "cache", n=13,
            number_variants=True, boilerplate_items=0)

    first, second = index(), index()
    assert len(loads) == 1 and second.items == first.items == load_benchmarks(settings)[0]
    assert all(isinstance(item, tuple) for item in second.items)
    bench.write_text(bench.read_text(encoding="utf-8").replace("Simplify 5 + 4i", "Simplify 5 + 3i"), encoding="utf-8")
    third = index()
    assert len(loads) == 2 and third.items[1][2] == "Simplify 5 + 3i"
    settings = FilterSettings(benchmarks=[bench], benchmark_question_field="question")
    index()
    assert len(loads) == 3


def test_short_items_of_one_two_and_more_tokens_are_found_whole():
    """Whole short items are looked for where a row holds their first (up to) three tokens;
    items of one and two tokens have shorter anchors: all as the word-by-word matcher."""
    items = [("b", "1", "Simplify"), ("b", "2", "Compute 7"), ("b", "3", "Find the sum"),
             ("b", "4", "Find the sum of 2 and 3"), ("b", "5", "What is 2 + 2?"), ("b", "6", "Compute 8")]
    items += [("long", str(k), t) for k, (_b, _i, t) in enumerate(_items()[:30])]
    index = neardup.BenchmarkIndex(items)
    rows = ["Please simplify this.", "compute 7 now", "Compute 9", "Find the sum of 2 and 3, then stop.",
            "find the", "what is 2 + 2", "7 compute", "Find the sum", "", "Compute  8. Compute 7"]
    rows += [t for _b, _i, t in items[6:12]]
    tokens, text = neardup.tokenize(rows)
    got = {r: {h.item: h.kind for h in hits} for r, hits in index.match(tokens, text).items()}
    assert got == _reference(index, rows)
    assert {0, 1, 3, 5, 7, 9} <= set(got) and not {2, 4, 6, 8} & set(got)


def test_a_batch_that_shares_nothing_with_the_benchmarks_matches_nothing():
    index = neardup.BenchmarkIndex(_items()[:50])
    for rows in (["zebra " * 30], ["", "a b"], ["one two three four five six seven eight nine ten eleven twelve thirteen"]):
        tokens, text = neardup.tokenize(rows)
        assert index.match(tokens, text) == {}


def test_a_hit_names_its_first_20_distinct_ngrams_in_order_found():
    """As the word-by-word report did: every window's words, repeated texts once, at most 20,
    also when the first 20 windows repeat texts (a phrase that occurs twice in the row)."""
    import numpy as np

    phrase = "the quick brown fox jumps over the lazy dog and then runs far away"
    row = f"{phrase} {phrase} and {phrase} once more with other words at the very end of it all"
    tokens, text = neardup.tokenize([row])
    words = text[0]
    cases = [
        [(s, 13) for s in range(len(words) - 12)],                                  # every window
        [(0, 13), (0, 13), (15, 13), (0, 13)] + [(s, 13) for s in range(1, 30)],    # repeats first
        [(s, 13) for s in range(len(words) - 12)][::-1] + [(2, 3), (2, 3)],         # any order, lengths
    ]
    for windows in cases:
        expected: list[str] = []
        for start, length in windows:
            joined = " ".join(words[start:start + length])
            if joined not in expected and len(expected) < 20:
                expected.append(joined)
        starts = np.array([s for s, _n in windows], dtype=np.int64)
        lengths = np.array([n for _s, n in windows], dtype=np.int64)
        hit = neardup.ContaminationHit(0, "ngram", 1.0, text, 0, (starts, lengths))
        assert hit.ngrams == expected
        assert hit.ngram == expected[0]
