"""The stage contract: library `run(settings, store, inputs) -> report` gives what the CLI
gives; graphgen.toml stage sections drive a run and flags override them; stores only store."""

import json

import pytest
from clirun import EXAMPLES, cli_env, example_workspace, graphgen, jsonl_rows

from graphgen.stages import export, extract, pairs, sample
from graphgen.config import load_settings
from graphgen.graph import build_graph, rebuild
from graphgen.records import Extraction
from graphgen.stage import StageError, StageReport
from graphgen.store import SQLiteStore


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    path = tmp_path_factory.mktemp("ws")
    example_workspace(path)
    return path


def test_library_run_equals_the_cli(ws, tmp_path):
    graphgen("sample", "concepts", "-n", "30", "-o", tmp_path / "cli.jsonl", "--seed", "5", "--kp-steps", "1-2",
             cwd=ws)
    settings = load_settings(None, env={}, overrides={"store": {"path": ws / "graphgen.db"},
                                                      "sample": {"kp_steps": (1, 2)}})
    with SQLiteStore(ws / "graphgen.db") as store:
        report = sample.run(settings, store, sample.SampleInputs(count=30, output=tmp_path / "lib.jsonl", seed=5))
    assert isinstance(report, StageReport) and report.written == 30
    assert (tmp_path / "lib.jsonl").read_bytes() == (tmp_path / "cli.jsonl").read_bytes()
    assert report.lines()[0].startswith("wrote 30 samples to")
    assert report.to_json()["stats"]["walks"] >= 30


def test_toml_sections_drive_the_run_and_flags_override_them(ws, tmp_path):
    (ws / "graphgen.toml").write_text('[sample]\nexemplars = 0\nkp_steps = [2, 2]\n'
                                      '[pairs]\nmethod = "graph"\n[pairs.graph]\nmax_overlap = 0.2\n')
    try:
        graphgen("sample", "concepts", "-n", "20", "-o", tmp_path / "a.jsonl", cwd=ws)
        rows = jsonl_rows(tmp_path / "a.jsonl")
        assert all(r["exemplar_seed_ids"] == [] for r in rows)  # [sample] exemplars = 0
        assert any(len(r["knowledge_points"]) == 3 for r in rows)  # 1 + 2 kp steps where not stuck
        graphgen("sample", "concepts", "-n", "20", "-o", tmp_path / "b.jsonl", "--exemplars", "2", cwd=ws)
        assert all(1 <= len(r["exemplar_seed_ids"]) <= 2 for r in jsonl_rows(tmp_path / "b.jsonl"))  # the flag wins
        out = graphgen("sample", "fusion-pairs", "-o", tmp_path / "p.jsonl", cwd=ws)
        assert "search: graph" in out.stdout  # [pairs] method = "graph", no --graph-guided flag
        loose = graphgen("sample", "fusion-pairs", "-o", tmp_path / "p2.jsonl", "--max-overlap", "0.5", cwd=ws)
        assert "search: graph" in loose.stdout and jsonl_rows(tmp_path / "p2.jsonl") != jsonl_rows(tmp_path / "p.jsonl")
    finally:
        (ws / "graphgen.toml").unlink()


def test_extract_library_run_equals_the_cli_and_toml_maps_fields(tmp_path):
    """extract is on the stage contract: the library run builds the graph the CLI builds, and
    an [extract] section maps fields (a flag overrides it)."""
    rows = [json.loads(line) for line in (EXAMPLES / "seeds.jsonl").read_text(encoding="utf-8").splitlines()[:12]]
    renamed = tmp_path / "renamed.jsonl"
    renamed.write_text("".join(json.dumps({"key": r["id"], "prompt_text": r["question"], "gold": r["answer"]}) + "\n"
                               for r in rows), encoding="utf-8")
    annotations = tmp_path / "ann.jsonl"
    wanted = {r["id"] for r in rows}
    annotations.write_text("".join(line + "\n" for line in (EXAMPLES / "annotations.jsonl").read_text(
        encoding="utf-8").splitlines() if json.loads(line)["seed_id"] in wanted), encoding="utf-8")
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "graphgen.toml").write_text('[extract]\nquestion_field = "prompt_text"\nid_field = "nope"\n')
    bad = graphgen("extract", renamed, "--from-annotations", annotations, cwd=tmp_path / "cli", check=False)
    assert bad.returncode == 1 and "nope" in bad.stderr  # the toml's id field is used ...
    out = graphgen("extract", renamed, "--from-annotations", annotations, "--id-field", "key", cwd=tmp_path / "cli")
    assert "renamed.jsonl: question <- 'prompt_text'" in out.stderr  # ... and the flag overrides it
    assert "answer <- 'gold'" in out.stderr

    settings = load_settings(None, env={}, overrides={
        "store": {"path": tmp_path / "lib.db"}, "extract": {"question_field": "prompt_text", "id_field": "key"}})
    with SQLiteStore(tmp_path / "lib.db") as store:
        report = extract.run(settings, store, extract.ExtractInputs(seed_files=[renamed], annotations=annotations))
        lib = sorted((c.kind, c.name) for c in store.concepts())
    assert isinstance(report, extract.ExtractReport) and report.read == 12 and report.extracted == 12
    assert report.field_maps[str(renamed)]["question"] == "'prompt_text'"
    assert report.lines()[-1].startswith("graph: 12/12 seeds extracted")
    with SQLiteStore(tmp_path / "cli" / "graphgen.db") as store:
        assert sorted((c.kind, c.name) for c in store.concepts()) == lib and lib


def test_bad_stage_setting_is_one_line(ws):
    (ws / "graphgen.toml").write_text('[sample]\ntopic_steps = [3, 1]\n')
    try:
        proc = graphgen("sample", "concepts", "-n", "5", "-o", "x.jsonl", cwd=ws, check=False)
    finally:
        (ws / "graphgen.toml").unlink()
    assert proc.returncode == 1 and len(proc.stderr.strip().splitlines()) == 1
    assert "setting sample" in proc.stderr and "topic_steps" in proc.stderr


def test_stage_errors_say_what_to_do(tmp_path):
    settings = load_settings(None, env={})
    with SQLiteStore(tmp_path / "empty.db") as store:
        with pytest.raises(StageError, match="run `graphgen extract` first"):
            sample.run(settings, store, sample.SampleInputs(count=3, output=tmp_path / "s.jsonl"))
        with pytest.raises(StageError, match="no seeds in the store"):
            pairs.run(settings, store, pairs.PairsInputs(output=tmp_path / "p.jsonl"))
    with pytest.raises(StageError, match="nothing to export"):
        export.run(settings, None, export.ExportInputs(output=tmp_path / "e.jsonl"))


def test_export_stage_takes_its_layout_from_settings(ws, tmp_path, fake_llm):
    graphgen("sample", "concepts", "-n", "4", "-o", "four.jsonl", cwd=ws)
    graphgen("generate", "questions", "--samples", "four.jsonl", "-o", "four.gen.jsonl", "--quiet", "--cache", "off",
             cwd=ws, env=cli_env(fake_llm.url))
    settings = load_settings(None, env={}, overrides={"export": {"layout": "alpaca"}})
    report = export.run(settings, None, export.ExportInputs(inputs=[ws / "four.gen.jsonl"], output=tmp_path / "a.jsonl"))
    assert report.summary.written == 4 and report.lines()[0].endswith("(jsonl, alpaca); nothing left out")
    assert {"instruction", "output"} <= set(jsonl_rows(tmp_path / "a.jsonl")[0])


EX = [Extraction(seed_id="s1", topics=["Algebra"], knowledge_points=["Linear equations", "Slopes"]),
      Extraction(seed_id="s2", topics=["Algebra", "Geometry"], knowledge_points=["Slopes"])]


def test_stores_only_store_the_graph_they_are_given(tmp_path):
    concepts, edges, mentions = build_graph(EX)
    with SQLiteStore(tmp_path / "g.db") as store:
        store.replace_graph(concepts, edges, mentions)  # no extractions stored: the store computes nothing
        assert [c.id for c in store.concepts()] == [c.id for c in concepts]
        assert [(e.source, e.target, e.count) for e in store.edges()] == [(e.source, e.target, e.count) for e in edges]
        store.replace_graph([], [], [])
        assert list(store.concepts()) == [] and list(store.edges()) == []
        store.add_extractions(EX)
        stats = rebuild(store)  # graph.rebuild builds, the store persists
        assert stats.concepts == {"kp": 2, "topic": 2} and sum(stats.edges.values()) == len(edges)
