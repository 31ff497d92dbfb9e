"""`graphgen extract` end to end: the real CLI, a real SQLite file, a real HTTP LLM server."""

import json
import signal
import sqlite3
import time

from clirun import EXAMPLES, SHARED, cli_env, example_workspace, graphgen, popen
from graphgen.store.sqlite import SQLiteStore


def _gsm8k_subset(path, n):
    lines = (SHARED / "data/seeds/gsm8k_train.jsonl").read_text(encoding="utf-8").splitlines()[:n]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _count(db, sql):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def test_example_graph_from_annotations_offline(tmp_path):
    out = graphgen("extract", EXAMPLES / "seeds.jsonl", "--from-annotations", EXAMPLES / "annotations.jsonl", cwd=tmp_path)
    assert "read 300, rejected 0" in out.stdout
    assert _count(tmp_path / "graphgen.db", "SELECT count(*) FROM extractions") == 300
    stats = json.loads(graphgen("graph", "stats", "--json", cwd=tmp_path).stdout)
    assert stats["concepts"]["topic"] >= 20 and stats["concepts"]["kp"] >= 100
    assert set(stats["edges"]) == {"topic-topic", "topic-kp", "kp-kp"}
    graphgen("graph", "export", "-o", "g.graphml", cwd=tmp_path)
    graphgen("graph", "export", "-o", "g.json", cwd=tmp_path)
    import networkx as nx

    g = nx.read_graphml(tmp_path / "g.graphml")
    assert g.number_of_nodes() == sum(stats["concepts"].values())
    assert len(json.loads((tmp_path / "g.json").read_text())["links"]) == sum(stats["edges"].values())


def test_extract_against_llm_then_rerun_is_free(tmp_path, fake_llm):
    seeds = _gsm8k_subset(tmp_path / "seeds.jsonl", 40)
    env = cli_env(fake_llm.url)
    out = graphgen("extract", seeds, "--quiet", cwd=tmp_path, env=env)
    assert "extracted 40 (0 from cache), failed 0" in out.stdout
    assert fake_llm.stats()["ok"] == 40
    # same seeds again: nothing to do; with a fresh store, everything comes from the cache
    out = graphgen("extract", seeds, "--quiet", cwd=tmp_path, env=env)
    assert "already done 40" in out.stdout
    out = graphgen("extract", seeds, "--quiet", "--db", "other.db", cwd=tmp_path, env=env)
    assert "extracted 40 (40 from cache)" in out.stdout
    assert fake_llm.stats()["ok"] == 40
    assert "sk-test-FAKE-KEY" not in (tmp_path / "graphgen-cache.db").read_bytes().decode("latin-1")
    assert "sk-test-FAKE-KEY" not in (tmp_path / "graphgen.db").read_bytes().decode("latin-1")


def test_kill_and_resume_loses_nothing_and_pays_nothing_twice(tmp_path, fake_llm):
    n = 300
    seeds = _gsm8k_subset(tmp_path / "seeds.jsonl", n)
    fake_llm.set_latency(100)  # 8 in flight: ~80 seeds/s, so the kill lands mid-run
    env = cli_env(fake_llm.url)
    db = tmp_path / "graphgen.db"
    proc = popen("extract", seeds, "--concurrency", "8", "--quiet", cwd=tmp_path, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.2)
        try:
            if db.exists() and _count(db, "SELECT count(*) FROM extractions") >= 20:
                break
        except sqlite3.OperationalError:
            pass
    proc.send_signal(signal.SIGKILL)  # a hard crash: no cleanup code runs
    proc.wait()
    time.sleep(0.5)  # let the server finish (and count) requests the killed process left in flight
    done_before = _count(db, "SELECT count(*) FROM extractions")
    assert 20 <= done_before < n, "kill landed too late to test resume"
    paid_before = fake_llm.stats()["ok"]

    out = graphgen("extract", seeds, "--concurrency", "8", "--quiet", cwd=tmp_path, env=env)
    assert f"already done {done_before}" in out.stdout
    assert _count(db, "SELECT count(*) FROM extractions") == n  # nothing lost
    paid_after = fake_llm.stats()["ok"] - paid_before
    # Finished seeds are never asked again; replies that arrived but were not yet stored
    # come from the cache. Only calls in flight at the kill (<= concurrency) can be repaid.
    assert paid_after <= n - done_before
    assert paid_before + paid_after <= n + 8
    graph = json.loads(graphgen("graph", "stats", "--json", cwd=tmp_path).stdout)
    assert graph["extracted_seeds"] == n


def test_failures_are_recorded_with_raw_text_and_retried(tmp_path, fake_llm):
    seeds = _gsm8k_subset(tmp_path / "seeds.jsonl", 5)
    env = cli_env(fake_llm.url)
    fake_llm.script([{"malformed": True, "times": 3, "match": "Natalia"}])
    out = graphgen("extract", seeds, "--quiet", "--concurrency", "1", cwd=tmp_path, env=env)
    assert "extracted 4" in out.stdout and "failed 1" in out.stdout
    failure = json.loads((tmp_path / "extract-failures.jsonl").read_text().splitlines()[0])
    assert failure["seed_id"] and failure["raw"] and failure["error"]
    out = graphgen("extract", seeds, "--quiet", cwd=tmp_path, env=env)
    assert "already done 4" in out.stdout and "extracted 1" in out.stdout


def test_dry_run_calls_no_llm(tmp_path, fake_llm):
    seeds = _gsm8k_subset(tmp_path / "seeds.jsonl", 10)
    out = graphgen("extract", seeds, "--dry-run", "--model", "gpt-4o-mini", cwd=tmp_path, env=cli_env(fake_llm.url))
    report = json.loads(out.stdout)
    assert report["seeds"] == 10 and report["prompt_tokens"] > 10 * 100
    assert report["cost_usd_estimate"] > 0
    assert "Natalia" in report["first_prompt"][-1]["content"]
    assert fake_llm.stats()["total"] == 0
    assert not (tmp_path / "graphgen.db").exists()  # a dry run writes no workspace
    # nor, in an existing workspace, its seeds
    example_workspace(tmp_path)
    graphgen("extract", seeds, "--dry-run", cwd=tmp_path, env=cli_env(fake_llm.url))
    with SQLiteStore(tmp_path / "graphgen.db") as store:
        assert not {s.question for s in store.seeds()} & {json.loads(x)["question"] for x in seeds.read_text().splitlines()}


def test_bad_input_is_one_clear_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "What is 1+1?"}\n{"question": oops}\n', encoding="utf-8")
    proc = graphgen("extract", bad, "--from-annotations", EXAMPLES / "annotations.jsonl", cwd=tmp_path, check=False)
    assert proc.returncode == 1
    assert "bad.jsonl:2" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_skip_invalid_writes_rejects_and_counts(tmp_path, fake_llm):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "What is 1+1?"}\n{"question": oops}\n{"problem": ""}\n', encoding="utf-8")
    out = graphgen("extract", bad, "--skip-invalid", "--dry-run", cwd=tmp_path)
    # a dry run writes nothing: no rejects file, no workspace; it says what it would reject
    assert "2 rejected rows (a dry run writes no file): line 2:" in out.stderr and "line 3:" in out.stderr
    assert not (tmp_path / "rejects.jsonl").exists() and not (tmp_path / "graphgen.db").exists()
    assert json.loads(out.stdout)["seeds"] == 1
    out = graphgen("extract", bad, "--skip-invalid", "--quiet", cwd=tmp_path, env=cli_env(fake_llm.url))
    assert "2 rejected rows written to rejects.jsonl" in out.stdout + out.stderr
    rejects = [json.loads(x) for x in (tmp_path / "rejects.jsonl").read_text().splitlines()]
    assert [r["line"] for r in rejects] == [2, 3] and all(r["reason"] for r in rejects)


def test_bad_annotation_names_file_and_line(tmp_path):
    ann = tmp_path / "ann.jsonl"
    first = (EXAMPLES / "annotations.jsonl").read_text().splitlines()[0]
    ann.write_text(first + '\n{"seed_id": "nope", "topics": [], "knowledge_points": ["x"]}\n')
    proc = graphgen("extract", EXAMPLES / "seeds.jsonl", "--from-annotations", ann, cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "ann.jsonl:2" in proc.stderr


def test_misconfigured_endpoint_stops_early_with_one_line(tmp_path, fake_llm):
    seeds = _gsm8k_subset(tmp_path / "seeds.jsonl", 60)
    fake_llm.script([{"status": 500, "times": 10000}])
    env = cli_env(fake_llm.url, GRAPHGEN_MAX_RETRIES="0")
    proc = graphgen("extract", seeds, "--quiet", "--concurrency", "4", cwd=tmp_path, env=env, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "the first 16 requests all failed" in proc.stderr
    assert fake_llm.stats()["total"] < 60  # stopped instead of failing every seed


def test_missing_api_key_is_one_line(tmp_path):
    seeds = _gsm8k_subset(tmp_path / "seeds.jsonl", 2)
    proc = graphgen("extract", seeds, cwd=tmp_path, env=cli_env(None), check=False)
    assert proc.returncode == 1 and proc.stderr.strip().splitlines()[-1].startswith("Error: no API key")
