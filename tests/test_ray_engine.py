"""The Ray engine on a real two-node Ray cluster on loopback (tests/ray_fixtures.py): the same
rows as the single-process run, a worker killed mid-run, and the faults a user meets."""

import os
import shutil
import signal
import sqlite3
import textwrap
import time

import pytest
from clirun import EXAMPLES, cli_env, example_workspace, graphgen, jsonl_rows, popen
from ray_fixtures import ray_cluster  # noqa: F401 - fixture

pytestmark = pytest.mark.slow


@pytest.fixture
def ws(tmp_path):
    return example_workspace(tmp_path)


def _repeated(stats) -> int:
    """Requests answered more than once (the same prompt paid twice)."""
    return sum(n - 1 for n in stats["ok_by_hash"].values() if n > 1)


def test_generation_on_ray_gives_the_rows_of_the_single_process_run(ws, fake_llm, ray_cluster):  # noqa: F811
    graphgen("sample", "concepts", "-n", "120", "-o", "samples.jsonl", "--seed", "5", cwd=ws)
    env = ray_cluster.env(cli_env(fake_llm.url))
    # the single-process reference in a copy of the workspace: the store is the system of record,
    # and a store that already holds the rows would hand them to the Ray run unpaid
    shutil.copy(ws / "graphgen.db", ws / "local.db")
    shutil.copy(ws / "graphgen.db", ws / "fresh.db")
    graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "local.jsonl", "--quiet", "--cache", "off",
             "--db", "local.db", cwd=ws, env=env)
    fake_llm.reset()
    (ws / "graphgen.toml").write_text("[engine]\nblock_size = 25\n")  # several blocks on both nodes
    out = graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "ray.jsonl",
                   "--ray", ray_cluster.address, cwd=ws, env=env)
    assert "120 rows written, 0 failed" in out.stdout
    assert "on Ray: 2 tasks at once" in out.stderr
    assert "the local engine (no --ray) is faster" not in out.stderr  # two nodes: no advice
    local = {r["id"]: (r["question"], r["answer"], r["sample_id"], r["concept_ids"]) for r in jsonl_rows(ws / "local.jsonl")}
    ray_rows = jsonl_rows(ws / "ray.jsonl")
    assert len(ray_rows) == 120 and {r["id"]: (r["question"], r["answer"], r["sample_id"], r["concept_ids"])
                                     for r in ray_rows} == local
    assert fake_llm.stats()["ok"] == 120 and _repeated(fake_llm.stats()) == 0
    assert (ws / "ray.runs" / "ray").is_dir()  # the block logs lived beside ray.jsonl (engine_state_dir)
    assert not list((ws / "ray.runs" / "ray").glob("*.jsonl"))  # every block log merged and removed

    # merged into the driver's cache: a rerun in a fresh workspace copy sends nothing
    again = graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "ray2.jsonl",
                     "--ray", ray_cluster.address, "--quiet", "--db", "fresh.db", cwd=ws, env=env)
    assert "120 rows written, 0 failed, 120 from cache" in again.stdout
    assert fake_llm.stats()["ok"] == 120
    db = sqlite3.connect(ws / "graphgen.db")
    assert db.execute("SELECT COUNT(*) FROM generated").fetchone()[0] == 120


def test_extract_on_ray_gives_the_extractions_of_the_single_process_run(tmp_path, fake_llm, ray_cluster):  # noqa: F811
    env = ray_cluster.env(cli_env(fake_llm.url))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    graphgen("extract", EXAMPLES / "seeds.jsonl", "--quiet", "--cache", "off", cwd=tmp_path / "a", env=env)
    out = graphgen("extract", EXAMPLES / "seeds.jsonl", "--quiet", "--ray", ray_cluster.address, cwd=tmp_path / "b", env=env)
    assert "failed 0" in out.stdout

    def extractions(d):
        db = sqlite3.connect(d / "graphgen.db")
        return db.execute("SELECT seed_id, topics, knowledge_points FROM extractions ORDER BY seed_id").fetchall()

    a, b = extractions(tmp_path / "a"), extractions(tmp_path / "b")
    assert a and a == b


def test_a_killed_worker_loses_nothing_and_repeats_only_what_was_in_flight(ws, fake_llm, ray_cluster):  # noqa: F811
    graphgen("sample", "concepts", "-n", "240", "-o", "samples.jsonl", "--seed", "9", cwd=ws)
    env = ray_cluster.env(cli_env(fake_llm.url))
    # the single-process reference in a copy of the workspace: the store is the system of record,
    # and a store that already holds the rows would hand them to the Ray run unpaid
    shutil.copy(ws / "graphgen.db", ws / "local.db")
    shutil.copy(ws / "graphgen.db", ws / "fresh.db")
    graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "local.jsonl", "--quiet", "--cache", "off",
             "--db", "local.db", cwd=ws, env=env)
    local = {r["id"] for r in jsonl_rows(ws / "local.jsonl")}
    fake_llm.reset()
    fake_llm.set_latency(60)
    (ws / "graphgen.toml").write_text("[engine]\nblock_size = 60\n")
    # 4 requests in flight in all: 2 per task
    proc = popen("generate", "questions", "--samples", "samples.jsonl", "-o", "ray.jsonl", "--concurrency", "4",
                 "--cache", "off", "--ray", ray_cluster.address, cwd=ws, env=env)
    killed = None
    deadline = time.time() + 180
    while time.time() < deadline and killed is None and proc.poll() is None:
        pids = ray_cluster.task_pids("run_block")
        logs = list((ws / "ray.runs" / "ray").glob("*.jsonl")) if (ws / "ray.runs" / "ray").exists() else []
        if pids and any(len(p.read_text().splitlines()) >= 10 for p in logs):
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.05)
    stdout, stderr = proc.communicate(timeout=300)
    assert killed is not None, f"no task ran on the second node to kill:\n{stderr[-2000:]}"
    assert proc.returncode == 0, stderr[-3000:]
    rows = jsonl_rows(ws / "ray.jsonl")
    assert {r["id"] for r in rows} == local and len(rows) == 240  # nothing lost, nothing twice
    stats = fake_llm.stats()
    assert _repeated(stats) <= 4, stats  # at most what the killed task had in flight


def test_ray_on_one_small_node_says_the_local_engine_is_faster(ws, fake_llm):
    graphgen("sample", "concepts", "-n", "20", "-o", "samples.jsonl", "--seed", "5", cwd=ws)
    out = graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "ray.jsonl", "--ray", "local",
                   cwd=ws, env=cli_env(fake_llm.url))
    assert "20 rows written, 0 failed" in out.stdout
    line = next(x for x in out.stderr.splitlines() if "Ray runs on one node" in x)
    assert "the local engine (no --ray) is faster" in line and "Ray pays off when its tasks run on other machines" in line


def test_unreachable_ray_address_is_one_line_and_writes_nothing(ws, fake_llm):
    graphgen("sample", "concepts", "-n", "5", "-o", "samples.jsonl", cwd=ws)
    out = graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "gen.jsonl", "--ray", "127.0.0.1:1",
                   cwd=ws, env=cli_env(fake_llm.url), check=False, timeout=120)
    assert out.returncode == 1
    err = [line for line in out.stderr.splitlines() if line.startswith("Error")]
    assert err == [err[0]] and "cannot reach the Ray cluster at 127.0.0.1:1" in err[0]
    assert "Traceback" not in out.stderr
    assert fake_llm.stats()["total"] == 0


_BLOCKER = textwrap.dedent('''
    """Test helper: makes `import NAME` fail for the names in GRAPHGEN_TEST_HIDE (NAME or
    NAME@ray-worker: only inside Ray worker processes), as on a machine without them."""
    import os, sys

    class _Hide:
        def find_spec(self, name, path=None, target=None):
            for item in os.environ.get("GRAPHGEN_TEST_HIDE", "").split(","):
                mod, _, where = item.partition("@")
                if mod and name.split(".")[0] == mod:
                    if where != "ray-worker" or "default_worker.py" in " ".join(sys.argv):
                        raise ModuleNotFoundError(f"No module named {mod!r}", name=mod)
            return None

    sys.meta_path.insert(0, _Hide())
''')


def _hiding_env(tmp_path, fake_llm, hide: str) -> dict:
    d = tmp_path / "site"
    d.mkdir(exist_ok=True)
    (d / "sitecustomize.py").write_text(_BLOCKER)
    home = tmp_path / "home"  # not ~/.ray/auth_token of whoever else runs Ray here
    home.mkdir(exist_ok=True)
    return cli_env(fake_llm.url, PYTHONPATH=str(d), GRAPHGEN_TEST_HIDE=hide, HOME=str(home))


def test_without_ray_installed_the_flag_says_how_to_install(ws, fake_llm):
    graphgen("sample", "concepts", "-n", "5", "-o", "samples.jsonl", cwd=ws)
    out = graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "gen.jsonl", "--ray",
                   cwd=ws, env=_hiding_env(ws, fake_llm, "ray"), check=False)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "pip install 'graphgen[ray]'" in out.stderr
    assert fake_llm.stats()["total"] == 0


def test_workers_without_graphgen_are_one_line_before_anything_is_sent(ws, fake_llm):
    graphgen("sample", "concepts", "-n", "5", "-o", "samples.jsonl", cwd=ws)
    graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "gen.jsonl", "--quiet",
             "--shard", "0/2", cwd=ws, env=cli_env(fake_llm.url))
    before = (ws / "gen.jsonl").read_text()
    sent = fake_llm.stats()["total"]
    # a fresh local Ray whose worker processes cannot import graphgen
    out = graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "gen.jsonl", "--ray", "local",
                   cwd=ws, env=_hiding_env(ws, fake_llm, "graphgen@ray-worker"), check=False, timeout=300)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert "the Ray workers cannot import graphgen: install it on every node" in out.stderr
    assert fake_llm.stats()["total"] == sent
    assert (ws / "gen.jsonl").read_text() == before  # nothing already written is lost
