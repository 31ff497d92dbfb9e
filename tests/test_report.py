"""graphgen report: the numbers (--json) against the workspace they describe, and the page as
a person sees it in real headless Chromium: every plot drawn, nothing logged to the console,
nothing fetched from the network."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from chromium import visit
from clirun import EXAMPLES, graphgen

from graphgen.graph import rebuild
from graphgen.records import (ConceptMerge, Extraction, GeneratedQuestion, LLMUsage, PassRate, QuestionCheck,
                              SeedQuestion)
from graphgen.store.sqlite import SQLiteStore

MARKS = "svg rect, svg circle, svg path, svg line"


def build_workspace(root: Path) -> dict:
    """The example seeds with their hand-written annotations, one merge applied, generated
    rows with usage, and the files solve / filter / sample / a stage report would leave."""
    seeds = [SeedQuestion(**{k: v for k, v in json.loads(line).items() if k in SeedQuestion.model_fields})
             for line in (EXAMPLES / "seeds.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    extractions = [Extraction(**json.loads(line))
                   for line in (EXAMPLES / "annotations.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    extractions[0] = extractions[0].model_copy(update={"usage": LLMUsage(model="m", prompt_tokens=300,
                                                                           completion_tokens=40, cost_usd=0.002)})
    db = root / "graphgen.db"
    with SQLiteStore(db) as store:
        store.add_seeds(seeds)
        store.add_extractions(extractions)
        rebuild(store)
        concepts = list(store.concepts())
        topics = sorted((c for c in concepts if c.kind.value == "topic"), key=lambda c: (-c.frequency, c.id))
        kps = [c for c in concepts if c.kind.value == "kp"]
        # merge the least frequent topic into the most frequent one
        store.set_concept_merges([ConceptMerge(alias_id=topics[-1].id, canonical_id=topics[0].id, similarity=0.91)])
        rebuild(store)
        concepts = list(store.concepts())
        topics = sorted((c for c in concepts if c.kind.value == "topic"), key=lambda c: (-c.frequency, c.id))
        rng = random.Random(3)
        samples, generated = [], []
        for i in range(60):
            t = rng.choice(topics[:12])
            k = rng.sample(kps, 2)
            samples.append({"id": f"s-{i}", "topics": [t.id], "knowledge_points": [x.id for x in k], "walk": []})
            generated.append(GeneratedQuestion(
                id=f"gen-{i:03d}", kind="concepts", question=f"q{i}", solution="s", answer="1", sample_id=f"s-{i}",
                concept_ids=[t.id, *(x.id for x in k)], model="m",
                usage=LLMUsage(model="m", prompt_tokens=500, completion_tokens=150, cost_usd=0.0003)))
        generated.append(GeneratedQuestion(id="gen-failed", kind="concepts", status="failed", error="bad",
                                           concept_ids=[topics[0].id]))
        store.add_generated(generated)
        # graphgen check: every fifth row a proof; solve: two models' pass rates (difficulty)
        store.add_checks([QuestionCheck(row_id=g.id, row_kind="concepts", key=g.id, answer_type="integer",
                                        status="failed" if i % 5 == 0 else "passed", reasons=["proof"] if i % 5 == 0 else [],
                                        problem_type="proof" if i % 5 == 0 else "regular")
                          for i, g in enumerate(generated[:60])])
        store.add_pass_rates([PassRate(question_id=g.id, model=m, paths=4, correct=c, pass_rate=c / 4, against="own_answer")
                              for g in generated[:60] for m, c in (("m", 3), ("ref", 1))])
    (root / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples), encoding="utf-8")
    # solve's verdicts.jsonl: generated rows, every third one not verified
    verdicts = [{"question_id": g.id, "question_kind": "concepts", "method": "vote", "paths": 4, "answered": 4,
                 "verified": i % 3 != 0, "pass_rate": 0.75 if i % 3 else 0.25}
                for i, g in enumerate(generated[:60])]
    # and seeds checked against gold: 8 verified, 2 whose gold cannot be compared
    verdicts += [{"question_id": sd.id, "question_kind": "seed", "method": "gold", "paths": 4, "answered": 4,
                  "status": "verified" if i < 8 else "unverifiable", "verified_by": "gold" if i < 8 else None,
                  "verified": i < 8, "pass_rate": 0.5} for i, sd in enumerate(seeds[:10])]
    (root / "verdicts.jsonl").write_text("".join(json.dumps(v) + "\n" for v in verdicts), encoding="utf-8")
    removed = [{"id": f"r{i}", "reason": {"kind": kind, "message": "m"}, "row": {}}
               for i, kind in enumerate(["duplicate"] * 3 + ["near_duplicate"] * 5 + ["contaminated"] * 2)]
    (root / "removed.jsonl").write_text("".join(json.dumps(r) + "\n" for r in removed), encoding="utf-8")
    (root / "solve-report.json").write_text(json.dumps({"stage": "solve", "llm": {
        "ok": 120, "failed": 2, "prompt_tokens": 90000, "completion_tokens": 30000, "cost_usd": 0.031}}), encoding="utf-8")
    return {"db": db, "topics": topics, "generated": generated[:60], "samples": samples, "verdicts": verdicts[:60]}


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("report")
    return root, build_workspace(root)


def report_args(root: Path) -> list:
    return ["--samples", root / "samples.jsonl", "--verdicts", root / "verdicts.jsonl",
            "--filter-removed", root / "removed.jsonl", "--stage-report", root / "solve-report.json",
            "--db", root / "graphgen.db"]


def test_json_numbers_match_the_workspace(workspace):
    root, ws = workspace
    data = json.loads(graphgen("report", "--json", *report_args(root), cwd=root).stdout)
    with SQLiteStore(ws["db"]) as store:
        stats = store.stats()
        n_concepts = sum(stats.concepts.values())
    assert data["concepts"] == stats.concepts and data["edges"] == stats.edges
    assert sum(data["degree_histogram"]["topic"].values()) == stats.concepts["topic"]
    assert sum(data["component_sizes"]) <= n_concepts and data["components"] >= 1
    assert [t["name"] for t in data["top_topics"][:3]] == [t.display_name for t in ws["topics"][:3]]
    assert data["merges"] == [{"alias": ws_alias(ws), "canonical": ws["topics"][0].display_name, "kind": "topic",
                               "similarity": 0.91}]
    # coverage: the distinct concepts of the samples file, growing monotonically
    covered = {c for s in ws["samples"] for c in s["topics"] + s["knowledge_points"]}
    assert data["coverage"][-1] == {"samples": 60, "covered": len(covered)}
    assert data["coverage_total"] == n_concepts
    assert all(a["covered"] <= b["covered"] for a, b in zip(data["coverage"], data["coverage"][1:]))
    # verification per topic, counted by hand
    topic_of = {g.id: g.concept_ids[0] for g in ws["generated"]}
    name = {t.id: t.display_name for t in ws["topics"]}
    want = Counter(name[topic_of[v["question_id"]]] for v in ws["verdicts"])
    ok = Counter(name[topic_of[v["question_id"]]] for v in ws["verdicts"] if v["verified"])
    got = {r["topic"]: (r["questions"], r["verified"]) for r in data["verification"] if r["group"] == "generated"}
    assert got == {t: (n, ok[t]) for t, n in want.items()}
    # seeds (gold) and generated rows (vote) are counted apart, never in one "verified" figure
    assert data["verification_status"] == {"seeds": {"verified by gold": 8, "unverifiable": 2},
                                           "generated": {"verified": 40, "unverified": 20}}
    assert sum(r["questions"] for r in data["verification"] if r["group"] == "seeds") >= 10
    assert data["removed_by_reason"] == {"contaminated": 2, "duplicate": 3, "near_duplicate": 5}
    # example rows: the first five generated rows by id, the failed one never among them
    assert [r["id"] for r in data["examples"]["concepts"]] == [f"gen-{i:03d}" for i in range(5)]
    assert all(r["question"] and r["answer"] == "1" for r in data["examples"]["concepts"])
    cost = {c["stage"]: c for c in data["cost_by_stage"]}
    assert cost["extract"]["prompt_tokens"] == 300 and cost["extract"]["calls"] == 1
    assert cost["generate questions"]["calls"] == 60 and cost["generate questions"]["cost_usd"] == pytest.approx(0.018)
    assert cost["solve"]["completion_tokens"] == 30000
    # topic distribution: shares of seeds and of generated rows per topic
    dist = {r["topic"]: r for r in data["topic_distribution"]}
    top = ws["topics"][0]
    assert dist[top.display_name]["seeds_share"] == pytest.approx(top.frequency / stats.extracted_seeds, abs=1e-4)
    assert dist[top.display_name]["generated_share"] == pytest.approx(
        sum(1 for g in ws["generated"] if top.id in g.concept_ids) / 60, abs=1e-4)


def test_check_outcomes_and_pass_rates_per_model(workspace):
    root, ws = workspace
    data = json.loads(graphgen("report", "--json", *report_args(root), cwd=root).stdout)
    assert data["check_status"] == {"passed": 48, "failed": 12} and data["check_reasons"] == {"proof": 12}
    assert data["answer_types"] == {"integer": 60} and data["problem_types"] == {"regular": 48, "proof": 12}
    assert [(r["model"], r["mean"], r["questions"]) for r in data["pass_rates"]] == [("m", 0.75, 60), ("ref", 0.25, 60)]


def ws_alias(ws) -> str:
    with SQLiteStore(ws["db"]) as store:
        return store.concept_merges()[0].alias_id.split(":", 1)[1]


def test_the_page_renders_every_plot_in_chromium(workspace):
    root, ws = workspace
    page = root / "report.html"
    out = graphgen("report", "-o", page, *report_args(root), cwd=root).stdout
    assert f"wrote {page}" in out
    data = json.loads(graphgen("report", "--json", *report_args(root), cwd=root).stdout)
    seen = visit(page, {
        "plots": f"Object.fromEntries([...document.querySelectorAll('figure.plot')].map("
                 f"f => [f.dataset.plot, f.querySelectorAll('{MARKS}').length]))",
        "sized": "[...document.querySelectorAll('figure.plot svg')].every(s => s.getBoundingClientRect().width > 100 "
                 "&& s.getBoundingClientRect().height > 40)",
        "absent": "[...document.querySelectorAll('[data-absent]')].map(e => e.dataset.absent)",
        "nodes": "document.querySelectorAll('[data-plot=topic-graph] circle.node').length",
        "edges": "document.querySelectorAll('[data-plot=topic-graph] line.edge').length",
        "bars": "document.querySelectorAll('[data-plot=top-topics] rect').length",
        "merge_rows": "[...document.querySelectorAll('section')].find(s => s.querySelector('h2').textContent "
                      "=== 'Merges applied').querySelectorAll('tbody tr').length",
        "text": "document.body.innerText",
        "examples": "[...document.querySelectorAll('figure.examples')].map(f => f.dataset.examples + ':' + f.querySelectorAll('tbody tr').length)",
    })
    plots = seen.values["plots"]
    expected = {"concepts-per-kind", "edges-per-kind", "degree-topic", "degree-kp", "components", "top-topics",
                "topic-graph", "topic-distribution", "coverage", "verification-seeds", "verification-generated",
                "removed", "tokens", "checks", "difficulty"}
    assert set(plots) == expected
    assert all(n > 0 for n in plots.values()), plots
    assert seen.values["sized"] is True
    assert seen.values["absent"] == []
    assert seen.values["nodes"] == len(data["topic_graph_nodes"]) == 30
    assert seen.values["edges"] == len(data["topic_graph_edges"]) > 0
    assert seen.values["bars"] == len(data["top_topics"])
    assert seen.values["merge_rows"] == 1
    assert ws["topics"][0].display_name in seen.values["text"]
    assert seen.values["examples"] == ["concepts:5"]  # example rows shown on the page
    assert seen.console_errors == []
    assert seen.requests == [page.resolve().as_uri()]  # the page itself, nothing else
    assert seen.screenshot.startswith(b"\x89PNG") and len(seen.screenshot) > 50_000
    assert page.stat().st_size < 200_000  # self-contained and light


def test_absent_data_is_said_not_drawn(tmp_path):
    db = tmp_path / "graphgen.db"
    with SQLiteStore(db) as store:
        store.add_seeds([SeedQuestion(id="a", question="1+1?"), SeedQuestion(id="b", question="2+2?")])
        store.add_extractions([Extraction(seed_id="a", topics=["Arithmetic"], knowledge_points=["Addition"]),
                               Extraction(seed_id="b", topics=["Arithmetic"], knowledge_points=["Addition"])])
        rebuild(store)
    page = tmp_path / "report.html"
    graphgen("report", "-o", page, "--db", db, cwd=tmp_path)
    seen = visit(page, {"absent": "[...document.querySelectorAll('[data-absent]')].map(e => e.dataset.absent)",
                        "plots": "[...document.querySelectorAll('figure.plot')].map(f => f.dataset.plot)"})
    assert seen.values["absent"] == ["merges", "topic-distribution", "coverage", "verification", "removed", "checks",
                                     "tokens"]
    assert "topic-graph" in seen.values["plots"] and seen.console_errors == []


def test_bad_input_file_is_one_line(workspace, tmp_path):
    root, _ = workspace
    bad = tmp_path / "verdicts.jsonl"
    bad.write_text('{"question_id": "gen-000", "verified": true}\n{not json\n', encoding="utf-8")
    proc = graphgen("report", "--json", "--verdicts", bad, "--db", root / "graphgen.db", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip().startswith(f"Error: {bad}:2: not a VerdictLine record (")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_fusion_rows_take_their_seeds_topics(workspace, tmp_path):
    """A fused row has seeds, not concepts: its verification counts under its seeds' topics,
    never as "(no topic)" (83% of rows were, when fusion rows were most of the data)."""
    import shutil

    from graphgen.stages import report as report_stage
    from graphgen.config import Settings
    from graphgen.records import SolveVerdict

    root, ws = workspace
    db = tmp_path / "copy.db"
    shutil.copy(ws["db"], db)
    with SQLiteStore(db) as store:
        seed_ids = [sid for sid, cids in store.seed_concepts() if any(c.startswith("topic:") for c in cids)][:2]
        store.add_generated([GeneratedQuestion(id="fuse-1", kind="fusion", question="q", solution="s", answer="1",
                                               seed_ids=seed_ids, strategy="sequential")])
        store.add_verdicts([SolveVerdict(question_id="fuse-1", question_kind="fusion", method="vote", paths=4,
                                         answered=4, status="verified", verified_by="vote", verified=True)])
        rep = report_stage.collect(Settings(), store, report_stage.ReportInputs(output=None))
    gen = [r for r in rep.verification if r.group == "generated"]
    assert gen and all(r.topic != "(no topic)" for r in gen)
