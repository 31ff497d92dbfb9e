"""Run the real `graphgen` CLI in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
EXAMPLES = REPO / "examples"


def cli_env(base_url: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "GRAPHGEN_", "NEO4J_"))}
    env["HF_HUB_OFFLINE"] = "1"
    if base_url:
        env["OPENAI_BASE_URL"] = base_url
        env["OPENAI_API_KEY"] = "sk-test-FAKE-KEY-7f3a9c1e5b"
        env["GRAPHGEN_MODEL"] = "fake-model"
    env.update(extra)
    return env


def graphgen(*args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True,
             timeout: float = 900) -> subprocess.CompletedProcess:  # a hang guard, not a speed check
    proc = subprocess.run([sys.executable, "-m", "graphgen_cli", *map(str, args)], cwd=cwd,
                          env=env or cli_env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"graphgen {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def popen(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "graphgen_cli", *map(str, args)], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


_EXAMPLE_TEMPLATE: Path | None = None


def example_workspace(cwd: Path) -> Path:
    """A workspace in `cwd` holding the 300 example seeds and their hand-written concepts.

    Built once per test process by the real `graphgen extract --from-annotations` (into a
    private template directory), then copied: the same files a fresh extract writes, without
    paying ~2 s of extract per test. Tests of extract itself call the CLI directly."""
    global _EXAMPLE_TEMPLATE
    if _EXAMPLE_TEMPLATE is None:
        import atexit
        import shutil
        import tempfile

        template = Path(tempfile.mkdtemp(prefix="graphgen-example-ws-"))
        atexit.register(shutil.rmtree, template, True)
        graphgen("extract", EXAMPLES / "seeds.jsonl", "--from-annotations", EXAMPLES / "annotations.jsonl",
                 cwd=template)
        _EXAMPLE_TEMPLATE = template
    import shutil

    cwd = Path(cwd)
    for item in _EXAMPLE_TEMPLATE.iterdir():
        if item.is_file():
            shutil.copy2(item, cwd / item.name)
    return cwd


def jsonl_rows(path: Path) -> list[dict]:
    """The rows of a JSONL file (blank lines skipped)."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
