"""Progress after a resume counts the work this run does (issue 8 item 23): the last progress
line of a finished run reads N/N (100.0%), never 0/M or k/M with k < M because earlier runs
did the rest."""

import json
import re

import pytest
from clirun import EXAMPLES, cli_env, example_workspace, graphgen

LINE = re.compile(r"^(\w+): (\d+)/(\d+) \(([\d.]+)%\) ok=(\d+) failed=(\d+)")


def last_progress(stderr: str, label: str) -> tuple[int, int, float, int, int]:
    """(done, total, percent, ok, failed) of the last plain progress line of `label`."""
    found = [m for m in map(LINE.match, stderr.splitlines()) if m and m.group(1) == label]
    assert found, f"no {label} progress line with a total in:\n{stderr}"
    m = found[-1]
    return int(m.group(2)), int(m.group(3)), float(m.group(4)), int(m.group(5)), int(m.group(6))


@pytest.fixture
def example_ws(tmp_path):
    example_workspace(tmp_path)
    return tmp_path


@pytest.mark.parametrize("kind", ["questions", "fusion"])
def test_a_resumed_generate_counts_only_the_units_left(example_ws, fake_llm, kind):
    env = cli_env(fake_llm.url)
    if kind == "questions":
        graphgen("sample", "concepts", "-n", "40", "-o", "in.jsonl", "--seed", "2", cwd=example_ws)
        args, label, units = ["generate", "questions", "--samples", "in.jsonl"], "generate", 40
    else:
        graphgen("sample", "fusion-pairs", "--graph-guided", "-o", "in.jsonl", cwd=example_ws)
        pairs = len((example_ws / "in.jsonl").read_text().splitlines())
        assert pairs >= 10
        args, label, units = ["generate", "fusion", "--pairs", "in.jsonl", "--strategy", "parallel"], "fusion", pairs
    args += ["-o", "out.jsonl", "--max-reasks", "0", "--cache", "off"]

    # first run: 5 replies miss the schema, so 5 units fail and are left for the next run
    fake_llm.script([{"invalid_schema": True, "times": 5}])
    first = graphgen(*args, cwd=example_ws, env=env)
    assert last_progress(first.stderr, label) == (units, units, 100.0, units - 5, 5)

    second = graphgen(*args, cwd=example_ws, env=env)
    assert last_progress(second.stderr, label) == (5, 5, 100.0, 5, 0)
    assert f"{units - 5} already done" in second.stdout
    assert len((example_ws / "out.jsonl").read_text().splitlines()) == units

    # nothing left: 0/0 is 100% done, not 0/M
    third = graphgen(*args, cwd=example_ws, env=env)
    assert last_progress(third.stderr, label) == (0, 0, 100.0, 0, 0)
    assert fake_llm.stats()["ok"] == units + 5  # the server counts the 5 bad replies as answered


def test_a_resumed_generate_shard_counts_its_own_share(example_ws, fake_llm):
    env = cli_env(fake_llm.url)
    graphgen("sample", "concepts", "-n", "40", "-o", "in.jsonl", "--seed", "2", cwd=example_ws)
    args = ["generate", "questions", "--samples", "in.jsonl", "-o", "out.jsonl", "--shard", "1/3", "--cache", "off"]
    first = graphgen(*args, cwd=example_ws, env=env)
    mine = len((example_ws / "out.jsonl").read_text().splitlines())
    assert 0 < mine < 40
    assert last_progress(first.stderr, "generate")[:3] == (mine, mine, 100.0)


def test_a_resumed_extract_counts_only_the_seeds_left(tmp_path, fake_llm):
    env = cli_env(fake_llm.url)
    seeds = EXAMPLES / "seeds.jsonl"
    total = len(seeds.read_text().splitlines())
    first = graphgen("extract", seeds, "--limit", "10", cwd=tmp_path, env=env)
    assert last_progress(first.stderr, "extract")[:3] == (10, 10, 100.0)
    second = graphgen("extract", seeds, cwd=tmp_path, env=env)
    assert last_progress(second.stderr, "extract")[:3] == (total - 10, total - 10, 100.0)
    assert json.loads(graphgen("graph", "stats", "--json", cwd=tmp_path).stdout)["extracted_seeds"] == total
