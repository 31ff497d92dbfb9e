"""The whole pipeline through the CLI with Neo4j as the store (a real server), plus push/pull."""

import json

import pytest
from clirun import EXAMPLES, cli_env, example_workspace, graphgen, jsonl_rows

pytestmark = pytest.mark.neo4j


def _env(conn, fake_llm=None, **extra):
    env = cli_env(fake_llm.url if fake_llm else None,
                  **{"NEO4J_URI": conn.uri, "NEO4J_USERNAME": conn.user, "NEO4J_PASSWORD": conn.password, **extra})
    if conn.database:
        env["NEO4J_DATABASE"] = conn.database
    return env


def test_extract_sample_generate_fuse_on_neo4j(tmp_path, neo4j_clean, fake_llm):
    conn = neo4j_clean
    env = _env(conn, fake_llm)
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join((EXAMPLES / "seeds.jsonl").read_text().splitlines(True)[:60]))
    out = graphgen("extract", seeds, "--quiet", cwd=tmp_path, env=env)
    assert "extracted 60" in out.stdout
    assert not (tmp_path / "graphgen.db").exists()  # NEO4J_URI selected the Neo4j store
    # a second run is a resume: nothing to extract
    assert "already done 60" in graphgen("extract", seeds, "--quiet", cwd=tmp_path, env=env).stdout

    stats = json.loads(graphgen("graph", "stats", "--json", cwd=tmp_path, env=env).stdout)
    assert stats["extracted_seeds"] == 60 and stats["concepts"]["topic"] > 0

    graphgen("sample", "concepts", "-n", "20", "-o", "samples.jsonl", "--seed", "2", cwd=tmp_path, env=env)
    graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "gen.jsonl", "--quiet", cwd=tmp_path, env=env)
    assert len(jsonl_rows(tmp_path / "gen.jsonl")) == 20

    graphgen("sample", "fusion-pairs", "-o", "pairs.jsonl", cwd=tmp_path, env=env)
    pairs = jsonl_rows(tmp_path / "pairs.jsonl")[:3]
    (tmp_path / "few.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    graphgen("generate", "fusion", "--pairs", "few.jsonl", "-o", "fused.jsonl", "--strategy", "parallel", "--quiet",
             cwd=tmp_path, env=env)

    with conn.driver() as driver, driver.session(database=conn.database) as s:
        built = s.run("MATCH (g:Generated)-[:BUILT_FROM]->(c:Concept) RETURN count(DISTINCT g) AS n").single()["n"]
        fused = s.run("MATCH (g:Generated)-[:FUSED_FROM]->(x:Seed) RETURN g.id AS id, collect(x.id) AS seeds").data()
    assert built == 20
    assert {tuple(sorted(r["seeds"])) for r in fused} == {tuple(sorted((p["seed_a"], p["seed_b"]))) for p in pairs}

    # the same graph in SQLite gives exactly the same samples (pull, then sample from the file)
    out = graphgen("graph", "pull", "--db", "pulled.db", cwd=tmp_path, env=env)
    assert "counts match" in out.stdout
    sqlite_env = cli_env(None)
    graphgen("sample", "concepts", "-n", "20", "-o", "samples-sqlite.jsonl", "--seed", "2", "--db", "pulled.db",
             cwd=tmp_path, env=sqlite_env)
    assert jsonl_rows(tmp_path / "samples-sqlite.jsonl") == jsonl_rows(tmp_path / "samples.jsonl")
    stats_sqlite = json.loads(graphgen("graph", "stats", "--json", "--db", "pulled.db", cwd=tmp_path, env=sqlite_env).stdout)
    assert {k: stats_sqlite[k] for k in ("seeds", "concepts", "edges", "generated")} == \
        {k: stats[k] for k in ("seeds", "concepts", "edges")} | {"generated": 23}


def test_push_example_workspace_and_errors(tmp_path, neo4j_clean):
    conn = neo4j_clean
    example_workspace(tmp_path)
    env = _env(conn)
    out = graphgen("graph", "push", cwd=tmp_path, env=env)
    assert "pushed to Neo4j: 300 seeds, 300 extractions" in out.stdout and "counts match" in out.stdout
    again = graphgen("graph", "push", cwd=tmp_path, env=env)  # idempotent
    assert again.stdout == out.stdout
    # a wrong password: one clear line, no traceback, and the local workspace untouched
    bad = _env(conn, NEO4J_PASSWORD="wrong-password")
    proc = graphgen("graph", "stats", cwd=tmp_path, env=bad, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert json.loads(graphgen("graph", "stats", "--json", "--store", "sqlite", cwd=tmp_path).stdout)["extracted_seeds"] == 300
