"""filter's paraphrase decontamination with the model judge (issue 20), on planted truth through
the real CLI, the real embedding model and the fake server over real HTTP: 60 GSM8K test
questions reworded with the same numbers (sentences reordered, words swapped) hidden among
200 distinct GSM8K training questions, against 300 GSM8K test items. The judge answers "same
problem?" from a truth table holding exactly the 60 (paraphrase, item) pairs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from clirun import SHARED, cli_env, graphgen, jsonl_rows

BENCH = SHARED / "data" / "benchmarks" / "gsm8k_test.jsonl"
TRAIN = SHARED / "data" / "seeds" / "gsm8k_train.jsonl"
N_ITEMS, N_PARA, N_DISTINCT = 300, 60, 200

SWAPS = [("How many", "What is the number of"), ("how many", "what number of"), ("How much", "What amount"),
         (" buys ", " purchases "), (" bought ", " purchased "), (" each ", " every "), (" total", " overall"),
         (" has ", " owns "), (" had ", " owned "), (" wants to ", " would like to "), (" gets ", " receives "),
         (" makes ", " earns "), (" sells ", " sold off "), (" every day", " daily"), (" per ", " for each "),
         (" costs ", " is priced at "), (" takes ", " needs "), (" If ", " Suppose "), (" then ", " after that "),
         (" and ", " as well as "), (" the ", " that "), (" a ", " one ")]


def paraphrase(q: str) -> str:
    """The same problem reworded, numbers unchanged: the question first, the facts in reverse
    order, common words swapped (what a model asked to 'rewrite this problem' does)."""
    sents = re.split(r"(?<=[.!?])\s+", q.strip())
    if len(sents) > 1:
        sents = [sents[-1]] + sents[:-1][::-1]
    text = " " + " ".join(sents) + " "
    for a, b in SWAPS:
        text = text.replace(a, b)
    return "Consider this: " + text.strip()


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("judge-decon")
    items = [json.loads(line) for line in BENCH.read_text(encoding="utf-8").splitlines()[:N_ITEMS]]
    bench = root / "gsm8k_test.jsonl"
    bench.write_text("".join(json.dumps({"id": f"item-{n}", "question": it["question"]}) + "\n"
                             for n, it in enumerate(items)), encoding="utf-8")
    train = [json.loads(line)["question"] for line in TRAIN.read_text(encoding="utf-8").splitlines()[:N_DISTINCT]]
    rows = [{"id": f"para-{i:03d}", "question": paraphrase(items[i * 5]["question"])} for i in range(N_PARA)]
    rows += [{"id": f"train-{i:03d}", "question": q} for i, q in enumerate(train)]
    data = root / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    truth = [[paraphrase(items[i * 5]["question"]), items[i * 5]["question"]] for i in range(N_PARA)]
    return root, data, bench, truth


def run_filter(root: Path, data: Path, bench: Path, fake_llm, tmp_path: Path, *judge: str) -> tuple[dict, dict]:
    out = tmp_path / "kept.jsonl"
    graphgen("filter", data, "-o", out, "--benchmarks", bench, "--report", tmp_path / "report.json",
             "--embeddings-cache", root / "emb.db", *judge, cwd=tmp_path, env=cli_env(fake_llm.url))
    removed = {r["id"]: r["reason"] for r in jsonl_rows(tmp_path / "kept.removed.jsonl")}
    return json.loads((tmp_path / "report.json").read_text()), removed


def recall(removed: dict) -> float:
    return sum(f"para-{i:03d}" in removed for i in range(N_PARA)) / N_PARA


def test_ngram_rule_alone_misses_reworded_items(planted, fake_llm, tmp_path):
    root, data, bench, _ = planted
    report, removed = run_filter(root, data, bench, fake_llm, tmp_path)
    assert recall(removed) < 0.5  # 13-grams do not survive reordering and a few swapped words
    assert not [k for k in removed if k.startswith("train-")]
    assert fake_llm.stats()["total"] == 0


def test_judge_removes_paraphrases_and_no_distinct_question(planted, fake_llm, tmp_path):
    root, data, bench, truth = planted
    fake_llm.configure(judge={"same_problem": truth})
    report, removed = run_filter(root, data, bench, fake_llm, tmp_path, "--judge", "always")
    assert recall(removed) >= 0.95
    assert not [k for k in removed if k.startswith("train-")]  # no distinct question removed
    for i in range(N_PARA):
        reason = removed.get(f"para-{i:03d}")
        if reason is None or reason["kind"] != "paraphrase":
            continue
        # the removal names the benchmark, the item (the very one reworded) and the judge's answer
        assert (reason["benchmark"], reason["item_id"]) == ("gsm8k_test", f"gsm8k_test-item-{i * 5}")
        assert "yes: truth table" in reason["judge"]
    j = report["judge"]
    # each pair asked in both orders, once; paraphrased rows are removed by the judge alone
    assert fake_llm.stats()["judge_calls"]["same_problem"] == 2 * j["pairs"] == j["calls"]
    assert j["removed"] == sum(r["kind"] == "paraphrase" for r in removed.values())
    assert j["rows"] == N_PARA + N_DISTINCT - (len(removed) - j["removed"])
    # a rerun pays for nothing
    before = fake_llm.stats()["total"]
    again, removed2 = run_filter(root, data, bench, fake_llm, tmp_path, "--judge", "always")
    assert fake_llm.stats()["total"] == before and removed2 == removed


def test_a_judge_that_says_no_removes_nothing_more_than_the_rule(planted, fake_llm, tmp_path):
    root, data, bench, _ = planted
    (tmp_path / "rule").mkdir()
    _, rule_only = run_filter(root, data, bench, fake_llm, tmp_path / "rule")
    fake_llm.configure(judge={"same_problem": []})
    report, removed = run_filter(root, data, bench, fake_llm, tmp_path, "--judge", "always")
    assert removed == rule_only and report["judge"]["pairs"] > 0
