"""Local models without running one: the layout chosen for the machine, settings fitted to
what a server says about itself, a GGUF --model selecting a local server, and one-line
errors for a missing or wrong file. (The real server runs in tests/test_real_model.py.)"""

from __future__ import annotations

from pathlib import Path

from clirun import graphgen

from graphgen.config import LLMSettings, load_settings
from graphgen.llm.local import LocalServer, LocalServerError, local_layout
from graphgen.llm.serverinfo import ServerInfo, fit


def test_layout_leaves_a_core_to_graphgen_and_one_thread_on_a_busy_machine():
    assert local_layout(cores=2, load=0.0).threads == 1
    assert local_layout(cores=2, load=3.0).threads == 1
    assert local_layout(cores=8, load=1.0).threads == 6
    assert local_layout(cores=64, load=0.0).threads == 8
    assert local_layout(3, 4, 2048, cores=2, load=9).threads == 3


def test_fit_follows_the_server_but_keeps_what_the_user_set():
    info = ServerInfo("llama.cpp", slots=2, ctx_per_slot=4096)
    llm, notes = fit(LLMSettings(base_url="http://x/v1"), info)
    assert llm.concurrency == 2 and llm.max_tokens == 1024 and llm.timeout >= 600
    assert llm.job_timeout >= 3 * llm.timeout and llm.job_tokens <= 3 * (1024 + 2048)
    assert any("concurrency 2" in n for n in notes)
    mine = load_settings(overrides={"llm": {"base_url": "http://x/v1", "concurrency": 5, "timeout": 30,
                                            "max_tokens": 4000}}, env={}).llm
    llm, _ = fit(mine, info)
    assert (llm.concurrency, llm.timeout, llm.max_tokens) == (5, 30, 4000)
    assert fit(mine, None) == (mine, [])


def test_a_gguf_model_selects_a_local_server_named_by_its_stem():
    s = load_settings(overrides={"llm": {"model": "models/Qwen2.5-0.5B.Q4.gguf"}}, env={}).llm
    assert s.local_model == Path("models/Qwen2.5-0.5B.Q4.gguf") and s.model == "Qwen2.5-0.5B.Q4"
    s = load_settings(env={"GRAPHGEN_LOCAL_MODEL": "m.gguf"}).llm
    assert s.local_model == Path("m.gguf") and s.model == "m"


def test_a_file_that_is_not_gguf_is_refused_before_anything_starts(tmp_path):
    bad = tmp_path / "notes.gguf"
    bad.write_text("hello")
    try:
        LocalServer(bad).start()
    except LocalServerError as exc:
        assert "not a GGUF file" in str(exc)
    else:
        raise AssertionError("started a server for a text file")


def test_cli_names_the_missing_model_file_in_one_line(tmp_path):
    seeds = tmp_path / "s.jsonl"
    seeds.write_text('{"question": "What is 2+2?"}\n')
    r = graphgen("extract", seeds, "--model", tmp_path / "missing.gguf", "--cache", "off", cwd=tmp_path, check=False)
    assert r.returncode == 1
    err = r.stderr.strip().splitlines()
    assert "missing.gguf: no such GGUF file" in err[-1] and "Traceback" not in r.stderr
