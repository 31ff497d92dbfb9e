"""Refusals that used to pass silently (issue 8 item 8): the real CLI, real SQLite files."""

import json

from clirun import cli_env, example_workspace, graphgen


def _fails_with(proc, *needles):
    assert proc.returncode != 0, proc.stdout
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    last = err.splitlines()[-1]  # the error is one line, after any notes
    assert last.startswith("Error: ")
    for needle in needles:
        assert needle in last, err


def test_skip_invalid_that_rejects_every_row_exits_non_zero(tmp_path):
    seeds = tmp_path / "s.jsonl"
    seeds.write_text("".join(json.dumps({"prompt_text": f"What is {i}+1?"}) + "\n" for i in range(5)))
    proc = graphgen("extract", seeds, "--skip-invalid", "--dry-run", cwd=tmp_path, check=False)
    _fails_with(proc, "all 5 rows were rejected", "line 1: missing_question", "--question-field")
    assert not (tmp_path / "rejects.jsonl").exists()  # a dry run writes nothing
    proc = graphgen("extract", seeds, "--skip-invalid", cwd=tmp_path, check=False)
    _fails_with(proc, "all 5 rows were rejected", "rejects.jsonl", "--question-field")
    assert len((tmp_path / "rejects.jsonl").read_text().splitlines()) == 5


def test_read_only_commands_refuse_a_missing_workspace(tmp_path):
    example_workspace(tmp_path)
    for args in (["graph", "stats"], ["graph", "export", "-o", "g.graphml"],
                 ["sample", "concepts", "-n", "5", "-o", "s.jsonl"], ["export", "-o", "t.jsonl"],
                 ["sample", "fusion-pairs", "-o", "p.jsonl"]):
        proc = graphgen(*args, "--db", "graphgne.db", cwd=tmp_path, check=False)
        _fails_with(proc, "graphgne.db: no such workspace", "--db")
    assert not (tmp_path / "graphgne.db").exists()


def test_samples_from_another_workspace_are_refused(tmp_path, fake_llm):
    example_workspace(tmp_path)
    graphgen("sample", "concepts", "-n", "5", "-o", "samples.jsonl", cwd=tmp_path)
    other = tmp_path / "other"
    other.mkdir()
    seeds = other / "s.jsonl"
    seeds.write_text(json.dumps({"id": "x1", "question": "What is 1+1?"}) + "\n")
    (other / "a.jsonl").write_text(json.dumps({"seed_id": "x1", "topics": ["Counting"], "knowledge_points": ["Adding"]}) + "\n")
    graphgen("extract", seeds, "--from-annotations", other / "a.jsonl", cwd=other)
    for extra in ([], ["--dry-run"]):
        proc = graphgen("generate", "questions", "--samples", tmp_path / "samples.jsonl", "-o", "gen.jsonl", *extra,
                        cwd=other, env=cli_env(fake_llm.url), check=False)
        _fails_with(proc, "which this workspace does not have", "another workspace")
    assert fake_llm.stats()["total"] == 0


def test_an_output_path_that_cannot_exist_is_one_line_naming_it(tmp_path):
    """/proc refuses new files (even for root): the error names the path the user gave, not the
    temp file of the atomic write, and says what to check."""
    example_workspace(tmp_path)
    for args in (["sample", "concepts", "-n", "5", "-o", "/proc/graphgen-x.jsonl"],
                 ["graph", "export", "-o", "/proc/graphgen-g.graphml"]):
        proc = graphgen(*args, cwd=tmp_path, check=False)
        _fails_with(proc, args[-1] + ":", "check the path")
