"""MathFusion end to end through the CLI: pairs by the real offline model, fused rows with lineage."""

import json
import sqlite3

from clirun import EXAMPLES, cli_env, example_workspace, graphgen, jsonl_rows


def test_fusion_pairs_then_fusion_all_strategies(tmp_path, fake_llm):
    example_workspace(tmp_path)
    out = graphgen("sample", "fusion-pairs", "-o", "pairs.jsonl", "--same-source", "--mutual-only", "--quiet",
                   cwd=tmp_path)
    assert "search: exact" in out.stdout and "embedding (" not in out.stderr  # 300 texts embedded, no bar
    pairs = jsonl_rows(tmp_path / "pairs.jsonl")
    source = lambda sid: sid.split("-")[0]  # noqa: E731
    assert pairs and all(source(p["seed_a"]) == source(p["seed_b"]) and p["seed_a"] != p["seed_b"] for p in pairs)
    assert all(0 < p["similarity"] <= 0.98 for p in pairs)
    # embeddings are cached: a second run embeds nothing and gives the same pairs
    graphgen("sample", "fusion-pairs", "-o", "pairs2.jsonl", "--same-source", "--mutual-only", cwd=tmp_path)
    assert jsonl_rows(tmp_path / "pairs2.jsonl") == pairs

    pairs = pairs[:4]
    (tmp_path / "few.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    env = cli_env(fake_llm.url)
    out = graphgen("generate", "fusion", "--pairs", "few.jsonl", "-o", "fused.jsonl", "--strategy", "all", "--quiet",
                   cwd=tmp_path, env=env)
    assert "12 rows written" in out.stdout and "sequential 4" in out.stdout
    rows = jsonl_rows(tmp_path / "fused.jsonl")
    assert {r["strategy"] for r in rows} == {"sequential", "parallel", "conditional"}
    by_pair = {p["id"]: p for p in pairs}
    for r in rows:
        p = by_pair[r["sample_id"]]
        assert r["kind"] == "fusion" and r["seed_ids"] == [p["seed_a"], p["seed_b"]]
        assert r["similarity"] == p["similarity"] and r["prompt_version"] == f"fusion_{r['strategy']}_v1"
        assert r["model"] == "fake-model"
    # resumable: nothing left to do, nothing paid
    paid = fake_llm.stats()["ok"]
    out = graphgen("generate", "fusion", "--pairs", "few.jsonl", "-o", "fused.jsonl", "--quiet", cwd=tmp_path, env=env)
    assert "12 already done" in out.stdout and fake_llm.stats()["ok"] == paid
    # lineage in the embedded store: each fused row links to both source seeds
    con = sqlite3.connect(tmp_path / "graphgen.db")
    links = con.execute("SELECT generated_id, target_id FROM generated_links WHERE role = 'fused_from'").fetchall()
    assert len(links) == 24
    # export works on fused rows
    out = graphgen("export", "fused.jsonl", "-o", "train.jsonl", "--layout", "alpaca", cwd=tmp_path)
    assert "fusion:sequential" in out.stdout


def test_graph_guided_pairs_bridge_related_concepts(tmp_path):
    example_workspace(tmp_path)
    out = graphgen("sample", "fusion-pairs", "-o", "gp.jsonl", "--graph-guided", "--max-overlap", "0.3", cwd=tmp_path)
    assert "search: graph" in out.stdout
    # seeds that no strong edge links to another are "no candidate", not "below min similarity"
    assert "0 below min similarity" in out.stdout and "no candidate at all for " in out.stdout
    pairs = jsonl_rows(tmp_path / "gp.jsonl")
    assert pairs and all(p["method"] == "graph" for p in pairs)
    concepts = {}
    for line in (EXAMPLES / "annotations.jsonl").read_text().splitlines():
        a = json.loads(line)
        concepts[a["seed_id"]] = {c.lower() for c in a["topics"] + a["knowledge_points"]}
    for p in pairs[:50]:
        a, b = concepts[p["seed_a"]], concepts[p["seed_b"]]
        assert len(a & b) / len(a | b) <= 0.3 + 1e-9
