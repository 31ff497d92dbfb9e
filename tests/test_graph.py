"""Concept graph: normalisation, weights on a hand-checked example, the SQLite store."""

import math

import networkx as nx
import pytest

from graphgen.graph import build_graph, graph_report, rebuild, to_networkx
from graphgen.normalize import canonical_name
from graphgen.records import Extraction, GeneratedQuestion, SeedQuestion
from graphgen.store.sqlite import SQLiteStore


@pytest.mark.parametrize(
    "a,b",
    [
        ("Linear Equations", "linear equation"),
        ("  Linear   equations. ", "Linear equation"),
        ("Ratios and Proportions", "ratio and proportion"),
        ("Vertices of polygons", "vertex of polygon"),
        ("Probabilities", "probability"),
        ("Fractions", "fraction"),
    ],
)
def test_surface_variants_merge(a, b):
    assert canonical_name(a) == canonical_name(b)


@pytest.mark.parametrize("a,b", [("Analysis", "Analysi"), ("Series", "Serie"), ("Combinatorics", "Combinatoric"), ("Linear equation", "Quadratic equation")])
def test_distinct_concepts_stay_distinct(a, b):
    assert canonical_name(a) != canonical_name(b)


# Hand-checked example. Seeds and their concepts (T = topic, K = knowledge point):
#   s1: T Fractions, T Ratios       | K Adding fractions, K Simplifying ratios
#   s2: T fractions                 | K adding fractions
#   s3: T Ratios                    | K Simplifying ratios, K Adding fractions
# Frequencies: fraction 2, ratio 2, adding fraction 3, simplifying ratio 2.
# Edges (count; weight = count / sqrt(fa * fb)):
#   fraction-ratio (topic-topic)              1; 1/sqrt(2*2) = 0.5
#   fraction-adding fraction (topic-kp)       2; 2/sqrt(2*3)
#   fraction-simplifying ratio (topic-kp)     1; 1/sqrt(2*2) = 0.5
#   ratio-adding fraction (topic-kp)          2; 2/sqrt(2*3)
#   ratio-simplifying ratio (topic-kp)        2; 2/sqrt(2*2) = 1.0
#   adding fraction-simplifying ratio (kp-kp) 2; 2/sqrt(3*2)
HAND = [
    Extraction(seed_id="s1", topics=["Fractions", "Ratios"], knowledge_points=["Adding fractions", "Simplifying ratios"]),
    Extraction(seed_id="s2", topics=["fractions"], knowledge_points=["adding fractions"]),
    Extraction(seed_id="s3", topics=["Ratios"], knowledge_points=["Simplifying ratios", "Adding fractions."]),
]
EXPECTED = {
    ("topic:fraction", "topic:ratio"): ("topic-topic", 1, 0.5),
    ("topic:fraction", "kp:adding fraction"): ("topic-kp", 2, 2 / math.sqrt(6)),
    ("topic:fraction", "kp:simplifying ratio"): ("topic-kp", 1, 0.5),
    ("topic:ratio", "kp:adding fraction"): ("topic-kp", 2, 2 / math.sqrt(6)),
    ("topic:ratio", "kp:simplifying ratio"): ("topic-kp", 2, 1.0),
    ("kp:adding fraction", "kp:simplifying ratio"): ("kp-kp", 2, 2 / math.sqrt(6)),
}


def _check(concepts, edges):
    freq = {c.id: c.frequency for c in concepts}
    assert freq == {"topic:fraction": 2, "topic:ratio": 2, "kp:adding fraction": 3, "kp:simplifying ratio": 2}
    got = {(e.source, e.target): (e.kind.value, e.count, e.weight) for e in edges}
    assert set(got) == set(EXPECTED)
    for key, (kind, count, weight) in EXPECTED.items():
        assert got[key][0] == kind and got[key][1] == count
        assert got[key][2] == pytest.approx(weight)


def test_build_graph_hand_checked():
    concepts, edges, mentions = build_graph(HAND)
    _check(concepts, edges)
    by_id = {c.id: c for c in concepts}
    assert by_id["kp:adding fraction"].seed_ids == ["s1", "s2", "s3"]  # provenance
    assert by_id["topic:fraction"].display_name in {"Fractions", "fractions"}
    assert len(mentions) == 4 + 2 + 3
    edge = next(e for e in edges if e.target == "kp:simplifying ratio" and e.source == "topic:ratio")
    assert edge.seed_ids == ["s1", "s3"]


def test_sqlite_store_roundtrip_and_idempotent(tmp_path):
    path = tmp_path / "g.db"
    with SQLiteStore(path) as store:
        store.add_seeds(SeedQuestion(id=f"s{i}", question=f"question {i}") for i in (1, 2, 3))
        store.add_extractions(HAND)
        rebuild(store)
        _check(list(store.concepts()), list(store.edges()))
        # ingesting the same seeds and extractions again changes nothing
        store.add_seeds(SeedQuestion(id=f"s{i}", question=f"question {i}") for i in (1, 2, 3))
        store.add_extractions(HAND)
        stats = rebuild(store)
        assert stats.seeds == 3 and stats.extracted_seeds == 3
        assert stats.concepts == {"kp": 2, "topic": 2} and sum(stats.edges.values()) == 6
        assert [e.model_dump() for e in store.extractions()] == [e.model_dump() for e in HAND]
        assert dict(store.seed_concepts())["s2"] == ["kp:adding fraction", "topic:fraction"]
    with SQLiteStore(path) as store:  # reopen: persisted, migrations not re-applied
        _check(list(store.concepts()), list(store.edges()))


def test_rebuild_is_atomic(tmp_path):
    """A failure in the middle of a rebuild leaves the previous graph intact."""
    with SQLiteStore(tmp_path / "g.db") as store:
        store.add_extractions(HAND)
        rebuild(store)
        store.db.execute("CREATE TRIGGER boom BEFORE INSERT ON edges WHEN NEW.kind = 'kp-kp' "
                         "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END")
        store.add_extractions([Extraction(seed_id="s4", topics=["Algebra"], knowledge_points=["Factoring", "Expanding"])])
        with pytest.raises(Exception, match="disk on fire"):
            rebuild(store)
        _check(list(store.concepts()), list(store.edges()))


def test_generated_rows_keep_lineage(tmp_path):
    with SQLiteStore(tmp_path / "g.db") as store:
        row = GeneratedQuestion(id="q-1", kind="concepts", question="Q", solution="S", answer="1",
                                concept_ids=["topic:fraction"], exemplar_seed_ids=["s1"])
        store.add_generated([row, row])
        assert [r.model_dump() for r in store.generated()] == [row.model_dump()]
        links = set(store.db.execute("SELECT role, target_id FROM generated_links"))
        assert links == {("built_from", "topic:fraction"), ("exemplar", "s1")}


def test_networkx_export_and_report():
    concepts, edges, _ = build_graph(HAND)
    g = to_networkx(concepts, edges)
    assert g.number_of_nodes() == 4 and g.number_of_edges() == 6
    assert g.edges["topic:ratio", "kp:simplifying ratio"]["count"] == 2
    report = graph_report(concepts, edges)
    assert report["top_kp"][0]["name"].lower().startswith("adding fraction")
    assert report["kp_degree"]["max"] == 3
    nx.write_graphml(g, "/dev/null")


def test_graphml_nodes_carry_seed_ids_as_provenance_with_a_cap(tmp_path):
    """`seeds` holds seed ids (not a count), unambiguous for ids with spaces or quotes, at
    most 100 of them; `seed_count` says how many seeds there are in all."""
    import json

    from clirun import graphgen

    ids = [f'seed "{i:03d}" of a' for i in range(150)]
    seeds, ann = tmp_path / "s.jsonl", tmp_path / "a.jsonl"
    seeds.write_text("".join(json.dumps({"id": s, "question": f"What is {i} + {i}?"}) + "\n"
                             for i, s in enumerate(ids)))
    ann.write_text("".join(json.dumps({"seed_id": s, "topics": ["Arithmetic"],
                                       "knowledge_points": ["Addition"] + (["Doubling"] if i % 50 == 0 else [])})
                           + "\n" for i, s in enumerate(ids)))
    graphgen("extract", seeds, "--from-annotations", ann, cwd=tmp_path)
    graphgen("graph", "export", "-o", "g.graphml", cwd=tmp_path)
    g = nx.read_graphml(tmp_path / "g.graphml")
    arithmetic, doubling = g.nodes["topic:arithmetic"], g.nodes["kp:doubling"]
    assert arithmetic["seed_count"] == 150 and json.loads(arithmetic["seeds"]) == sorted(ids)[:100]
    assert doubling["seed_count"] == 3 and json.loads(doubling["seeds"]) == [ids[0], ids[50], ids[100]]
