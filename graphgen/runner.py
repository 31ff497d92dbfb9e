"""Streaming job runner: many LLM calls with flat memory and tiny overhead.

    tally = run_jobs(client, jobs, sink, total=n, label="extract")   # this run's LLMTally

`jobs` is pulled lazily (a generator over 100,000 seeds is never materialised); at most
`2 x concurrency` jobs are in flight; `sink(job, result)` is called once per job as it
finishes, on the event-loop thread (the thread that called run_jobs), so the caller can
write each result to SQLite / JSONL right away. Whatever reached `sink` before a crash or a
Ctrl-C is the caller's to keep; a resumed run just skips those keys.

The work is counted once, in `client.tally`; progress shows it and run_jobs returns the
part of it this run did (two runs sharing one client at the same time would mix).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel

from graphgen.llm.client import LLMClient, LLMFatalError, LLMResult
from graphgen.progress import Progress
from graphgen.stage import LLMTally

__all__ = ["LLMJob", "RunTotals", "run_jobs", "arun_jobs", "run_blocking", "check_not_all_failing"]

T = TypeVar("T")

RunTotals = LLMTally  # old name: run_jobs returns the run's share of the client's tally


@dataclass(slots=True)
class LLMJob:
    """One unit of LLM work: `messages` in, one validated `output` object back. The JSON
    Schema is derived from `output`."""

    key: str
    messages: list[dict]
    output: type[BaseModel]
    payload: Any = None
    check: Callable[[BaseModel], str | None] | None = None
    """a gate on the validated value: a reason to reject it (re-asked within the job's
    budget), or None. Engines that cannot run it leave it to the stage's own check."""


_ABORT_AFTER_FAILURES = 16


def check_not_all_failing(failures_seen: int, run_tally: LLMTally, result: LLMResult) -> None:
    """Stop a run whose first results all failed (`failures_seen`: failed results handed to
    the sink so far; `run_tally`: this run's share of the tally). Also used by the engines."""
    if failures_seen >= _ABORT_AFTER_FAILURES and run_tally.ok == 0:
        # Nothing has worked yet: a wrong endpoint, model or key, not bad luck.
        raise LLMFatalError(
            f"the first {failures_seen} requests all failed (last: {result.error}); "
            "check --base-url, --model and the API key, then run again: finished work is kept"
        )


async def arun_jobs(
    client: LLMClient,
    jobs: Iterable[LLMJob],
    sink: Callable[[LLMJob, LLMResult], None],
    *,
    total: int | None = None,
    label: str = "llm",
    quiet: bool = False,
    max_in_flight: int | None = None,
) -> LLMTally:
    """The async core of run_jobs (use it directly inside a running event loop, e.g. a notebook)."""
    limit = max_in_flight or max(2, 2 * client.settings.concurrency)
    tally = client.tally
    start_tally = tally.model_copy()
    progress = Progress(total, label, quiet=quiet, tally=tally, since=start_tally)
    done_q: asyncio.Queue = asyncio.Queue()
    put = done_q.put_nowait
    complete = client.complete
    pending: set[asyncio.Task] = set()
    it = iter(jobs)
    exhausted = False
    failures_seen = 0  # results handed to the sink so far that failed (the abort rule)

    def launch() -> bool:
        nonlocal exhausted
        try:
            job = next(it)
        except StopIteration:
            exhausted = True
            return False
        task = asyncio.ensure_future(complete(job.messages, job.output, check=job.check) if job.check
                                     else complete(job.messages, job.output))
        task.job = job  # type: ignore[attr-defined]
        pending.add(task)
        task.add_done_callback(put)
        return True

    try:
        while not exhausted and len(pending) < limit:
            launch()
        while pending:
            task = await done_q.get()
            pending.discard(task)
            job = task.job  # type: ignore[attr-defined]
            result: LLMResult = task.result()  # LLMFatalError propagates and stops the run
            sink(job, result)
            progress.tick()
            failures_seen += result.value is None
            if failures_seen >= _ABORT_AFTER_FAILURES:
                check_not_all_failing(failures_seen, tally.minus(start_tally), result)
            if not exhausted:
                launch()
    finally:
        if pending:
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        progress.close()
        await client.aclose()
    return tally.minus(start_tally)


def run_jobs(
    client: LLMClient,
    jobs: Iterable[LLMJob],
    sink: Callable[[LLMJob, LLMResult], None],
    *,
    total: int | None = None,
    label: str = "llm",
    quiet: bool = False,
    max_in_flight: int | None = None,
) -> LLMTally:
    """Run every job through `client.complete`, streaming results to `sink`. Blocking.

    Inside an already running event loop (Jupyter) prefer `await arun_jobs(...)`; called
    there anyway, this runs the loop in a helper thread and `sink` is called on that thread.
    """
    return run_blocking(arun_jobs(client, jobs, sink, total=total, label=label, quiet=quiet,
                                  max_in_flight=max_in_flight))


def run_blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to completion from synchronous code. Inside an already running event loop
    (Jupyter) it runs on a fresh loop in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    th = threading.Thread(target=target, name="graphgen-run-blocking")
    th.start()
    th.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
