"""copy_workspace (graph push / pull): SQLite -> Neo4j -> SQLite, counts and records match."""

from __future__ import annotations

import pytest
from neo4j_fixtures import small_workspace

from graphgen.graph import rebuild
from graphgen.records import (ConceptMerge, FilterDecision, FilterReason, JudgeVerdict, PassRate, QuestionCheck,
                              SolveVerdict)
from graphgen.store.base import StoreError
from graphgen.workspace_copy import copy_workspace
from graphgen.store.sqlite import SQLiteStore

pytestmark = pytest.mark.neo4j


def snapshot(store):
    return {
        "stats": store.stats(),
        "seeds": list(store.seeds()),
        "extractions": list(store.extractions()),
        "concepts": list(store.concepts()),
        "edges": list(store.edges()),
        "seed_concepts": list(store.seed_concepts()),
        "generated": list(store.generated()),
        "merges": store.concept_merges(),
        "verdicts": list(store.verdicts()),
        "filter_decisions": list(store.filter_decisions()),
        "checks": list(store.checks()),
        "pass_rates": list(store.pass_rates()),
    }


def row_status(generated, seeds):
    """A verdict per row of each status, and filter decisions (row status, graphgen.status)."""
    g0, g1, g2 = (g.id for g in generated[:3])
    verdicts = [
        SolveVerdict(question_id=g0, question_kind="concepts", method="vote", paths=4, answered=4, own_answer="7",
                     votes={"7": 5}, majority="7", agreement=1.0, status="verified", verified_by="vote",
                     verified=True, kept=["p1"], status_reason="the row's answer 7 has 5 of 5 votes"),
        SolveVerdict(question_id=g1, question_kind="concepts", method="vote", paths=4, answered=2, own_answer="9",
                     votes={"7": 2, "9": 1}, majority="7", agreement=0.4, status="unverified", verified=False,
                     judge=JudgeVerdict(status="verified", model="judge-model", reason="same value")),
        SolveVerdict(question_id=seeds[0].id, question_kind="seed", method="gold", gold="B", paths=4, answered=4,
                     status="unverifiable", verified=False, status_reason="gold is an option letter"),
    ]
    decisions = [
        FilterDecision(row_id=g0, row_kind="concepts", decision="kept"),
        FilterDecision(row_id=g2, row_kind="concepts", decision="contaminated",
                       reason=FilterReason(kind="contaminated", message="contaminated by gsm8k_test:12",
                                           benchmark="gsm8k_test", item_id="12", ngram="a b c", match="ngram",
                                           field="question")),
    ]
    return verdicts, decisions


def test_push_then_pull_round_trip(neo4j_store, tmp_path):
    seeds, extractions, generated = small_workspace()
    # a seed row's other fields (MATH level and type) travel as its metadata
    seeds[0] = seeds[0].model_copy(update={"metadata": {"level": "Level 3", "type": "Algebra", "points": 2}})
    with SQLiteStore(tmp_path / "local.db") as local:
        local.add_seeds(seeds)
        local.add_extractions(extractions)
        # a merge map (canonicalize) travels with the workspace and shapes both graphs
        local.set_concept_merges([ConceptMerge(alias_id="kp:addition", canonical_id="kp:multiplication",
                                               similarity=0.5)])
        rebuild(local)
        local.add_generated(generated)
        verdicts, decisions = row_status(generated, seeds)
        local.add_verdicts(verdicts)
        local.add_filter_decisions(decisions)
        # graphgen check's result and two models' pass rates (solve --reference) travel too
        local.add_checks([QuestionCheck(row_id=generated[0].id, row_kind=generated[0].kind, key="k", status="failed",
                                        reasons=["proof"], problem_type="proof", answer_type="proof")])
        local.add_pass_rates([PassRate(question_id=generated[0].id, model=m, paths=4, correct=c, pass_rate=c / 4,
                                       against="own_answer") for m, c in (("a", 1), ("b", 4))])
        original = snapshot(local)
        assert original["verdicts"] and original["filter_decisions"] == sorted(decisions, key=lambda d: d.row_id)
        assert any(sd.metadata == {"level": "Level 3", "type": "Algebra", "points": 2} for sd in original["seeds"])
        assert {c.id: c.aliases for c in original["concepts"]}["kp:multiplication"] == ["Addition"]

        pushed = copy_workspace(local, neo4j_store)  # push
    st = original["stats"]
    assert pushed == {"seeds": st.seeds, "extractions": st.extracted_seeds, "merges": 1,
                      "concepts": sum(st.concepts.values()), "edges": sum(st.edges.values()),
                      "generated": st.generated, "verdicts": 3, "filter_decisions": 2, "checks": 1, "pass_rates": 2}
    # every row's status (verdict with the judge's beside it, filter decision) arrives as it was
    assert snapshot(neo4j_store) == original

    with SQLiteStore(tmp_path / "pulled.db") as pulled:
        assert copy_workspace(neo4j_store, pulled) == pushed  # pull
        assert snapshot(pulled) == original
        # pushing again changes nothing
        assert copy_workspace(pulled, neo4j_store) == pushed
        assert snapshot(neo4j_store) == original


def test_neo4j_to_neo4j_is_idempotent(neo4j_store):
    seeds, extractions, generated = small_workspace()
    neo4j_store.add_seeds(seeds)
    neo4j_store.add_extractions(extractions)
    rebuild(neo4j_store)
    neo4j_store.add_generated(generated)
    before = snapshot(neo4j_store)
    counts = copy_workspace(neo4j_store, neo4j_store)
    assert counts["seeds"] == 5 and counts["generated"] == 3
    assert snapshot(neo4j_store) == before


def test_count_mismatch_is_reported(neo4j_store, tmp_path):
    seeds, extractions, _ = small_workspace()
    neo4j_store.add_seeds(seeds)  # destination already holds other seeds
    with SQLiteStore(tmp_path / "small.db") as local:
        local.add_seeds(seeds[:2])
        local.add_extractions(extractions[:2])
        rebuild(local)
        with pytest.raises(StoreError, match="counts differ.*seeds: source 2, destination 5"):
            copy_workspace(local, neo4j_store)
