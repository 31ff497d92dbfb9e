"""LLM providers: one transport class plus a registration (graphgen.llm.providers).

Through the real CLI against the real HTTP fake server: the built-in Anthropic Messages
provider, a third-party provider registered by an installed package's entry point, and the
errors a wrong setting gets."""

from __future__ import annotations

import json
from pathlib import Path

from clirun import EXAMPLES, cli_env, graphgen

from graphgen.llm.anthropic import to_chat_completion, to_messages_request

ANTHROPIC_KEY = "sk-ant-test-KEY-31c9e0d2"


def _seeds(tmp_path: Path, n: int = 4) -> Path:
    lines = (EXAMPLES / "seeds.jsonl").read_text().splitlines()[:n]
    path = tmp_path / "seeds.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _files_text(root: Path) -> str:
    return "".join(p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file())


def test_messages_request_and_reply_translation():
    body = {"model": "claude-x", "temperature": 1.7, "seed": 3, "max_tokens": None,
            "response_format": {"type": "json_object"},
            "messages": [{"role": "system", "content": "Be brief."}, {"role": "system", "content": "Schema: {}"},
                         {"role": "user", "content": "Q"}, {"role": "user", "content": "again"}]}
    req = to_messages_request(body)
    assert req == {"model": "claude-x", "max_tokens": 4096, "temperature": 1.0, "system": "Be brief.\n\nSchema: {}",
                   "messages": [{"role": "user", "content": "Q\n\nagain"}]}
    cut = to_chat_completion({"content": [{"type": "text", "text": "Let x"}], "stop_reason": "max_tokens",
                              "usage": {"input_tokens": 7, "output_tokens": 9}})
    assert cut["choices"][0] == {"index": 0, "message": {"role": "assistant", "content": "Let x"},
                                 "finish_reason": "length"}
    assert cut["usage"] == {"prompt_tokens": 7, "completion_tokens": 9}


def test_extract_through_the_anthropic_provider(tmp_path, fake_llm):
    seeds = _seeds(tmp_path)
    env = cli_env(fake_llm.url, GRAPHGEN_LLM_PROVIDER="anthropic", ANTHROPIC_API_KEY=ANTHROPIC_KEY)
    del env["OPENAI_API_KEY"]
    proc = graphgen("extract", seeds, cwd=tmp_path, env=env)
    stats = fake_llm.stats()
    assert stats["messages_api"] == stats["total"] >= 4, stats
    assert stats["by_status"] == {"200": stats["total"]}
    assert "extracted 4 (0 from cache), failed 0" in proc.stdout, proc.stdout
    graph = graphgen("graph", "stats", cwd=tmp_path, env=env).stdout
    assert "seeds: 4 (4 extracted)" in graph, graph
    assert ANTHROPIC_KEY not in _files_text(tmp_path)  # cache, store, logs: never the key


def test_the_anthropic_provider_never_sends_the_openai_key(tmp_path, fake_llm):
    # only OPENAI_API_KEY is set: the provider sends no key, the server says 401, the run stops
    proc = graphgen("extract", _seeds(tmp_path, 2), cwd=tmp_path, check=False,
                    env=cli_env(fake_llm.url, GRAPHGEN_LLM_PROVIDER="anthropic"))
    assert proc.returncode != 0
    assert "ANTHROPIC_API_KEY" in proc.stderr and "401" in proc.stderr, proc.stderr
    assert fake_llm.stats()["messages_api"] >= 1


PLUGIN = '''
from graphgen.llm.transport import OpenAICompatible


class Recording(OpenAICompatible):
    """An OpenAI-compatible transport that appends each request's path to a file."""

    def __init__(self, *a, log, **kw):
        super().__init__(*a, **kw)
        self.log = log

    async def post(self, path, body):
        with open(self.log, "a") as fh:
            fh.write(path + " " + body["model"] + "\\n")
        return await super().post(path, body)


def make(settings, http):
    import os
    t = Recording(settings.base_url, os.environ["RECORDING_KEY"], timeout=settings.timeout,
                  connections=settings.concurrency, http=http, log=os.environ["RECORDING_LOG"])
    return t, settings
'''


def test_a_plugin_package_registers_a_provider_by_entry_point(tmp_path, fake_llm):
    site = tmp_path / "site"
    (site / "recording_provider-0.1.dist-info").mkdir(parents=True)
    (site / "recording_provider.py").write_text(PLUGIN)
    (site / "recording_provider-0.1.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: recording-provider\nVersion: 0.1\n")
    (site / "recording_provider-0.1.dist-info" / "entry_points.txt").write_text(
        "[graphgen.providers]\nrecording = recording_provider:make\n")
    work = tmp_path / "work"
    work.mkdir()
    log = tmp_path / "requests.log"
    env = cli_env(fake_llm.url, GRAPHGEN_LLM_PROVIDER="recording", PYTHONPATH=str(site),
                  RECORDING_LOG=str(log), RECORDING_KEY="sk-plugin-key")
    graphgen("extract", _seeds(work, 3), cwd=work, env=env)
    lines = log.read_text().splitlines()
    assert len(lines) == fake_llm.stats()["total"] >= 3
    assert set(lines) == {"/chat/completions fake-model"}
    # the same factory by module:attribute, without an entry point
    log.unlink()
    env["GRAPHGEN_LLM_PROVIDER"] = "recording_provider:make"
    again = tmp_path / "again"
    again.mkdir()
    graphgen("extract", _seeds(again, 3), "--cache", "off", cwd=again, env=env)
    assert len(log.read_text().splitlines()) >= 3


def test_an_unknown_provider_is_one_line_naming_the_known_ones(tmp_path, fake_llm):
    proc = graphgen("extract", _seeds(tmp_path, 1), cwd=tmp_path, check=False,
                    env=cli_env(fake_llm.url, GRAPHGEN_LLM_PROVIDER="antropic"))
    assert proc.returncode != 0
    line = [x for x in proc.stderr.splitlines() if "antropic" in x]
    assert len(line) == 1 and "anthropic, openai" in line[0], proc.stderr
    assert fake_llm.stats()["total"] == 0
    assert json.loads(json.dumps(fake_llm.stats()))["messages_api"] == 0
