"""Stage 4: generation. New questions from concept samples (MathScale) and fused questions
from seed pairs (MathFusion), through one resumable, sharded, streaming runner.

A run is a set of keyed units; a unit's id is a hash of everything that determines its row
(input id, prompt version, model, options), so:
- finished units (rows already in the output file or the store) are skipped on restart;
- shards (`i/n`) split units by id hash, disjoint and reproducible across machines;
- shard outputs merge without duplicates (`read_rows` keeps one row per id).
Rows that failed are appended to `<output>.failed.jsonl` with their reason, raw reply and
the run's id (`run_id`), so earlier runs' failures are kept; the units are retried by the
next run.

The output file is the journal of the store's rows for this run (graphgen.rows: store first,
file right after, reconciled at start, one run per output file).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, Field

from graphgen.config import EngineSettings, Settings
from graphgen.errors import one_line
from graphgen.jsonl import chunked, read_jsonl
from graphgen.prompts import Prompt, load_prompt
from graphgen.records import (
    FUSION_STRATEGIES,
    ConceptSample,
    FusionPair,
    GeneratedQA,
    GeneratedQuestion,
    SeedQuestion,
)
from graphgen.rows import (
    GeneratedRowWriter,
    Shard,
    engine_state_dir,
    finished_ids,
    stable_id,
)
from graphgen.scrub import scrub
from graphgen.stage import LLMTally, StageError, StageReport, new_run_id
from graphgen.store.base import GraphStore

if TYPE_CHECKING:
    from graphgen.llm import LLMClient, LLMResult
    from graphgen.runner import LLMJob

GENERATE_PROMPT = "generate_v1"
FUSION_PROMPTS = {s: f"fusion_{s}_v1" for s in FUSION_STRATEGIES}


@dataclass
class Unit:
    """One LLM call to make, and how to turn its result into a row."""

    id: str
    messages: list[dict[str, str]]
    row: Callable[[LLMResult], GeneratedQuestion]
    check: Callable[[GeneratedQA], str | None] | None = None
    """a reason to reject a reply (a copy of its exemplar), or None"""


@dataclass
class GenerationSummary:
    """What a run did: units seen and skipped, plus the run's LLM tally (ok, failed,
    cached, tokens, cost)."""

    totals: LLMTally = field(default_factory=LLMTally)
    units: int = 0
    skipped_done: int = 0
    skipped_other_shards: int = 0
    copied_from_store: int = 0  # units the store already held, written to the file unpaid
    copied_to_store: int = 0  # rows the file held that the store lacked
    run_id: str = ""
    failures_path: str | None = None
    per_strategy: dict[str, int] = field(default_factory=dict)
    copies_rejected: int = 0  # rows that still copied an exemplar after their re-asks


# --- output files -------------------------------------------------------------------------


# --- the runner ---------------------------------------------------------------------------


def pending_units(units: Iterable[Unit], out_path: Path, shard: Shard, summary: GenerationSummary,
                  in_store: set[str] | None = None, recover: list[str] | None = None,
                  done: set[str] | None = None) -> Iterator[Unit]:
    """Units owned by `shard` whose rows are not yet in `out_path` (`done`: its ids, if read
    already), counting the others. Units whose rows only the store holds (`in_store`) are
    listed in `recover` instead."""
    done = finished_ids(out_path) if done is None else done
    in_store = in_store or set()
    for unit in units:
        summary.units += 1
        if not shard.owns(unit.id):
            summary.skipped_other_shards += 1
        elif unit.id in done:
            summary.skipped_done += 1
        elif unit.id in in_store and recover is not None:
            recover.append(unit.id)
            summary.copied_from_store += 1
        else:
            yield unit


TYPICAL_COMPLETION_TOKENS = 400  # a question, a worked solution and an answer


def estimate_units(units: Iterable[Unit], out_path: Path, shard: Shard, model: str, price,
                   max_tokens: int | None = None, pricing: str = "online") -> dict:
    """--dry-run: what a run would send (after resume and shard skips), priced at a typical
    reply length and, with `max_tokens`, at the upper bound; calls nothing."""
    from graphgen.estimate import estimate_calls

    summary = GenerationSummary()
    todo = (u.messages for u in pending_units(units, out_path, shard, summary))
    typical = min(TYPICAL_COMPLETION_TOKENS, max_tokens or TYPICAL_COMPLETION_TOKENS)
    estimate = estimate_calls(todo, model, price, typical, pricing=pricing)
    if max_tokens and price is not None:
        estimate["cost_usd_upper_bound"] = (estimate["prompt_tokens"] * price.input
                                            + estimate["calls"] * max_tokens * price.output) / 1e6
    return {**estimate, "already_done": summary.skipped_done, "other_shards": summary.skipped_other_shards}


def run_units(
    units: Iterable[Unit],
    client: LLMClient,
    out_path: Path,
    *,
    store: GraphStore | None = None,
    shard: Shard = Shard(),
    total: int | None = None,
    unit_ids: Iterable[str] | None = None,
    label: str = "generate",
    quiet: bool = False,
    engine: EngineSettings | None = None,
) -> GenerationSummary:
    """Run every unit not yet in `out_path` (and owned by `shard`), appending rows as they
    finish. Memory stays flat: units are pulled lazily, rows are written as they come.

    Progress counts to `total`; given `unit_ids` (the units' ids, cheap to list) instead, to
    the number of units this run will pay for, so a resumed run ends at 100% and its ETA
    is for the work left."""
    from graphgen.engine import run_llm_jobs
    from graphgen.runner import LLMJob

    out_path = Path(out_path)
    failed_path = out_path.with_name(out_path.name.removesuffix(".jsonl") + ".failed.jsonl")
    summary = GenerationSummary(failures_path=str(failed_path), run_id=new_run_id())
    with GeneratedRowWriter(out_path, store, failed_path, summary.run_id) as writer:
        summary.copied_to_store = writer.copied_to_store
        done = finished_ids(out_path)
        if unit_ids is not None:
            total = sum(1 for uid in unit_ids
                        if shard.owns(uid) and uid not in done and uid not in writer.in_store)

        def todo() -> Iterator[LLMJob]:
            for unit in pending_units(units, out_path, shard, summary, writer.in_store, writer.recover, done):
                yield LLMJob(key=unit.id, messages=unit.messages, output=GeneratedQA, payload=unit, check=unit.check)

        def sink(job: LLMJob, result: LLMResult) -> None:
            row = job.payload.row(result)
            if row.status == "ok" and row.strategy:
                summary.per_strategy[row.strategy] = summary.per_strategy.get(row.strategy, 0) + 1
            if row.status != "ok" and "copies its exemplar" in (row.error or ""):
                summary.copies_rejected += 1
            writer.add(row)

        summary.totals = run_llm_jobs(client, todo(), sink, total=total, label=label, quiet=quiet,
                                      engine=engine, state_dir=engine_state_dir(out_path))
    if not summary.totals.failed:
        summary.failures_path = None
    return summary


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.casefold())


def copy_overlap(question: str, source: str, n: int = 5) -> float:
    """Share of `question`'s word n-grams that also occur in `source` (0 when too short)."""
    q, s = _words(question), _words(source)
    grams = {tuple(q[i:i + n]) for i in range(len(q) - n + 1)}
    if not grams:
        return 0.0
    other = {tuple(s[i:i + n]) for i in range(len(s) - n + 1)}
    return len(grams & other) / len(grams)


_NUMBER = re.compile(r"\d+(?:\.\d+)?")
RESTATED_WORDS = 0.8  # share of the question's distinct words in the seed that, with its very numbers, is a restatement


def restated(question: str, source: str) -> float | None:
    """The share of `question`'s distinct words found in `source` when the question keeps
    exactly the source's numbers (and it has some), else None. With RESTATED_WORDS of its words
    that is the source reworded ("Brian has 12 ... How many ...?" -> "How many ... if ... 12?"),
    which word n-grams miss: among the 9,972 pairs of distinct GSM8K training problems with the
    same numbers, one shares 80% of its words, and it is a copy with one name changed."""
    numbers = sorted(_NUMBER.findall(source))
    if not numbers or sorted(_NUMBER.findall(question)) != numbers:
        return None
    words = set(_words(question))
    return len(words & set(_words(source))) / len(words) if words else None


def copy_check(sources: list[tuple[str, str]], threshold: float) -> Callable[[GeneratedQA], str | None] | None:
    """A gate rejecting a question that copies one of `sources` ((seed id, text) pairs): most
    of its word 5-grams are the seed's, or it restates the seed with the seed's own numbers."""
    if threshold >= 1 or not sources:
        return None

    def check(qa: GeneratedQA) -> str | None:
        for sid, text in sources:
            share = copy_overlap(qa.question, text)
            if share > threshold:
                return (f"the question copies its exemplar seed {sid} ({share:.0%} of its word 5-grams; "
                        f"limit {threshold:.0%}): write a new question with another situation, other names "
                        "and other numbers")
            words = restated(qa.question, text)
            if words is not None and words >= RESTATED_WORDS:
                return (f"the question restates its exemplar seed {sid} (the same numbers, {words:.0%} of its words): "
                        "write a new question with another situation, other names and other numbers")
        return None

    return check


def _row_from(result: LLMResult, check=None, **lineage) -> GeneratedQuestion:
    usage = result.usage
    why = check(result.value) if check is not None and result.value is not None else None
    if why is not None:  # a reply that passed elsewhere (an engine without the gate, the cache)
        return GeneratedQuestion(status="failed", error=f"rejected: {why}", raw=scrub(result.raw),
                                 model=usage.model, usage=usage, **lineage)
    if result.value is None:
        return GeneratedQuestion(status="failed", error=scrub(result.error or "no valid reply"), raw=scrub(result.raw),
                                 model=usage.model, usage=usage, **lineage)
    qa: GeneratedQA = result.value  # type: ignore[assignment]
    return GeneratedQuestion(question=qa.question, solution=qa.solution, answer=qa.answer,
                             model=usage.model, usage=usage, **lineage)


# --- MathScale: questions from concept samples ---------------------------------------------


class QuestionGenerator:
    """One LLM call per concept sample: a new question needing exactly those concepts."""

    def __init__(self, store: GraphStore, model: str, *, difficulty: str = "medium",
                 style: str = "word problem", prompt_version: str = GENERATE_PROMPT,
                 max_copy_overlap: float = 1.0):
        self.prompt: Prompt = load_prompt(prompt_version)
        self.max_copy_overlap = max_copy_overlap
        self.store, self.model, self.difficulty, self.style = store, model, difficulty, style
        # Display names for every concept: small (one row per concept), read once.
        self.names = {c.id: c.display_name for c in store.concepts()}

    def units(self, samples: Iterable[ConceptSample], chunk: int = 500) -> Iterator[Unit]:
        """Units in input order; exemplar seeds are read from the store a chunk at a time."""
        for batch in chunked(samples, chunk):
            wanted = {s for sample in batch for s in sample.exemplar_seed_ids}
            seeds = {s.id: s for s in self.store.seeds(wanted)} if wanted else {}
            for sample in batch:
                yield self.unit(sample, seeds)

    def unit_id(self, sample: ConceptSample) -> str:
        return stable_id("q", sample.id, self.prompt.version, self.model, self.difficulty, self.style)

    def unit_ids(self, samples: Iterable[ConceptSample]) -> Iterator[str]:
        """The ids `units` would give, without reading the store (progress counts with them)."""
        return (self.unit_id(sample) for sample in samples)

    def unit(self, sample: ConceptSample, seeds: dict[str, SeedQuestion]) -> Unit:
        name = lambda cid: self.names.get(cid, cid.split(":", 1)[-1])  # noqa: E731
        unknown = [c for c in (*sample.topics, *sample.knowledge_points) if c not in self.names]
        unknown += [s for s in sample.exemplar_seed_ids if s not in seeds]
        if unknown:
            raise ValueError(
                f"sample {sample.id} names {unknown[0]!r}, which this workspace does not have: the samples "
                "come from another workspace; pass that workspace's --db, or sample again here with "
                "`graphgen sample concepts`")
        exemplars = [seeds[s] for s in sample.exemplar_seed_ids]
        block = ""
        if exemplars:
            block = "\nExamples of seed questions on related concepts (for style and level only):\n" + "\n".join(
                f"Example {i}: {s.question}" for i, s in enumerate(exemplars, 1)
            ) + "\n"
        messages = self.prompt.messages(
            topics="\n".join(f"- {name(t)}" for t in sample.topics),
            knowledge_points="\n".join(f"- {name(k)}" for k in sample.knowledge_points),
            difficulty=self.difficulty, style=self.style, exemplars_block=block,
        )
        unit_id = self.unit_id(sample)
        lineage = dict(
            id=unit_id, kind="concepts", sample_id=sample.id,
            concept_ids=[*sample.topics, *sample.knowledge_points],
            exemplar_seed_ids=[s.id for s in exemplars], prompt_version=self.prompt.version,
        )
        check = copy_check([(s.id, s.question) for s in exemplars], self.max_copy_overlap)
        return Unit(id=unit_id, messages=messages, row=lambda result: _row_from(result, check, **lineage),
                    check=check)


# --- MathFusion: fused questions from seed pairs ---------------------------------------------


class FusionGenerator:
    """One LLM call per (pair, strategy): sequential, parallel or conditional fusion."""

    def __init__(self, store: GraphStore, model: str, strategies: Iterable[str] = FUSION_STRATEGIES):
        self.store, self.model = store, model
        self.strategies = list(strategies)
        for s in self.strategies:
            if s not in FUSION_STRATEGIES:
                raise ValueError(f"unknown fusion strategy {s!r}; choose from {', '.join(FUSION_STRATEGIES)}")
        self.prompts = {s: load_prompt(FUSION_PROMPTS[s]) for s in self.strategies}

    def units(self, pairs: Iterable[FusionPair], chunk: int = 500) -> Iterator[Unit]:
        """Units in input order, every strategy per pair; seeds read a chunk at a time."""
        for batch in chunked(pairs, chunk):
            yield from self._units(batch)

    def _units(self, pairs: list[FusionPair]) -> Iterator[Unit]:
        seeds = {s.id: s for s in self.store.seeds({i for p in pairs for i in (p.seed_a, p.seed_b)})}
        for pair in pairs:
            a, b = seeds.get(pair.seed_a), seeds.get(pair.seed_b)
            if a is None or b is None:
                missing = pair.seed_a if a is None else pair.seed_b
                raise ValueError(f"fusion pair {pair.id}: seed {missing!r} is not in the store; "
                                 "run `graphgen extract` on the seed files first")
            for strategy in self.strategies:
                yield self.unit(pair, a, b, strategy)

    def unit_id(self, pair: FusionPair, strategy: str) -> str:
        return stable_id("f", pair.seed_a, pair.seed_b, strategy, self.prompts[strategy].version, self.model)

    def unit_ids(self, pairs: Iterable[FusionPair]) -> Iterator[str]:
        """The ids `units` would give, without reading the store (progress counts with them)."""
        return (self.unit_id(pair, strategy) for pair in pairs for strategy in self.strategies)

    def unit(self, pair: FusionPair, a: SeedQuestion, b: SeedQuestion, strategy: str) -> Unit:
        prompt = self.prompts[strategy]
        unit_id = self.unit_id(pair, strategy)
        lineage = dict(
            id=unit_id, kind="fusion", seed_ids=[pair.seed_a, pair.seed_b], similarity=pair.similarity,
            strategy=strategy, prompt_version=prompt.version, sample_id=pair.id,
        )
        return Unit(id=unit_id, messages=prompt.messages(problem_a=a.question, problem_b=b.question),
                    row=lambda result: _row_from(result, **lineage))


# --- the stage: run(settings, store, inputs) -> GenerateReport -------------------------------


class GenerateInputs(BaseModel):
    """One `graphgen generate questions` or `graphgen generate fusion` invocation."""

    kind: Literal["questions", "fusion"]
    input: Path = Field(description="samples JSONL (questions) or pairs JSONL (fusion)")
    output: Path = Field(description="generated rows JSONL (appended; resumable)")
    shard: str | None = Field(None, description="i/n: only this machine's share")
    quiet: bool = Field(False, description="no progress bar")


class GenerateReport(StageReport):
    stage: str = "generate"
    skipped_done: int = 0
    skipped_other_shards: int = 0
    copied_from_store: int = Field(0, description="rows the store already held, written to the output unpaid")
    copied_to_store: int = Field(0, description="rows of the output file the store lacked, added to it")
    per_strategy: dict[str, int] = Field(default_factory=dict)
    failures_path: str | None = None
    run_id: str = Field("", description="recorded on every failure row this run appended")
    copies_rejected: int = Field(0, description="rows rejected as copies of their exemplar seeds (after re-asks)")
    reasked_copies: int = Field(0, description="replies that copied an exemplar and were asked again")

    def lines(self) -> list[str]:
        t = self.llm
        out = [f"{t.ok} rows written, {t.failed} failed, {t.cached} from cache; "
               f"{self.skipped_done} already done, {self.skipped_other_shards} in other shards"]
        if self.copied_from_store or self.copied_to_store:
            out.append(f"reconciled with the store: {self.copied_from_store} rows the store already held written "
                       f"to the output unpaid, {self.copied_to_store} rows of the output added to the store")
        if self.copies_rejected or self.reasked_copies:
            out.append(f"exemplar copies: {self.reasked_copies} replies rejected as copies (each asked again within "
                       f"its budget); {self.copies_rejected} rows still copying, failed with the reason")
        if self.per_strategy:
            out.append("per strategy: " + ", ".join(f"{k} {v}" for k, v in sorted(self.per_strategy.items())))
        cost = t.cost_text() if t.cost_known else "cost unknown (no price for model)"
        out.append(f"tokens: {t.prompt_tokens} prompt + {t.completion_tokens} completion; {cost}")
        return out + self.notes


def _units(settings: Settings, store: GraphStore, inputs: GenerateInputs) -> tuple[Iterator[Unit], Iterator[str]]:
    """The run's units in input order, and their ids from a second, cheap read of the input
    (progress counts the units still to pay for with them)."""
    if inputs.kind == "questions":
        gen = QuestionGenerator(store, settings.llm.model, difficulty=settings.generate.difficulty,
                                style=settings.generate.style, max_copy_overlap=settings.generate.max_copy_overlap)
        return (gen.units(read_jsonl(inputs.input, ConceptSample)),
                gen.unit_ids(read_jsonl(inputs.input, ConceptSample)))
    fusion = FusionGenerator(store, settings.llm.model, settings.generate.strategies)
    return fusion.units(read_jsonl(inputs.input, FusionPair)), fusion.unit_ids(read_jsonl(inputs.input, FusionPair))


def estimate(settings: Settings, store: GraphStore, inputs: GenerateInputs) -> dict:
    """--dry-run: tokens and cost of what `run` would still send; calls nothing."""
    from graphgen.estimate import run_price

    units, _ = _units(settings, store, inputs)
    price, pricing = run_price(settings, settings.llm.model)
    try:
        return estimate_units(units, inputs.output, Shard.parse(inputs.shard), settings.llm.model,
                              price, max_tokens=settings.llm.max_tokens, pricing=pricing)
    except ValueError as exc:  # e.g. a fusion pair whose seed is not in the store
        raise StageError(one_line(exc)) from None


def run(settings: Settings, store: GraphStore, inputs: GenerateInputs) -> GenerateReport:
    """Generate (or fuse) every unit not yet in `inputs.output`, appending rows as they finish."""
    from graphgen.llm import LLMClient

    units, unit_ids = _units(settings, store, inputs)
    shard = Shard.parse(inputs.shard)
    label = "generate" if inputs.kind == "questions" else "fusion"
    started = time.monotonic()
    try:
        client = LLMClient(settings.llm)
        summary = run_units(units, client, inputs.output, store=store, shard=shard, unit_ids=unit_ids,
                            label=label, quiet=inputs.quiet, engine=settings.engine)
    except ValueError as exc:  # e.g. a fusion pair whose seed is not in the store
        raise StageError(one_line(exc)) from None
    t = summary.totals
    report = GenerateReport(
        stage=f"generate {inputs.kind}", elapsed_s=time.monotonic() - started, llm=t,
        skipped_done=summary.skipped_done, skipped_other_shards=summary.skipped_other_shards,
        copied_from_store=summary.copied_from_store, copied_to_store=summary.copied_to_store,
        per_strategy=summary.per_strategy, failures_path=summary.failures_path, run_id=summary.run_id,
        copies_rejected=summary.copies_rejected, reasked_copies=client.rejected)
    if summary.failures_path:
        report.warnings.append(f"failures with reasons and raw replies appended to {summary.failures_path} "
                               f"(run {summary.run_id}); run again to retry them")
    return report
