"""Stage 1: concept extraction (MathScale): 1-2 topics and 1-5 knowledge points per seed.

Resumable by construction: a run is one keyed unit per seed; extractions are flushed to the
store in small transactions as they arrive, seeds that already have one are skipped, and
the LLM response cache means a unit interrupted mid-flight is not paid for twice.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from pydantic import BaseModel

from typing import TYPE_CHECKING

from graphgen.config import EngineSettings
from graphgen.graph import rebuild
from graphgen.errors import one_line
from graphgen.prompts import load_prompt
from graphgen.records import Extraction, ExtractionOutput, RejectedRow, RunSummary, SeedQuestion
from graphgen.scrub import scrub
from graphgen.seeds import SeedInputError
from graphgen.store.base import GraphStore

if TYPE_CHECKING:  # the LLM stack is only imported by runs that call an LLM
    from graphgen.llm import LLMClient, LLMResult
    from graphgen.runner import LLMJob

EXTRACT_PROMPT = "extract_v1"
ANNOTATION_MODEL = "human-annotation"


class ConceptExtractor:
    """Turns seeds into LLM jobs and LLM results into Extraction records."""

    def __init__(self, prompt_version: str = EXTRACT_PROMPT, include_solution: bool = False):
        self.prompt = load_prompt(prompt_version)
        self.include_solution = include_solution

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
        )

    def to_extraction(self, seed_id: str, result: LLMResult) -> Extraction:
        out: ExtractionOutput = result.value  # type: ignore[assignment]
        return Extraction(
            seed_id=seed_id,
            topics=out.topics,
            knowledge_points=out.knowledge_points,
            model=result.usage.model,
            prompt_version=self.prompt.version,
            usage=result.usage,
        )


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


def ingest_seeds(
    store: GraphStore, items: Iterable[SeedQuestion | RejectedRow], summary: RunSummary,
    rejects: list[RejectedRow], limit: int | None = None,
) -> list[str]:
    """Store seeds in batches (the first `limit` seeds, if given); returns their ids in input
    order, rejects collected."""
    ids: list[str] = []
    batch: list[SeedQuestion] = []
    for item in items:
        if limit is not None and len(ids) >= limit:
            break
        summary.read += 1
        if isinstance(item, RejectedRow):
            summary.rejected += 1
            rejects.append(item)
            continue
        ids.append(item.id)
        batch.append(item)
        if len(batch) >= 2000:
            summary.changed += store_seeds(store, batch)
            batch = []
    if batch:
        summary.changed += store_seeds(store, batch)
    return ids


def store_seeds(store: GraphStore, seeds: list[SeedQuestion]) -> int:
    """Store a batch of seeds; returns how many already-stored seeds changed their question
    text (the store drops their extractions, so they are extracted again).

    Seed identity is (source, id): an id already used by a different question from another
    source is refused (nothing of the batch is written), never overwritten."""
    stored = {s.id: s for s in store.seeds([s.id for s in seeds])}
    changed = 0
    for seed in seeds:
        old = stored.get(seed.id)
        if old is None or old.question == seed.question:
            continue
        if old.source != seed.source:
            raise SeedInputError(
                f"seed id {seed.id!r} of source {seed.source!r} is already used in this workspace by "
                f"a different question of source {old.source!r}; pass --prefix-ids to make ids "
                f"<source>-<id> (e.g. {seed.source}-{seed.id}), or use another --db",
                reason="id_conflict",
            )
        changed += 1
    store.add_seeds(seeds)
    return changed


def pending_seeds(store: GraphStore, seed_ids: list[str], summary: RunSummary) -> list[str]:
    done = store.extracted_seed_ids()
    todo = [i for i in dict.fromkeys(seed_ids) if i not in done]
    summary.skipped_done = len(set(seed_ids)) - len(todo)
    return todo


def seeds_in_order(store: GraphStore, seed_ids: list[str], chunk: int = 1000) -> Iterator[SeedQuestion]:
    """Seeds in input order, read from the store in chunks so memory stays flat."""
    for start in range(0, len(seed_ids), chunk):
        ids = seed_ids[start : start + chunk]
        found = {s.id: s for s in store.seeds(ids)}
        yield from (found[i] for i in ids if i in found)


def run_extraction(
    store: GraphStore,
    client: LLMClient,
    seed_ids: list[str],
    summary: RunSummary,
    *,
    extractor: ConceptExtractor | None = None,
    failures_path: Path | None = None,
    quiet: bool = False,
    engine: EngineSettings | None = None,
    state_dir: Path | None = None,
) -> list[ExtractionFailure]:
    """Extract concepts for the given seeds (already in the store) and rebuild the graph.

    Extractions are written as they arrive, so a kill loses at most the replies in flight,
    and those are in the response cache."""
    extractor = extractor or ConceptExtractor()
    failures: list[ExtractionFailure] = []
    flusher = _Flusher(store.add_extractions)
    fail_file = None
    from graphgen.generate import new_run_id

    run_id = new_run_id()

    def sink(job: LLMJob, result: LLMResult) -> None:
        nonlocal fail_file
        if result.value is None:
            failure = ExtractionFailure(seed_id=job.key, error=scrub(result.error or "no valid reply"),
                                        raw=scrub(result.raw), run_id=run_id)
            failures.append(failure)
            if failures_path:
                if fail_file is None:  # appended, so earlier runs' failures are kept
                    failures_path.parent.mkdir(parents=True, exist_ok=True)
                    fail_file = failures_path.open("a", encoding="utf-8")
                fail_file.write(failure.model_dump_json() + "\n")
                fail_file.flush()
            return
        flusher.add(extractor.to_extraction(job.key, result))

    def jobs() -> Iterator[LLMJob]:
        for seed in seeds_in_order(store, seed_ids):
            yield extractor.job(seed)

    from graphgen.engine import run_llm_jobs

    try:
        started = time.monotonic()
        summary.llm = run_llm_jobs(client, jobs(), sink, total=len(seed_ids), label="extract", quiet=quiet,
                                   engine=engine, state_dir=state_dir)
    finally:
        flusher.flush()
        if fail_file:
            fail_file.close()
    summary.extracted += summary.llm.ok
    summary.llm_seconds += time.monotonic() - started
    rebuild(store)
    return failures


def estimate_dry_run(
    store: GraphStore, seed_ids: list[str], extractor: ConceptExtractor, model: str,
    price, completion_tokens_per_seed: int = 60,
) -> dict:
    """Render every prompt and estimate tokens and cost; calls nothing."""
    from graphgen.estimate import estimate_calls

    messages = (extractor.messages(seed) for seed in seeds_in_order(store, seed_ids))
    return {"seeds": len(seed_ids), **estimate_calls(messages, model, price, completion_tokens_per_seed)}


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
