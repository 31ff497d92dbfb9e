"""Stage 1: concept extraction (MathScale): 1-2 topics and 1-5 knowledge points per seed.

Entry point: `run(settings, store, ExtractInputs) -> ExtractReport` (options: `[extract]`).

Resumable by construction: a run is one keyed unit per seed; extractions are flushed to the
store in small transactions as they arrive, seeds that already have one are skipped, and
the LLM response cache means a unit interrupted mid-flight is not paid for twice.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from typing import TYPE_CHECKING

from pydantic import BaseModel, Field

from graphgen.config import EngineSettings, Settings
from graphgen.errors import one_line
from graphgen.graph import rebuild
from graphgen.progress import say
from graphgen.prompts import load_prompt
from graphgen.records import Extraction, ExtractionOutput, RejectedRow, SeedQuestion
from graphgen.scrub import scrub
from graphgen.readers import FieldMap, SeedReadStats, read_seeds, store_seeds, write_rejects
from graphgen.stage import StageError, StageReport, new_run_id
from graphgen.store.base import GraphStats, GraphStore

if TYPE_CHECKING:  # the LLM stack is only imported by runs that call an LLM
    from graphgen.llm import LLMClient, LLMResult
    from graphgen.runner import LLMJob

EXTRACT_PROMPT = "extract_v3"  # v3: no example names at all: small models echo examples (v1: 23 of 133 concepts; v2 one worked example: SmolLM2-135M copied it for every seed) (issue 23)
ANNOTATION_MODEL = "human-annotation"


class ConceptExtractor:
    """Turns seeds into LLM jobs and LLM results into Extraction records."""

    def __init__(self, prompt_version: str = EXTRACT_PROMPT, include_solution: bool = False):
        self.prompt = load_prompt(prompt_version)
        self.include_solution = include_solution
        self.examples = prompt_examples(self.prompt.system + "\n" + self.prompt.user)

    def messages(self, seed: SeedQuestion) -> list[dict[str, str]]:
        block = f"\nReference solution:\n{seed.solution}\n" if self.include_solution and seed.solution else ""
        return self.prompt.messages(question=seed.question, solution_block=block)

    def job(self, seed: SeedQuestion) -> LLMJob:
        from graphgen.runner import LLMJob

        return LLMJob(
            key=seed.id,
            messages=self.messages(seed),
            output=ExtractionOutput,
            payload=seed,
            check=lambda out: self.all_leaked(out, seed),
        )

    def seed_text(self, seed: SeedQuestion) -> str:
        return f"{seed.question}\n{seed.solution or ''}"

    def leaks(self, names: list[str], seed: SeedQuestion) -> list[str]:
        """The names that are verbatim examples of the prompt the seed text does not support."""
        return [n for n in names if n.strip().casefold() in self.examples and not supported(n, self.seed_text(seed))]

    def all_leaked(self, out: ExtractionOutput, seed: SeedQuestion) -> str | None:
        """The job's gate: a reply whose topics or knowledge points are all prompt examples
        (or all name the problem's numbers) is asked again; a reply with some left keeps
        those (see `to_extraction`)."""
        for kind, names in (("topics", out.topics), ("knowledge points", out.knowledge_points)):
            if names and len(self.leaks(names, seed)) == len(names):
                return (f"the {kind} {names} are the prompt's own examples, not concepts of this problem; "
                        "label this problem")
            if names and all(_DIGIT.search(n) for n in names):
                return (f"the {kind} {names} name the problem's numbers; name the general concepts "
                        "(skills and chapters), without numbers")
        return None

    def to_extraction(self, seed_id: str, result: LLMResult, seed: SeedQuestion | None = None) -> Extraction:
        out: ExtractionOutput = result.value  # type: ignore[assignment]
        topics, kps, dropped = out.topics, out.knowledge_points, []
        if seed is not None:
            leaked_topics, leaked_kps = self.leaks(topics, seed), self.leaks(kps, seed)
            for kind, names in (("topic", leaked_topics), ("knowledge point", leaked_kps)):
                dropped += [f"{kind} {n!r}: a verbatim example of prompt {self.prompt.version} that the seed "
                            "text does not support" for n in names]
            for kind, names, leaked in (("topic", topics, leaked_topics), ("knowledge point", kps, leaked_kps)):
                numbered = [n for n in names if _DIGIT.search(n) and n not in leaked]
                leaked += numbered
                dropped += [f"{kind} {n!r}: names the problem's numbers, not a general concept" for n in numbered]
            topics = [t for t in topics if t not in leaked_topics]
            kps = [k for k in kps if k not in leaked_kps]
        return Extraction(
            seed_id=seed_id,
            topics=topics,
            knowledge_points=kps,
            dropped=dropped,
            model=result.usage.model,
            prompt_version=self.prompt.version,
            usage=result.usage,
        )


_DIGIT = re.compile(r"\d")
_QUOTED = re.compile(r'"([^"{}]{3,80})"')
_GENERIC = frozenset("computing solving finding using counting applying with from into over their given "
                     "quantity quantities value values number numbers problem problems".split())


def prompt_examples(text: str) -> set[str]:
    """The concept-like phrases a prompt quotes (its examples), casefolded."""
    return {m.strip().casefold() for m in _QUOTED.findall(text) if len(m.split()) <= 8}


def supported(name: str, text: str) -> bool:
    """Does the seed text mention the concept? Every distinctive word of `name` (4+ letters,
    not a generic verb) must share its first 5 letters with a word of `text`
    ("Percentages" is supported by "percent", "Pythagorean theorem" needs both words)."""
    words = {w[:5] for w in re.findall(r"[a-z]{4,}", text.casefold())}
    needed = [w[:5] for w in re.findall(r"[a-z]{4,}", name.casefold()) if w not in _GENERIC]
    return bool(needed) and all(w in words for w in needed)


class ExtractionFailure(BaseModel):
    seed_id: str
    error: str
    raw: str | None = None
    run_id: str = ""


class _Flusher:
    """Buffers records and writes them in small transactions (count or age bound)."""

    def __init__(self, write, every: int = 256, seconds: float = 2.0):
        self.write, self.every, self.seconds = write, every, seconds
        self.buffer: list = []
        self.last = time.monotonic()

    def add(self, item) -> None:
        self.buffer.append(item)
        if len(self.buffer) >= self.every or time.monotonic() - self.last > self.seconds:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            self.write(self.buffer)
            self.buffer = []
        self.last = time.monotonic()


class ExtractInputs(BaseModel):
    """One `graphgen extract` invocation: what it reads and writes."""

    seed_files: list[Path] = Field(description="seed files (JSONL, JSON, CSV, Parquet, HF directories)")
    annotations: Path | None = Field(None, description="hand-written extractions (JSONL) instead of an LLM")
    rejects: Path = Field(Path("rejects.jsonl"), description="where rejected rows go (with skip_invalid)")
    failures: Path = Field(Path("extract-failures.jsonl"), description="replies that never validated (appended)")
    limit: int | None = Field(None, ge=0, description="only the first N seeds")
    dry_run: bool = Field(False, description="render prompts and estimate tokens and cost; call no LLM")
    quiet: bool = Field(False, description="no progress bar")


class ExtractReport(StageReport):
    stage: str = "extract"
    read: int = 0
    rejected: int = 0
    changed: int = Field(0, description="stored seeds whose question text changed (re-extracted)")
    skipped_done: int = Field(0, description="seeds extracted by an earlier run")
    extracted: int = Field(0, description="extractions stored by this run")
    field_maps: dict[str, dict[str, str]] = Field(default_factory=dict, description="per file: the fields read")
    graph: GraphStats | None = Field(None, description="the stored graph after the run")
    estimate: dict | None = Field(None, description="dry run: seeds, tokens and cost it would take")
    llm_seconds: float = Field(0.0, description="wall time of the LLM phase")
    run_id: str = ""
    example_leaks_dropped: int = Field(0, description="concepts dropped as verbatim prompt examples the seed does not support")
    example_leaks_seen: list[str] = Field(default_factory=list, description="the first few, with reasons")

    def lines(self) -> list[str]:
        t = self.llm
        out = [f"read {self.read}, rejected {self.rejected}, already done {self.skipped_done}, "
               f"extracted {self.extracted} ({t.cached} from cache), failed {t.failed}"]
        if t.tokens:
            cost = t.cost_text() if t.cost_known else "unknown (no price for model)"
            out.append(f"tokens: {t.prompt_tokens} prompt + {t.completion_tokens} completion; cost {cost}")
        if self.graph is not None:
            g = self.graph
            concepts = ", ".join(f"{v} {k}" for k, v in g.concepts.items()) or "none"
            edges = ", ".join(f"{v} {k}" for k, v in g.edges.items()) or "none"
            out.append(f"graph: {g.extracted_seeds}/{g.seeds} seeds extracted; concepts: {concepts}; edges: {edges}")
        if self.example_leaks_dropped:
            out.append(f"dropped {self.example_leaks_dropped} concepts that were the prompt's own examples or "
                       f"named the problem's numbers (e.g. {self.example_leaks_seen[0]})")
        return out + self.notes


def run(settings: Settings, store: GraphStore, inputs: ExtractInputs) -> ExtractReport:
    """Store the seeds, extract concepts for those not yet extracted (or take them from
    annotations), and rebuild the concept graph."""
    opts = settings.extract
    report = ExtractReport()
    started = time.monotonic()
    field_map = FieldMap(question=opts.question_field, solution=opts.solution_field, answer=opts.answer_field,
                         id=opts.id_field)
    read_stats = SeedReadStats()
    items = read_seeds(inputs.seed_files, field_map, skip_invalid=opts.skip_invalid, source=opts.source,
                       prefix_ids=opts.prefix_ids, stats=read_stats)
    rejected: list[RejectedRow] = []
    unstored: dict[str, SeedQuestion] | None = {} if inputs.dry_run else None  # a dry run writes nothing
    seed_ids = _ingest(store, items, report, rejected, inputs.limit, unstored)
    report.field_maps = read_stats.field_maps
    for line in read_stats.field_map_lines():  # a wrong guess is visible before anything is paid
        say(f"fields: {line}")
    if rejected and inputs.dry_run:
        report.warnings.append(f"{len(rejected)} rejected rows (a dry run writes no file): "
                               + "; ".join(f"line {r.line}: {r.reason}" for r in rejected[:5]))
    elif rejected:
        write_rejects(rejected, inputs.rejects)
        report.warnings.append(f"{len(rejected)} rejected rows written to {inputs.rejects}")
    if not seed_ids and report.rejected:
        where = (f"first reason: line {rejected[0].line}: {rejected[0].reason}" if inputs.dry_run and rejected
                 else f"reasons in {inputs.rejects}")
        raise StageError(
            f"all {report.rejected} rows were rejected ({where}): nothing to extract; "
            "check the files and the field mapping (--question-field, --id-field, ...)")
    if report.changed:
        report.warnings.append(f"{report.changed} stored seeds have a new question text: their old extractions "
                               "were dropped and they are extracted again")
    if inputs.annotations is not None and not inputs.dry_run:
        report.extracted = store.add_extractions(read_annotations(inputs.annotations, set(seed_ids)))
        report.graph = rebuild(store)
        report.elapsed_s = time.monotonic() - started
        return report

    done = store.extracted_seed_ids()
    todo = [i for i in dict.fromkeys(seed_ids) if i not in done]
    report.skipped_done = len(set(seed_ids)) - len(todo)
    extractor = ConceptExtractor(include_solution=opts.include_solution)
    price = settings.llm.price_for(settings.llm.model)
    if inputs.dry_run:
        from graphgen.estimate import estimate_calls, run_price

        messages = (extractor.messages(unstored[i]) for i in todo)
        run_at, pricing = run_price(settings, settings.llm.model)
        report.estimate = {"seeds": len(todo), **estimate_calls(messages, settings.llm.model, run_at, 60, pricing=pricing)}
        report.elapsed_s = time.monotonic() - started
        return report

    from graphgen.engine import state_dir_for
    from graphgen.llm import LLMClient

    st = settings.store
    identity = f"neo4j {st.neo4j_uri} {st.neo4j_database}" if st.kind == "neo4j" else f"sqlite {Path(st.path).resolve()}"
    failures = _extract(store, LLMClient(settings.llm), todo, report, extractor, inputs.failures,
                        quiet=inputs.quiet, engine=settings.engine,
                        state_dir=state_dir_for(settings, "extract", identity))
    report.llm.cost_known = price is not None
    if failures:
        report.warnings.append(f"{failures} seeds failed (raw replies appended to {inputs.failures}, run "
                               f"{report.run_id}); run again to retry them")
    report.graph = rebuild(store)
    report.elapsed_s = time.monotonic() - started
    return report


def _ingest(store: GraphStore, items: Iterable[SeedQuestion | RejectedRow], report: ExtractReport,
            rejects: list[RejectedRow], limit: int | None,
            keep: dict[str, SeedQuestion] | None = None) -> list[str]:
    """Store seeds in batches (the first `limit` seeds, if given); returns their ids in input
    order, rejects collected. With `keep` (a dry run), the seeds go there and the store is
    not written."""
    ids: list[str] = []
    batch: list[SeedQuestion] = []
    for item in items:
        if limit is not None and len(ids) >= limit:
            break
        report.read += 1
        if isinstance(item, RejectedRow):
            report.rejected += 1
            rejects.append(item)
            continue
        ids.append(item.id)
        if keep is not None:
            keep.setdefault(item.id, item)
            continue
        batch.append(item)
        if len(batch) >= 2000:
            report.changed += store_seeds(store, batch)
            batch = []
    if batch:
        report.changed += store_seeds(store, batch)
    return ids


def seeds_in_order(store: GraphStore, seed_ids: list[str], chunk: int = 1000) -> Iterator[SeedQuestion]:
    """Seeds in input order, read from the store in chunks so memory stays flat."""
    for start in range(0, len(seed_ids), chunk):
        ids = seed_ids[start : start + chunk]
        found = {s.id: s for s in store.seeds(ids)}
        yield from (found[i] for i in ids if i in found)


def _extract(store: GraphStore, client: LLMClient, seed_ids: list[str], report: ExtractReport,
             extractor: ConceptExtractor, failures_path: Path, *, quiet: bool,
             engine: EngineSettings | None, state_dir: Path | None) -> int:
    """Extract concepts for the given seeds (already in the store); returns how many failed.

    Extractions are written as they arrive, so a kill loses at most the replies in flight,
    and those are in the response cache. Failures are appended (earlier runs' are kept) with
    the run id; the file is created only when something fails."""
    from graphgen.engine import run_llm_jobs

    flusher = _Flusher(store.add_extractions)
    fail_file = None
    failed = 0
    report.run_id = new_run_id()

    def sink(job: LLMJob, result: LLMResult) -> None:
        nonlocal fail_file, failed
        if result.value is None:
            failed += 1
            failure = ExtractionFailure(seed_id=job.key, error=scrub(result.error or "no valid reply"),
                                        raw=scrub(result.raw), run_id=report.run_id)
            if fail_file is None:
                failures_path.parent.mkdir(parents=True, exist_ok=True)
                fail_file = failures_path.open("a", encoding="utf-8")
            fail_file.write(failure.model_dump_json() + "\n")
            fail_file.flush()
            return
        ext = extractor.to_extraction(job.key, result, job.payload)
        if ext.dropped:
            report.example_leaks_dropped += len(ext.dropped)
            report.example_leaks_seen.extend(ext.dropped[: max(0, 3 - len(report.example_leaks_seen))])
        flusher.add(ext)

    started = time.monotonic()
    try:
        report.llm = run_llm_jobs(client, (extractor.job(seed) for seed in seeds_in_order(store, seed_ids)), sink,
                                  total=len(seed_ids), label="extract", quiet=quiet, engine=engine,
                                  state_dir=state_dir)
    finally:
        flusher.flush()
        if fail_file:
            fail_file.close()
        report.llm_seconds = time.monotonic() - started
    report.extracted = report.llm.ok
    return failed


class AnnotationError(ValueError):
    pass


def read_annotations(path: Path, known_seed_ids: set[str]) -> Iterator[Extraction]:
    """Hand-written annotations: JSONL of {"seed_id", "topics", "knowledge_points"}."""
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                out = ExtractionOutput.model_validate(
                    {"topics": data.get("topics"), "knowledge_points": data.get("knowledge_points")}
                )
                seed_id = data["seed_id"]
            except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as exc:
                raise AnnotationError(f"{path}:{lineno}: invalid annotation ({one_line(exc)})") from None
            if seed_id not in known_seed_ids:
                raise AnnotationError(
                    f"{path}:{lineno}: seed_id {seed_id!r} is not among the seeds given; "
                    "pass the seed file the annotations were written for"
                )
            yield Extraction(
                seed_id=seed_id, topics=out.topics, knowledge_points=out.knowledge_points,
                model=ANNOTATION_MODEL, prompt_version="annotations",
            )
