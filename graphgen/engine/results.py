"""What the distributed engines share on the driver: results as plain JSON records (they
cross process and machine boundaries and sit in state files), and the one place where a
finished result is cached, counted, shown in progress and handed to the stage's sink."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ValidationError

from graphgen.errors import one_line
from graphgen.jsonl import read_jsonl
from graphgen.progress import Progress
from graphgen.records import LLMUsage
from graphgen.stage import LLMTally

if TYPE_CHECKING:
    from graphgen.llm import LLMClient, LLMResult
    from graphgen.runner import LLMJob


class ResultRecord(BaseModel):
    """One LLM result as it crosses process boundaries and sits in state files."""

    key: str
    value: dict | None = None
    raw: str = ""
    error: str | None = None
    usage: LLMUsage = LLMUsage()
    attempts: int = 0
    retries: int = 0


def result_record(key: str, result: LLMResult) -> ResultRecord:
    return ResultRecord(key=key, value=result.value.model_dump(mode="json") if result.value is not None else None,
                        raw=result.raw, error=result.error, usage=result.usage, attempts=result.attempts,
                        retries=result.retries)


def result_from_record(rec: ResultRecord, output: type[BaseModel]) -> LLMResult:
    from graphgen.llm import LLMResult

    value, error = None, rec.error
    if rec.value is not None:
        try:
            value = output.model_validate(rec.value)
        except ValidationError as exc:  # the output model changed since the record was written
            error = f"schema validation failed: {one_line(exc)}"
    return LLMResult(value, rec.raw, error, rec.usage, rec.attempts, rec.retries)


def read_records(path: Path) -> Iterator[ResultRecord]:
    """Records of a state file; a torn last line (a kill mid-write) is skipped."""
    return read_jsonl(path, ResultRecord, own_output=True) if path.exists() else iter(())


class Delivery:
    """Answers cache hits, and delivers results: cache, the client's tally, progress, then
    the stage's sink. `tally()` is this run's share of the client's tally."""

    def __init__(self, client: LLMClient, sink: Callable[[LLMJob, LLMResult], None],
                 total: int | None, label: str, quiet: bool):
        self.client, self.sink = client, sink
        self.since = client.tally.model_copy()
        self.progress = Progress(total, label, quiet=quiet, tally=client.tally, since=self.since)
        self.failures_seen = 0  # results handed to the sink so far that failed (the abort rule)

    def tally(self) -> LLMTally:
        return self.client.tally.minus(self.since)

    def count_paid(self, usage: LLMUsage) -> None:
        """Tokens paid for a reply that is asked again elsewhere (not a finished job)."""
        t = self.client.tally
        t.prompt_tokens += usage.prompt_tokens
        t.completion_tokens += usage.completion_tokens
        t.cost_usd += usage.cost_usd

    def from_cache(self, job: LLMJob) -> tuple[str | None, bool]:
        """(cache key, answered): a cached reply is delivered at once, nothing is shipped."""
        key, hit = self.client.cached_result(job.messages, job.output)
        if hit is not None:
            self.deliver(job, None, hit)
            return key, True
        return key, False

    def deliver(self, job: LLMJob, cache_key: str | None, result: LLMResult, *, counted: bool = False) -> None:
        """`counted`: the client's `complete` already recorded it (an online re-ask)."""
        if cache_key is not None:
            self.client.remember(cache_key, result)
        from graphgen.runner import check_not_all_failing

        if not counted:
            self.client.tally.record(result.usage, result.value is not None)
        self.sink(job, result)
        self.progress.tick()
        self.failures_seen += result.value is None
        check_not_all_failing(self.failures_seen, self.tally(), result)

    def note(self, text: str) -> None:
        self.progress.note(text)

    def close(self) -> None:
        self.progress.close()
