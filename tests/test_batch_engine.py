"""`--batch`: the OpenAI Batch API engine against the fake server's /v1/files and /v1/batches
(delays, partial failures, expired batches, an endpoint without a Batch API, a kill while a
batch is in progress)."""

import json
import shutil
import re
import signal
import time

import pytest
from clirun import EXAMPLES, cli_env, example_workspace, graphgen, jsonl_rows, popen


@pytest.fixture
def ws(tmp_path):
    return example_workspace(tmp_path)


def _config(ws, **engine):
    lines = ["[engine]", "batch_poll_s = 0.1", *(f"{k} = {json.dumps(v)}" for k, v in engine.items())]
    (ws / "graphgen.toml").write_text("\n".join(lines) + "\n")


def _generate(ws, env, out, *extra, check=True):
    return graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", out, "--model", "gpt-4o-mini",
                    *extra, cwd=ws, env=env, check=check)


def test_batch_run_gives_the_online_rows_at_half_the_price(ws, fake_llm):
    graphgen("sample", "concepts", "-n", "45", "-o", "samples.jsonl", "--seed", "2", cwd=ws)
    env = cli_env(fake_llm.url)
    # the online reference in a copy of the workspace: the store is the system of record, and a
    # store that already holds the rows would hand them to the batch run unpaid
    shutil.copy(ws / "graphgen.db", ws / "online.db")
    shutil.copy(ws / "graphgen.db", ws / "fresh.db")
    online = _generate(ws, env, "online.jsonl", "--quiet", "--cache", "off", "--db", "online.db")
    fake_llm.reset()
    fake_llm.configure(batch_delay_ms=300)
    _config(ws, batch_max_requests=20)
    out = _generate(ws, env, "batch.jsonl", "--batch")
    assert "45 rows written, 0 failed" in out.stdout
    stats = fake_llm.stats()
    assert stats["batches_created"] == 3 and stats["batch_requests"] == 45  # chunks of at most 20
    assert "batches: 3 submitted, 0 in progress, 3 done" in out.stderr
    key = lambda r: (r["id"], r["question"], r["answer"], r["sample_id"], tuple(r["concept_ids"]))  # noqa: E731
    assert sorted(map(key, jsonl_rows(ws / "batch.jsonl"))) == sorted(map(key, jsonl_rows(ws / "online.jsonl")))
    cost = lambda text: float(text.split("$")[1].split()[0])  # noqa: E731
    assert cost(out.stdout) == pytest.approx(cost(online.stdout) / 2, abs=1e-4)  # printed to 4 places
    # the replies went into the cache: a rerun in a fresh workspace copy sends nothing
    shutil.copy(ws / "fresh.db", ws / "again.db")
    again = _generate(ws, env, "again.jsonl", "--batch", "--quiet", "--db", "again.db")
    assert "45 rows written, 0 failed, 45 from cache" in again.stdout
    assert fake_llm.stats()["batches_created"] == 3


def test_failed_and_invalid_batch_replies_are_asked_again_online(ws, fake_llm):
    graphgen("sample", "concepts", "-n", "30", "-o", "samples.jsonl", "--seed", "3", cwd=ws)
    env = cli_env(fake_llm.url)
    _config(ws)
    # 3 lines fail inside the batch (error file), 2 come back invalid; then one online re-ask
    # still fails validation, and every later attempt for it too
    fake_llm.script([{"status": 500, "times": 3}, {"invalid_schema": True, "times": 2}])
    out = _generate(ws, env, "gen.jsonl", "--batch", "--quiet")
    assert "30 rows written, 0 failed" in out.stdout
    stats = fake_llm.stats()
    assert stats["batch_requests"] == 30 and stats["total"] == 30 + 5  # 5 asked again online
    assert len({r["id"] for r in jsonl_rows(ws / "gen.jsonl")}) == 30

    fake_llm.reset()
    graphgen("sample", "concepts", "-n", "4", "-o", "samples.jsonl", "--seed", "4", cwd=ws)
    fake_llm.script([{"invalid_schema": True, "times": 100}])
    out = _generate(ws, env, "bad.jsonl", "--batch", "--quiet")
    assert "0 rows written, 4 failed" in out.stdout
    failed = jsonl_rows(ws / "bad.failed.jsonl")
    assert len(failed) == 4 and all(f["error"].startswith("schema validation failed") and f["raw"] for f in failed)
    assert all(f["sample_id"] and f["concept_ids"] for f in failed)  # lineage kept on failures too


def test_an_expired_batch_delivers_what_it_did_and_the_rest_is_resubmitted(ws, fake_llm):
    graphgen("sample", "concepts", "-n", "25", "-o", "samples.jsonl", "--seed", "6", cwd=ws)
    env = cli_env(fake_llm.url)
    _config(ws)
    fake_llm.configure(batch_expire_after=10)
    out = _generate(ws, env, "gen.jsonl", "--batch", "--quiet")
    assert "25 rows written, 0 failed" in out.stdout
    stats = fake_llm.stats()
    assert stats["batches_created"] == 3 and stats["batch_requests"] == 25 + 15 + 5  # each batch expires after 10
    assert max(stats["ok_by_hash"].values()) == 1  # no request answered twice


def test_killed_while_a_batch_runs_resumes_polling_without_resubmitting(ws, fake_llm):
    graphgen("sample", "concepts", "-n", "40", "-o", "samples.jsonl", "--seed", "7", cwd=ws)
    env = cli_env(fake_llm.url)
    _config(ws, batch_max_requests=15)
    fake_llm.configure(batch_delay_ms=4000)
    proc = popen("generate", "questions", "--samples", "samples.jsonl", "-o", "gen.jsonl", "--model", "gpt-4o-mini",
                 "--batch", cwd=ws, env=env)
    state = ws / "gen.runs" / "batch"
    deadline = time.time() + 120
    while time.time() < deadline:
        metas = [json.loads(p.read_text()) for p in state.glob("*.json")] if state.exists() else []
        if len(metas) == 3 and all(m["batch_id"] for m in metas):
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert fake_llm.stats()["batches_created"] == 3
    out = _generate(ws, env, "gen.jsonl", "--batch")
    assert "40 rows written, 0 failed" in out.stdout
    stats = fake_llm.stats()
    assert stats["batches_created"] == 3 and stats["batch_requests"] == 40  # nothing submitted twice
    rows = jsonl_rows(ws / "gen.jsonl")
    assert len(rows) == 40 and len({r["id"] for r in rows}) == 40


def test_an_endpoint_without_a_batch_api_is_one_line_and_loses_nothing(ws, fake_llm):
    graphgen("sample", "concepts", "-n", "6", "-o", "samples.jsonl", "--seed", "8", cwd=ws)
    env = cli_env(fake_llm.url)
    _generate(ws, env, "gen.jsonl", "--quiet", "--shard", "0/2")
    # the store holds a row the file lacks (as after a kill between the store's commit and the
    # file's write): a refused --batch run must not write it either
    lines = (ws / "gen.jsonl").read_text().splitlines(keepends=True)
    (ws / "gen.jsonl").write_text("".join(lines[:-1]))
    before = (ws / "gen.jsonl").read_text()
    _config(ws)
    fake_llm.configure(reject_batches=True)
    out = _generate(ws, env, "gen.jsonl", "--batch", check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    err = [line for line in out.stderr.splitlines() if line.startswith("Error")]
    assert len(err) == 1 and "does not accept Batch API requests" in err[0] and "run without --batch" in err[0]
    assert (ws / "gen.jsonl").read_text() == before
    out = _generate(ws, env, "gen.jsonl", "--quiet")  # the online path picks up the rest
    assert "already done" in out.stdout and len(jsonl_rows(ws / "gen.jsonl")) == 6


def test_extract_through_the_batch_api(tmp_path, fake_llm):
    env = cli_env(fake_llm.url)
    _config(tmp_path)
    out = graphgen("extract", EXAMPLES / "seeds.jsonl", "--batch", "--quiet", cwd=tmp_path, env=env)
    assert "failed 0" in out.stdout and fake_llm.stats()["batches_created"] == 1
    done, seeds = re.search(r"graph: (\d+)/(\d+) seeds extracted", out.stdout).groups()
    assert done == seeds and int(seeds) > 0


def test_solve_through_the_batch_api_gives_the_online_verdicts(tmp_path, fake_llm):
    from test_solve import SEEDS, write_jsonl

    seeds = write_jsonl(tmp_path / "seeds.jsonl", SEEDS)
    env = cli_env(fake_llm.url)
    common = ("--program-timeout", "1", "--db", tmp_path / "ws.db")
    graphgen("solve", seeds, "-o", tmp_path / "online", "--cache", "off", *common, cwd=tmp_path, env=env)
    fake_llm.reset()
    _config(tmp_path)
    graphgen("solve", seeds, "-o", tmp_path / "batched", "--batch", *common, cwd=tmp_path, env=env)
    assert fake_llm.stats()["batches_created"] == 1

    def verdicts(d):
        return {r["question_id"]: (r["paths"], r["correct"], r["votes"], sorted(r["kept"]))
                for r in jsonl_rows(tmp_path / d / "verdicts.jsonl")}

    assert verdicts("batched") == verdicts("online") and len(verdicts("online")) == len(SEEDS)
