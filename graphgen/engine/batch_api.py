"""The Batch API engine: a stage's LLM jobs as provider batches (about half the price, results
within the completion window, usually much sooner).

- Cache hits are answered at once; the other jobs become request lines (built exactly as the
  online request) in chunk files under `state_dir`, at most `batch_max_requests` lines and
  `batch_max_bytes` bytes each (the provider's limits: 50,000 and 200 MB).
- Each chunk is uploaded to /v1/files and created as a batch tagged with the chunk's id; the
  chunk's file id and batch id are saved in `<state_dir>/<chunk>.json` as soon as they exist.
  A restarted command finds its chunks there and resumes polling: no request is submitted
  twice (a batch created just before a kill is found again by its tag).
- Finished batches are downloaded (output and error files); each reply goes through the same
  validation as online, the same cache, the stage's sink (its failures file and lineage).
  Replies that fail validation, and requests the batch failed, are asked again ONLINE through
  the same client with its re-asks: they are a few percent, and a follow-up batch would hold
  the whole stage up for another completion window.
- An expired or cancelled batch delivers what it finished; the rest goes into a new chunk.
Costs are the batch price (`batch_price_factor` x the online price).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from graphgen.config import EngineSettings
from graphgen.engine import EngineError
from graphgen.engine.results import Delivery
from graphgen.jsonl import write_lines

if TYPE_CHECKING:
    from graphgen.llm import LLMClient, LLMResult
    from graphgen.runner import LLMJob
    from graphgen.stage import LLMTally

_TERMINAL = ("completed", "expired", "cancelled", "failed")
_TAG = "graphgen_chunk"


@dataclass
class Chunk:
    uid: str
    requests: int = 0
    bytes: int = 0
    file_id: str | None = None
    batch_id: str | None = None
    status: str = "new"
    done: bool = False

    def save(self, state_dir: Path) -> None:
        write_lines([json.dumps(asdict(self)) + "\n"], state_dir / f"{self.uid}.json")  # atomic

    def requests_path(self, state_dir: Path) -> Path:
        return state_dir / f"{self.uid}.requests.jsonl"

    def lines(self, state_dir: Path) -> Iterable[tuple[str, str]]:
        """(key, request line) of this chunk."""
        with self.requests_path(state_dir).open(encoding="utf-8") as fh:
            for line in fh:
                yield json.loads(line)["custom_id"], line


def _load_chunks(state_dir: Path) -> list[Chunk]:
    chunks = []
    for meta in sorted(state_dir.glob("*.json")):
        c = Chunk(**json.loads(meta.read_text(encoding="utf-8")))
        if not c.done and c.requests_path(state_dir).exists():
            chunks.append(c)
    for tmp in state_dir.glob("*.tmp"):  # a chunk being written when the run was killed
        tmp.unlink()
    return chunks


class _ChunkWriter:
    def __init__(self, state_dir: Path, engine: EngineSettings):
        self.dir, self.engine = state_dir, engine
        self.chunk = Chunk(uid=f"{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}")
        self.tmp = state_dir / f"{self.chunk.uid}.requests.jsonl.tmp"
        self.fh = None

    def fits(self, size: int) -> bool:
        c, e = self.chunk, self.engine
        return c.requests == 0 or (c.requests < e.batch_max_requests and c.bytes + size <= e.batch_max_bytes)

    def add(self, line: str) -> None:
        if self.fh is None:
            self.fh = self.tmp.open("w", encoding="utf-8")
        self.fh.write(line)
        self.chunk.requests += 1
        self.chunk.bytes += len(line.encode("utf-8"))

    def close(self) -> Chunk | None:
        if self.fh is None:
            return None
        self.fh.close()
        self.tmp.replace(self.chunk.requests_path(self.dir))  # complete before it is registered
        self.chunk.save(self.dir)
        return self.chunk


def run_as_batches(client: LLMClient, jobs: Iterable[LLMJob], sink: Callable[[LLMJob, LLMResult], None],
                   engine: EngineSettings, state_dir: Path, *, total: int | None = None, label: str = "llm",
                   quiet: bool = False) -> LLMTally:
    state_dir.mkdir(parents=True, exist_ok=True)
    delivery = Delivery(client, sink, total, label, quiet)
    try:
        asyncio.run(_BatchRun(client, delivery, engine, state_dir).run(jobs))
    finally:
        delivery.close()
    return delivery.tally()


class _BatchRun:
    def __init__(self, client: LLMClient, delivery: Delivery, engine: EngineSettings, state_dir: Path):
        from graphgen.llm.batch import BatchAPI

        self.client, self.delivery, self.engine, self.dir = client, delivery, engine, state_dir
        self.api = BatchAPI(client, engine.batch_price_factor)
        self.waiting: dict[str, tuple[LLMJob, str | None]] = {}
        self.again: list[LLMJob] = []
        self.uploaded_here: set[str] = set()
        self._last_note = ""

    async def run(self, jobs: Iterable[LLMJob]) -> None:
        from graphgen.llm.batch import BatchRejected

        chunks = _load_chunks(self.dir)
        submitted_before = {key for c in chunks for key, _ in c.lines(self.dir)}
        writer = _ChunkWriter(self.dir, self.engine)
        for job in jobs:
            if job.key in self.waiting:
                continue
            cache_key, answered = self.delivery.from_cache(job)
            if answered:
                continue
            self.waiting[job.key] = (job, cache_key)
            if job.key in submitted_before:
                continue  # already in a batch of an earlier run: wait for it, do not resubmit
            line = json.dumps(self.api.request_line(job.key, job.messages, job.output),
                              ensure_ascii=False) + "\n"
            if not writer.fits(len(line.encode("utf-8"))):
                chunks.append(writer.close())
                writer = _ChunkWriter(self.dir, self.engine)
            writer.add(line)
        if (last := writer.close()) is not None:
            chunks.append(last)
        try:
            await self._poll(chunks)
        except BatchRejected as exc:
            raise EngineError(f"the endpoint at {self.client.settings.base_url or 'api.openai.com'} does not accept "
                              f"Batch API requests ({exc}): run without --batch; the request files are kept "
                              f"in {self.dir}") from None
        finally:
            await self.client.aclose()
        if self.again:
            await self._ask_online(self.again)

    async def _submit(self, c: Chunk) -> None:
        if c.file_id is None:
            c.file_id = await self.api.upload(c.requests_path(self.dir))
            self.uploaded_here.add(c.file_id)
            c.save(self.dir)
        found = None if c.file_id in self.uploaded_here else await self.api.find(_TAG, c.uid)
        batch = found or await self.api.create(c.file_id, self.engine.batch_window, {_TAG: c.uid})
        c.batch_id, c.status = batch["id"], batch["status"]
        c.save(self.dir)

    async def _poll(self, chunks: list[Chunk]) -> None:
        done = 0
        while True:
            open_chunks = [c for c in chunks if not c.done]
            for c in open_chunks:
                if c.batch_id is None:
                    await self._submit(c)
                batch = await self.api.retrieve(c.batch_id)
                c.status = batch["status"]
                if c.status in _TERMINAL:
                    follow_up = await self._collect(c, batch)
                    if follow_up is not None:
                        chunks.append(follow_up)
                    c.done = True
                    c.save(self.dir)
                    done += 1
            self._note(chunks, done)
            if all(c.done for c in chunks):
                return
            await asyncio.sleep(self.engine.batch_poll_s)

    def _note(self, chunks: list[Chunk], done: int) -> None:
        running = [c for c in chunks if not c.done]
        text = (f"batches: {sum(1 for c in chunks if c.batch_id)} submitted, "
                f"{sum(1 for c in running if c.status in ('validating', 'in_progress', 'finalizing'))} in progress, "
                f"{done} done; {len(self.waiting)} requests waiting")
        if text != self._last_note:
            self._last_note = text
            self.delivery.note(text)

    async def _collect(self, c: Chunk, batch: dict) -> Chunk | None:
        """Deliver a finished batch's replies; the requests it never ran go into a new chunk."""
        answered: set[str] = set()
        for file_id in (batch.get("output_file_id"), batch.get("error_file_id")):
            for raw in (await self.api.content(file_id)).splitlines():
                if not raw.strip():
                    continue
                line = json.loads(raw)
                key = line.get("custom_id")
                answered.add(key)
                entry = self.waiting.pop(key, None)
                if entry is None:
                    continue  # done meanwhile (or delivered before a kill)
                job, cache_key = entry
                result = self.api.result(line, job.output)
                if result.value is not None:
                    self.delivery.deliver(job, cache_key, result)
                else:  # paid, but not usable: count the tokens, ask again online
                    self.delivery.count_paid(result.usage)
                    self.again.append(job)
        if c.status == "failed":
            c.done = True  # its requests are resubmitted by the next run, not polled forever
            c.save(self.dir)
            errors = ((batch.get("errors") or {}).get("data") or [{}])[0].get("message", "no reason given")
            raise EngineError(f"batch {c.batch_id} failed ({errors}); run again to resubmit its requests, "
                              "or run without --batch")
        missing = [line for key, line in c.lines(self.dir) if key not in answered and key in self.waiting]
        if not missing:
            return None
        writer = _ChunkWriter(self.dir, self.engine)  # expired / cancelled: the rest, once more
        for line in missing:
            writer.add(line)
        return writer.close()

    async def _ask_online(self, jobs: list[LLMJob]) -> None:
        from graphgen.runner import arun_jobs

        self.delivery.note(f"{len(jobs)} replies failed validation or the batch: asking again online")

        def sink(job: LLMJob, result: LLMResult) -> None:
            # the online client cached and counted it already
            self.delivery.deliver(job, None, result, counted=True)

        await arun_jobs(self.client, jobs, sink, quiet=True)
