"""graph canonicalize with the model judge (issue 20), on planted truth: 40 opposite or
look-alike name pairs that must never merge, rules alone or behind a judge that wrongly says
yes to them, and 22 paraphrase pairs a spelling rule cannot see, which the judge (the fake
server over real HTTP, answering from a truth table) merges. The real embedding model picks
the candidates; nothing of graphgen is replaced."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from clirun import cli_env, graphgen

from graphgen.stages import canonicalize as stage
from graphgen.config import Settings
from graphgen.graph import rebuild
from graphgen.normalize import concept_id
from graphgen.records import Extraction, SeedQuestion
from graphgen.store.sqlite import SQLiteStore

PLANTED = json.loads((Path(__file__).parent / "fixtures" / "judge" / "concepts.json").read_text(encoding="utf-8"))
APART, SAME = PLANTED["apart"], PLANTED["same"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """One seed per planted name, each a knowledge point under one topic."""
    root = tmp_path_factory.mktemp("judge-canon")
    db = root / "graphgen.db"
    names = [n for pair in APART + SAME for n in pair]
    with SQLiteStore(db) as store:
        store.add_seeds([SeedQuestion(id=f"s{i:03d}", question=f"question {i}") for i in range(len(names))])
        store.add_extractions([Extraction(seed_id=f"s{i:03d}", topics=["Arithmetic"], knowledge_points=[n],
                                          model="fake-model") for i, n in enumerate(names)])
        rebuild(store)
    return db


def settings_for(tmp_path: Path, llm_settings, mode: str) -> Settings:
    s = Settings(llm=llm_settings)
    s.canonicalize.embeddings_cache = tmp_path.parent / "judge-embeddings.db"
    s.judge.concepts = mode
    return s


def propose(db: Path, settings: Settings, review: Path) -> tuple[stage.CanonicalizeReport, dict[str, str]]:
    with SQLiteStore(db) as store:
        report = stage.run(settings, store, stage.CanonicalizeInputs(review=review))
    rows = [line.split("\t") for line in review.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")][1:]
    return report, {concept_id("kp", r[0].split(":", 1)[1]): r for r in rows}


def merged(rows: dict[str, list[str]], a: str, b: str) -> bool:
    ia, ib = concept_id("kp", a), concept_id("kp", b)
    canon = {k: concept_id("kp", r[1].split(":", 1)[1]) for k, r in rows.items()}
    return canon.get(ia, ia) == canon.get(ib, ib)


def counts(rows) -> tuple[int, int]:
    """(opposite pairs merged, paraphrase pairs merged)."""
    return sum(merged(rows, a, b) for a, b in APART), sum(merged(rows, a, b) for a, b in SAME)


def test_planted_sets_are_big_enough():
    assert len(APART) >= 30 and len(SAME) >= 20


def test_rules_alone_never_merge_an_opposite(workspace, tmp_path, llm_settings, fake_llm):
    report, rows = propose(workspace, settings_for(tmp_path, llm_settings, "off"), tmp_path / "off.tsv")
    wrong, right = counts(rows)
    assert wrong == 0
    assert right < len(SAME) // 2  # spelling alone finds few paraphrases: what the judge is for
    assert report.guarded >= 15  # opposites with cosine >= 0.8 are candidates: the guards, not luck, keep them apart
    assert fake_llm.stats()["total"] == 0  # judge off: no LLM call
    text = (tmp_path / "off.tsv").read_text(encoding="utf-8")
    assert "# kept apart by the guards" in text and "opposites: like/unlike" in text


def test_judge_fallback_merges_paraphrases_and_guards_hold_against_a_sloppy_judge(workspace, tmp_path,
                                                                                  llm_settings, fake_llm):
    # a judge that wrongly calls every opposite pair the same concept too
    fake_llm.configure(judge={"same_concept": SAME + APART})
    report, rows = propose(workspace, settings_for(tmp_path, llm_settings, "fallback"), tmp_path / "fb.tsv")
    wrong, right = counts(rows)
    assert (wrong, right) == (0, len(SAME))
    calls = fake_llm.stats()["judge_calls"]["same_concept"]
    assert report.judged == calls and report.llm.ok == calls
    # fallback asks only about pairs the rules refused: fewer than there are names
    assert calls < len(rows) + 2 * len(SAME) and calls < sum(len(p) for p in APART + SAME)
    for a, b in SAME:  # the review file shows why each judged merge was proposed
        alias = rows.get(concept_id("kp", a)) or rows.get(concept_id("kp", b))
        if alias[3] == "judge":
            assert alias[6].startswith("yes: truth table")
    # a rerun is served from the response cache: the same proposal, no new call
    before = fake_llm.stats()["total"]
    again, rows2 = propose(workspace, settings_for(tmp_path, llm_settings, "fallback"), tmp_path / "fb2.tsv")
    assert fake_llm.stats()["total"] == before and again.llm.cached == calls and rows2 == rows


def test_judge_always_can_veto_and_costs_more_than_fallback(workspace, tmp_path, llm_settings, fake_llm):
    fake_llm.configure(judge={"same_concept": SAME})
    fallback, rows = propose(workspace, settings_for(tmp_path, llm_settings, "fallback"), tmp_path / "fb.tsv")
    report, rows = propose(workspace, settings_for(tmp_path, llm_settings, "always"), tmp_path / "always.tsv")
    wrong, right = counts(rows)
    assert (wrong, right) == (0, len(SAME))
    # always asks about the rules' merges too; what fallback asked is served from the cache
    assert report.judged > fallback.judged and report.llm.cached == fallback.judged
    assert fake_llm.stats()["judge_calls"]["same_concept"] == report.judged
    # every merge of `always` carries the judge's word, the rule's merges included
    assert rows and all(r[6].startswith("yes:") for r in rows.values())
    # a judge that says no to everything vetoes every merge under `always`
    fake_llm.reset()
    fake_llm.configure(judge={"same_concept": []})
    s = settings_for(tmp_path, llm_settings, "always")
    s.llm.cache_path = tmp_path / "other-cache.db"
    report, rows = propose(workspace, s, tmp_path / "veto.tsv")
    assert rows == {} and report.judged_apart == report.judged > 0


def test_dry_run_counts_the_judge_calls_and_calls_nothing(workspace, tmp_path, llm_settings, fake_llm):
    fake_llm.configure(judge={"same_concept": SAME})
    report, _ = propose(workspace, settings_for(tmp_path, llm_settings, "fallback"), tmp_path / "fb.tsv")
    fake_llm.reset()
    env = cli_env(fake_llm.url, GRAPHGEN_EMBEDDING_MODEL="all-MiniLM-L6-v2")
    proc = graphgen("graph", "canonicalize", "-o", "dry.tsv", "--judge", "fallback", "--dry-run", "--json",
                    "--db", workspace, "--embeddings-cache", tmp_path.parent / "judge-embeddings.db",
                    cwd=tmp_path, env=env)
    summary = json.loads(proc.stdout)
    # the first round of questions: every pair fallback asked in the real run
    assert summary["estimate"]["calls"] == report.judged
    assert summary["estimate"]["model"] == "fake-model"
    assert fake_llm.stats()["total"] == 0 and not (tmp_path / "dry.tsv").exists()
