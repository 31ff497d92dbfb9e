"""The walkthrough notebook: committed with its outputs, and they stay honest.

The recorded outputs must be complete (every code cell has some, none is an error) and
clean (no API key, temp path, loopback URL or home directory). A fresh run end to end
against the fake OpenAI server must succeed, so the notebook cannot rot.

Re-record the outputs after changing the notebook or what it prints:

    python tests/test_notebook.py --record
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import nbformat
from nbclient import NotebookClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from clirun import REPO, cli_env  # noqa: E402

NOTEBOOK = REPO / "notebooks" / "walkthrough.ipynb"
FAKE_KEY = "sk-test-FAKE-KEY-7f3a9c1e5b"  # what cli_env gives the kernel


def execute(nb: nbformat.NotebookNode, base_url: str, tmp: Path) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel pointed at `base_url`, as a user in notebooks/ would;
    the notebook's workspace goes under `tmp` (its TMPDIR)."""
    NotebookClient(nb, timeout=300, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute(
        env=cli_env(base_url, TMPDIR=str(tmp)))
    return nb


def output_text(output: dict) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return "\n".join([output.get("ename", ""), output.get("evalue", ""), *output.get("traceback", [])])
    return "\n".join(str(v) for v in output.get("data", {}).values())


def problems(nb: nbformat.NotebookNode) -> list[str]:
    """What is wrong with a notebook's outputs: missing, errors, or text that must not be there."""
    found = []
    forbidden = {
        "the API key": re.compile(re.escape(FAKE_KEY) + r"|sk-[A-Za-z0-9_-]{8,}"),
        "a temp path": re.compile(re.escape(tempfile.gettempdir()) + "|/tmp/|graphgen-nb-"),
        "the repository path": re.compile(re.escape(str(REPO))),
        "the home directory": re.compile(re.escape(str(Path.home())) + "/"),
        "a loopback URL": re.compile(r"127\.0\.0\.1|localhost:\d+"),
    }
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        outputs = cell.get("outputs", [])
        if not outputs:
            found.append(f"cell {i} has no output")
        for out in outputs:
            if out.get("output_type") == "error":
                found.append(f"cell {i} raised {out.get('ename')}: {out.get('evalue')}")
            if out.get("output_type") == "stream" and out.get("name") == "stderr":
                # only the extract stage's field-map notice; no warnings, no progress bars
                other = [line for line in out.get("text", "").splitlines() if not line.startswith("fields: ")]
                if other:
                    found.append(f"cell {i} wrote to stderr: {other[0][:200]!r}")
            text = output_text(out)
            found += [f"cell {i} shows {what}" for what, rx in forbidden.items() if rx.search(text)]
    return found


def test_committed_notebook_has_clean_outputs_in_every_code_cell():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert sum(c.cell_type == "code" for c in nb.cells) >= 8
    assert problems(nb) == []
    text = "\n".join(output_text(o) for c in nb.cells for o in c.get("outputs", []))
    assert "20 LLM calls: 20 ok, 0 failed" in text  # questions
    assert "15 LLM calls: 15 ok, 0 failed" in text  # five pairs x three fusion strategies
    assert "20 already done; 0 LLM calls" in text  # the resumed run paid nothing


def test_notebook_runs_end_to_end_against_the_fake_server(fake_llm, tmp_path):
    nb = execute(nbformat.read(NOTEBOOK, as_version=4), fake_llm.url, tmp_path)
    assert problems(nb) == []
    assert fake_llm.stats()["ok"] == 20 + 15
    recorded = nbformat.read(NOTEBOOK, as_version=4)
    # the same cells print the same kinds of things as the committed recording
    assert [_kinds(c) for c in nb.cells] == [_kinds(c) for c in recorded.cells]


def _kinds(cell) -> list[str]:
    """The kinds of a cell's outputs, a stream's consecutive chunks as one: the kernel splits
    stdout into chunks by timing (a busy machine sends one print as two)."""
    kinds: list[str] = []
    for out in cell.get("outputs", []):
        kind = out.get("output_type", "") + ":" + out.get("name", "")
        if not (kinds and kind.startswith("stream:") and kinds[-1] == kind):
            kinds.append(kind)
    return kinds


def record() -> None:
    """Execute the notebook against a fresh fake server and save it with its outputs."""
    from fake_openai import FakeServerProcess

    with FakeServerProcess() as server, tempfile.TemporaryDirectory() as tmp:
        nb = execute(nbformat.read(NOTEBOOK, as_version=4), server.url, Path(tmp))
    found = problems(nb)
    if found:
        raise SystemExit("not recorded:\n  " + "\n  ".join(found))
    nb.metadata.pop("language_info", None)  # the kernel's exact Python version: machine-specific
    nbformat.write(nb, NOTEBOOK)
    print(f"recorded {NOTEBOOK.relative_to(REPO)}")


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        raise SystemExit("usage: python tests/test_notebook.py --record")
    record()
