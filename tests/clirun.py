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


# The CLI runs in the test's own process (click's CliRunner, the environment and working
# directory of a fresh process) unless the test needs a process boundary: a hang guard
# (`timeout=`), `own_process=True` (kills, signals, what a fresh interpreter imports), a
# PYTHONPATH (plugins), Ray or a local model. GRAPHGEN_TEST_SUBPROCESS=1 runs every call as a
# subprocess, as before (the same assertions hold either way).
_IN_PROCESS = os.environ.get("GRAPHGEN_TEST_SUBPROCESS") != "1"
_DEFAULT_TIMEOUT = 900


def graphgen(*args: str, cwd: Path, env: dict[str, str] | None = None, check: bool = True,
             timeout: float = _DEFAULT_TIMEOUT, own_process: bool = False) -> subprocess.CompletedProcess:
    env = env or cli_env()
    argv = [str(a) for a in args]
    if (_IN_PROCESS and not own_process and timeout == _DEFAULT_TIMEOUT and "PYTHONPATH" not in env
            and "--ray" not in argv and not _serves_a_local_model(Path(cwd))):
        proc = _in_process(argv, Path(cwd), env)
    else:  # timeout: a hang guard, not a speed check
        proc = subprocess.run([sys.executable, "-m", "graphgen_cli", *argv], cwd=cwd,
                              env=env, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"graphgen {' '.join(map(str, args))} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _serves_a_local_model(cwd: Path) -> bool:
    toml = cwd / "graphgen.toml"
    return toml.exists() and "local_model" in toml.read_text(encoding="utf-8")


def _in_process(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`python -m graphgen_cli ARGV` in this process: what it prints, its exit code, and an
    uncaught exception's traceback on stderr as the interpreter would print it."""
    import signal
    import traceback

    from click.testing import CliRunner
    from graphgen_cli.main import cli

    saved_env, saved_cwd = dict(os.environ), os.getcwd()
    saved_term = signal.getsignal(signal.SIGTERM)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(cli, argv, prog_name="python -m graphgen_cli", catch_exceptions=True)
    finally:
        os.chdir(saved_cwd)
        os.environ.clear()
        os.environ.update(saved_env)
        signal.signal(signal.SIGTERM, saved_term)
        _forget_process_state()
    stderr, code = result.stderr, result.exit_code
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        stderr += "Traceback (most recent call last):\n" + "".join(traceback.format_exception(exc)[1:])
        code = 1
    return subprocess.CompletedProcess(["graphgen", *argv], code, result.stdout, stderr)


def _forget_process_state() -> None:
    """What one CLI process remembers and a fresh one would not: probed servers, warnings
    already given, local model servers."""
    from graphgen.llm import local, serverinfo

    serverinfo._probed.clear()
    serverinfo._told.clear()
    if local._servers:
        local.stop_all()


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
