"""Read-only places and full disks (issue 8 item 6): the real CLI in a private mount
namespace (`unshare --mount --map-root-user`) with a small or read-only tmpfs, so nothing
on the host is mounted and everything is gone when the process ends."""

import json
import shlex
import sqlite3
import subprocess
import sys

import pytest
from clirun import cli_env, example_workspace, graphgen


@pytest.fixture
def ws(tmp_path):
    example_workspace(tmp_path)
    graphgen("sample", "concepts", "-n", "200", "-o", "samples.jsonl", "--seed", "2", cwd=tmp_path)
    (tmp_path / "mnt").mkdir()
    return tmp_path


def in_tmpfs(ws, env, options, *args, before="true", after="true"):
    """Run `graphgen ARGS` with a tmpfs mounted (OPTIONS) at ws/mnt, in its own mount namespace."""
    cli = " ".join(shlex.quote(str(a)) for a in (sys.executable, "-m", "graphgen_cli", *args))
    script = (f"mount -t tmpfs -o {options} tmpfs mnt && {before} && {cli}; rc=$?; {after}; exit $rc")
    return subprocess.run(["unshare", "--mount", "--map-root-user", "sh", "-c", script], cwd=ws, env=env,
                          capture_output=True, text=True, timeout=300)


def _one_line_error(proc, *needles):
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


def _ids(path):
    ids = []
    for line in path.read_text(encoding="utf-8").splitlines(keepends=True):
        if line.endswith("\n"):
            ids.append(json.loads(line)["id"])
    return ids


def _store_ids(db):
    con = sqlite3.connect(db)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        return {r[0] for r in con.execute("SELECT id FROM generated")}
    finally:
        con.close()


def test_output_in_a_read_only_directory(ws, fake_llm):
    proc = in_tmpfs(ws, cli_env(fake_llm.url), "ro,size=64k",
                    "generate", "questions", "--samples", "samples.jsonl", "-o", "mnt/gen.jsonl", "--quiet")
    _one_line_error(proc, "mnt/gen.jsonl", "Read-only file system", "choose a writable place")
    assert fake_llm.stats()["total"] == 0


def test_cache_in_a_read_only_directory(ws, fake_llm):
    proc = in_tmpfs(ws, cli_env(fake_llm.url), "ro,size=64k",
                    "generate", "questions", "--samples", "samples.jsonl", "-o", "gen.jsonl", "--quiet",
                    "--cache", "mnt/cache.db")
    _one_line_error(proc, "choose a writable place")


def test_disk_full_while_writing_the_output(ws, fake_llm):
    proc = in_tmpfs(ws, cli_env(fake_llm.url), "size=24k",
                    "generate", "questions", "--samples", "samples.jsonl", "-o", "mnt/gen.jsonl", "--quiet",
                    after="cp mnt/gen.jsonl partial.jsonl")
    _one_line_error(proc, "No space left on device", "the disk is full", "run the same command again")
    in_file = _ids(ws / "partial.jsonl")
    assert in_file and set(in_file) <= _store_ids(ws / "graphgen.db")  # the store is never behind


def test_disk_full_on_the_database(ws, fake_llm):
    size = (ws / "graphgen.db").stat().st_size + 96 * 1024
    proc = in_tmpfs(ws, cli_env(fake_llm.url), f"size={size}",
                    "generate", "questions", "--samples", "samples.jsonl", "-o", "gen.jsonl", "--quiet",
                    "--db", "mnt/graphgen.db",
                    before="cp graphgen.db mnt/", after="mkdir -p out && cp mnt/graphgen.db* out/")
    err = _one_line_error(proc, "mnt/graphgen.db", "disk is full", "free some space")
    assert "cannot rollback" not in err
    stored = _store_ids(ws / "out" / "graphgen.db")
    assert set(_ids(ws / "gen.jsonl")) <= stored  # the file never holds a row the store lost
