"""Shared test setup. Fixture plugins live in their own modules next to this file."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path

# TEMP while neo4j_fixtures is being written
pytest_plugins = [p for p in ("fake_llm_fixtures", "neo4j_fixtures") if (Path(__file__).parent / f"{p}.py").exists()]
