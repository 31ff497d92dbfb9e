"""The generated-row journal, shared by every stage that writes or reads generated rows
(generate, variants, solve, export).

The store is the system of record for generated rows; an output file is its journal for one
run. Rows are committed to the store first and appended to the file right after, in small
batches, so a kill -9 can leave the store ahead of the file, never behind (and the lost
batch is in the LLM response cache). Each run starts by reconciling the two: rows in the
file the store lacks (older versions, another machine) are added to the store, units the
store already holds are copied into the file instead of being paid for again. One run at a
time per output file: the file is locked (`flock`, released when the process ends, however
it ends); a second run stops with `OutputBusyError`.

Ids are content hashes (`stable_id`), so shards (`Shard`, `i/n`) split units disjointly and
reproducibly across machines, and shard outputs merge without duplicates (`read_rows` keeps
one row per id).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from graphgen.jsonl import chunked, open_for_append, read_jsonl
from graphgen.records import GeneratedQuestion, SolvePath, SolveVerdict
from graphgen.store.base import GraphStore


def stable_id(prefix: str, *parts: object) -> str:
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode("utf-8")).hexdigest()
    return f"{prefix}-{digest[:20]}"


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        """'2/8' -> Shard(2, 8); shards are numbered 0..n-1."""
        if not text:
            return cls()
        try:
            i, n = (int(x) for x in text.split("/"))
        except ValueError:
            raise ValueError(f"--shard {text!r}: expected i/n, e.g. 0/4") from None
        if n < 1 or not 0 <= i < n:
            raise ValueError(f"--shard {text!r}: need 0 <= i < n")
        return cls(i, n)

    def owns(self, unit_id: str) -> bool:
        if self.count == 1:
            return True
        return int(hashlib.sha256(unit_id.encode()).hexdigest()[:8], 16) % self.count == self.index


class OutputBusyError(RuntimeError):
    """Another run holds the output file's lock."""


def lock_output(path: Path):
    """Open `path` for appending and take an exclusive `flock` on it: one run per output
    file. The lock dies with the process (kill -9 included), so it never goes stale."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fh = path.open("ab")
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise OutputBusyError(
            f"{path}: another graphgen run is writing this file; wait for it to finish, or give "
            "this run its own -o (split work with --shard i/n, one output per shard)"
        ) from None
    return fh


def read_rows(paths: Iterable[Path]) -> Iterator[GeneratedQuestion]:
    """Rows from one or many output files (e.g. shards), each id once (first wins)."""
    seen: set[str] = set()
    for path in paths:
        for row in read_jsonl(Path(path), GeneratedQuestion, own_output=True):
            if row.id not in seen:
                seen.add(row.id)
                yield row  # type: ignore[misc]


def rows_to_read(paths: Iterable[Path], store: GraphStore | None, what: str) -> Iterable[GeneratedQuestion]:
    """The rows a stage works on: from the files given, else every generated row of the
    workspace; neither is one line naming `what` the stage would have done."""
    from graphgen.stage import StageError

    paths = list(paths or [])
    if paths:
        return read_rows(paths)
    if store is not None:
        return store.generated()
    raise StageError(f"nothing to {what}: pass generated-row files or a workspace (--db)")


def finished_ids(out_path: Path) -> set[str]:
    """Ids of the rows already in `out_path` (a resumed run skips them)."""
    out_path = Path(out_path)
    return {row.id for row in read_rows([out_path])} if out_path.exists() else set()


def reconcile_into_store(store: GraphStore, out_path: Path, in_store: set[str], batch: int = 1000) -> int:
    """Add the rows of `out_path` that the store lacks (a file written by an older version,
    whose store lagged behind, or on another machine); returns how many."""
    if not out_path.exists() or not out_path.stat().st_size:
        return 0
    added = 0
    missing = (row for row in read_rows([out_path]) if row.id not in in_store)
    for chunk in chunked(missing, batch):
        store.add_generated(chunk)
        in_store.update(row.id for row in chunk)
        added += len(chunk)
    return added


def engine_state_dir(out_path: Path) -> Path:
    """Where the Ray / batch engines keep this output's run state (block logs, batch ids)."""
    return out_path.with_name(out_path.name.removesuffix(".jsonl") + ".runs")


class GeneratedRowWriter:
    """Where a run's generated rows go: the store (the system of record) first, then the
    output file, in small batches; failed rows appended to `failed_path` with the run id.

    Entering takes the output file's lock (`OutputBusyError` if another run holds it) and
    reconciles: rows of the file the store lacks are added to it (`copied_to_store`);
    `in_store` holds the ids of the store's finished rows, and units found there are listed
    in `recover`, whose rows are copied from the store into the file on exit."""

    def __init__(self, out_path: Path, store: GraphStore | None, failed_path: Path | None = None,
                 run_id: str = "", *, batch: int = 256, seconds: float = 0.5):
        self.out_path, self.store, self.failed_path, self.run_id = Path(out_path), store, failed_path, run_id
        self.batch_size, self.seconds = batch, seconds
        self.in_store: set[str] = set()
        self.recover: list[str] = []
        self.copied_to_store = 0
        self._batch: list[GeneratedQuestion] = []
        self._last = time.monotonic()
        self._failed = None

    def __enter__(self) -> GeneratedRowWriter:
        self._lock = lock_output(self.out_path)  # before anything reads or repairs the file
        try:
            if self.store is not None:
                self.in_store = self.store.generated_ids()
                self.copied_to_store = reconcile_into_store(self.store, self.out_path, self.in_store)
            self._out = open_for_append(self.out_path)
        except BaseException:
            self._lock.close()
            raise
        return self

    def add(self, row: GeneratedQuestion) -> None:
        if row.status != "ok":
            if self.failed_path is not None:
                if self._failed is None:  # only a run with failures touches the failures file
                    self._failed = self.failed_path.open("a", encoding="utf-8")
                self._failed.write(json.dumps({**row.model_dump(mode="json"), "run_id": self.run_id},
                                              ensure_ascii=False) + "\n")
                self._failed.flush()
            return
        self._batch.append(row)
        if self.store is None or len(self._batch) >= self.batch_size or time.monotonic() - self._last > self.seconds:
            self.flush()

    def flush(self) -> None:
        if self._batch:
            if self.store is not None:
                self.store.add_generated(self._batch)  # the system of record first, then the file
            self._out.write("".join(row.model_dump_json() + "\n" for row in self._batch))
            self._out.flush()
            self._batch.clear()
        self._last = time.monotonic()

    def __exit__(self, *exc: object) -> None:
        try:
            self.flush()
            # rows only the store held are copied into the file when the run ends well; a run
            # that stops with an error (e.g. --batch refused) writes nothing it did not make
            if self.recover and self.store is not None and exc[0] is None:
                wanted = set(self.recover)
                self._out.write("".join(row.model_dump_json() + "\n" for row in self.store.generated()
                                        if row.id in wanted))
        finally:
            self._out.close()
            if self._failed is not None:
                self._failed.close()
            self._lock.close()


def read_verdicts(path: Path) -> dict[str, SolveVerdict]:
    return {v.question_id: v for v in read_jsonl(Path(path), SolveVerdict)}  # type: ignore[misc]


def path_rows(paths: Iterable[SolvePath], verdicts: dict[str, SolveVerdict],
              questions: dict[str, GeneratedQuestion] | None = None) -> Iterator[GeneratedQuestion]:
    """One training row per kept path (paths.jsonl of `graphgen solve`): the question, the
    path as the solution (a program with what it printed), the path's answer. `questions`
    (generated rows by id): a path of one carries its lineage (concepts, seeds, exemplars,
    variant), so the paths dataset can be sliced by topic like the questions'."""
    questions = questions or {}
    for p in paths:
        v = verdicts.get(p.question_id)
        if v is None:
            raise ValueError(f"path {p.id}: question {p.question_id!r} has no verdict; "
                             "pass the verdicts.jsonl written next to paths.jsonl")
        if p.style == "code":
            printed = (p.run.stdout if p.run else "").strip()
            solution = f"```python\n{p.text.strip()}\n```\n```output\n{printed}\n```"
        else:
            solution = p.text
        q = questions.get(p.question_id)
        yield GeneratedQuestion(
            id=p.id, kind="path", question=v.question, solution=solution, answer=p.answer or "",
            sample_id=p.question_id, strategy=p.style,
            seed_ids=[p.question_id] if p.question_kind == "seed" else (q.seed_ids if q else []),
            concept_ids=q.concept_ids if q else [], exemplar_seed_ids=q.exemplar_seed_ids if q else [],
            variant=q.variant if q else None,
            model=p.model, prompt_version=p.prompt_version, usage=p.usage,
        )
