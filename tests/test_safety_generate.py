"""Generated rows under kill -9, concurrent runs and failures (issue 8 items 2, 3, 16): the
real CLI in subprocesses, a real SQLite workspace, the fake OpenAI server over real HTTP."""

import json
import signal
import sqlite3
import time

import pytest
from clirun import cli_env, example_workspace, graphgen, popen


@pytest.fixture
def ws(tmp_path):
    example_workspace(tmp_path)
    graphgen("sample", "concepts", "-n", "300", "-o", "samples.jsonl", "--seed", "5", cwd=tmp_path)
    return tmp_path


def _ids(path):
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _wait_lines(path, n, proc, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and len(path.read_bytes().splitlines()) >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{path} never reached {n} lines")


def _export_ids(ws, name):
    graphgen("export", "-o", name, "--layout", "raw", cwd=ws)
    return [json.loads(line)["metadata"]["id"] for line in (ws / name).read_text().splitlines()]


def test_kill_9_during_generate_then_export_from_the_store_misses_nothing(ws, fake_llm):
    env = cli_env(fake_llm.url)
    fake_llm.set_latency(30)
    gen = ws / "gen.jsonl"
    for kill_at in (40, 150):
        proc = popen("generate", "questions", "--samples", "samples.jsonl", "-o", gen.name, "--quiet",
                     "--concurrency", "8", cwd=ws, env=env)
        _wait_lines(gen, kill_at, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        in_file = set(_ids(gen))
        in_store = _export_ids(ws, f"after-kill-{kill_at}.jsonl")
        assert len(in_store) == len(set(in_store))
        assert in_file <= set(in_store), f"{len(in_file - set(in_store))} rows of the file missing from the store"
    out = graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", gen.name, "--quiet", cwd=ws, env=env)
    assert "300" not in out.stdout.split(" rows written")[0]  # the resume did not redo everything
    file_ids = _ids(gen)
    assert len(file_ids) == len(set(file_ids)) == 300
    assert sorted(_export_ids(ws, "final.jsonl")) == sorted(file_ids)


def test_rows_only_in_the_file_reach_the_store_on_the_next_run(ws, fake_llm):
    env = cli_env(fake_llm.url)
    graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "gen.jsonl", "--quiet", cwd=ws, env=env)
    # a workspace written by an older version, whose store lagged behind the file
    con = sqlite3.connect(ws / "graphgen.db")
    con.execute("DELETE FROM generated WHERE rowid % 3 = 0")
    con.commit()
    con.close()
    paid = fake_llm.stats()["ok"]
    out = graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "gen.jsonl", "--quiet", cwd=ws, env=env)
    assert "300 already done" in out.stdout and "100 rows of the output added to the store" in out.stdout
    assert fake_llm.stats()["ok"] == paid
    assert sorted(_export_ids(ws, "all.jsonl")) == sorted(_ids(ws / "gen.jsonl"))


def test_two_generates_on_one_output_the_second_is_refused(ws, fake_llm):
    env = cli_env(fake_llm.url)
    fake_llm.set_latency(400)  # the first run outlasts the second's start-up
    gen = ws / "gen.jsonl"
    first = popen("generate", "questions", "--samples", "samples.jsonl", "-o", gen.name, "--quiet",
                  "--concurrency", "4", cwd=ws, env=env)
    _wait_lines(gen, 5, first)
    second = graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", gen.name, "--quiet",
                      cwd=ws, env=env, check=False)
    assert second.returncode == 1
    assert "another graphgen run is writing this file" in second.stderr and "Traceback" not in second.stderr
    fake_llm.set_latency(0)
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    ids = _ids(gen)
    assert len(ids) == len(set(ids)) == 300
    # the lock died with the first process: a third run goes ahead (and has nothing to do)
    out = graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", gen.name, "--quiet", cwd=ws, env=env)
    assert "0 rows written" in out.stdout and "300 already done" in out.stdout


def test_a_killed_run_leaves_no_stale_lock(ws, fake_llm):
    env = cli_env(fake_llm.url)
    fake_llm.set_latency(50)
    gen = ws / "gen.jsonl"
    proc = popen("generate", "questions", "--samples", "samples.jsonl", "-o", gen.name, "--quiet", cwd=ws, env=env)
    _wait_lines(gen, 3, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    fake_llm.set_latency(0)
    graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", gen.name, "--quiet", cwd=ws, env=env)
    assert len(set(_ids(gen))) == 300


def test_failure_files_keep_every_runs_failures(ws, fake_llm, tmp_path):
    env = cli_env(fake_llm.url)
    graphgen("sample", "concepts", "-n", "4", "-o", "four.jsonl", cwd=ws)
    for _ in range(2):
        fake_llm.script([{"invalid_schema": True, "times": 1000}])
        graphgen("generate", "questions", "--samples", "four.jsonl", "-o", "g.jsonl", "--quiet", "--cache", "off",
                 "--concurrency", "1", cwd=ws, env=env)
        time.sleep(1.1)  # run ids carry the second
    failed = [json.loads(x) for x in (ws / "g.failed.jsonl").read_text().splitlines()]
    assert len(failed) == 8 and len({f["run_id"] for f in failed}) == 2
    fake_llm.reset()

    seeds = tmp_path / "x" / "s.jsonl"
    seeds.parent.mkdir()
    seeds.write_text("".join(json.dumps({"question": f"What is {i} + {i}?"}) + "\n" for i in range(3)))
    graphgen("extract", seeds, "--quiet", cwd=seeds.parent, env=env)
    assert not (seeds.parent / "extract-failures.jsonl").exists()  # nothing failed: no file
    for i in range(2):
        fake_llm.script([{"invalid_schema": True, "times": 1000}])
        graphgen("extract", seeds, "--quiet", "--db", f"w{i}.db", "--cache", "off", cwd=seeds.parent, env=env)
        time.sleep(1.1)
    failed = [json.loads(x) for x in (seeds.parent / "extract-failures.jsonl").read_text().splitlines()]
    assert len(failed) == 6 and len({f["run_id"] for f in failed}) == 2
