"""Shared test setup. Fixture plugins live in their own modules next to this file."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest_plugins = ["fake_llm_fixtures", "neo4j_fixtures"]
