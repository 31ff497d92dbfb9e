"""Every LLM output and record file has a checked-in JSON Schema that matches its model."""

from pathlib import Path

import pytest

from graphgen import schemas

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schema"


@pytest.mark.parametrize("name", sorted(schemas.SCHEMAS))
def test_schema_matches_model(name):
    path = SCHEMA_DIR / f"{name}.json"
    assert path.exists(), f"schema/{name}.json missing: run python -m graphgen.schemas"
    assert path.read_text(encoding="utf-8") == schemas.render(name), (
        f"schema/{name}.json drifted from its model: run python -m graphgen.schemas"
    )


def test_drift_is_detected(monkeypatch):
    from pydantic import create_model

    drifted = create_model("ExtractionOutput", topics=(list[str], ...))
    monkeypatch.setattr(schemas, "model_for", lambda name: drifted)
    assert schemas.render("extraction") != (SCHEMA_DIR / "extraction.json").read_text(encoding="utf-8")


def test_installed_package_ships_schemas():
    assert schemas.load("extraction")["title"] == "ExtractionOutput"
