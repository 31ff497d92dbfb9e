"""The report page: the numbers of a `WorkspaceReport` as one self-contained HTML file (tables,
the charts of graphgen.stages.report.charts, inline CSS)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

from graphgen.stages.report.charts import (
    _E,
    _PALETTE,
    _fmt,
    svg_bars,
    svg_columns,
    svg_graph,
    svg_grouped,
    svg_line,
)
from graphgen.stages.report.data import StageCost, WorkspaceReport


def _table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    head = "".join(f"<th>{_E(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_E(_cell(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f'<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _cell(v: object) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return _fmt(v)
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def _plot(name: str, title: str, svg: str, note: str = "") -> str:
    return (f'<figure class="plot" data-plot="{name}"><figcaption>{_E(title)}</figcaption>{svg}'
            + (f'<p class="note">{_E(note)}</p>' if note else "") + "</figure>")


def _absent(name: str, text: str) -> str:
    return f'<p class="absent" data-absent="{name}">{_E(text)}</p>'


_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f6f7f9;color:#222}
header{background:#2A2C34;color:#fff;padding:18px 28px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c9ccd4}main{padding:8px 28px 40px;max-width:1200px}
section{background:#fff;border:1px solid #e1e4e8;border-radius:8px;padding:14px 18px;margin:16px 0}
h2{font-size:17px;margin:0 0 10px}.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{background:#fff;border:1px solid #e1e4e8;border-radius:8px;padding:10px 16px;min-width:120px}
.card b{display:block;font-size:22px}.row{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}
figure{margin:0}figcaption{font-weight:600;margin:4px 0}svg .lbl{font-size:11px;fill:#333}
svg .val{font-size:10px;fill:#666}svg .axis{stroke:#999}svg .grid{stroke:#eee}
svg .edge{stroke:#A5ABB6;stroke-opacity:.7}svg .node{fill:#F79767;stroke:#F36924;stroke-width:1.5;fill-opacity:.9}
table{border-collapse:collapse;font-size:13px;margin:6px 0}th,td{border-bottom:1px solid #eee;padding:3px 10px;text-align:left}
th{background:#fafbfc}td:not(:first-child){font-variant-numeric:tabular-nums}.absent,.note{color:#777;font-style:italic}
"""


def render_html(rep: WorkspaceReport, title: str = "graphgen report") -> str:
    kinds = {"topic": "topics", "kp": "knowledge points"}
    cards = [("seeds", rep.seeds), ("extracted", rep.extracted_seeds), ("concepts", sum(rep.concepts.values())),
             ("edges", sum(rep.edges.values())), ("components", rep.components), ("merges", len(rep.merges)),
             ("generated", rep.generated)]
    parts = ['<div class="cards">' + "".join(f'<div class="card"><b>{v:,}</b>{_E(k)}</div>' for k, v in cards) + "</div>"]

    graph = ['<div class="row">',
             _plot("concepts-per-kind", "Concepts per kind",
                   svg_bars([(kinds.get(k, k), n) for k, n in rep.concepts.items()], title="concepts per kind"))
             if rep.concepts else _absent("concepts-per-kind", "No concepts yet: run `graphgen extract`."),
             _plot("edges-per-kind", "Co-occurrence edges per kind",
                   svg_bars(list(rep.edges.items()), title="edges per kind", color=_PALETTE[1]))
             if rep.edges else "", "</div>", '<div class="row">']
    for kind, hist in rep.degree_histogram.items():
        graph.append(_plot(f"degree-{kind}", f"Degree distribution: {kinds.get(kind, kind)}",
                           svg_columns(list(hist.items()), title=f"degree of {kind}",
                                       color=_PALETTE[0] if kind == "topic" else _PALETTE[1], width=520),
                           "concepts by number of co-occurring concepts"))
    graph.append("</div>")
    if rep.component_sizes:
        graph.append(_plot("components", f"Connected components: {rep.components} "
                                         f"({rep.isolated_concepts} isolated concepts)",
                           svg_columns([(f"#{i + 1}", s) for i, s in enumerate(rep.component_sizes)],
                                        title="component sizes", color=_PALETTE[3]),
                           "concepts per component, largest first"))
    parts.append(_section("Concept graph", "".join(graph)))

    if rep.top_topics:
        parts.append(_section("Top topics", '<div class="row">' + _plot(
            "top-topics", "Topics by number of seeds",
            svg_bars([(t.name, t.frequency) for t in rep.top_topics], title="top topics")) + _table(
            ["topic", "seeds", "degree"], [(t.name, t.frequency, t.degree) for t in rep.top_topics]) + "</div>"))
    if rep.topic_graph_nodes:
        parts.append(_section("Topic graph", _plot(
            "topic-graph", f"The {len(rep.topic_graph_nodes)} most frequent topics and their strongest edges",
            svg_graph(rep.topic_graph_nodes, rep.topic_graph_edges, title="topic graph"),
            "circle area ~ seeds mentioning the topic; line width ~ seeds with both topics; hover for numbers")))
    parts.append(_section("Merges applied", _table(
        ["kind", "alias", "canonical", "similarity"],
        [(m.kind, m.alias, m.canonical, m.similarity) for m in rep.merges]) if rep.merges else _absent(
        "merges", "No merge map applied (`graphgen graph canonicalize`).")))

    gen = []
    if rep.topic_distribution:
        gen.append(_plot("topic-distribution", "Topic distribution: seeds vs generated",
                         svg_grouped([r.topic for r in rep.topic_distribution],
                                     {"seeds": [r.seeds_share for r in rep.topic_distribution],
                                      "generated": [r.generated_share for r in rep.topic_distribution]},
                                     title="topic distribution", percent=True),
                         "share of seeds / of generated rows that have the topic"))
    else:
        gen.append(_absent("topic-distribution", "No generated rows in the store yet (`graphgen generate questions`)."))
    if rep.coverage:
        last = rep.coverage[-1]
        gen.append(_plot("coverage", f"Concept coverage: {last.covered:,} of {rep.coverage_total:,} concepts "
                                     f"({last.covered / max(1, rep.coverage_total):.1%}) after {last.samples:,} samples",
                         svg_line([(p.samples, p.covered) for p in rep.coverage], title="coverage",
                                  x_label="samples", y_label="concepts", y_max=rep.coverage_total),
                         f"from {rep.coverage_source}"))
    else:
        gen.append(_absent("coverage", "No samples or generated rows to measure coverage on."))
    if rep.verification:
        isolated = "; programs isolated by " + ", ".join(f"{k} ({n:,} questions)" for k, n in
                                                       rep.program_isolation.items()) if rep.program_isolation else ""
        for group, title in (("seeds", "seeds, checked against their gold answers"),
                             ("generated", "generated rows, checked by vote against their own answers")):
            rows = [r for r in rep.verification if r.group == group][: 20]
            if not rows:
                continue
            counts = rep.verification_status.get(group, {})
            said = ", ".join(f"{n:,} {k}" for k, n in counts.items())
            gen.append(_plot(f"verification-{group}", f"Verification per topic: {title} ({said})",
                             svg_bars([(r.topic, r.rate) for r in rows], title=f"verification ({group})",
                                      percent=True, color=_PALETTE[2]), f"from {rep.verification_source}{isolated}")
                       + _table(["topic", "questions", "verified", "rate", "mean path pass rate"],
                                [(r.topic, r.questions, r.verified, r.rate, r.mean_path_pass_rate) for r in rows]))
    else:
        gen.append(_absent("verification", "No verdicts: `graphgen solve` has not run on this workspace."))
    if rep.removed_by_reason:
        gen.append(_plot("removed", f"Rows removed by filter: {sum(rep.removed_by_reason.values()):,}",
                         svg_bars(list(rep.removed_by_reason.items()), title="removed by reason", color=_PALETTE[4]),
                         f"from {rep.removed_source}"))
    else:
        gen.append(_absent("removed", "No filter results given (`graphgen report --filter-removed removed.jsonl`)."))
    if rep.check_status:
        said = ", ".join(f"{n:,} {k}" for k, n in sorted(rep.check_status.items()))
        gen.append(_plot("checks", f"Question checks: {said}",
                         svg_bars([(k, n) for k, n in sorted(rep.check_status.items()) if k != "failed"]
                                  + [(f"failed: {k}", n) for k, n in sorted(rep.check_reasons.items())],
                                  title="question checks by outcome", color=_PALETTE[4]),
                         "graphgen check: rule pre-checks, then the judge; failed rows by their first reason")
                   + _table(["answer type", "rows"], sorted(rep.answer_types.items()))
                   + _table(["problem type", "rows"], sorted(rep.problem_types.items())))
    else:
        gen.append(_absent("checks", "No question checks: `graphgen check` has not run on this workspace."))
    if rep.pass_rates:
        gen.append(_plot("difficulty", "Difficulty: pass rate per model",
                         svg_bars([(r.model, r.mean) for r in rep.pass_rates], title="mean pass rate", percent=True,
                                  color=_PALETTE[1]), "solve (a reference model: solve --reference --model REF)")
                   + _table(["model", "questions", "mean pass rate", "never solved", "always solved"],
                            [(r.model, r.questions, r.mean, r.hard, r.easy) for r in rep.pass_rates]))
    parts.append(_section("Generated data", "".join(gen)))
    if rep.examples:
        parts.append(_section("Example rows", "".join(
            f'<figure class="examples" data-examples="{_E(kind)}"><figcaption>{_E(kind)}</figcaption>'
            + _table(["id", "question", "answer", "verification", "filter"],
                     [(r["id"], r["question"], r["answer"], r["verification"], r["filter"]) for r in rows]) + "</figure>"
            for kind, rows in rep.examples.items())))
    if rep.seed_fields:
        parts.append(_section("Seeds by field", '<div class="row">' + "".join(
            _plot(f"seed-field-{_E(k)}", f"Seeds by {k}", svg_bars(list(v.items()), title=f"seeds by {k}", color=_PALETTE[5]))
            for k, v in rep.seed_fields.items()) + "</div>"))

    if rep.cost_by_stage:
        total = StageCost(stage="total", cost_known=all(c.cost_known for c in rep.cost_by_stage))
        for c in rep.cost_by_stage:
            total = total.plus(c)
        cost = _table(["stage", "calls paid", "cached", "journalled", "prompt tokens", "completion tokens", "cost (USD)",
                       "of which judge: calls", "judge tokens", "judge cost", "from"],
                      [(c.stage, c.calls, c.cached, c.journalled, c.prompt_tokens, c.completion_tokens, c.cost_text(),
                        c.judge_calls, c.judge_tokens, f"${c.judge_cost_usd:.4f}" if c.judge_calls else "–", c.source)
                       for c in rep.cost_by_stage]
                      + [("total", total.calls, total.cached, total.journalled, total.prompt_tokens,
                          total.completion_tokens, total.cost_text(), total.judge_calls, total.judge_tokens,
                          f"${total.judge_cost_usd:.4f}", "")])
        plot = _plot("tokens", "Tokens by stage", svg_grouped(
            [c.stage for c in rep.cost_by_stage],
            {"prompt tokens": [c.prompt_tokens for c in rep.cost_by_stage],
             "completion tokens": [c.completion_tokens for c in rep.cost_by_stage]}, title="tokens by stage"))
        parts.append(_section("Tokens and cost", '<div class="row">' + plot + cost + "</div>"))
    else:
        parts.append(_section("Tokens and cost", _absent("tokens", "No LLM usage recorded.")))

    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>{_E(title)}</title>"
            f"<style>{_CSS}</style></head><body><header><h1>{_E(title)}</h1>"
            f"<p>generated {when} by graphgen report</p></header><main>{''.join(parts)}</main></body></html>\n")


def _section(title: str, body: str) -> str:
    return f"<section><h2>{_E(title)}</h2>{body}</section>"
