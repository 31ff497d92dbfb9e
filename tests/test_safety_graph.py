"""Concept names that XML cannot hold, and names no concept should have (issue 8 item 10)."""

import json

import networkx as nx
from clirun import cli_env, graphgen


def test_graphml_export_is_valid_xml_whatever_the_names_hold(tmp_path):
    seeds = tmp_path / "s.jsonl"
    seeds.write_text(json.dumps({"id": "a", "question": "What is 1 + 1?"}) + "\n"
                     + json.dumps({"id": "b", "question": "What is 2 + 2?"}) + "\n")
    ann = tmp_path / "ann.jsonl"
    ann.write_text(json.dumps({"seed_id": "a", "topics": ["Add\x00ition\x1b[31m"], "knowledge_points": ["Carry\x0bing", "Sums \ufffe"]}) + "\n"
                   + json.dumps({"seed_id": "b", "topics": ["Add\x00ition\x1b[31m"], "knowledge_points": ["Sums \ufffe"]}) + "\n")
    graphgen("extract", seeds, "--from-annotations", ann, cwd=tmp_path)
    graphgen("graph", "export", "-o", "g.graphml", cwd=tmp_path)
    g = nx.read_graphml(tmp_path / "g.graphml")  # raises on invalid XML
    names = {d["display_name"] for _, d in g.nodes(data=True)}
    assert "Addition[31m" in names and "Carrying" in names and "Sums " in names
    assert all(d["seed_count"] >= 1 and set(json.loads(d["seeds"])) <= {"a", "b"} for _, d in g.nodes(data=True))


def test_a_reply_with_a_huge_concept_name_is_a_recorded_failure_not_a_node(tmp_path, fake_llm):
    seeds = tmp_path / "s.jsonl"
    seeds.write_text(json.dumps({"id": "a", "question": "What is 1 + 1?"}) + "\n")
    huge = json.dumps({"topics": ["Arithmetic"], "knowledge_points": ["Adding " + "x" * 100_000]})
    fake_llm.script([{"content": huge, "times": 50}])
    out = graphgen("extract", seeds, "--quiet", cwd=tmp_path, env=cli_env(fake_llm.url))
    assert "failed 1" in out.stdout
    failure = json.loads((tmp_path / "extract-failures.jsonl").read_text())
    assert "concept name of" in failure["error"] and "the cap is 200" in failure["error"]
    stats = json.loads(graphgen("graph", "stats", "--json", cwd=tmp_path).stdout)
    assert stats["concepts"] == {}
