"""graphgen graph canonicalize: proposed merges on a fixture of near-duplicates and
look-alikes (the real embedding model), the review file, apply / edit / re-apply through the
real CLI on a real SQLite workspace, bad review files, and the same graph in Neo4j."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from clirun import cli_env, graphgen

from graphgen.stages import canonicalize as stage
from graphgen.config import Settings
from graphgen.graph import build_graph, rebuild
from graphgen.normalize import concept_id
from graphgen.records import Extraction, SeedQuestion
from graphgen.store.sqlite import SQLiteStore

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "canonicalize" / "names.json").read_text(encoding="utf-8"))


def cid(ref: str) -> str:
    kind, name = ref.split(":", 1)
    return concept_id(kind, name)


def fixture_workspace() -> tuple[list[SeedQuestion], list[Extraction]]:
    """One seed per (name, use): topic seeds carry a 'Step n' knowledge point, kp seeds a
    'Chapter n' topic, so every fixture name has exactly its fixture frequency and the
    graph has edges."""
    seeds, extractions = [], []
    for kind, names in (("topic", FIXTURE["topic"]), ("kp", FIXTURE["kp"])):
        for i, (name, uses) in enumerate(names):
            for c in range(uses):
                sid = f"{kind}-{i:02d}-{c:02d}"
                seeds.append(SeedQuestion(id=sid, question=f"question {sid}"))
                other = f"Step {c % 3}" if kind == "topic" else f"Chapter {c % 3}"
                extractions.append(Extraction(
                    seed_id=sid, topics=[name] if kind == "topic" else [other],
                    knowledge_points=[other] if kind == "topic" else [name], model="fake-model"))
    return seeds, extractions


def load(store, seeds, extractions):
    store.add_seeds(seeds)
    store.add_extractions(extractions)
    rebuild(store)


@pytest.fixture(scope="module")
def proposed(tmp_path_factory):
    """A workspace of the fixture names and the review file canonicalize proposed for it."""
    root = tmp_path_factory.mktemp("canon")
    db, review = root / "graphgen.db", root / "merges.tsv"
    with SQLiteStore(db) as store:
        load(store, *fixture_workspace())
    settings = Settings()
    settings.canonicalize.embeddings_cache = root / "embeddings.db"
    with SQLiteStore(db) as store:
        report = stage.run(settings, store, stage.CanonicalizeInputs(review=review))
    return db, review, report


def review_rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")][1:]


def test_proposed_merges_are_exactly_the_expected_ones(proposed):
    _, review, report = proposed
    rows = review_rows(review)
    got = {(cid(r[0]), cid(r[1])) for r in rows}
    assert got == {(cid(a), cid(c)) for a, c in FIXTURE["merge"]}
    # every look-alike pair stays apart: not merged into each other nor into one canonical
    canonical = {a: c for a, c in got}
    for a, b in FIXTURE["apart"]:
        assert canonical.get(cid(a), cid(a)) != canonical.get(cid(b), cid(b)), (a, b)
    assert report.merges == len(FIXTURE["merge"]) and report.clusters == 9
    assert report.concepts_after == report.concepts_before - len(FIXTURE["merge"])
    assert report.edges_after < report.edges_before


def test_review_file_lines_carry_similarity_and_both_frequencies(proposed):
    _, review, _ = proposed
    text = review.read_text(encoding="utf-8")
    assert "\nalias\tcanonical\tsimilarity\twords\talias_frequency\tcanonical_frequency\tjudge\n" in text
    freq = {f"{k}:{n}": f for k in ("topic", "kp") for n, f in FIXTURE[k]}
    rows = {r[0]: r for r in review_rows(review)}
    row = rows["topic:Pythagoras' theorem"]
    assert row[1] == "topic:Pythagorean theorem" and row[3] == "similar words"
    assert 0.8 <= float(row[2]) <= 1.0
    assert (int(row[4]), int(row[5])) == (freq["topic:Pythagoras' theorem"], freq["topic:Pythagorean theorem"])
    assert rows["topic:GCD"][3] == "acronym" and rows["topic:The Pythagorean Theorem"][3] == "same words"
    # canonical = the most frequent name of its cluster
    for r in rows.values():
        assert int(r[5]) >= int(r[4])


def copy_db(db: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "graphgen.db"
    shutil.copy(db, dst)
    return dst


def snapshot(db: Path):
    with SQLiteStore(db) as store:
        return (list(store.extractions()), list(store.concepts()), list(store.edges()),
                list(store.seed_concepts()), store.concept_merges())


def test_apply_edit_reapply_changes_the_graph_and_keeps_every_extraction(proposed, tmp_path):
    db, review, _ = proposed
    db = copy_db(db, tmp_path)
    extractions_before, concepts_before, edges_before, _, _ = snapshot(db)

    out = graphgen("graph", "canonicalize", "--apply", review, "--db", db, cwd=tmp_path).stdout
    assert f"applied {review}: 9 clusters, 11 names merged into others" in out
    assert f"concepts: {len(concepts_before)} -> {len(concepts_before) - 11}" in out
    extractions, concepts, edges, seed_concepts, merges = snapshot(db)
    assert extractions == extractions_before  # names as the LLM wrote them
    by_id = {c.id: c for c in concepts}
    pyth = by_id["topic:pythagorean theorem"]
    assert pyth.display_name == "Pythagorean theorem"
    assert pyth.aliases == ["Applying the Pythagorean theorem", "Pythagoras' theorem", "The Pythagorean Theorem"]
    assert pyth.frequency == 40 + 5 + 3 + 4
    assert cid("topic:Pythagoras' theorem") not in by_id
    assert len(merges) == 11 and len(edges) < len(edges_before)
    # the graph is exactly what build_graph makes of the extractions through the map
    want = build_graph(extractions, {m.alias_id: m.canonical_id for m in merges})
    assert concepts == want[0]

    # undo one merge by deleting its line, re-apply: that concept is back, the rest stay merged
    edited = tmp_path / "edited.tsv"
    edited.write_text("".join(line + "\n" for line in review.read_text(encoding="utf-8").splitlines()
                              if not line.startswith("topic:Pythagoras' theorem\t")), encoding="utf-8")
    graphgen("graph", "canonicalize", "--apply", edited, "--db", db, cwd=tmp_path)
    extractions, concepts, _, _, merges = snapshot(db)
    assert extractions == extractions_before
    by_id = {c.id: c for c in concepts}
    assert by_id[cid("topic:Pythagoras' theorem")].frequency == 4
    assert by_id["topic:pythagorean theorem"].frequency == 48
    assert by_id["topic:pythagorean theorem"].aliases == ["Applying the Pythagorean theorem", "The Pythagorean Theorem"]
    assert len(merges) == 10

    # a later extraction that writes an alias name lands on the canonical concept
    with SQLiteStore(db) as store:
        store.add_seeds([SeedQuestion(id="new-1", question="new")])
        store.add_extractions([Extraction(seed_id="new-1", topics=["Rectangle area"], knowledge_points=["Step 9"])])
        rebuild(store)
        assert dict(store.seed_concepts())["new-1"] == ["kp:step 9", "topic:area of a rectangle"]

    # an empty map undoes every merge: back to the graph as extracted (plus the new seed)
    empty = tmp_path / "empty.tsv"
    empty.write_text("# nothing merged\n", encoding="utf-8")
    graphgen("graph", "canonicalize", "--apply", empty, "--db", db, cwd=tmp_path)
    _, concepts, _, _, merges = snapshot(db)
    assert merges == [] and len(concepts) == len(concepts_before) + 1
    assert all(c.aliases == [] for c in concepts)


def test_chains_resolve_to_the_last_canonical(proposed, tmp_path):
    db, _, _ = proposed
    with SQLiteStore(db) as store:
        known = {c.id: c for c in build_graph(store.extractions())[0]}
    review = tmp_path / "chain.tsv"
    review.write_text("topic:Pythagoras' theorem\ttopic:The Pythagorean Theorem\n"
                      "topic:The Pythagorean Theorem\ttopic:Pythagorean theorem\n", encoding="utf-8")
    merges = stage.read_review(review, known)
    assert {m.alias_id: m.canonical_id for m in merges} == {
        cid("topic:Pythagoras' theorem"): "topic:pythagorean theorem",
        cid("topic:The Pythagorean Theorem"): "topic:pythagorean theorem",
    }


@pytest.mark.parametrize("lines,line,problem", [
    (["topic:Mean\ttopic:Median", "topic:Pythagorean theorm\ttopic:Pythagorean theorem"], 3,
     "unknown concept 'topic:Pythagorean theorm': no extraction names it"),
    (["topic:Mean\ttopic:Median", "topic:Median\ttopic:Mean"], 2, "cycle: Mean -> Median -> Mean"),
    (["topic:Pythagorean theorem\tkp:Pythagorean theorem"], 2,
     "merge across kinds: 'topic:Pythagorean theorem' is a topic, 'kp:Pythagorean theorem' is a kp"),
    (["topic:GCD\ttopic:Greatest common divisor", "topic:GCD\ttopic:Least common multiple"], 3,
     "'topic:GCD' is already merged into 'topic:greatest common divisor' on line 2"),
    (["Mean -> Median"], 2, "expected 'kind:alias<TAB>kind:canonical' (tab-separated)"),
])
def test_bad_review_file_stops_with_one_line_and_changes_nothing(proposed, tmp_path, lines, line, problem):
    db, review, _ = proposed
    db = copy_db(db, tmp_path)
    graphgen("graph", "canonicalize", "--apply", review, "--db", db, cwd=tmp_path)
    before = snapshot(db)
    bad = tmp_path / "bad.tsv"
    bad.write_text("# hand-edited\n" + "".join(f"{x}\n" for x in lines), encoding="utf-8")
    proc = graphgen("graph", "canonicalize", "--apply", bad, "--db", db, cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"Error: {bad}:{line}: {problem}"
    assert "Traceback" not in proc.stderr
    assert snapshot(db) == before


def test_propose_cli_and_json_summary(proposed, tmp_path):
    db, _, _ = proposed
    db = copy_db(db, tmp_path)
    env = cli_env(GRAPHGEN_EMBEDDING_MODEL="all-MiniLM-L6-v2")
    out = graphgen("graph", "canonicalize", "-o", "review.tsv", "--json", "--db", db,
                   "--embeddings-cache", tmp_path / "emb.db", cwd=tmp_path, env=env).stdout
    summary = json.loads(out)
    assert summary["stage"] == "canonicalize" and summary["merges"] == 11 and summary["clusters"] == 9
    assert len(review_rows(tmp_path / "review.tsv")) == 11
    # proposing never changes the workspace
    with SQLiteStore(db) as store:
        assert store.concept_merges() == []


@pytest.mark.neo4j
def test_same_seeds_and_map_give_the_same_graph_in_sqlite_and_neo4j(proposed, neo4j_store, tmp_path):
    db, review, _ = proposed
    db = copy_db(db, tmp_path)
    seeds, extractions = fixture_workspace()
    load(neo4j_store, seeds, extractions)
    settings = Settings()
    inputs = stage.CanonicalizeInputs(apply=review)
    with SQLiteStore(db) as sqlite:
        lite = stage.run(settings, sqlite, inputs)
        want = (list(sqlite.concepts()), sorted(sqlite.edges(), key=lambda e: (e.source, e.target)),
                list(sqlite.seed_concepts()), sqlite.concept_merges())
    neo = stage.run(settings, neo4j_store, inputs)
    got = (list(neo4j_store.concepts()), sorted(neo4j_store.edges(), key=lambda e: (e.source, e.target)),
           list(neo4j_store.seed_concepts()), neo4j_store.concept_merges())
    assert (neo.concepts_after, neo.edges_after, neo.merges) == (lite.concepts_after, lite.edges_after, lite.merges)
    assert got[0] == want[0]  # concepts with frequencies, seeds and aliases
    assert [(e.source, e.target, e.count) for e in got[1]] == [(e.source, e.target, e.count) for e in want[1]]
    assert [e.weight for e in got[1]] == pytest.approx([e.weight for e in want[1]])
    assert got[2:] == want[2:]
    # the aliases are on the node, where Neo4j Browser shows them
    with neo4j_store.driver.session() as session:
        aliases = session.run("MATCH (c:Concept {id: 'topic:pythagorean theorem'}) RETURN c.aliases AS a").single()["a"]
    assert aliases == ["Applying the Pythagorean theorem", "Pythagoras' theorem", "The Pythagorean Theorem"]
    # ... and the explore query a user pastes into Browser lists them
    from graphgen.explore import explore_queries

    with neo4j_store.driver.session() as session:
        rows = session.run(explore_queries()["merged_concepts"].text).data()
    assert {"kind": "topic", "concept": "Pythagorean theorem", "seeds": 52,
            "aliases": ["Applying the Pythagorean theorem", "Pythagoras' theorem", "The Pythagorean Theorem"]} in rows
    assert len(rows) == 9
    # re-applying an edited map in Neo4j un-merges there too
    edited = tmp_path / "edited.tsv"
    edited.write_text("".join(line + "\n" for line in review.read_text(encoding="utf-8").splitlines()
                              if not line.startswith("topic:GCD\t")), encoding="utf-8")
    stage.run(settings, neo4j_store, stage.CanonicalizeInputs(apply=edited))
    assert {c.id: c.frequency for c in neo4j_store.concepts()}[cid("topic:GCD")] == 2
    assert len(list(neo4j_store.extractions())) == len(extractions)
