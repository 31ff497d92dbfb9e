"""Report data: the workspace's numbers as one pydantic model (`WorkspaceReport`), collected
from the store and the optional run files (samples, verdicts, filter's removed rows, costs)."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, Field

from graphgen.config import Settings
from graphgen.errors import one_line
from graphgen.graph import graph_report
from graphgen.jsonl import read_jsonl
from graphgen.records import Concept, ConceptEdge, ConceptKind, JudgeVerdict
from graphgen.stage import StageError, StageReport
from graphgen.status import verification
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


class PassRateRow(BaseModel):
    """One model's pass rates (solve; `solve --reference --model REF` for a reference model)."""

    model: str
    questions: int
    mean: float = Field(description="mean pass rate over the questions with a reference answer")
    hard: int = Field(0, description="questions it never solved (pass rate 0)")
    easy: int = Field(0, description="questions it always solved (pass rate 1)")


class StageCost(BaseModel):
    """One stage's LLM work: what it paid for (its judge's included), and what it did not pay
    for again (response cache, judge journal)."""

    stage: str
    calls: int = Field(0, description="calls paid for, ok or failed (not served from the response cache)")
    cached: int = Field(0, description="replies served from the response cache (not paid)")
    journalled: int = Field(0, description="judgements read from a journal, paid by an earlier run (not paid now)")
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = Field(True, description="False when a model has no price ([llm.prices]): cost_usd is then a floor")
    judge_calls: int = Field(0, description="of `calls`, the model judge's (graphgen.judge)")
    judge_tokens: int = Field(0, description="of the tokens, the judge's (prompt + completion)")
    judge_cost_usd: float = Field(0.0, description="of `cost_usd`, the judge's")
    source: str = ""

    def cost_text(self) -> str:
        return f"${self.cost_usd:.4f}" if self.cost_known else "cost unknown"

    def plus(self, other: StageCost) -> StageCost:
        """Two runs of one stage, added up."""
        out = self.model_copy()
        for name in ("calls", "cached", "journalled", "prompt_tokens", "completion_tokens", "cost_usd",
                     "judge_calls", "judge_tokens", "judge_cost_usd"):
            setattr(out, name, getattr(self, name) + getattr(other, name))
        out.cost_known = self.cost_known and other.cost_known
        out.source = f"{self.source}, {other.source}"
        return out


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
    program_isolation: dict[str, int] = Field(
        default_factory=dict, description="questions by the sandbox their programs ran in (solve's verdicts): "
                                          "bwrap, process, both over reruns, or unrecorded (verdicts stored before it was)")
    removed_by_reason: dict[str, int] = Field(default_factory=dict)
    removed_source: str | None = None
    check_status: dict[str, int] = Field(default_factory=dict, description="graphgen check: passed / failed / unknown -> rows")
    check_reasons: dict[str, int] = Field(default_factory=dict, description="failed checks by first reason")
    answer_types: dict[str, int] = Field(default_factory=dict, description="checked rows by answer type")
    problem_types: dict[str, int] = Field(default_factory=dict, description="checked rows by problem type")
    pass_rates: list[PassRateRow] = Field(default_factory=list, description="difficulty: pass rate per model")
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
        if self.program_isolation:
            out.append("programs isolated by: " + ", ".join(f"{k} ({n} questions)"
                                                            for k, n in sorted(self.program_isolation.items())))
        if self.check_status:
            out.append("question checks: " + ", ".join(f"{n} {k}" for k, n in sorted(self.check_status.items()))
                       + ("; failed by " + ", ".join(f"{k} {n}" for k, n in sorted(self.check_reasons.items()))
                          if self.check_reasons else ""))
            out.append("answer types: " + ", ".join(f"{k} {n}" for k, n in sorted(self.answer_types.items()))
                       + "; problem types: " + (", ".join(f"{k} {n}" for k, n in sorted(self.problem_types.items()))
                                                or "none (judge off)"))
        for r in self.pass_rates:
            out.append(f"pass rate of {r.model}: mean {r.mean:.3f} over {r.questions} questions "
                       f"({r.hard} never solved, {r.easy} always)")
        if self.removed_by_reason:
            out.append("removed by filter: " + ", ".join(f"{k} {n}" for k, n in sorted(self.removed_by_reason.items())))
        if self.cost_by_stage:
            out.append("cost: " + ", ".join(
                f"{c.stage} {c.cost_text()} ({c.calls} calls"
                + (f", judge {c.judge_calls}" if c.judge_calls else "")
                + (f", {c.cached} cached" if c.cached else "") + (f", {c.journalled} journalled" if c.journalled else "")
                + ")" for c in self.cost_by_stage))
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
    isolation: str | None = None


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


def _usage_cost(settings: Settings, usages: Iterable[dict | None], stage: str, source: str) -> StageCost | None:
    """A stage's cost from the usage its stored rows carry (every run's)."""
    cost = StageCost(stage=stage, source=source)
    for u in usages:
        if not u:
            continue
        if u.get("cached"):
            cost.cached += 1
            continue
        cost.calls += 1
        cost.prompt_tokens += int(u.get("prompt_tokens") or 0)
        cost.completion_tokens += int(u.get("completion_tokens") or 0)
        cost.cost_usd += float(u.get("cost_usd") or 0.0)
        if u.get("model") and settings.llm.price_for(str(u["model"])) is None:
            cost.cost_known = False
    return cost if cost.calls or cost.cached else None


def _report_cost(data: dict, path: Path) -> StageCost | None:
    """A stage's cost from its report JSON (`--report FILE`, or `graphgen run`'s
    `reports/<n>-<stage>.json`): this run's whole tally, its judge's share apart."""
    llm = data.get("llm") or {}
    judge = data.get("judge_llm") or {}
    cached = int(llm.get("cached", 0))
    cost = StageCost(stage=str(data.get("stage") or path.stem),
                     calls=int(llm.get("ok", 0)) + int(llm.get("failed", 0)) - cached, cached=cached,
                     journalled=int(data.get("judge_journalled", 0)),
                     prompt_tokens=int(llm.get("prompt_tokens", 0)),
                     completion_tokens=int(llm.get("completion_tokens", 0)),
                     cost_usd=float(llm.get("cost_usd", 0.0)), cost_known=bool(llm.get("cost_known", True)),
                     judge_calls=int(judge.get("ok", 0)) + int(judge.get("failed", 0)) - int(judge.get("cached", 0)),
                     judge_tokens=int(judge.get("prompt_tokens", 0)) + int(judge.get("completion_tokens", 0)),
                     judge_cost_usd=float(judge.get("cost_usd", 0.0)), source=str(path))
    return cost if cost.calls or cost.cached or cost.journalled else None


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

    rep.verification, rep.verification_source, rep.verification_status, rep.program_isolation = _verification(
        store, inputs, generated, by_id, topic_ids)
    rep.removed_by_reason, rep.removed_source = _removed(inputs, store)
    _checks_and_difficulty(store, rep)
    rep.cost_by_stage = _costs(settings, store, generated, inputs)
    rep.examples = _examples(store, generated, opts.examples)
    return rep


def _checks_and_difficulty(store, rep: WorkspaceReport) -> None:
    """Counts per check outcome and type (graphgen check), and each model's pass rates (solve)."""
    checks = list(store.checks()) if callable(getattr(store, "checks", None)) else []
    rep.check_status = dict(Counter(c.status for c in checks))
    rep.check_reasons = dict(Counter(c.reasons[0] for c in checks if c.status == "failed" and c.reasons))
    rep.answer_types = dict(Counter(c.answer_type or "unknown" for c in checks))
    rep.problem_types = dict(Counter(c.problem_type for c in checks if c.problem_type))
    by_model: dict[str, list[float]] = defaultdict(list)
    if callable(getattr(store, "pass_rates", None)):
        for r in store.pass_rates():
            if r.against != "none":
                by_model[r.model].append(r.pass_rate)
    rep.pass_rates = [PassRateRow(model=m, questions=len(v), mean=round(sum(v) / len(v), 4),
                                  hard=sum(1 for x in v if x == 0), easy=sum(1 for x in v if x == 1))
                      for m, v in sorted(by_model.items())]


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
                  topic_ids) -> tuple[list[PassRow], str | None, dict[str, dict[str, int]], dict[str, int]]:
    """Verification rates per topic, seeds (checked against their gold) apart from generated
    rows (checked by vote), from the status solve stored (graphgen.status); and which sandbox
    ran the questions' programs."""
    if inputs.verdicts:
        verdicts = _read_lines(inputs.verdicts, VerdictLine)
        source = ", ".join(str(p) for p in inputs.verdicts)
    elif callable(getattr(store, "verdicts", None)):
        verdicts = [VerdictLine.model_validate(v.model_dump()) for v in store.verdicts()]
        source = "the store"
    else:
        return [], None, {}, {}
    if not verdicts:
        return [], None, {}, {}
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
    isolation = Counter(v.isolation for v in verdicts if v.isolation)
    return rows, source, {g: dict(c) for g, c in status.items() if c}, dict(sorted(isolation.items()))


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


def _costs(settings: Settings, store, generated, inputs: ReportInputs) -> list[StageCost]:
    """Every paid LLM call, per stage, counted once. The store holds the usage of extraction,
    generated rows (questions, fusion, variants' rewrites) and solve's paths, over every run;
    stage reports hold a run's whole tally, judge included (check, solve's and variants'
    answer judge, filter's contamination judge, canonicalize's judge). A stage report
    replaces the store's figure for its stage (it has the judge the store lacks); two reports
    of one stage add up."""
    rows: dict[str, StageCost] = {}
    extract = _usage_cost(settings, (e.usage.model_dump() if e.usage else None for e in store.extractions()),
                          "extract", "the store")
    if extract:
        rows["extract"] = extract
    for kind in sorted({g.kind for g in generated}):
        # variants' rows: the rewrite's usage; the variants stage report adds its judge
        stage = {"concepts": "generate questions", "fusion": "generate fusion", "variant": "variants"}.get(
            kind, f"generate {kind}")
        cost = _usage_cost(settings, (g.usage.model_dump() if g.usage else None for g in generated if g.kind == kind),
                           stage, "the store")
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
        cost = _report_cost(_read_json(p), p)
        if cost is None:
            continue
        was = rows.get(cost.stage)
        rows[cost.stage] = was.plus(cost) if was is not None and was.source != "the store" else cost
    return list(rows.values())
