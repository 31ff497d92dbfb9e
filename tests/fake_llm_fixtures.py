"""Fixtures for tests that talk to an LLM: a real OpenAI-compatible HTTP server
(tests/fake_openai.py) in a subprocess on a free loopback port, shared by the session and
reset before every test.

    def test_x(fake_llm, llm_settings):
        fake_llm.script([{"status": 429, "retry_after": 1}])
        client = LLMClient(llm_settings)
        ...
        assert fake_llm.stats()["total"] == 2
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_openai import FakeServerProcess  # noqa: E402

from graphgen.config import LLMSettings  # noqa: E402

FAKE_API_KEY = "sk-test-FAKE-KEY-7f3a9c1e5b"


@pytest.fixture(scope="session")
def _fake_llm_server():
    srv = FakeServerProcess(latency_ms=0).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def fake_llm(_fake_llm_server) -> FakeServerProcess:
    """The fake server, reset (no faults, no latency, json_schema accepted, zero stats)."""
    _fake_llm_server.reset()
    yield _fake_llm_server
    _fake_llm_server.reset()


@pytest.fixture
def llm_settings(tmp_path, fake_llm) -> LLMSettings:
    """LLMSettings pointed at the fake server, with a temp cache and fast, test-sized limits."""
    return LLMSettings(
        base_url=fake_llm.url,
        api_key=FAKE_API_KEY,
        model="fake-model",
        concurrency=8,
        timeout=10.0,
        max_retries=4,
        max_reasks=2,
        cache_path=tmp_path / "llm-cache.db",
    )
