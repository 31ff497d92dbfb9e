"""The layout is the architecture (issue 19): stages import shared pieces, never each other;
no import circles; every module is in docs/architecture.md's package map."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _import_graph():
    spec = importlib.util.spec_from_file_location("import_graph", REPO / "bench" / "import_graph.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _stage_of(module: str) -> str | None:
    """`graphgen.stages.report.page` -> `report`; None for a module outside graphgen.stages."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[1] == "stages" else None


def test_no_stage_imports_another_stage():
    edges = _import_graph().graph()
    stages = {m for m in edges if _stage_of(m)}
    assert {"graphgen.stages.extract", "graphgen.stages.solve", "graphgen.stages.report"} <= stages
    crossing = sorted(f"{a} -> {b}" for a in stages for b in edges[a]
                      if _stage_of(b) and _stage_of(b) != _stage_of(a))
    assert not crossing, "stages import shared pieces, never each other:\n" + "\n".join(crossing)


def test_nothing_below_the_stages_imports_a_stage():
    edges = _import_graph().graph()
    upward = sorted(f"{a} -> {b}" for a, targets in edges.items() for b in targets
                    if _stage_of(b) and not _stage_of(a) and a not in ("graphgen.pipeline", "graphgen.stages"))
    assert not upward, "shared modules must not depend on a stage:\n" + "\n".join(upward)


def test_there_is_no_import_circle():
    ig = _import_graph()
    assert ig.circles(ig.graph()) == []


def test_every_module_is_in_the_package_map():
    """Each module is named in the map: by its own path, or (inside a package) by its file name
    in the row of its folder."""
    text = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
    rows = [line for line in text[text.index("## Package map"):].splitlines() if line.startswith("| `")]
    named: set[str] = set()
    for row in rows:
        first, rest = row.split("|")[1], "|".join(row.split("|")[2:])
        for path in re.findall(r"`(graphgen/[\w/]+(?:\.py)?)`", first):
            named.add(path)
            if path.endswith("/"):
                named.update(path + name for name in re.findall(r"`([\w]+\.py)`", rest))
                named.add(path + "__init__.py")
    missing = [rel for path in sorted((REPO / "graphgen").rglob("*.py"))
               if (rel := path.relative_to(REPO).as_posix()) not in named]
    assert not missing, "docs/architecture.md's package map lacks: " + ", ".join(missing)
