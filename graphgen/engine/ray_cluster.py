"""The Ray engine: a stage's LLM jobs in blocks, one Ray task per block, across a cluster.

Driver (the process the user started):
- answers cache hits itself, cuts the rest into blocks of `block_size` jobs and keeps at most
  `ray_tasks` (default: the cluster's CPUs) blocks running, plus one queued each;
- each task runs the existing async runner (`graphgen.runner`) and client on its block with
  `concurrency / ray_tasks` requests in flight; with RPM/TPM set, every request of every task
  takes its permit from one limiter actor, so the limits hold for the cluster as a whole;
- every result a task gets is sent at once to the block log actor, which lives on the
  driver's node and appends it to `<state_dir>/<block>.jsonl`. A task that dies with its
  worker is retried by Ray and first asks the log which of its units are done: repeated calls
  are bounded by what was in flight when it died;
- when a task ends the driver merges its block log into the stage's outputs and store
  through the stage's own sink (the same as the local engine), writes new replies to the
  response cache, then deletes the log. Logs left by a driver that died are merged by the
  next run before anything is sent again.
Workers never open the store or the output files: only the driver writes them.
"""

from __future__ import annotations

import math
import socket
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graphgen.config import EngineSettings
from graphgen.engine import EngineError
from graphgen.engine.results import (
    Delivery,
    ResultRecord,
    read_records,
    result_from_record,
    result_record,
)
from graphgen.errors import one_line
from graphgen.jsonl import open_for_append

if TYPE_CHECKING:
    from graphgen.llm import LLMClient, LLMResult
    from graphgen.runner import LLMJob
    from graphgen.stage import LLMTally

INSTALL_HINT = "Ray is not installed: pip install 'graphgen[ray]' (or pip install -e '.[ray]' in a clone)"
_PROBE_TIMEOUT_S = 180.0
_TASK_RETRIES = 4


def import_ray():
    try:
        import ray
    except ImportError:
        raise EngineError(INSTALL_HINT) from None
    return ray


# --- connecting -------------------------------------------------------------------------


def connect(address: str) -> None:
    """ray.init with one-line errors for the usual faults."""
    ray = import_ray()
    import logging

    kwargs: dict[str, Any] = dict(log_to_driver=False, logging_level=logging.WARNING, configure_logging=True)
    if address == "local":  # a fresh Ray on this machine only, even if a cluster runs here
        try:
            ray.init(address="local", include_dashboard=False, **kwargs)
        except Exception as exc:  # Ray raises bare Exceptions when its processes do not come up
            raise EngineError(f"could not start Ray on this machine ({one_line(exc)[:160]}); "
                              "start it yourself with `ray start --head` and pass --ray, or run without --ray") from None
        return
    if address != "auto":
        host, _, port = address.removeprefix("ray://").rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=5).close()
        except (OSError, ValueError):
            raise EngineError(f"cannot reach the Ray cluster at {address}: start it (`ray start --head`) or fix "
                              "--ray ADDRESS (host:port of the head's GCS, e.g. 10.0.0.5:6379); nothing was sent") from None
    try:
        ray.init(address=address, **kwargs)
    except ConnectionError as exc:
        raise EngineError(f"no Ray cluster at {address!r} ({one_line(exc)[:120]}): start one with "
                          "`ray start --head`, pass --ray HOST:PORT, or --ray local for this machine only") from None


def check_workers(ray) -> None:
    """Run a probe on every node: a cluster whose workers cannot import graphgen (or run a
    different version) fails here, in one line, before any request is paid."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive")]
    probe = ray.remote(num_cpus=0, max_retries=0)(_probe)
    refs = [probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)).remote()
            for n in nodes]
    try:
        versions = ray.get(refs, timeout=_PROBE_TIMEOUT_S)
    except Exception as exc:
        text = str(exc)
        if "No module named 'graphgen" in text or "ModuleNotFoundError" in text:
            raise EngineError("the Ray workers cannot import graphgen: install it on every node "
                              "(`pip install 'graphgen[ray]'` in the image or the cluster's setup_commands), "
                              "then run again; nothing was sent") from None
        raise EngineError(f"the Ray workers did not answer a probe ({text.strip().splitlines()[-1][:160]}); "
                          "check `ray status`, then run again; nothing was sent") from None
    mine = _probe()
    wrong = sorted({v for v in versions if v != mine})
    if wrong:
        raise EngineError(f"the Ray workers run graphgen {', '.join(wrong)}, this driver {mine}: "
                          "install the same version on every node, then run again; nothing was sent")


def _probe() -> str:
    from importlib.metadata import version

    import graphgen  # noqa: F401 - the import is what the probe checks

    return version("graphgen")


# --- actors ------------------------------------------------------------------------------


class BlockLog:
    """Appends each block's results to `<dir>/<block>.jsonl` on the driver's node (one writer,
    in call order), and says which units of a block are already done."""

    def __init__(self, directory: str):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)

    def done_keys(self, block_id: str) -> list[str]:
        return [r.key for r in read_records(self.dir / f"{block_id}.jsonl")]

    def append(self, block_id: str, records: list[ResultRecord]) -> int:
        if records:
            with open_for_append(self.dir / f"{block_id}.jsonl") as fh:
                fh.write("".join(r.model_dump_json() + "\n" for r in records))
        return len(records)


class SharedLimiter:
    """The cluster's one RPM/TPM budget (graphgen.llm.ratelimit.RateLimiter in an actor)."""

    def __init__(self, rpm: int | None, tpm: int | None):
        from graphgen.llm.ratelimit import RateLimiter

        self.limiter = RateLimiter(rpm, tpm)

    async def acquire(self, tokens: int) -> None:
        await self.limiter.acquire(tokens)

    async def correct(self, estimated: int, actual: int) -> None:
        self.limiter.correct(estimated, actual)

    async def pause_for(self, seconds: float) -> None:
        self.limiter.pause_until(time.monotonic() + seconds)  # clocks differ between machines


class RemoteLimiter:
    """The RateLimiter interface LLMClient uses, backed by the SharedLimiter actor."""

    def __init__(self, actor, rpm: int | None, tpm: int | None):
        self.actor, self.rpm, self.tpm = actor, rpm, tpm
        self.waited_s = 0.0

    async def acquire(self, tokens: int) -> None:
        t = time.monotonic()
        await self.actor.acquire.remote(tokens)
        self.waited_s += time.monotonic() - t

    def correct(self, estimated: int, actual: int) -> None:
        self.actor.correct.remote(estimated, actual)

    def pause_until(self, deadline: float) -> None:
        self.actor.pause_for.remote(deadline - time.monotonic())

    def reset_loop(self) -> None:
        pass


def run_block(llm_settings, block_id: str, items: list[tuple[str, list[dict]]], output,
              log, limiter, concurrency: int) -> int:
    """One Ray task: the block's units not yet in its log, through the usual runner."""
    import ray

    from graphgen.llm import LLMClient
    from graphgen.runner import LLMJob, run_jobs

    done = set(ray.get(log.done_keys.remote(block_id)))
    todo = [LLMJob(key=k, messages=m, output=output) for k, m in items if k not in done]
    if todo:
        client = LLMClient(llm_settings.model_copy(update={"concurrency": concurrency, "cache_path": None}))
        if limiter is not None:
            client.limiter = RemoteLimiter(limiter, llm_settings.rpm, llm_settings.tpm)

        def sink(job: LLMJob, result: LLMResult) -> None:
            log.append.remote(block_id, [result_record(job.key, result)])  # ordered per caller

        run_jobs(client, todo, sink, quiet=True)
    ray.get(log.append.remote(block_id, []))  # every record sent before this one is written
    return len(todo)


# --- the driver ----------------------------------------------------------------------------


@dataclass
class _Block:
    id: str
    jobs: dict[str, tuple[LLMJob, str | None]] = field(default_factory=dict)  # key -> (job, cache key)


# Up to this many CPUs on one node, Ray's own processes (GCS, raylet, workers, the block-log
# actor) take a large share of the cores the client needs: BENCHMARKS.md measured the Ray
# path at 1.9x the local engine's wall time on 2 quiet cores, 4.6x on busy ones.
SMALL_NODE_CPUS = 8


def one_small_node(ray) -> str | None:
    """The advice to print when the Ray cluster is one node with few CPUs, else None."""
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    cpus = int(ray.cluster_resources().get("CPU", 0))
    if len(nodes) != 1 or cpus > SMALL_NODE_CPUS:
        return None
    return (f"Ray runs on one node with {cpus} CPUs here: on one machine the local engine (no --ray) is faster, "
            "since Ray's own processes share the cores the client needs (BENCHMARKS.md: ~2x the wall time on 2 cores); "
            "Ray pays off when its tasks run on other machines")


def run_on_ray(client: LLMClient, jobs: Iterable[LLMJob], sink: Callable[[LLMJob, LLMResult], None],
               engine: EngineSettings, state_dir: Path, *, total: int | None = None, label: str = "llm",
               quiet: bool = False) -> LLMTally:
    ray = import_ray()
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    state_dir.mkdir(parents=True, exist_ok=True)
    connect(engine.ray_address)
    delivery = Delivery(client, sink, total, label, quiet)
    leftovers = _leftover_records(state_dir)
    in_flight: dict[Any, _Block] = {}
    log = limiter = None
    try:
        check_workers(ray)
        small = one_small_node(ray)
        if small:
            delivery.note(small)
        tasks = engine.ray_tasks or max(1, int(ray.cluster_resources().get("CPU", 1)))
        share = max(1, math.ceil(client.settings.concurrency / tasks))
        here = ray.get_runtime_context().get_node_id()
        log = ray.remote(num_cpus=0)(BlockLog).options(
            scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote(str(state_dir))
        s = client.settings
        if s.rpm or s.tpm:
            limiter = ray.remote(num_cpus=0)(SharedLimiter).options(max_concurrency=10_000).remote(s.rpm, s.tpm)
        remote_block = ray.remote(num_cpus=1, max_retries=_TASK_RETRIES)(run_block)
        delivery.note(f"on Ray: {tasks} tasks at once, {share} requests in flight each, blocks of {engine.block_size}")
        nonce = uuid.uuid4().hex[:8]

        def submit(block: _Block) -> None:
            first = next(iter(block.jobs.values()))[0]
            items = [(k, j.messages) for k, (j, _) in block.jobs.items()]
            ref = remote_block.remote(s, block.id, items, first.output, log, limiter, share)
            in_flight[ref] = block

        def wait_one() -> None:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            ref = ready[0]
            block = in_flight.pop(ref)
            try:
                ray.get(ref)
            finally:
                _merge(block, state_dir, delivery)

        block = _Block(f"{nonce}-{0:06d}")
        n = 0
        for job in jobs:
            rec = leftovers.pop(job.key, None)
            if rec is not None:  # paid by a run whose driver died before merging it
                delivery.deliver(job, None, result_from_record(rec, job.output))
                continue
            cache_key, answered = delivery.from_cache(job)
            if answered or job.key in block.jobs:
                continue
            block.jobs[job.key] = (job, cache_key)
            if len(block.jobs) >= engine.block_size:
                submit(block)
                n += 1
                block = _Block(f"{nonce}-{n:06d}")
                while len(in_flight) >= 2 * tasks:
                    wait_one()
        if block.jobs:
            submit(block)
        while in_flight:
            wait_one()
        for path in state_dir.glob("*.jsonl"):  # leftovers no longer pending (done meanwhile)
            path.unlink()
    except Exception as exc:
        _raise_cause(ray, exc)
        raise
    finally:
        for ref in in_flight:
            ray.cancel(ref, force=True)
        if log is not None:
            ray.kill(log)  # nothing is appended after this, so the merge below sees the final logs
        for block in in_flight.values():
            _merge(block, state_dir, delivery)
        delivery.close()
        ray.shutdown()
    return delivery.tally()


def _merge(block: _Block, state_dir: Path, delivery: Delivery) -> None:
    """Deliver a block's logged results (each key once), then drop the log. A driver killed
    half-way leaves the log behind; the next run takes from it only units still pending."""
    path = state_dir / f"{block.id}.jsonl"
    for rec in read_records(path):
        entry = block.jobs.pop(rec.key, None)
        if entry is not None:
            job, cache_key = entry
            delivery.deliver(job, cache_key, result_from_record(rec, job.output))
    path.unlink(missing_ok=True)


def _leftover_records(state_dir: Path) -> dict[str, ResultRecord]:
    """Results a previous driver received but never merged (it died): key -> record."""
    out: dict[str, ResultRecord] = {}
    if state_dir.exists():
        for path in sorted(state_dir.glob("*.jsonl")):
            for rec in read_records(path):
                if rec.value is not None:  # failures are asked again, not replayed
                    out.setdefault(rec.key, rec)
    return out


def _raise_cause(ray, exc: BaseException) -> None:
    """A task's LLMFatalError (bad key, no such model) stops the run as it does locally; any
    other task failure becomes one line."""
    from graphgen.errors import LLMFatalError

    if isinstance(exc, ray.exceptions.RayTaskError):
        cause = getattr(exc, "cause", None)
        if isinstance(cause, LLMFatalError):
            raise LLMFatalError(str(cause)) from None
        last = str(cause or exc).strip().splitlines()[-1][:200]
        raise EngineError(f"a Ray task failed after {_TASK_RETRIES} retries ({last}); "
                          "run again to resume: finished units are kept") from None
    if isinstance(exc, ray.exceptions.RayError):
        raise EngineError(f"Ray failed ({str(exc).strip().splitlines()[-1][:200]}); "
                          "run again to resume: finished units are kept") from None
