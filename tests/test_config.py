"""Settings: defaults < graphgen.toml < environment < flags; secrets stay secret."""

import pytest
from clirun import EXAMPLES, cli_env, graphgen

from graphgen.config import load_settings


def test_precedence_file_env_flags(tmp_path):
    cfg = tmp_path / "graphgen.toml"
    cfg.write_text('[llm]\nmodel = "from-file"\nconcurrency = 7\nrpm = 100\n'
                   '[llm.prices."from-file"]\ninput = 1.0\noutput = 2.0\n[store]\npath = "file.db"\n')
    s = load_settings(cfg, env={})
    assert (s.llm.model, s.llm.concurrency, s.llm.rpm, str(s.store.path)) == ("from-file", 7, 100, "file.db")
    assert s.llm.price_for("from-file").output == 2.0
    s = load_settings(cfg, env={"GRAPHGEN_MODEL": "from-env", "GRAPHGEN_CONCURRENCY": "9"})
    assert (s.llm.model, s.llm.concurrency, s.llm.rpm) == ("from-env", 9, 100)
    s = load_settings(cfg, env={"GRAPHGEN_MODEL": "from-env"}, overrides={"llm": {"model": "from-flag", "rpm": None}})
    assert (s.llm.model, s.llm.rpm) == ("from-flag", 100)  # a flag left unset changes nothing


def test_off_disables_the_canonicalize_embedding_cache_from_a_flag_or_the_file(tmp_path):
    assert load_settings(None, env={}, overrides={"canonicalize": {"embeddings_cache": "off"}}).canonicalize.embeddings_cache is None
    (tmp_path / "g.toml").write_text('[canonicalize]\nembeddings_cache = "none"\n')
    assert load_settings(tmp_path / "g.toml", env={}).canonicalize.embeddings_cache is None
    assert load_settings(None, env={}).canonicalize.embeddings_cache is not None


def test_neo4j_uri_selects_neo4j_and_cache_off(tmp_path):
    s = load_settings(None, env={"NEO4J_URI": "bolt://h:7687", "GRAPHGEN_CACHE": "off"})
    assert s.store.kind == "neo4j" and s.llm.cache_path is None
    s = load_settings(None, env={"NEO4J_URI": "bolt://h:7687", "GRAPHGEN_STORE": "sqlite"})
    assert s.store.kind == "sqlite"


def test_secrets_are_not_printed(tmp_path):
    s = load_settings(None, env={"OPENAI_API_KEY": "sk-secret-123", "NEO4J_PASSWORD": "pw-secret-456"})
    text = repr(s) + str(s) + s.model_dump_json()
    assert "sk-secret-123" not in text and "pw-secret-456" not in text
    assert s.llm.api_key.get_secret_value() == "sk-secret-123"


def test_bad_config_file_is_one_line(tmp_path):
    (tmp_path / "graphgen.toml").write_text("[llm\nmodel = 1\n")
    proc = graphgen("graph", "stats", cwd=tmp_path, check=False)
    assert proc.returncode == 1 and "graphgen.toml: invalid TOML" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    with pytest.raises(ValueError, match="config file not found"):
        load_settings(tmp_path / "missing.toml", env={})


def test_cli_reads_the_config_file(tmp_path, fake_llm):
    (tmp_path / "graphgen.toml").write_text(
        f'[llm]\nbase_url = "{fake_llm.url}"\nmodel = "toml-model"\ncache_path = "off"\n[store]\npath = "ws.db"\n')
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join((EXAMPLES / "seeds.jsonl").read_text().splitlines(True)[:3]))
    env = cli_env(None, OPENAI_API_KEY="sk-test-cfg")
    out = graphgen("extract", seeds, "--quiet", cwd=tmp_path, env=env)
    assert "extracted 3 (0 from cache)" in out.stdout
    assert (tmp_path / "ws.db").exists() and not (tmp_path / "graphgen-cache.db").exists()
    assert set(fake_llm.stats()["by_hash"])  # the requests went to the configured endpoint


def test_embedding_device_is_a_setting():
    s = load_settings(None, env={"GRAPHGEN_EMBEDDING_DEVICE": "cuda:1"})
    assert s.embedding.device == "cuda:1"
    assert load_settings(None, env={}).embedding.device == "cpu"
