"""Report: the workspace as pictures and tables in one self-contained HTML file (stage `report`).

    run(settings, store, ReportInputs(output=Path("report.html"))) -> WorkspaceReport

What it shows: concepts and edges per kind, degree distribution, connected components, top
topics, merges applied (canonicalize), a drawing of the topic graph (the top-N topics with
their strongest topic-topic edges, nodes sized by frequency); and for generated data: its
topic distribution against the seeds', concept coverage (share of concepts used by at least
one sample, and how it grew with samples), per-topic verification pass rates (`solve`
verdicts, from the store or verdicts.jsonl), rows removed by `filter` by reason (its
removed.jsonl or report JSON), and tokens and cost by stage. Sections whose data is absent
say so instead of drawing an empty plot.

The numbers are one pydantic model (`WorkspaceReport`), so `--json` prints exactly what the
page draws. Plots are inline SVG (`charts`, laid out by `page`): no JavaScript, no plotting library, nothing
fetched at view time; a few kB per plot (a vendored JS library would add 200 kB-3.5 MB to
every file), and each mark carries a `<title>` so hovering shows the exact value.
"""

from __future__ import annotations

import time
from pathlib import Path

from graphgen.config import Settings
from graphgen.jsonl import atomic_path
from graphgen.stages.report.data import ReportError, ReportInputs, WorkspaceReport, collect
from graphgen.stages.report.page import render_html
from graphgen.store.base import GraphStore

__all__ = ["ReportError", "ReportInputs", "WorkspaceReport", "collect", "render_html", "run"]


def run(settings: Settings, store: GraphStore, inputs: ReportInputs) -> WorkspaceReport:
    """Collect the numbers and, with `inputs.output`, write the HTML page (atomically)."""
    t0 = time.monotonic()
    rep = collect(settings, store, inputs)
    if inputs.output is not None:
        page = render_html(rep)
        out = Path(inputs.output)
        with atomic_path(out) as tmp:
            tmp.write_text(page, encoding="utf-8")
        rep.output, rep.bytes = str(out), len(page.encode("utf-8"))
    rep.elapsed_s = time.monotonic() - t0
    return rep
