"""Issue 22: hostile answers, replies, programs and files never stop a run, lose a row or
reach what they must not; every test goes through the real CLI with the real fake server
and the real sandbox, bounded in time."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from clirun import cli_env, graphgen, jsonl_rows


def write_jsonl(path: Path, items: list[dict]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    return path


LONG = "1" * 5000  # over int()'s 4,300-digit limit and the 1,000-character answer limit


def test_long_and_hostile_answers_are_verdicts_not_a_stopped_run(fake_llm, tmp_path):
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [
        # a 5,000-digit prose answer, a program printing 5,000 digits, and right paths
        {"id": "long", "question": f"Long {{{{fake: answer=12; cot=W{LONG},R; code=BIG5000,R}}}}", "answer": "12"},
        # a gold answer too long to check
        {"id": "longgold", "question": "Gold {{fake: answer=7; cot=R; code=R}}", "answer": LONG},
        # an answer whose check times out; a program whose output is over the kept cap
        {"id": "slow", "question": "Slow {{fake: answer=3; cot=W9^{9^{9^9} },R; code=BIG20000,R}}", "answer": "3"},
    ])
    config = tmp_path / "graphgen.toml"
    config.write_text("[solve]\ncheck_timeout_s = 1\n")
    out = tmp_path / "solved"
    args = ("solve", seeds, "-o", out, "--paths", "2", "--program-timeout", "5", "--db", tmp_path / "ws.db")
    env = cli_env(fake_llm.url, GRAPHGEN_CONFIG=str(config))
    res = graphgen(*args, cwd=tmp_path, env=env, timeout=300)
    assert len(res.stderr) < 5000 and LONG not in res.stderr + res.stdout  # never a whole answer printed
    v = {r["question_id"]: r for r in jsonl_rows(out / "verdicts.jsonl")}
    assert set(v) == {"long", "longgold", "slow"}
    # the long answers are no votes: only the right paths count, and each says why
    assert v["long"]["answered"] == 2 and v["long"]["correct"] == 2 and v["long"]["votes"] == {"12": 2}
    assert sum("over the 1,000-character limit" in p for p in v["long"]["check_problems"]) == 2
    assert v["longgold"]["correct"] == 0
    assert any("gold answer of 5,000 characters" in p for p in v["longgold"]["check_problems"])
    assert v["slow"]["correct"] == 2 and any("timed out" in p for p in v["slow"]["check_problems"])
    fails = jsonl_rows(out / "failures.jsonl")
    assert sum("over the 1,000-character limit" in f["reason"] for f in fails) == 2
    big = [f for f in fails if f["kind"] == "program" and f["question_id"] == "slow"]
    assert len(big) == 1 and big[0]["reason"].startswith("over_limit")  # cut output: never an answer
    assert all(len(json.dumps(r)) < 40_000 for r in jsonl_rows(out / "runs.jsonl"))
    # the timeout is recorded, so a rerun gives the same verdict without spending the time again
    timeouts = jsonl_rows(out / "check_timeouts.jsonl")
    assert timeouts and all(t["gold"] in ("3", "9^{9^{9^9} }") for t in timeouts)
    t = time.monotonic()
    graphgen(*args, cwd=tmp_path, env=env, timeout=300)
    v2 = {r["question_id"]: r for r in jsonl_rows(out / "verdicts.jsonl")}
    assert any("earlier run" in p for p in v2["slow"]["check_problems"]) and v2["slow"]["correct"] == 2
    assert jsonl_rows(out / "check_timeouts.jsonl") == timeouts
    assert time.monotonic() - t < 60


def test_variants_never_verify_a_long_or_cut_program_output(tmp_path):
    # programs that print thousands of digits (over the answer limit) or hundreds of
    # thousands (over the kept-output cap): no variant may come of either
    q = "Tom has 15 apples. Ann has 15 apples and 4 pears. How many fruits do they have?"
    rows = []
    for name, width in (("long", "a * a * a * a"), ("flood", "a * a * a * a * p")):  # (widths: no typed-in numbers)
        for i, prog in enumerate([f"a = 15\np = 4\nprint(str(a + a + p) * ({width}))\n",
                                  f"a = 15\npears = 4\nprint(str(pears + a + a) * ({width}))\n"]):
            rows.append({"id": f"{name}-p{i}", "question_id": name, "question_kind": "seed", "question": q,
                         "style": "code", "index": i, "text": prog, "answer": "34", "correct": True})
    paths = write_jsonl(tmp_path / "paths.jsonl", rows)
    out = tmp_path / "v.jsonl"
    res = graphgen("generate", "variants", "--paths", paths, "-o", out, "--per-question", "2", "--seed", "1",
                   "--workers", "2", "--quiet", "--db", tmp_path / "g.db", cwd=tmp_path, timeout=300)
    assert len(res.stdout + res.stderr) < 3000
    assert not out.exists() or not out.read_text().strip()
    reasons = {why for r in jsonl_rows(tmp_path / "v.rejects.jsonl") for why in r["reasons"]}
    # (huge numbers make programs run out of memory: a crash, also never an answer)
    assert {"answer-too-long", "program-over_limit"} <= reasons <= {"answer-too-long", "program-over_limit",
                                                                    "program-crash"}, reasons


def test_one_solve_per_output_dir_and_no_duplicate_ids_after_kill(fake_llm, tmp_path):
    import signal
    import subprocess

    from clirun import popen

    seeds = write_jsonl(tmp_path / "seeds.jsonl", [
        {"id": f"q{i}", "question": f"Q{i} {{{{fake: answer={i}; cot=R}}}}", "answer": str(i)} for i in range(20)])
    fake_llm.configure(latency_ms=300)
    env = cli_env(fake_llm.url, GRAPHGEN_CONCURRENCY="2")
    out = tmp_path / "solved"
    args = ("solve", seeds, "-o", out, "--style", "cot", "--paths", "2", "--quiet", "--db", tmp_path / "ws.db",
            "--cache", tmp_path / "cache.db")
    first = popen(*args, cwd=tmp_path, env=env)
    try:
        deadline = time.monotonic() + 60
        while not ((out / "samples.jsonl").exists() and (out / "samples.jsonl").read_text().count("\n") >= 2):
            assert first.poll() is None and time.monotonic() < deadline, first.communicate()
            time.sleep(0.1)
        second = graphgen(*args, cwd=tmp_path, env=env, check=False, timeout=60)
        assert second.returncode == 1 and "another graphgen run" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    # two restarts at once: exactly one runs, the other refuses; nothing is written twice
    a, b = popen(*args, cwd=tmp_path, env=env), popen(*args, cwd=tmp_path, env=env)
    try:
        codes = sorted(p.wait(timeout=120) for p in (a, b))
    except subprocess.TimeoutExpired:
        a.kill(), b.kill()
        raise
    assert codes == [0, 1]
    ids = [r["id"] for r in jsonl_rows(out / "samples.jsonl")]
    assert len(ids) == 40 and len(set(ids)) == 40
    assert fake_llm.stats()["total"] <= 40 + 2  # at most the calls in flight at the kill, paid again
    assert len(jsonl_rows(out / "verdicts.jsonl")) == 20


def _drop_last_newline(path: Path) -> Path:
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    return path


def test_every_reader_keeps_a_last_line_without_newline(fake_llm, tmp_path):
    from clirun import example_workspace

    ws = example_workspace(tmp_path)
    env = cli_env(fake_llm.url)
    graphgen("sample", "concepts", "-n", "5", "-o", "samples.jsonl", "--seed", "1", "--exemplars", "0", cwd=ws)
    _drop_last_newline(ws / "samples.jsonl")
    graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "gen.jsonl", "--quiet", cwd=ws, env=env)
    assert len(jsonl_rows(ws / "gen.jsonl")) == 5
    _drop_last_newline(ws / "gen.jsonl")
    graphgen("solve", "gen.jsonl", "-o", "solved", "--style", "cot", "--paths", "1", "--quiet", cwd=ws, env=env)
    assert len(jsonl_rows(ws / "solved" / "verdicts.jsonl")) == 5
    # a complete last line is kept by a rerun's appender too (it only gets its newline)
    graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "gen.jsonl", "--quiet", cwd=ws, env=env)
    assert (ws / "gen.jsonl").read_bytes().endswith(b"\n") and len(jsonl_rows(ws / "gen.jsonl")) == 5
    # variants --paths: the last path counts (two agreeing programs, the second without newline)
    q = "Tom has 15 apples. Ann has 15 apples and 4 pears. How many fruits do they have?"
    paths = write_jsonl(tmp_path / "paths.jsonl", [
        {"id": f"p{i}", "question_id": "apples", "question_kind": "seed", "question": q, "style": "code",
         "index": i, "text": prog, "answer": "34", "correct": True}
        for i, prog in enumerate(["print(15 + 15 + 4)\n", "tom = 15\npears = 4\nprint(tom + tom + pears)\n"])])
    _drop_last_newline(paths)
    graphgen("generate", "variants", "--paths", paths, "-o", tmp_path / "v.jsonl", "--per-question", "2",
             "--workers", "1", "--quiet", "--db", tmp_path / "v.db", cwd=tmp_path)
    assert len(jsonl_rows(tmp_path / "v.jsonl")) >= 1  # one path alone could never agree
    # a torn last line in an input file (not graphgen's own output) is an error, not skipped
    (ws / "torn.jsonl").write_bytes((ws / "samples.jsonl").read_bytes() + b'\n{"id": "s9", "topics": ["Alg')
    res = graphgen("generate", "questions", "--samples", "torn.jsonl", "-o", "t.jsonl", cwd=ws, env=env, check=False)
    assert res.returncode == 1 and "torn.jsonl:6:" in res.stderr and "Traceback" not in res.stderr


def test_variants_refuse_an_empty_array_or_garbage_paths_file(tmp_path):
    for name, content in (("empty", ""), ("array", '[{"question_id": "q", "text": "print(1)"}]\n'),
                          ("garbage", "\x00\x01 not json\n")):
        path = tmp_path / f"{name}.jsonl"
        path.write_text(content)
        res = graphgen("generate", "variants", "--paths", path, "-o", tmp_path / f"{name}.out.jsonl",
                       "--quiet", "--db", tmp_path / "v.db", cwd=tmp_path, check=False)
        assert res.returncode == 1, (name, res.stdout, res.stderr)
        assert f"{name}.jsonl" in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_a_key_echoed_inside_a_valid_reply_reaches_no_file(fake_llm, tmp_path):
    key = cli_env(fake_llm.url)["OPENAI_API_KEY"]
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [{"id": "k", "question": "Key {{fake: answer=3}}", "answer": "3"}])
    fake_llm.script([{"content": f"Using {key} we get \\boxed{{3}}.", "match": "step by step", "times": 10},
                     {"content": f"```python\n# {key}\nprint(3)\n```", "times": 10}])
    out = tmp_path / "solved"
    graphgen("solve", seeds, "-o", out, "--paths", "2", "--quiet", "--db", tmp_path / "ws.db",
             "--cache", tmp_path / "cache.db", cwd=tmp_path, env=cli_env(fake_llm.url))
    assert fake_llm.stats()["total"] == 4
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "seeds.jsonl"]
    assert any(p.name == "samples.jsonl" for p in written) and any(p.name.startswith("cache.db") for p in written)
    leaked = [p.name for p in written if key.encode() in p.read_bytes()]
    assert not leaked
    samples = jsonl_rows(out / "samples.jsonl")
    assert len(samples) == 4 and all("***" in r["text"] for r in samples)  # the replies were kept, masked
    assert [v["correct"] for v in jsonl_rows(out / "verdicts.jsonl")] == [4]


def test_isolation_fails_closed_and_a_sandbox_that_cannot_start_is_no_verdict(fake_llm, tmp_path):
    import os
    import shutil

    import pytest

    seeds = write_jsonl(tmp_path / "seeds.jsonl", [
        {"id": f"q{i}", "question": f"Q{i} {{{{fake: answer={i}; code=R}}}}", "answer": str(i)} for i in range(3)])
    args = ("solve", seeds, "-o", tmp_path / "solved", "--style", "code", "--paths", "1", "--quiet",
            "--db", tmp_path / "ws.db", "--cache", tmp_path / "cache.db")
    # a bwrap that is present but cannot start (a container without user namespaces)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "bwrap").write_text("#!/bin/sh\necho 'bwrap: No permissions to creating new namespace' >&2\nexit 1\n")
    (fake_bin / "bwrap").chmod(0o755)
    env = cli_env(fake_llm.url, PATH=f"{fake_bin}:{os.environ['PATH']}")
    res = graphgen(*args, cwd=tmp_path, env=env, check=False, timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1 and "--isolation process" in res.stderr
    assert "No permissions" in res.stderr
    assert not (tmp_path / "solved" / "verdicts.jsonl").exists()
    # process isolation without the capability it needs (root without CAP_SYS_ADMIN cannot take
    # the network away): a sandbox error that stops the run, never a "crash" verdict, never cached
    if os.geteuid() != 0 or not shutil.which("capsh"):
        pytest.skip("needs root and capsh")
    cmd = " ".join(f"'{a}'" for a in ("python", "-m", "graphgen_cli", *map(str, args), "--isolation", "process"))
    import subprocess
    import sys

    res = subprocess.run(["capsh", "--drop=cap_sys_admin", "--", "-c", cmd.replace("'python'", f"'{sys.executable}'")],
                         cwd=tmp_path, env=cli_env(fake_llm.url), capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "could not set a program up" in res.stderr and "Traceback" not in res.stderr
    runs = tmp_path / "solved" / "runs.jsonl"
    assert not runs.exists() or not runs.read_text().strip()
    # with the capability, the same run gives real verdicts (nothing bad was cached)
    ok = graphgen(*args, "--isolation", "process", cwd=tmp_path, env=cli_env(fake_llm.url), timeout=120)
    assert "(process)" in ok.stdout
    assert [r["correct"] for r in jsonl_rows(tmp_path / "solved" / "verdicts.jsonl")] == [1, 1, 1]


def test_programs_import_from_the_environment_graphgen_runs_in(fake_llm, tmp_path):
    """A venv of its own (system site-packages for graphgen's dependencies, graphgen itself
    from this checkout) holding a module the base interpreter does not have: programs run in
    the sandbox import it, as they would sympy or numpy installed only in a venv."""
    import shutil
    import subprocess
    import sys
    import sysconfig

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv], check=True,
                   timeout=120)
    site = Path(subprocess.run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    here = Path(sysconfig.get_paths()["purelib"])
    for f in here.glob("__editable__*graphgen*"):  # graphgen from this checkout, as installed here
        shutil.copy(f, site / f.name)
    (site / "gg_venv_probe.py").write_text("VALUE = 4242\n")
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [{"id": "v", "question": "Venv {{fake: answer=4242}}",
                                                    "answer": "4242"}])
    fake_llm.script([{"content": "```python\nimport gg_venv_probe, sympy, numpy\nprint(gg_venv_probe.VALUE)\n```",
                      "times": 5}])
    out = tmp_path / "solved"
    res = subprocess.run([venv / "bin" / "python", "-m", "graphgen_cli", "solve", seeds, "-o", out, "--style", "code",
                          "--paths", "1", "--quiet", "--db", tmp_path / "ws.db", "--cache", tmp_path / "c.db"],
                         cwd=tmp_path, env=cli_env(fake_llm.url), capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr
    assert "(bwrap)" in res.stdout
    assert jsonl_rows(out / "verdicts.jsonl")[0]["correct"] == 1, jsonl_rows(out / "runs.jsonl")


def test_a_truncated_llm_cache_is_one_line_not_a_traceback(fake_llm, tmp_path):
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [
        {"id": f"q{i}", "question": f"Q{i} {{{{fake: answer={i}; cot=R}}}}", "answer": str(i)} for i in range(30)])
    env = cli_env(fake_llm.url)
    args = ("solve", seeds, "--style", "cot", "--paths", "4", "--quiet", "--db", tmp_path / "ws.db",
            "--cache", tmp_path / "cache.db")
    graphgen(*args, "-o", tmp_path / "a", cwd=tmp_path, env=env)
    cache = tmp_path / "cache.db"
    for side in cache.parent.glob("cache.db-*"):
        side.unlink()
    cache.write_bytes(cache.read_bytes()[: cache.stat().st_size // 3])
    res = graphgen(*args, "-o", tmp_path / "b", cwd=tmp_path, env=env, check=False)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert "cache.db: not a usable SQLite file" in res.stderr and len(res.stderr.strip().splitlines()) == 1


def test_filter_leaves_no_spool_file_after_a_kill(tmp_path):
    import signal

    from clirun import popen

    rows = [{"id": f"g{i}", "kind": "concepts", "question": f"Tom has {i} apples and {i % 97} pears; how many "
             f"fruits, counting {i * 7} more in crate {i}?", "solution": "s", "answer": str(i)} for i in range(60000)]
    src = write_jsonl(tmp_path / "gen.jsonl", rows)
    out = tmp_path / "out"
    out.mkdir()
    stale = out / ".filter-spool-999999999-1.jsonl"  # left by an older version's killed run
    stale.write_text("x\n")
    # The killed run reads a named pipe: it gets the first 30,000 rows (a whole batch, spooled)
    # and then waits for more, so the kill lands mid-run however fast filter is.
    fifo = tmp_path / "feed.jsonl"
    os.mkfifo(fifo)
    # the rows differ only in their numbers: compared as written, all are distinct
    proc = popen("filter", fifo, "-o", out / "kept.jsonl", "--quiet", "--near-numbers", "exact", cwd=tmp_path,
                 env=cli_env())
    try:
        with open(fifo, "w", encoding="utf-8") as feed:
            feed.writelines(line + "\n" for line in src.read_text(encoding="utf-8").splitlines()[:30000])
            feed.flush()
            time.sleep(1.0)  # the first batch is read, spooled and hashed; the run waits on the pipe
            assert proc.poll() is None, "filter ended while its input was still open"
            assert not list(out.glob(".filter-spool*"))  # the spool has no name, and the stale one went
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not list(out.glob(".*"))
    graphgen("filter", src, "-o", out / "kept.jsonl", "--quiet", "--near-numbers", "exact", cwd=tmp_path, timeout=300)
    assert len(jsonl_rows(out / "kept.jsonl")) == 60000 and not list(out.glob(".*"))


def test_the_first_variants_help_example_works_on_a_fresh_solve_output(fake_llm, tmp_path):
    import re

    q = "Tom has 15 apples. Ann has 15 apples and 4 pears. How many fruits do they have?"
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [{"id": "apples", "question": q, "answer": "34"}])
    fake_llm.script([{"content": "```python\nprint(15 + 15 + 4)\n```"},
                     {"content": "```python\ntom = 15\npears = 4\nprint(tom + tom + pears)\n```"},
                     {"content": "```python\ndef f(a, p):\n    return 2 * a + p\n\nprint(f(15, 4))\n```"}])
    graphgen("solve", seeds, "-o", tmp_path, "--style", "code", "--paths", "3", "--quiet", "--db", tmp_path / "ws.db",
             cwd=tmp_path, env=cli_env(fake_llm.url))
    assert len(jsonl_rows(tmp_path / "paths.jsonl")) >= 2
    helptext = graphgen("generate", "variants", "--help", cwd=tmp_path).stdout
    example = re.search(r"^\s*graphgen (generate variants .*)$", helptext, re.MULTILINE).group(1).split()
    graphgen(*example, "--db", tmp_path / "ws.db", "--quiet", cwd=tmp_path, env=cli_env(fake_llm.url))
    assert len(jsonl_rows(tmp_path / "variants.jsonl")) >= 1


def test_invalid_utf8_is_one_line_naming_file_and_line_and_skip_invalid_skips_it(fake_llm, tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_bytes(b'{"id": "a", "question": "Q {{fake: answer=1; cot=R}}", "answer": "1"}\n'
                      b'{"id": "b", "question": "bad \xff\xfe here", "answer": "2"}\n')
    env = cli_env(fake_llm.url)
    args = ("solve", seeds, "-o", tmp_path / "s", "--style", "cot", "--paths", "1", "--quiet", "--db", tmp_path / "w.db")
    res = graphgen(*args, cwd=tmp_path, env=env, check=False)
    assert res.returncode == 1 and "seeds.jsonl:2:" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    graphgen(*args, "--skip-invalid", cwd=tmp_path, env=env)
    assert [v["question_id"] for v in jsonl_rows(tmp_path / "s" / "verdicts.jsonl")] == ["a"]
    assert any(f["kind"] == "input" and "seeds.jsonl:2" in f["reason"] for f in jsonl_rows(tmp_path / "s" / "failures.jsonl"))
    paths = tmp_path / "paths.jsonl"
    paths.write_bytes(b'{"id": "p0", "question_id": "q", "question": "Tom has 15 apples.", "text": "print(15)"}\n'
                      b'{"id": "p1", "question_id": "q", "text": "print(\xff)"}\n')
    res = graphgen("generate", "variants", "--paths", paths, "-o", tmp_path / "v.jsonl", "--quiet",
                   "--db", tmp_path / "v.db", cwd=tmp_path, check=False)
    assert res.returncode == 1 and "paths.jsonl:2: not UTF-8" in res.stderr and "Traceback" not in res.stderr


def test_a_foreign_sqlite_file_is_refused_before_any_table_is_added(fake_llm, tmp_path):
    import sqlite3

    foreign = tmp_path / "crm.db"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE customers (name TEXT)")
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [{"id": "a", "question": "Q {{fake: answer=1}}", "answer": "1"}])
    for args in (("graph", "stats", "--db", foreign),
                 ("solve", seeds, "-o", tmp_path / "s", "--style", "cot", "--paths", "1", "--db", tmp_path / "w.db",
                  "--cache", foreign)):
        res = graphgen(*args, cwd=tmp_path, env=cli_env(fake_llm.url), check=False)
        assert res.returncode == 1 and "another program" in res.stderr and "Traceback" not in res.stderr, res.stderr
        with sqlite3.connect(foreign) as db:
            assert [r[0] for r in db.execute("SELECT name FROM sqlite_master")] == ["customers"]


def _descendants(root: int) -> set[int]:
    """Every live process below `root`, from /proc parent links."""
    import os

    parent: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_bytes()
            except OSError:
                continue
            parent[int(name)] = int(stat[stat.rfind(b")") + 2:].split()[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier} - found
        found |= frontier
    return found


def _with_marker(marker: str) -> list[int]:
    import os

    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if marker.encode() in Path(f"/proc/{name}/cmdline").read_bytes():
                    pids.append(int(name))
            except OSError:
                pass
    return pids


import pytest  # noqa: E402


@pytest.mark.parametrize("isolation", ["bwrap", "process"])
def test_nothing_a_program_started_outlives_a_killed_run(fake_llm, tmp_path, isolation):
    """A program that leaves a daemon (double fork, its own session) and keeps running; graphgen
    is killed -9 meanwhile: the program, its daemon and the workers are gone within seconds
    and no work directory stays. Bounded: the daemon sleeps 30 s, the program 20 s."""
    import os
    import signal
    import uuid

    from clirun import popen

    marker = f"gg-daemon-{uuid.uuid4().hex}"
    program = (f"import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
               f"        os.execv('/bin/sleep', ['{marker}', '30'])\n    os._exit(0)\n"
               f"time.sleep(20)\nprint(42)\n")
    fake_llm.script([{"content": f"```python\n{program}```", "times": 5}])
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [{"id": "d", "question": "Daemon {{fake: answer=42}}",
                                                    "answer": "42"}])
    run = popen("solve", seeds, "-o", tmp_path / "solved", "--style", "code", "--paths", "1", "--quiet",
                "--db", tmp_path / "ws.db", "--cache", tmp_path / "c.db", "--isolation", isolation,
                "--program-timeout", "25", cwd=tmp_path, env=cli_env(fake_llm.url))
    leftovers: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while not _with_marker(marker):
            assert run.poll() is None and time.monotonic() < deadline, run.communicate()
            time.sleep(0.1)
        below = _descendants(run.pid)
        assert set(_with_marker(marker)) <= below  # the daemon is still below graphgen (a subreaper)
        run.send_signal(signal.SIGKILL)
        run.wait(timeout=30)
        deadline = time.monotonic() + 10
        while (leftovers := sorted(p for p in below if Path(f'/proc/{p}').exists())) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert leftovers == [], [Path(f"/proc/{p}/cmdline").read_bytes()[:80] for p in leftovers]
        assert _with_marker(marker) == []
        assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob(f"graphgen-sandbox-{run.pid}-*"))
    finally:
        for pid in leftovers + _with_marker(marker):  # only what this test started
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if run.poll() is None:
            run.kill()
            run.wait()
    # the next sandbox removes the memory cgroups the killed run could not
    from graphgen.sandbox import Sandbox
    from graphgen.sandbox_cgroup import memory_cgroup_dir

    with Sandbox(workers=1, isolation="process"):
        pass
    parent = memory_cgroup_dir()
    assert parent is None or not list(parent.glob(f"graphgen-{run.pid}-*"))


def test_the_summary_and_the_report_say_which_isolation_ran(fake_llm, tmp_path):
    """The isolation and the limits that bound the programs are in solve's summary, stored with
    each program result and verdict, and shown by `graphgen report`; a rerun in process mode
    that reuses every result still says they ran under bubblewrap."""
    seeds = write_jsonl(tmp_path / "seeds.jsonl", [
        {"id": f"q{i}", "question": f"Q{i} {{{{fake: answer={i}; code=R}}}}", "answer": str(i)} for i in range(3)])
    args = ("solve", seeds, "-o", tmp_path / "solved", "--style", "code", "--paths", "1",
            "--db", tmp_path / "ws.db", "--cache", tmp_path / "cache.db")
    first = graphgen(*args, cwd=tmp_path, env=cli_env(fake_llm.url), timeout=120).stdout
    assert "programs: 3 run in the sandbox (bwrap), 0 results reused; results by isolation: bwrap 3" in first
    limits = next(line for line in first.splitlines() if line.startswith("sandbox limits: "))
    assert "/tmp 64 MB" in limits and (
        "memory 576 MB per program and its children (cgroup)" in limits or "memory 512 MB per process" in limits)
    assert {r["run"]["isolation"] for r in jsonl_rows(tmp_path / "solved" / "runs.jsonl")} == {"bwrap"}
    assert [v["isolation"] for v in jsonl_rows(tmp_path / "solved" / "verdicts.jsonl")] == ["bwrap"] * 3
    again = graphgen(*args, "--isolation", "process", cwd=tmp_path, env=cli_env(fake_llm.url), timeout=120).stdout
    assert "programs: 0 run in the sandbox, 3 results reused; results by isolation: bwrap 3" in again
    report = graphgen("report", "--db", tmp_path / "ws.db", "-o", tmp_path / "report.html", cwd=tmp_path).stdout
    assert "programs isolated by: bwrap (3 questions)" in report
    assert "programs isolated by bwrap (3 questions)" in (tmp_path / "report.html").read_text()
