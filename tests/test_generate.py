"""sample -> generate -> export end to end through the CLI, with kill/resume and shards."""

import json
import shutil
import signal
import time

import pytest
from clirun import cli_env, example_workspace, graphgen, jsonl_rows, popen


@pytest.fixture
def example_ws(tmp_path):
    example_workspace(tmp_path)
    return tmp_path


def test_sample_is_reproducible_and_deduplicated(example_ws):
    out = graphgen("sample", "concepts", "-n", "200", "-o", "a.jsonl", "--seed", "3", cwd=example_ws)
    graphgen("sample", "concepts", "-n", "200", "-o", "b.jsonl", "--seed", "3", cwd=example_ws)
    graphgen("sample", "concepts", "-n", "200", "-o", "c.jsonl", "--seed", "4", cwd=example_ws)
    a, b, c = (jsonl_rows(example_ws / f) for f in ("a.jsonl", "b.jsonl", "c.jsonl"))
    assert a == b and a != c
    assert len(a) == 200 and len({r["id"] for r in a}) == 200
    assert "duplicate combinations dropped" in out.stdout and "coverage:" in out.stdout
    for r in a:
        assert 1 <= len(r["topics"]) <= 3 and 1 <= len(r["knowledge_points"]) <= 5
        assert len(r["walk"]) == len(set(r["walk"]))
        assert 1 <= len(r["exemplar_seed_ids"]) <= 3


def test_generate_resume_after_kill_gives_the_samejsonl_rows(example_ws, fake_llm):
    graphgen("sample", "concepts", "-n", "150", "-o", "samples.jsonl", "--seed", "1", cwd=example_ws)
    env = cli_env(fake_llm.url)
    # the uninterrupted run in a copy of the workspace: the store is the system of record, and
    # a store that already holds the rows would hand them to the second run unpaid
    shutil.copy(example_ws / "graphgen.db", example_ws / "whole.db")
    graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "whole.jsonl", "--quiet", "--cache", "off",
             "--db", "whole.db", cwd=example_ws, env=env)
    whole = {r["id"]: (r["question"], r["answer"], r["sample_id"]) for r in jsonl_rows(example_ws / "whole.jsonl")}
    assert len(whole) == 150

    fake_llm.set_latency(100)
    part = example_ws / "part.jsonl"
    proc = popen("generate", "questions", "--samples", "samples.jsonl", "-o", part.name, "--quiet",
                 "--concurrency", "4", "--cache", "resume-cache.db", cwd=example_ws, env=env)
    deadline = time.time() + 60
    while time.time() < deadline and (not part.exists() or len(part.read_text().splitlines()) < 20):
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    time.sleep(0.5)  # let the server finish (and count) requests the killed process left in flight
    before = len(jsonl_rows(part))
    assert 20 <= before < 150
    paid = fake_llm.stats()["ok"]
    out = graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", part.name, "--quiet",
                   "--cache", "resume-cache.db", cwd=example_ws, env=env)
    assert f"{before} already done" in out.stdout
    resumed = {r["id"]: (r["question"], r["answer"], r["sample_id"]) for r in jsonl_rows(part)}
    assert resumed == whole and len(jsonl_rows(part)) == 150  # same set, no duplicates
    assert fake_llm.stats()["ok"] - paid <= 150 - before  # finished rows were not paid again


def test_shards_are_disjoint_and_merge_to_the_whole(example_ws, fake_llm):
    graphgen("sample", "concepts", "-n", "90", "-o", "samples.jsonl", cwd=example_ws)
    env = cli_env(fake_llm.url)
    ids = []
    for i in range(3):
        graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", f"g.{i}.jsonl", "--shard", f"{i}/3",
                 "--quiet", cwd=example_ws, env=env)
        ids.append({r["id"] for r in jsonl_rows(example_ws / f"g.{i}.jsonl")})
    assert all(ids) and not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert sum(map(len, ids)) == 90
    # merged export (a shard given twice must not duplicate rows)
    out = graphgen("export", "g.0.jsonl", "g.1.jsonl", "g.2.jsonl", "g.0.jsonl", "-o", "train.jsonl",
                   "--layout", "chatml", cwd=example_ws)
    assert "wrote 90 rows" in out.stdout
    rows = jsonl_rows(example_ws / "train.jsonl")
    assert {r["metadata"]["id"] for r in rows} == ids[0] | ids[1] | ids[2]
    assert rows[0]["messages"][-1]["role"] == "assistant"


def test_failed_generations_are_kept_with_reason(example_ws, fake_llm):
    graphgen("sample", "concepts", "-n", "5", "-o", "samples.jsonl", cwd=example_ws)
    env = cli_env(fake_llm.url)
    fake_llm.script([{"invalid_schema": True, "times": 100}])  # every attempt of every sample
    out = graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "gen.jsonl", "--quiet",
                   "--concurrency", "1", cwd=example_ws, env=env)
    assert "0 rows written, 5 failed" in out.stdout
    failed = jsonl_rows(example_ws / "gen.failed.jsonl")
    assert len(failed) == 5 and all(f["status"] == "failed" and f["error"] and f["raw"] for f in failed)
    fake_llm.reset()
    out = graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "gen.jsonl", "--quiet", cwd=example_ws, env=env)
    assert "5 rows written, 0 failed" in out.stdout and "0 already done" in out.stdout
    assert jsonl_rows(example_ws / "gen.failed.jsonl") == failed  # the first run's failures are kept


def test_export_from_store_in_every_format(example_ws, fake_llm):
    graphgen("sample", "concepts", "-n", "12", "-o", "samples.jsonl", cwd=example_ws)
    graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "gen.jsonl", "--quiet", cwd=example_ws,
             env=cli_env(fake_llm.url))
    import datasets
    import pyarrow.parquet as pq

    graphgen("export", "-o", "t.parquet", "--format", "parquet", "--layout", "alpaca", cwd=example_ws)
    assert pq.read_table(example_ws / "t.parquet").num_rows == 12
    graphgen("export", "-o", "t_hf", "--format", "hf", "--layout", "sharegpt", cwd=example_ws)
    ds = datasets.load_from_disk(str(example_ws / "t_hf"))
    assert len(ds) == 12 and ds[0]["conversations"][0]["from"] == "human"
    assert ds[0]["metadata"]["concept_ids"]


def test_generate_dry_run_prices_only_what_is_left(example_ws, fake_llm):
    graphgen("sample", "concepts", "-n", "30", "-o", "samples.jsonl", cwd=example_ws)
    env = cli_env(fake_llm.url)
    dry = lambda *extra: json.loads(graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "gen.jsonl",  # noqa: E731
                                             "--dry-run", "--model", "gpt-4o-mini", *extra, cwd=example_ws, env=env).stdout)
    before = dry()
    assert before["calls"] == 30 and before["already_done"] == 0 and before["prompt_tokens"] > 30 * 100
    assert 0 < before["cost_usd_estimate"] < before["cost_usd_upper_bound"]
    assert "Topics:" in before["first_prompt"][-1]["content"]
    assert fake_llm.stats()["total"] == 0
    graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "gen.jsonl", "--shard", "0/2", "--quiet",
             "--model", "gpt-4o-mini", cwd=example_ws, env=env)  # the model is part of a row's id
    done = len(jsonl_rows(example_ws / "gen.jsonl"))
    after = dry()
    assert after["already_done"] == done and after["calls"] == 30 - done
    assert dry("--shard", "1/2")["calls"] == 30 - done  # shard 1 is exactly what is left


@pytest.mark.parametrize("content,kept", [
    (b"a\nb\n", b"a\nb\n"), (b"a\nb\ntorn", b"a\nb\n"), (b"torn", b""),
    (b"x" * 200_000 + b"\n" + b"y" * 100_000, b"x" * 200_000 + b"\n"),  # torn tail longer than one read
])
def test_append_cuts_only_a_torn_last_line(tmp_path, content, kept):
    from graphgen.jsonl import open_for_append

    path = tmp_path / "out.jsonl"
    path.write_bytes(content)
    open_for_append(path).close()
    assert path.read_bytes() == kept
