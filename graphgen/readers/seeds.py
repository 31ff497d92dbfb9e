"""Seed input: read seed questions from the user's files as `SeedQuestion` records, and store
them in the workspace (`store_seeds`: seed identity is (source, id)).

Supported inputs: JSONL, JSON, CSV/TSV (each optionally gzip-compressed), Parquet and saved
Hugging Face datasets (graphgen.readers.formats; everything streams except a JSON document).

Field mapping (`FieldMap`): every field left as ``None`` is auto-detected per row, by the first
key present in the row, in this order:

- question: ``question``, ``problem``, ``Question``, ``input``, ``prompt``, ``instruction``.
  When the question was auto-detected and the row also has a ``body`` / ``Body`` field (ASDiv,
  SVAMP), the body is prepended: ``"<body> <question>"``.
- choices (multiple choice): ``options``, ``choices``, ``Options``, ``Choices``; appended to the
  question as ``Choices:`` lines (a list gets ``A) …`` labels unless labelled already).
- solution: ``solution``, ``Solution``, ``rationale``, ``Rationale``, ``explanation``,
  ``reasoning``. GSM8K rule: when the answer text ends in a
  ``#### N`` line, that text is a worked solution: if no solution was found it becomes the
  solution (whole text, ``#### N`` line included) and the answer becomes ``N``. MATH rule: a
  row with a solution but no answer field gets the content of the solution's last
  ``\\boxed{...}`` as its answer.
- answer: ``answer``, ``final_answer``, ``target``, ``Answer``, ``correct``, ``correct_answer``,
  ``gold``, ``gold_answer``.
- id: ``id``, ``unique_id``, ``ID``, ``idx``.

Non-string answers, solutions and ids (numbers) are turned into strings (``145.0`` -> ``"145"``);
empty strings and nulls count as absent. A field named explicitly in the `FieldMap` must be
present in every row (otherwise the row is rejected, naming the field).

Ids: a row without an id gets a stable one, ``<source>-`` + the first 16 hex digits of the
SHA-256 of the normalised question (NFKC, whitespace collapsed, stripped), so the same question
always gets the same id. ``source`` is the file stem (``gsm8k_train`` for
``gsm8k_train.jsonl.gz``; the directory name for a HF dataset) unless given.

Bad input: without ``skip_invalid`` the first problem raises `SeedInputError` with one line
naming the file, the line/row, what is wrong and what to do. With ``skip_invalid`` each bad row
(or unreadable file, counted as one entry with line 0) is yielded as a `RejectedRow` carrying a
short reason code (see `REASONS`) and message, and reading goes on. Duplicate ids within one
`read_seeds` call: the first row wins, later ones are rejected. `SeedReadStats` counts
everything: ``read == ok + rejected`` always holds.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from pydantic import BaseModel, Field

from graphgen.errors import one_line
from graphgen.normalize import normalize_question
from graphgen.readers.fields import (
    MAX_QUESTION_CHARS,
    FieldMap,
    _detect,
    _fields_used,
    _parts,
    _RowProblem,
    _to_seed,
    stable_seed_id,
)
from graphgen.readers.formats import (
    JSON_SUFFIXES,
    JSONL_SUFFIXES,
    PARQUET_SUFFIXES,
    _FileProblem,
    _jsonl_lines,
    _resolve_path,
    _rows_of,
    _split_source_suffix,
)
from graphgen.records import RejectedRow, SeedQuestion
from graphgen.scrub import scrub

if TYPE_CHECKING:
    from graphgen.store.base import GraphStore

__all__ = [
    "FieldMap",
    "SeedInputError",
    "SeedReadStats",
    "read_seeds",
    "read_question_rows",
    "read_question_batches",
    "QuestionRow",
    "QuestionBatch",
    "write_rejects",
    "stable_seed_id",
    "normalize_question",
    "REASONS",
]


RAW_LIMIT = 2048

#: reason codes used in `RejectedRow.reason` (prefix before ':') and `SeedReadStats.by_reason`
REASONS = {
    "invalid_json": "the line is not valid JSON",
    "invalid_encoding": "the line is not valid UTF-8",
    "not_object": "the row is not a JSON object",
    "malformed_row": "a CSV row whose field count differs from the header",
    "missing_question": "no question field in the row",
    "empty_question": "the question is empty or null",
    "question_too_long": "the question is longer than MAX_QUESTION_CHARS",
    "non_string_question": "the question is not a string",
    "missing_field": "a field named in the field map is absent",
    "duplicate_id": "an id already seen in this input",
    "missing_file": "the file does not exist",
    "unknown_file_type": "the file type is not supported",
    "unreadable_file": "the file cannot be read or parsed",
    "truncated_file": "a compressed file that ends early: the rows after the break are lost",
    "empty_file": "the file holds no rows",
}


class SeedInputError(ValueError):
    """Bad seed input. The message is one line: ``<file>:<line>: <what> ; <what to do>``."""

    def __init__(self, message: str, *, file: str = "", line: int = 0, reason: str = ""):
        super().__init__(message)
        self.file = file
        self.line = line
        self.reason = reason


class SeedReadStats(BaseModel):
    """Counts for one `read_seeds` call; ``read == ok + rejected``."""

    read: int = 0
    ok: int = 0
    rejected: int = 0
    by_reason: dict[str, int] = Field(default_factory=dict)
    files: list[str] = Field(default_factory=list)
    field_maps: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="per file: the fields its first row was read from")

    def field_map_lines(self) -> list[str]:
        """One line per file, e.g. ``aqua.jsonl: question <- 'question', answer <- 'correct', ...``."""
        return [f"{label}: " + ", ".join(f"{k} <- {v}" for k, v in used.items())
                for label, used in self.field_maps.items()]

    def add(self, item: SeedQuestion | RejectedRow) -> None:
        self.read += 1
        if isinstance(item, RejectedRow):
            self.rejected += 1
            code = item.reason.split(":", 1)[0]
            self.by_reason[code] = self.by_reason.get(code, 0) + 1
        else:
            self.ok += 1

    def summary(self) -> str:
        """One line for the end of a run, e.g. ``read 10, ok 8, rejected 2 (invalid_json 2)``."""
        line = f"read {self.read}, ok {self.ok}, rejected {self.rejected}"
        if self.by_reason:
            line += " (" + ", ".join(f"{k} {v}" for k, v in sorted(self.by_reason.items())) + ")"
        return line


# --- small helpers ------------------------------------------------------------------------


def _truncate(text: str, limit: int = RAW_LIMIT) -> str:
    return text if len(text) <= limit else text[:limit] + "…[truncated]"


def _raw_of(row: Any, limit: int | None = RAW_LIMIT) -> str:
    cut = (lambda text: text) if limit is None else (lambda text: _truncate(text, limit))
    if isinstance(row, str):
        return cut(row)
    try:
        return cut(json.dumps(row, ensure_ascii=False, default=str))
    except (TypeError, ValueError):
        return cut(repr(row))


# --- row sources: each yields (line_or_row, row_object_or_None, raw_text, error) ---------------
# error is (reason, message) for a row that could not be decoded.


# --- row -> SeedQuestion -----------------------------------------------------------------


# --- public API ---------------------------------------------------------------------------


def _location(label: str, line: int, row_based: bool) -> str:
    if line <= 0:
        return label
    return f"{label}: row {line}" if row_based else f"{label}:{line}"


class QuestionRow(NamedTuple):
    """One decoded input row: its fields as a `SeedQuestion`, the row itself and its text.

    ``raw`` is the row's JSON text as read (JSONL) or re-serialised (other formats), so a
    stage can pass the row on unchanged. ``seed`` is None for rows the caller's ``skip``
    predicate set aside (``skipped`` holds its reason).
    """

    seed: SeedQuestion | None
    row: dict
    raw: str
    skipped: str | None = None


def read_seeds(
    paths: str | Path | Iterable[str | Path],
    field_map: FieldMap | None = None,
    *,
    skip_invalid: bool = False,
    source: str | None = None,
    stats: SeedReadStats | None = None,
    prefix_ids: bool = False,
) -> Iterator[SeedQuestion | RejectedRow]:
    """Stream `SeedQuestion`s (and, with ``skip_invalid``, `RejectedRow`s) from seed files.

    ``paths``: one path or several; a directory is a saved HF dataset (``dir:split`` for one
    split). ``source`` overrides the file stem as the seeds' ``source``. Pass a `SeedReadStats`
    as ``stats`` to have it filled as the generator runs. ``prefix_ids`` turns native ids into
    ``<source>-<id>`` (files that all number their rows 0, 1, 2 ... then share a workspace).
    Raises `SeedInputError` on the first
    problem unless ``skip_invalid``. See the module docstring for formats and field rules.
    """
    for item in read_question_rows(paths, field_map, skip_invalid=skip_invalid, source=source, stats=stats,
                                   prefix_ids=prefix_ids):
        yield item if isinstance(item, RejectedRow) else item.seed


def read_question_rows(
    paths: str | Path | Iterable[str | Path],
    field_map: FieldMap | None = None,
    *,
    skip_invalid: bool = False,
    source: str | None = None,
    stats: SeedReadStats | None = None,
    prefix_ids: bool = False,
    skip: Callable[[dict], str | None] | None = None,
    unique_ids: bool = True,
    adapt: Callable[[dict], dict] | None = None,
) -> Iterator[QuestionRow | RejectedRow]:
    """`read_seeds`, keeping each row and its text next to its fields (`QuestionRow`).

    ``skip(row)`` may return a reason to set a decoded row aside before its fields are read
    (e.g. a failed generation, which has no question); it is yielded with ``seed=None``.
    ``unique_ids=False`` lets repeated ids through (a caller that judges duplicates itself,
    like `graphgen filter`; it also saves the memory of remembering every id).
    ``adapt(row)`` may return the row with its fields where the detection looks for them (e.g.
    a chat-layout export's first user turn as ``question``); ``raw`` stays the row as read.
    """
    fmap = field_map or FieldMap()
    if isinstance(paths, (str, Path)):
        paths = [paths]
    stats = stats if stats is not None else SeedReadStats()
    seen: dict[str, tuple[str, str]] = {}  # id -> (where, file label)

    def reject(label: str, line: int, row_based: bool, reason: str, message: str, raw: str,
               hint: str) -> RejectedRow:
        return _reject(label, line, row_based, reason, message, raw, hint, skip_invalid, stats)

    for spec in paths:
        path, split, label = _resolve_path(spec)
        stats.files.append(label)
        row_based, own_text, src = _file_kind(path, source)
        count = 0
        try:
            for line, row, raw, error in _rows_of(path, split):
                count += 1
                if error is not None:
                    reason, message = error
                    yield reject(label, line, row_based, reason, message, raw,
                                 "fix the line or pass --skip-invalid")
                    continue
                text = raw if own_text else _raw_of(row, limit=None)
                if adapt is not None and isinstance(row, dict):
                    row = adapt(row)
                if skip is not None and isinstance(row, dict) and (why := skip(row)):
                    yield QuestionRow(None, row, text, why)
                    continue
                try:
                    seed = _to_seed(row, fmap, src, prefix_ids)
                except _RowProblem as p:
                    yield reject(label, line, row_based, p.reason, p.message, raw or _raw_of(row),
                                 "fix the row or pass --skip-invalid")
                    continue
                first = seen.get(seed.id) if unique_ids else None
                if first is not None:
                    first_where, first_label = first
                    if seed.id == stable_seed_id(seed.question, seed.source):
                        what = f"the same question as {first_where} (its id {seed.id!r} is made from the text)"
                        hint = ("to keep both give each row its own id (an id column, --id-field); "
                                "to drop this one pass --skip-invalid (the first row is kept)")
                    elif first_label != label:
                        what = f"duplicate id {seed.id!r} (first seen at {first_where})"
                        hint = ("ids must be unique across files: pass --prefix-ids to make them "
                                "<source>-<id>, or --skip-invalid to keep only the first row")
                    else:
                        what = f"duplicate id {seed.id!r} (first seen at {first_where})"
                        hint = ("to keep both give the row its own id; to drop it remove the row or "
                                "pass --skip-invalid (the first row is kept)")
                    yield reject(label, line, row_based, "duplicate_id", what, raw or _raw_of(row), hint)
                    continue
                if unique_ids:
                    seen[seed.id] = (_location(label, line, row_based), label)
                if label not in stats.field_maps:
                    stats.field_maps[label] = _fields_used(row, fmap, seed, prefix_ids)
                stats.add(seed)
                yield QuestionRow(seed, row, text)
        except (_FileProblem, EOFError, OSError) as e:
            yield reject(label, 0, row_based, *_file_problem(e, count))
            continue
        if count == 0:
            yield reject(label, 0, row_based, *_EMPTY_FILE)


class QuestionBatch:
    """Rows read by `read_question_batches`, as columns: entry k of each list is the k-th row
    read. ``raws`` are the rows' UTF-8 text as read (a JSONL line without its line end) or
    re-serialised (other formats), to be written back unchanged; ``questions`` is "" and
    ``ids`` None for the rows ``skip`` set aside (``skipped``: position -> reason);
    ``solutions`` is filled only when asked for. ``rejects``: the bad rows met while reading
    these (with ``skip_invalid``), in the order read."""

    __slots__ = ("ids", "questions", "solutions", "rows", "raws", "skipped", "rejects")

    def __init__(self) -> None:
        self.ids: list[str | None] = []
        self.questions: list[str] = []
        self.solutions: list[str | None] = []
        self.rows: list[Any] = []
        self.raws: list[bytes] = []
        self.skipped: dict[int, str] = {}
        self.rejects: list[RejectedRow] = []

    def __len__(self) -> int:
        return len(self.raws)


def read_question_batches(
    paths: str | Path | Iterable[str | Path],
    field_map: FieldMap | None = None,
    *,
    batch_rows: int = 20000,
    skip_invalid: bool = False,
    source: str | None = None,
    stats: SeedReadStats | None = None,
    prefix_ids: bool = False,
    skip: Callable[[dict], str | None] | None = None,
    adapt: Callable[[dict], dict] | None = None,
    solutions: bool = False,
) -> Iterator[QuestionBatch]:
    """`read_question_rows` with ``unique_ids=False``, in batches of up to `batch_rows` rows and
    without a `SeedQuestion` per row: each row's id, question (and with ``solutions`` its
    solution) are made exactly as `read_seeds` makes them, with the same rejects and errors
    (`graphgen.readers.fields._parts`), the fields detected once per set of keys
    instead of once per row; JSONL lines are kept as the bytes read. For callers that read
    many rows for their questions alone (`graphgen filter`).
    """
    fmap = field_map or FieldMap()
    if isinstance(paths, (str, Path)):
        paths = [paths]
    stats = stats if stats is not None else SeedReadStats()
    batch = QuestionBatch()
    # no field named, no solution wanted, ids as they are: the common rows take a short path
    simple = not solutions and not prefix_ids and all(v is None for v in fmap.model_dump().values())
    for spec in paths:
        path, split, label = _resolve_path(spec)
        stats.files.append(label)
        row_based, own_text, src = _file_kind(path, source)
        count = ok = 0
        mapped = label in stats.field_maps
        last_keys: Any = None
        keys = plain = None
        try:
            if own_text:
                _, suffixes = _split_source_suffix(path)
                if not path.exists():
                    raise _FileProblem("missing_file", "no such file")
                lines = _jsonl_lines(path, suffixes[-1:] == [".gz"])
            else:
                lines = ((line, row, None, raw, error) for line, row, raw, error in _rows_of(path, split))
            for line, row, data, text, error in lines:
                count += 1
                if error is not None:
                    batch.rejects.append(_reject(label, line, row_based, error[0], error[1], text,
                                                 "fix the line or pass --skip-invalid", skip_invalid, stats))
                    continue
                if data is None:
                    data = _raw_of(row, limit=None).encode("utf-8")
                is_dict = type(row) is dict
                if adapt is not None and is_dict:
                    row = adapt(row)
                if skip is not None and is_dict and (why := skip(row)):
                    batch.skipped[len(batch.raws)] = why
                    batch.ids.append(None)
                    batch.questions.append("")
                    batch.solutions.append(None)
                else:
                    if is_dict:
                        row_keys = row.keys()
                        if row_keys != last_keys:
                            keys, last_keys = _detect(row, fmap), row_keys
                            # rows of this key set whose question and id are plain non-empty
                            # strings need none of _parts' rules: the question as it is, the id stripped
                            plain = (keys.question, keys.id) if (
                                simple and keys.question is not None and keys.id is not None and keys.body is None
                                and keys.choices is None) else None
                    question = row_id = None
                    if is_dict and plain is not None:
                        question, row_id = row[plain[0]], row[plain[1]]
                        if (type(question) is not str or len(question) > MAX_QUESTION_CHARS or not question.strip()
                                or type(row_id) is not str or not (row_id := row_id.strip())):
                            question = row_id = None
                    try:
                        if question is None:
                            row_id, question, solution, _a, _s = _parts(row, fmap, src, prefix_ids,
                                                                        keys if is_dict else None, solutions)
                        else:
                            solution = None
                    except _RowProblem as p:
                        raw = text.rstrip("\r\n") if own_text else text
                        batch.rejects.append(_reject(label, line, row_based, p.reason, p.message,
                                                     raw or _raw_of(row),
                                                     "fix the row or pass --skip-invalid", skip_invalid, stats))
                        continue
                    if not mapped:
                        stats.field_maps.setdefault(label, _fields_used(row, fmap, _to_seed(row, fmap, src, prefix_ids),
                                                                        prefix_ids))
                        mapped = True
                    ok += 1
                    batch.ids.append(row_id)
                    batch.questions.append(question)
                    batch.solutions.append(solution)
                batch.rows.append(row)
                batch.raws.append(data)
                if len(batch.raws) >= batch_rows:
                    stats.read, stats.ok, ok = stats.read + ok, stats.ok + ok, 0  # counted per batch, not per row
                    yield batch
                    batch = QuestionBatch()
        except (_FileProblem, EOFError, OSError) as e:
            stats.read, stats.ok, ok = stats.read + ok, stats.ok + ok, 0
            batch.rejects.append(_reject(label, 0, row_based, *_file_problem(e, count), skip_invalid, stats))
            continue
        finally:
            stats.read, stats.ok = stats.read + ok, stats.ok + ok
        if count == 0:
            batch.rejects.append(_reject(label, 0, row_based, *_EMPTY_FILE, skip_invalid, stats))
    if len(batch) or batch.rejects:
        yield batch


def _file_kind(path: Path, source: str | None) -> tuple[bool, bool, str]:
    """(rows are counted by row not line, a row's text is its own JSONL line, the source)."""
    kind = _split_source_suffix(path)[1][:1]
    row_based = path.is_dir() or bool(set(kind) & (PARQUET_SUFFIXES | JSON_SUFFIXES))
    # Only a JSONL line is the row's own JSON text; other formats are re-serialised.
    own_text = not path.is_dir() and bool(set(kind) & JSONL_SUFFIXES)
    src = source if source is not None else (path.name if path.is_dir() else _split_source_suffix(path)[0])
    return row_based, own_text, src


def _reject(label: str, line: int, row_based: bool, reason: str, message: str, raw: str, hint: str,
            skip_invalid: bool, stats: SeedReadStats) -> RejectedRow:
    """The rejected row (counted in `stats`), or without ``skip_invalid`` a one-line
    `SeedInputError` naming file and line."""
    if not skip_invalid:
        where = _location(label, line, row_based)
        raise SeedInputError(f"{where}: {message}; {hint}", file=label, line=line, reason=reason)
    item = RejectedRow(file=label, line=line, reason=f"{reason}: {message}", raw=_truncate(raw))
    stats.add(item)
    return item


_EMPTY_FILE = ("empty_file", "empty file (no rows)", "", "check the path or the step that produced the file")


def _file_problem(e: Exception, count: int) -> tuple[str, str, str, str]:
    """(reason, message, raw, hint) for a file that cannot be read (on), after `count` rows."""
    if isinstance(e, _FileProblem):
        hint = {
            "missing_file": "check the path",
            "unknown_file_type": "convert the file or rename it with a supported suffix",
        }.get(e.reason, "check the file, or pass --skip-invalid to skip it")
        return e.reason, e.message, "", hint
    if isinstance(e, EOFError):  # a truncated .gz: what came before the break was read
        return ("truncated_file",
                f"the file is cut short ({one_line(e)}): {count} rows were read up to the break, every row "
                "after it is lost (how many cannot be known from a cut file)",
                "", f"download or compress the file again; --skip-invalid keeps the {count} rows read")
    return "unreadable_file", f"cannot read ({one_line(e)})", "", "check the file, or pass --skip-invalid to skip it"


def write_rejects(rows: Iterable[RejectedRow], path: str | Path, *, append: bool = False) -> int:
    """Write rejected rows as JSONL (one `RejectedRow` per line); returns how many."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(path, "a" if append else "w", encoding="utf-8") as f:
        for row in rows:
            f.write(scrub(row.model_dump_json()) + "\n")  # raw rows may hold anything
            n += 1
    return n


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
