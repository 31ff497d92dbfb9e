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
page draws. Plots are inline SVG written here: no JavaScript, no plotting library, nothing
fetched at view time; a few kB per plot (a vendored JS library would add 200 kB-3.5 MB to
every file), and each mark carries a `<title>` so hovering shows the exact value.
"""

from __future__ import annotations

import html
import json
import math
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from pathlib import Path

from typing import TypeVar

from pydantic import BaseModel, Field

from graphgen.config import Settings
from graphgen.errors import one_line
from graphgen.graph import graph_report
from graphgen.jsonl import atomic_path, read_jsonl
from graphgen.records import Concept, ConceptEdge, ConceptKind, JudgeVerdict
from graphgen.stage import StageError, StageReport
from graphgen.status import LEFT_OUT, verification
from graphgen.store.base import GraphStore


M = TypeVar("M", bound=BaseModel)


class ReportError(StageError, ValueError):
    """An input file the report cannot read: `file:line: problem`."""


class ReportInputs(BaseModel):
    output: Path | None = Field(Path("report.html"), description="HTML file to write (None: numbers only)")
    samples: list[Path] = Field(default_factory=list, description="concept samples (JSONL) for coverage; "
                                "default: the concepts of the generated rows in the store")
    verdicts: list[Path] = Field(default_factory=list, description="solve verdicts.jsonl; default: the store's")
    filter_removed: list[Path] = Field(default_factory=list, description="filter removed.jsonl or report JSON")
    stage_reports: list[Path] = Field(default_factory=list,
                                      description="stage report JSON files (--report of any stage): tokens and cost")


# --- the numbers ------------------------------------------------------------------------------


class Named(BaseModel):
    name: str
    value: float


class TopicRow(BaseModel):
    id: str
    name: str
    frequency: int
    degree: int


class MergeRow(BaseModel):
    alias: str
    canonical: str
    kind: str
    similarity: float | None = None


class GraphNode(BaseModel):
    id: str
    name: str
    frequency: int
    x: float
    y: float


class GraphLink(BaseModel):
    source: str
    target: str
    count: int
    weight: float


class DistributionRow(BaseModel):
    topic: str
    seeds_share: float
    generated_share: float


class CoveragePoint(BaseModel):
    samples: int
    covered: int


class PassRow(BaseModel):
    group: str = Field("generated", description="seeds (checked against gold) or generated (by vote)")
    topic: str
    questions: int
    verified: int
    rate: float
    mean_path_pass_rate: float | None = None


class StageCost(BaseModel):
    stage: str
    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    source: str = ""


class WorkspaceReport(StageReport):
    stage: str = "report"
    output: str | None = None
    bytes: int = 0
    seeds: int = 0
    extracted_seeds: int = 0
    generated: int = 0
    concepts: dict[str, int] = Field(default_factory=dict)
    edges: dict[str, int] = Field(default_factory=dict)
    degree_histogram: dict[str, dict[str, int]] = Field(default_factory=dict, description="kind -> bucket -> concepts")
    components: int = 0
    component_sizes: list[int] = Field(default_factory=list, description="largest first (at most 20)")
    isolated_concepts: int = 0
    top_topics: list[TopicRow] = Field(default_factory=list)
    merges: list[MergeRow] = Field(default_factory=list)
    topic_graph_nodes: list[GraphNode] = Field(default_factory=list)
    topic_graph_edges: list[GraphLink] = Field(default_factory=list)
    topic_distribution: list[DistributionRow] = Field(default_factory=list)
    coverage_source: str | None = None
    coverage_total: int = 0
    coverage: list[CoveragePoint] = Field(default_factory=list)
    verification: list[PassRow] = Field(default_factory=list)
    verification_source: str | None = None
    seed_fields: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="seed metadata field (e.g. MATH level) -> value -> seeds, for fields with 2-30 values")
    examples: dict[str, list[dict]] = Field(
        default_factory=dict, description="a few rows per kind of generated row: id, question, answer, verification, filter")
    verification_status: dict[str, dict[str, int]] = Field(
        default_factory=dict, description="seeds / generated -> status (verified by gold, by vote, unverified, unverifiable) -> questions")
    removed_by_reason: dict[str, int] = Field(default_factory=dict)
    removed_source: str | None = None
    cost_by_stage: list[StageCost] = Field(default_factory=list)

    @property
    def covered_share(self) -> float | None:
        if not self.coverage or not self.coverage_total:
            return None
        return self.coverage[-1].covered / self.coverage_total

    def lines(self) -> list[str]:
        out = []
        if self.output:
            out.append(f"wrote {self.output} ({self.bytes / 1024:.0f} kB) in {self.elapsed_s:.1f}s")
        out.append(f"{sum(self.concepts.values())} concepts, {sum(self.edges.values())} edges, "
                   f"{self.components} components, {len(self.merges)} merges applied")
        if self.covered_share is not None:
            out.append(f"coverage: {self.coverage[-1].covered} of {self.coverage_total} concepts "
                       f"({self.covered_share:.1%}) used by {self.coverage[-1].samples} samples")
        for group, counts in self.verification_status.items():
            total = sum(counts.values())
            out.append(f"verification, {group}: {total} questions; "
                       + ", ".join(f"{n} {k}" for k, n in counts.items() if n))
        if self.removed_by_reason:
            out.append("removed by filter: " + ", ".join(f"{k} {n}" for k, n in sorted(self.removed_by_reason.items())))
        if self.cost_by_stage:
            out.append("cost: " + ", ".join(f"{c.stage} ${c.cost_usd:.4f}" for c in self.cost_by_stage))
        out.extend(self.notes)
        return out


# --- reading optional inputs --------------------------------------------------------------------


class SampleLine(BaseModel, extra="allow"):
    """What coverage reads of a concept-samples line."""

    topics: list[str] = Field(default_factory=list)
    knowledge_points: list[str] = Field(default_factory=list)


class VerdictLine(BaseModel, extra="allow"):
    """What the report reads of a `solve` verdict (verdicts.jsonl or the store)."""

    question_id: str
    question_kind: str = "seed"
    verified: bool | None = None
    majority_correct: bool | None = None
    pass_rate: float | None = None
    status: str | None = None
    verified_by: str | None = None
    judge: JudgeVerdict | None = None


class RemovedLine(BaseModel, extra="allow"):
    """What the report reads of a `filter` removed.jsonl line."""

    reason: dict | str | None = None


def _read_lines(paths: Sequence[Path], model: type[M]) -> list[M]:
    try:
        return [row for p in paths for row in read_jsonl(p, model)]
    except OSError as exc:
        raise ReportError(f"{exc.filename}: cannot read ({exc.strerror})") from None
    except ValueError as exc:
        raise ReportError(one_line(exc)) from None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg}: col {exc.colno})") from None
    if not isinstance(data, dict):
        raise ReportError(f"{path}: expected a JSON object")
    return data


# --- computing ----------------------------------------------------------------------------------


def _components(concepts: Sequence[Concept], edges: Sequence[ConceptEdge]) -> list[int]:
    parent = {c.id: c.id for c in concepts}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for e in edges:
        if e.source in parent and e.target in parent:
            parent[find(e.source)] = find(e.target)
    return sorted(Counter(find(c) for c in parent).values(), reverse=True)


def _topic_graph(topics: list[Concept], edges: Sequence[ConceptEdge], per_topic: int):
    import networkx as nx

    ids = {t.id for t in topics}
    strongest: dict[str, list[ConceptEdge]] = defaultdict(list)
    for e in edges:
        if e.source in ids and e.target in ids:
            strongest[e.source].append(e)
            strongest[e.target].append(e)
    chosen: dict[tuple[str, str], ConceptEdge] = {}
    for tid, es in strongest.items():
        for e in sorted(es, key=lambda e: (-e.count, -e.weight, e.source, e.target))[:per_topic]:
            chosen[(e.source, e.target)] = e
    # Layout on every edge among the drawn topics (denser, so related topics sit together),
    # Kamada-Kawai on the connected part; topics with no edge to the others on a bottom row.
    g = nx.Graph()
    g.add_nodes_from(sorted(ids))
    for e in edges:
        if e.source in ids and e.target in ids:
            g.add_edge(e.source, e.target, distance=1.0 / (0.05 + e.weight))
    linked = sorted(n for n in g if g.degree(n))
    pos: dict[str, tuple[float, float]] = {}
    if linked:
        sub = g.subgraph(linked)
        components = sorted(nx.connected_components(sub), key=lambda c: (-len(c), min(c)))
        for k, comp in enumerate(components):
            part = nx.kamada_kawai_layout(sub.subgraph(comp), weight="distance") if len(comp) > 2 else \
                {n: (0.3 * i - 0.15, 0.0) for i, n in enumerate(sorted(comp))}
            dx = 2.4 * k  # components side by side
            pos.update({n: (float(x) + dx, float(y)) for n, (x, y) in part.items()})
    lonely = [t.id for t in topics if not g.degree(t.id)]
    if lonely:
        xs = [x for x, _ in pos.values()] or [0.0]
        y0 = max((y for _, y in pos.values()), default=0.0) + 0.5
        for i, tid in enumerate(lonely):
            pos[tid] = (min(xs) + (max(xs) - min(xs) or 1.0) * (i + 0.5) / len(lonely), y0)
    nodes = [GraphNode(id=t.id, name=t.display_name, frequency=t.frequency,
                       x=round(float(pos[t.id][0]), 4), y=round(float(pos[t.id][1]), 4)) for t in topics]
    links = [GraphLink(source=a, target=b, count=e.count, weight=round(e.weight, 4)) for (a, b), e in sorted(chosen.items())]
    return nodes, links


def _coverage(concept_sets: Iterable[Iterable[str]], known: set[str]) -> list[CoveragePoint]:
    sets = [set(s) & known for s in concept_sets]
    if not sets:
        return []
    step = max(1, len(sets) // 60)
    seen: set[str] = set()
    points = []
    for i, s in enumerate(sets, 1):
        seen |= s
        if i % step == 0 or i == len(sets):
            points.append(CoveragePoint(samples=i, covered=len(seen)))
    return points


def _usage_cost(usages: Iterable[dict | None], stage: str, source: str) -> StageCost | None:
    cost = StageCost(stage=stage, source=source)
    for u in usages:
        if not u or u.get("cached"):
            continue
        cost.calls += 1
        cost.prompt_tokens += int(u.get("prompt_tokens") or 0)
        cost.completion_tokens += int(u.get("completion_tokens") or 0)
        cost.cost_usd += float(u.get("cost_usd") or 0.0)
    return cost if cost.calls else None


def collect(settings: Settings, store: GraphStore, inputs: ReportInputs) -> WorkspaceReport:
    """Every number the page shows."""
    opts = settings.report
    stats = store.stats()
    concepts = list(store.concepts())
    edges = list(store.edges())
    rep = WorkspaceReport(seeds=stats.seeds, extracted_seeds=stats.extracted_seeds, generated=stats.generated,
                          concepts=stats.concepts, edges=stats.edges)
    summary = graph_report(concepts, edges, top=opts.top_topics)
    for kind in ConceptKind:
        if f"{kind.value}_degree" in summary:
            rep.degree_histogram[kind.value] = summary[f"{kind.value}_degree"]["histogram"]
    sizes = _components(concepts, edges)
    rep.components, rep.component_sizes, rep.isolated_concepts = len(sizes), sizes[:20], sizes.count(1)
    by_id = {c.id: c for c in concepts}
    degree: Counter[str] = Counter()
    for e in edges:
        degree[e.source] += 1
        degree[e.target] += 1
    topics = sorted((c for c in concepts if c.kind is ConceptKind.topic), key=lambda c: (-c.frequency, c.id))
    rep.top_topics = [TopicRow(id=t.id, name=t.display_name, frequency=t.frequency, degree=degree[t.id])
                      for t in topics[: opts.top_topics]]
    for m in store.concept_merges():
        canon = by_id.get(m.canonical_id)
        rep.merges.append(MergeRow(alias=m.alias_id.split(":", 1)[1], kind=m.alias_id.split(":", 1)[0],
                                   canonical=canon.display_name if canon else m.canonical_id.split(":", 1)[1],
                                   similarity=m.similarity))
    rep.topic_graph_nodes, rep.topic_graph_edges = _topic_graph(topics[: opts.top_topics], edges, opts.edges_per_topic)

    fields: dict[str, Counter[str]] = defaultdict(Counter)
    for s in store.seeds():
        for k, v in s.metadata.items():
            fields[k][str(v)] += 1
    rep.seed_fields = {k: dict(sorted(c.items())) for k, c in sorted(fields.items()) if 2 <= len(c) <= 30}

    generated = [g for g in store.generated() if g.status == "ok"]
    topic_ids = {t.id for t in topics}
    gen_topics: Counter[str] = Counter(t for g in generated for t in set(g.concept_ids) if t in topic_ids)
    n_gen = sum(1 for g in generated if any(t in topic_ids for t in g.concept_ids))
    if n_gen and stats.extracted_seeds:
        ranked = sorted(topic_ids, key=lambda t: (-(by_id[t].frequency / stats.extracted_seeds + gen_topics[t] / n_gen), t))
        rep.topic_distribution = [
            DistributionRow(topic=by_id[t].display_name, seeds_share=round(by_id[t].frequency / stats.extracted_seeds, 4),
                            generated_share=round(gen_topics[t] / n_gen, 4))
            for t in ranked[: opts.top_rows]
        ]

    # coverage: samples files in order, else the generated rows' concepts in store order
    if inputs.samples:
        sets = [row.topics + row.knowledge_points for row in _read_lines(inputs.samples, SampleLine)]
        rep.coverage_source = ", ".join(str(p) for p in inputs.samples)
    else:
        sets = [g.concept_ids for g in generated if g.concept_ids]
        rep.coverage_source = "generated rows in the store" if sets else None
    rep.coverage_total = len(concepts)
    rep.coverage = _coverage(sets, set(by_id))

    rep.verification, rep.verification_source, rep.verification_status = _verification(
        store, inputs, generated, by_id, topic_ids)
    rep.removed_by_reason, rep.removed_source = _removed(inputs, store)
    rep.cost_by_stage = _costs(store, generated, inputs)
    rep.examples = _examples(store, generated, opts.examples)
    return rep


def _examples(store, generated, n: int) -> dict[str, list[dict]]:
    """The first `n` rows (by id) of each kind, with the status solve and filter gave them."""
    if n <= 0:
        return {}
    verdicts = {v.question_id: v for v in store.verdicts()} if callable(getattr(store, "verdicts", None)) else {}
    decisions = ({d.row_id: d.decision for d in store.filter_decisions()}
                 if callable(getattr(store, "filter_decisions", None)) else {})
    out: dict[str, list[dict]] = {}
    for g in generated:
        rows = out.setdefault(g.kind, [])
        if len(rows) < n:
            rows.append({"id": g.id, "question": g.question[:400], "answer": g.answer,
                         "verification": verification(verdicts.get(g.id)), "filter": decisions.get(g.id)})
    return out


def _verification(store, inputs, generated, by_id,
                  topic_ids) -> tuple[list[PassRow], str | None, dict[str, dict[str, int]]]:
    """Verification rates per topic, seeds (checked against their gold) apart from generated
    rows (checked by vote), from the status solve stored (graphgen.status)."""
    if inputs.verdicts:
        verdicts = _read_lines(inputs.verdicts, VerdictLine)
        source = ", ".join(str(p) for p in inputs.verdicts)
    elif callable(getattr(store, "verdicts", None)):
        verdicts = [VerdictLine.model_validate(v.model_dump()) for v in store.verdicts()]
        source = "the store"
    else:
        return [], None, {}
    if not verdicts:
        return [], None, {}
    seed_topics = {seed_id: [c for c in cids if c in topic_ids] for seed_id, cids in store.seed_concepts()}
    topics_of: dict[str, list[str]] = dict(seed_topics)
    for g in generated:
        own = [c for c in g.concept_ids if c in topic_ids]
        if not own:  # fusion rows (and variants of seeds) have seeds, not concepts: their topics
            own = sorted({t for s in (g.seed_ids or []) + ([g.variant.original_id] if g.variant else [])
                          for t in seed_topics.get(s, topics_of.get(s, []))})
        topics_of[g.id] = own
    questions: Counter[tuple[str, str]] = Counter()
    verified: Counter[tuple[str, str]] = Counter()
    path_rates: dict[tuple[str, str], list[float]] = defaultdict(list)
    status: dict[str, Counter[str]] = {"seeds": Counter(), "generated": Counter()}
    for v in verdicts:
        group = "seeds" if v.question_kind == "seed" else "generated"
        st = verification(v)  # type: ignore[arg-type]
        status[group][f"verified by {v.verified_by}" if st == "verified" and v.verified_by else str(st)] += 1
        for t in topics_of.get(v.question_id, []) or ["(no topic)"]:
            questions[group, t] += 1
            verified[group, t] += st == "verified"
            if v.pass_rate is not None:
                path_rates[group, t].append(v.pass_rate)
    rows = [PassRow(group=g, topic=by_id[t].display_name if t in by_id else t, questions=n, verified=verified[g, t],
                    rate=round(verified[g, t] / n, 4),
                    mean_path_pass_rate=round(sum(path_rates[g, t]) / len(path_rates[g, t]), 4)
                    if path_rates[g, t] else None)
            for (g, t), n in questions.items()]
    rows.sort(key=lambda r: (r.group != "seeds", -r.questions, r.topic))
    return rows, source, {g: dict(c) for g, c in status.items() if c}


def _removed(inputs: ReportInputs, store=None) -> tuple[dict[str, int], str | None]:
    counts: Counter[str] = Counter()
    if not inputs.filter_removed and callable(getattr(store, "filter_decisions", None)):
        for d in store.filter_decisions():  # the decisions filter recorded (graphgen.status)
            if d.decision != "kept":
                counts[d.decision] += 1
        return dict(sorted(counts.items())), "the store" if counts else None
    for p in inputs.filter_removed:
        if p.suffix == ".json":
            data = _read_json(p)
            by_kind = data.get("removed_by_kind")
            if not isinstance(by_kind, dict):
                raise ReportError(f"{p}: no 'removed_by_kind' (expected a `graphgen filter` report JSON)")
            counts.update({str(k): int(v) for k, v in by_kind.items()})
        else:
            for row in _read_lines([p], RemovedLine):
                reason = row.reason
                counts[reason.get("kind", "unknown") if isinstance(reason, dict) else str(reason or "unknown")] += 1
    source = ", ".join(str(p) for p in inputs.filter_removed) or None
    return dict(sorted(counts.items())), source


def _costs(store, generated, inputs: ReportInputs) -> list[StageCost]:
    rows: dict[str, StageCost] = {}
    extract = _usage_cost((e.usage.model_dump() if e.usage else None for e in store.extractions()), "extract", "the store")
    if extract:
        rows["extract"] = extract
    for kind in sorted({g.kind for g in generated}):
        stage = {"concepts": "generate questions", "fusion": "generate fusion"}.get(kind, f"generate {kind}")
        cost = _usage_cost((g.usage.model_dump() if g.usage else None for g in generated if g.kind == kind), stage, "the store")
        if cost:
            rows[stage] = cost
    if callable(getattr(store, "verdicts", None)):  # solve's cost, recorded per question
        paid = [v for v in store.verdicts() if v.calls]
        if paid:
            rows["solve"] = StageCost(stage="solve", calls=sum(v.calls for v in paid),
                                      prompt_tokens=sum(v.prompt_tokens for v in paid),
                                      completion_tokens=sum(v.completion_tokens for v in paid),
                                      cost_usd=sum(v.cost_usd for v in paid), source="the store")
    for p in inputs.stage_reports:
        data = _read_json(p)
        llm = data.get("llm") or {}
        stage = str(data.get("stage") or p.stem)
        cost = StageCost(stage=stage, calls=int(llm.get("ok", 0)) + int(llm.get("failed", 0)),
                         prompt_tokens=int(llm.get("prompt_tokens", 0)),
                         completion_tokens=int(llm.get("completion_tokens", 0)),
                         cost_usd=float(llm.get("cost_usd", 0.0)), source=str(p))
        if stage in rows and rows[stage].source != "the store":  # two runs of one stage add up
            was = rows[stage]
            cost = StageCost(stage=stage, calls=was.calls + cost.calls, prompt_tokens=was.prompt_tokens + cost.prompt_tokens,
                             completion_tokens=was.completion_tokens + cost.completion_tokens,
                             cost_usd=was.cost_usd + cost.cost_usd, source=f"{was.source}, {p}")
        rows[stage] = cost
    return list(rows.values())


# --- drawing (inline SVG) -------------------------------------------------------------------------

_E = html.escape
_PALETTE = ["#F79767", "#57C7E3", "#8DCC93", "#C990C0", "#DA7194", "#D9C8AE"]


def _fmt(v: float) -> str:
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.3g}" if abs(v) < 1 else f"{v:,.2f}"
    return f"{int(v):,}"


def svg_bars(items: Sequence[tuple[str, float]], *, title: str, color: str = _PALETTE[0],
             percent: bool = False, width: int = 560) -> str:
    """Horizontal bars, one row per item, labelled, with hover titles."""
    row, label_w, pad = 22, 190, 60
    height = row * len(items) + 10
    top = max((v for _, v in items), default=0) or 1
    out = [f'<svg class="chart bars" role="img" aria-label="{_E(title)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">']
    for i, (label, v) in enumerate(items):
        y = 5 + i * row
        w = max(1.0, (width - label_w - pad) * v / top)
        text = f"{v:.1%}" if percent else _fmt(v)
        out.append(f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" class="lbl">{_E(_clip(label))}</text>'
                   f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 6}" fill="{color}">'
                   f'<title>{_E(label)}: {text}</title></rect>'
                   f'<text x="{label_w + w + 4:.1f}" y="{y + 15}" class="val">{text}</text>')
    out.append("</svg>")
    return "".join(out)


def svg_grouped(labels: Sequence[str], series: dict[str, Sequence[float]], *, title: str,
                percent: bool = False, width: int = 560) -> str:
    """Horizontal grouped bars (one group per label, one bar per series) with a legend."""
    names = list(series)
    bar, gap, label_w, pad = 10, 8, 190, 60
    group = bar * len(names) + gap
    height = group * len(labels) + 28
    top = max((v for vs in series.values() for v in vs), default=0) or 1
    out = [f'<svg class="chart grouped" role="img" aria-label="{_E(title)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">']
    for k, name in enumerate(names):
        out.append(f'<rect x="{label_w + k * 150}" y="4" width="12" height="12" fill="{_PALETTE[k % 6]}"/>'
                   f'<text x="{label_w + k * 150 + 16}" y="14" class="lbl">{_E(name)}</text>')
    for i, label in enumerate(labels):
        y = 24 + i * group
        out.append(f'<text x="{label_w - 6}" y="{y + group / 2}" text-anchor="end" class="lbl">{_E(_clip(label))}</text>')
        for k, name in enumerate(names):
            v = series[name][i]
            w = max(1.0, (width - label_w - pad) * v / top)
            text = f"{v:.1%}" if percent else _fmt(v)
            out.append(f'<rect x="{label_w}" y="{y + k * bar}" width="{w:.1f}" height="{bar - 1}" fill="{_PALETTE[k % 6]}">'
                       f'<title>{_E(label)} ({_E(name)}): {text}</title></rect>')
    out.append("</svg>")
    return "".join(out)


def svg_columns(items: Sequence[tuple[str, float]], *, title: str, color: str = _PALETTE[1],
                width: int = 560, height: int = 220) -> str:
    """Vertical columns (histograms), labels under the axis."""
    n = max(1, len(items))
    left, bottom, top_pad = 40, 30, 16
    slot = (width - left - 10) / n
    top = max((v for _, v in items), default=0) or 1
    plot_h = height - bottom - top_pad
    out = [f'<svg class="chart columns" role="img" aria-label="{_E(title)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">',
           f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" class="axis"/>']
    for i, (label, v) in enumerate(items):
        h = max(1.0, plot_h * v / top)
        x = left + i * slot + slot * 0.15
        out.append(f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}" fill="{color}">'
                   f'<title>{_E(label)}: {_fmt(v)}</title></rect>'
                   f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom - h - 3:.1f}" text-anchor="middle" class="val">{_fmt(v)}</text>'
                   f'<text x="{x + slot * 0.35:.1f}" y="{height - bottom + 14}" text-anchor="middle" class="lbl">{_E(label)}</text>')
    out.append("</svg>")
    return "".join(out)


def svg_line(points: Sequence[tuple[float, float]], *, title: str, x_label: str, y_label: str,
             y_max: float, width: int = 560, height: int = 240) -> str:
    left, bottom, top_pad, right = 50, 36, 12, 16
    x_max = max((x for x, _ in points), default=1) or 1
    sx = lambda x: left + (width - left - right) * x / x_max  # noqa: E731
    sy = lambda y: height - bottom - (height - bottom - top_pad) * y / (y_max or 1)  # noqa: E731
    path = " ".join(f"{'M' if i == 0 else 'L'}{sx(x):.1f},{sy(y):.1f}" for i, (x, y) in enumerate([(0, 0), *points]))
    out = [f'<svg class="chart line" role="img" aria-label="{_E(title)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">',
           f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" class="axis"/>',
           f'<line x1="{left}" y1="{top_pad}" x2="{left}" y2="{height - bottom}" class="axis"/>']
    for frac in (0, 0.25, 0.5, 0.75, 1.0):
        y = sy(y_max * frac)
        out.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" class="val">{frac:.0%}</text>'
                   f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" class="grid"/>')
    out.append(f'<text x="{width - right}" y="{height - 6}" text-anchor="end" class="lbl">{_E(x_label)} '
               f'(up to {_fmt(x_max)})</text>'
               f'<path d="{path}" fill="none" stroke="{_PALETTE[2]}" stroke-width="2.5"/>')
    for x, y in points[:: max(1, len(points) // 12)] + list(points[-1:]):
        out.append(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{_PALETTE[2]}">'
                   f'<title>{_fmt(x)} {_E(x_label)}: {_fmt(y)} {_E(y_label)} ({y / (y_max or 1):.1%})</title></circle>')
    out.append("</svg>")
    return "".join(out)


def svg_graph(nodes: Sequence[GraphNode], links: Sequence[GraphLink], *, title: str,
              width: int = 1100, height: int = 700) -> str:
    """Topics as circles (area ~ frequency) at their spring-layout positions, edges by count."""
    if not nodes:
        return ""
    pad = 70
    xs, ys = [n.x for n in nodes], [n.y for n in nodes]
    span_x, span_y = (max(xs) - min(xs)) or 1, (max(ys) - min(ys)) or 1
    at = {n.id: (pad + (width - 2 * pad) * (n.x - min(xs)) / span_x,
                 pad + (height - 2 * pad) * (n.y - min(ys)) / span_y) for n in nodes}
    top_f = max(n.frequency for n in nodes) or 1
    top_c = max((e.count for e in links), default=1) or 1
    name = {n.id: n.name for n in nodes}
    out = [f'<svg class="chart graph" role="img" aria-label="{_E(title)}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}">']
    for e in links:
        (x1, y1), (x2, y2) = at[e.source], at[e.target]
        out.append(f'<line class="edge" x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                   f'stroke-width="{0.8 + 5 * e.count / top_c:.2f}">'
                   f'<title>{_E(name[e.source])} - {_E(name[e.target])}: {e.count} seeds, weight {e.weight:.3f}</title></line>')
    for n in sorted(nodes, key=lambda n: -n.frequency):
        x, y = at[n.id]
        r = 5 + 22 * math.sqrt(n.frequency / top_f)
        out.append(f'<circle class="node" cx="{x:.1f}" cy="{y:.1f}" r="{r:.1f}">'
                   f'<title>{_E(n.name)}: {n.frequency} seeds</title></circle>'
                   f'<text x="{x:.1f}" y="{y + r + 11:.1f}" text-anchor="middle" class="lbl">{_E(_clip(n.name, 28))}</text>')
    out.append("</svg>")
    return "".join(out)


def _clip(text: str, n: int = 30) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


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
    parts = [f'<div class="cards">' + "".join(f'<div class="card"><b>{v:,}</b>{_E(k)}</div>' for k, v in cards) + "</div>"]

    graph = [f'<div class="row">',
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
        for group, title in (("seeds", "seeds, checked against their gold answers"),
                             ("generated", "generated rows, checked by vote against their own answers")):
            rows = [r for r in rep.verification if r.group == group][: 20]
            if not rows:
                continue
            counts = rep.verification_status.get(group, {})
            said = ", ".join(f"{n:,} {k}" for k, n in counts.items())
            gen.append(_plot(f"verification-{group}", f"Verification per topic: {title} ({said})",
                             svg_bars([(r.topic, r.rate) for r in rows], title=f"verification ({group})",
                                      percent=True, color=_PALETTE[2]), f"from {rep.verification_source}")
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
        cost = _table(["stage", "calls", "prompt tokens", "completion tokens", "cost (USD)", "from"],
                      [(c.stage, c.calls, c.prompt_tokens, c.completion_tokens, f"${c.cost_usd:.4f}", c.source)
                       for c in rep.cost_by_stage])
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


# --- the stage ----------------------------------------------------------------------------------


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
