"""Shared test setup. Fixture plugins live in their own modules next to this file.

The suite runs on pytest-xdist workers (`-n auto` in pyproject.toml). Tests that need the one
Neo4j server or a Ray cluster are grouped onto one worker each (`--dist loadgroup`), so a run
starts one Neo4j server and one Ray cluster at a time, as before.
"""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest_plugins = ["fake_llm_fixtures", "neo4j_fixtures"]

# Fixtures that hold a server no two workers should start at once: group name by fixture.
_SHARED = {"neo4j_server": "neo4j", "ray_cluster": "ray"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        for fixture, group in _SHARED.items():
            if fixture in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.xdist_group(group))
                break
