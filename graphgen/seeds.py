"""Seed input: read seed questions from the user's files as `SeedQuestion` records.

Supported inputs (chosen by file suffix; a directory is a saved Hugging Face dataset):

- JSONL: ``.jsonl``, ``.ndjson`` (one JSON object per line; blank lines are ignored)
- JSON: ``.json`` holding a list of objects, or ``{"data": [...]}``
- CSV / TSV: ``.csv``, ``.tsv`` (first line is the header)
- any of the above gzip-compressed: ``.jsonl.gz``, ``.json.gz``, ``.csv.gz`` ...
- Parquet: ``.parquet`` / ``.pq`` (read in record batches through pyarrow)
- a directory written by ``datasets.Dataset.save_to_disk``; for a ``DatasetDict`` every split
  is read in order, or one split with ``path:split`` (e.g. ``data/gsm8k:train``)

Everything streams (JSON files are the exception: a JSON document is parsed whole).

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

import csv
import gzip
import hashlib
import io
import json
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from pydantic import BaseModel, Field

from .errors import one_line
from .normalize import normalize_question
from .records import RejectedRow, SeedQuestion
from .scrub import scrub

__all__ = [
    "FieldMap",
    "SeedInputError",
    "SeedReadStats",
    "read_seeds",
    "read_question_rows",
    "QuestionRow",
    "write_rejects",
    "read_benchmark_questions",
    "stable_seed_id",
    "normalize_question",
    "last_boxed",
    "REASONS",
]

QUESTION_FIELDS = ("question", "problem", "Question", "input", "prompt", "instruction", "content")
BODY_FIELDS = ("body", "Body")
SOLUTION_FIELDS = ("solution", "Solution", "rationale", "Rationale", "explanation", "reasoning", "steps")
ANSWER_FIELDS = ("answer", "final_answer", "target", "Answer", "correct", "correct_answer", "gold",
                 "gold_answer")
CHOICE_FIELDS = ("options", "choices", "Options", "Choices")
_CHOICE_LABEL = re.compile(r"^\s*\(?[A-Ea-e]\s*[).:]")
ID_FIELDS = ("id", "unique_id", "ID", "idx")

JSONL_SUFFIXES = {".jsonl", ".ndjson"}
JSON_SUFFIXES = {".json"}
CSV_SUFFIXES = {".csv", ".tsv"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
TEXT_SUFFIXES = JSONL_SUFFIXES | JSON_SUFFIXES | CSV_SUFFIXES

RAW_LIMIT = 2048
MAX_QUESTION_CHARS = 20_000  # the longest MATH problem is ~4,000; megabytes are a wrong field
PARQUET_BATCH = 4096

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

_GSM8K_ANSWER = re.compile(r"\n?####\s*(?P<answer>[^\n]*?)\s*$")


class SeedInputError(ValueError):
    """Bad seed input. The message is one line: ``<file>:<line>: <what> ; <what to do>``."""

    def __init__(self, message: str, *, file: str = "", line: int = 0, reason: str = ""):
        super().__init__(message)
        self.file = file
        self.line = line
        self.reason = reason


class FieldMap(BaseModel):
    """Names of the fields to read; ``None`` means auto-detect (rules in the module docstring).

    GSM8K needs nothing (``question`` / ``answer`` with ``#### N``); MATH needs nothing
    (``problem`` / ``solution`` / ``answer``); for other files name the fields, e.g.
    ``FieldMap(question="prompt_text", answer="gold")``.
    """

    question: str | None = Field(None, description="question field (--question-field)")
    solution: str | None = Field(None, description="worked-solution field (--solution-field)")
    answer: str | None = Field(None, description="final-answer field (--answer-field)")
    id: str | None = Field(None, description="id field (--id-field)")
    source: str | None = Field(None, description="per-row source/dataset-name field")


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


def stable_seed_id(question: str, source: str) -> str:
    """``<source>-<first 16 hex of sha256(normalised question)>``."""
    digest = hashlib.sha256(normalize_question(question).encode("utf-8")).hexdigest()[:16]
    return f"{source}-{digest}" if source else digest


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in a solution, braces balanced."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth, j = 1, i
    while j < len(text):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                inner = text[i:j].strip()
                return inner or None
        j += 1
    return None


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


def _as_text(value: Any) -> str | None:
    """Scalar -> str; None / '' / NaN -> None; integral floats lose their '.0'."""
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        if value != value:  # NaN (pandas-made CSV/Parquet)
            return None
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, (int, str)):
        text = str(value)
    else:
        text = json.dumps(value, ensure_ascii=False, default=str)
    return text if text.strip() else None


def _first_present(row: dict, names: Iterable[str]) -> str | None:
    for name in names:
        if name in row:
            return name
    return None


def _split_source_suffix(path: Path) -> tuple[str, list[str]]:
    """('gsm8k_train', ['.jsonl', '.gz']) for gsm8k_train.jsonl.gz."""
    suffixes = [s.lower() for s in path.suffixes]
    name = path.name
    if suffixes and suffixes[-1] == ".gz" and len(suffixes) >= 2:
        stem = name[: -len("".join(path.suffixes[-2:]))]
        return stem or name, suffixes[-2:]
    return path.stem or name, suffixes[-1:]


# --- row sources: each yields (line_or_row, row_object_or_None, raw_text, error) ---------------
# error is (reason, message) for a row that could not be decoded.

_Raw = tuple[int, Any, str, tuple[str, str] | None]


def _open_binary(path: Path, gz: bool):
    return gzip.open(path, "rb") if gz else open(path, "rb")


def _iter_jsonl(path: Path, gz: bool) -> Iterator[_Raw]:
    with _open_binary(path, gz) as f:
        for lineno, bline in enumerate(f, 1):
            try:
                text = bline.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raw = bline.decode("utf-8", errors="replace")
                yield lineno, None, raw, ("invalid_encoding", f"invalid UTF-8 ({e.reason} at byte {e.start})")
                continue
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                yield lineno, None, text.rstrip("\r\n"), ("invalid_json", f"invalid JSON ({e.msg}: col {e.colno})")
                continue
            yield lineno, obj, text.rstrip("\r\n"), None


def _iter_json(path: Path, gz: bool) -> Iterator[_Raw]:
    with _open_binary(path, gz) as f:
        data = f.read()
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as e:
        raise _FileProblem("unreadable_file", f"not UTF-8 text ({e.reason} at byte {e.start})")
    except json.JSONDecodeError as e:
        raise _FileProblem("unreadable_file", f"invalid JSON ({e.msg}: line {e.lineno} col {e.colno})")
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        doc = doc["data"]
    if not isinstance(doc, list):
        raise _FileProblem(
            "unreadable_file",
            f"expected a JSON list of objects or {{\"data\": [...]}}, got a {type(doc).__name__}"
            + (f" with keys {', '.join(list(doc)[:8])}" if isinstance(doc, dict) else ""),
        )
    for i, obj in enumerate(doc, 1):
        yield i, obj, "", None


def _iter_csv(path: Path, gz: bool, delimiter: str) -> Iterator[_Raw]:
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with _open_binary(path, gz) as fb:
        f = io.TextIOWrapper(fb, encoding="utf-8-sig", newline="")
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = next(reader, None)
        except (csv.Error, UnicodeDecodeError) as e:
            raise _FileProblem("unreadable_file", f"cannot read CSV header ({e})")
        if header is None:
            return
        header = [h.strip() for h in header]
        start = reader.line_num + 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except UnicodeDecodeError as e:
                raise _FileProblem("unreadable_file", f"not UTF-8 text near line {start} ({e.reason})")
            except csv.Error as e:
                yield start, None, "", ("malformed_row", f"malformed CSV ({e})")
                start = reader.line_num + 1
                continue
            line = start
            start = reader.line_num + 1
            if not cells or all(not c.strip() for c in cells):
                continue
            raw = delimiter.join(cells)
            if len(cells) != len(header):
                yield line, None, raw, (
                    "malformed_row",
                    f"CSV row has {len(cells)} fields but the header has {len(header)}",
                )
                continue
            yield line, dict(zip(header, cells)), raw, None


def _iter_parquet(path: Path) -> Iterator[_Raw]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise _FileProblem("unreadable_file", f"not a readable Parquet file ({one_line(e)})")
    i = 0
    for batch in pf.iter_batches(batch_size=PARQUET_BATCH):
        for obj in batch.to_pylist():
            i += 1
            yield i, obj, "", None


def _iter_hf(path: Path, split: str | None) -> Iterator[_Raw]:
    try:
        import datasets
    except ImportError as e:  # pragma: no cover - optional dependency
        raise _FileProblem("unreadable_file", f"reading a dataset directory needs `datasets` ({e})")
    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:
        raise _FileProblem(
            "unreadable_file", f"not a saved Hugging Face dataset directory ({one_line(e)})"
        )
    if isinstance(ds, datasets.DatasetDict):
        if split is not None:
            if split not in ds:
                raise _FileProblem(
                    "unreadable_file", f"no split {split!r} (splits: {', '.join(ds)})"
                )
            parts = [ds[split]]
        else:
            parts = [ds[name] for name in ds]
    else:
        if split is not None:
            raise _FileProblem("unreadable_file", f"a single Dataset has no split {split!r}")
        parts = [ds]
    i = 0
    for part in parts:
        for batch in part.iter(batch_size=PARQUET_BATCH):
            keys = list(batch)
            n = len(batch[keys[0]]) if keys else 0
            for j in range(n):
                i += 1
                yield i, {k: batch[k][j] for k in keys}, "", None


class _FileProblem(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message



def _resolve_path(spec: str | Path) -> tuple[Path, str | None, str]:
    """(path, split, label) for 'dir', 'dir:split', or a file path."""
    text = str(spec)
    path = Path(text)
    if not path.exists() and ":" in text:
        head, _, split = text.rpartition(":")
        if head and split and Path(head).is_dir():
            return Path(head), split, f"{head}[{split}]"
    return path, None, text


def _rows_of(path: Path, split: str | None) -> Iterator[_Raw]:
    if not path.exists():
        raise _FileProblem("missing_file", "no such file")
    if path.is_dir():
        return _iter_hf(path, split)
    _, suffixes = _split_source_suffix(path)
    gz = suffixes[-1:] == [".gz"]
    kind = suffixes[0] if suffixes else ""
    if gz and kind not in TEXT_SUFFIXES:
        kind = ".jsonl" if len(suffixes) == 1 else kind  # bare x.gz: assume JSONL
    if kind in JSONL_SUFFIXES:
        return _iter_jsonl(path, gz)
    if kind in JSON_SUFFIXES:
        return _iter_json(path, gz)
    if kind in CSV_SUFFIXES:
        return _iter_csv(path, gz, "\t" if kind == ".tsv" else ",")
    if kind in PARQUET_SUFFIXES and not gz:
        return _iter_parquet(path)
    raise _FileProblem(
        "unknown_file_type",
        f"unknown file type {''.join(suffixes) or '(no suffix)'!r}; expected .jsonl, .ndjson, .json, "
        ".csv, .tsv (optionally .gz), .parquet, or a saved Hugging Face dataset directory",
    )


# --- row -> SeedQuestion -----------------------------------------------------------------


class _RowProblem(Exception):
    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


def _present_fields(row: dict) -> str:
    keys = [str(k) for k in row]
    shown = ", ".join(keys[:12]) + (", …" if len(keys) > 12 else "")
    return shown or "(none)"


def _extract_question(row: dict, fmap: FieldMap) -> str:
    if fmap.question is not None:
        if fmap.question not in row:
            raise _RowProblem(
                "missing_question",
                f"no question field {fmap.question!r} (row has: {_present_fields(row)}); "
                "fix --question-field",
            )
        name, auto = fmap.question, False
    else:
        name = _first_present(row, QUESTION_FIELDS)
        if name is None:
            raise _RowProblem(
                "missing_question",
                f"no question field (looked for {', '.join(QUESTION_FIELDS)}; row has: "
                f"{_present_fields(row)}); pass --question-field NAME",
            )
        auto = True
    value = row[name]
    if value is None:
        raise _RowProblem("empty_question", f"question field {name!r} is null")
    if not isinstance(value, str):
        raise _RowProblem(
            "non_string_question",
            f"question field {name!r} is a {type(value).__name__}, not a string",
        )
    if not value.strip():
        raise _RowProblem("empty_question", f"question field {name!r} is empty")
    if len(value) > MAX_QUESTION_CHARS:
        raise _RowProblem("question_too_long", f"question field {name!r} holds {len(value):,} characters "
                          f"(the cap is {MAX_QUESTION_CHARS:,}: is it the right field?)")
    if auto:
        body_name = _first_present(row, BODY_FIELDS)
        body = row.get(body_name) if body_name else None
        if isinstance(body, str) and body.strip():
            value = _join_body(body, value)
    return value


def _join_body(body: str, question: str) -> str:
    body = body.strip()
    if body and body[-1] not in ".!?;:,":
        body += "."
    return f"{body} {question.strip()}"


def _optional(row: dict, explicit: str | None, candidates: tuple[str, ...], what: str) -> str | None:
    if explicit is not None:
        if explicit not in row:
            raise _RowProblem(
                "missing_field",
                f"no {what} field {explicit!r} (row has: {_present_fields(row)}); "
                f"fix --{what}-field",
            )
        return _as_text(row[explicit])
    name = _first_present(row, candidates)
    return _as_text(row[name]) if name is not None else None


def _with_choices(question: str, choices: Any) -> str:
    """A multiple-choice question keeps its choices: they are part of what is asked, so they
    go into the question text every prompt, store and export carries. A list gets one line
    per choice (labelled A), B), ... unless already labelled); a string is kept as written."""
    if isinstance(choices, str):
        return f"{question.rstrip()}\nChoices: {choices.strip()}" if choices.strip() else question
    if isinstance(choices, dict) and choices:  # SAT style: {"A": "3", "B": "4", ...}
        return question.rstrip() + "\nChoices:\n" + "\n".join(
            f"{str(k).strip().strip('()').upper()}) {_as_text(v) or ''}" for k, v in choices.items())
    if not isinstance(choices, (list, tuple)) or not choices:
        return question
    lines = []
    for i, choice in enumerate(choices):
        text = _as_text(choice) or ""
        lines.append(text if _CHOICE_LABEL.match(text) else f"{chr(ord('A') + i)}) {text}")
    return question.rstrip() + "\nChoices:\n" + "\n".join(lines)


def _fields_used(row: dict, fmap: FieldMap, seed: SeedQuestion, prefix_ids: bool) -> dict[str, str]:
    """Which field each part of the seed came from (for the user to check the guess)."""
    def name(explicit: str | None, candidates: tuple[str, ...]) -> str:
        found = explicit or _first_present(row, candidates)
        return repr(found) if found else "(none)"

    question = name(fmap.question, QUESTION_FIELDS)
    body = _first_present(row, BODY_FIELDS)
    if fmap.question is None and body and isinstance(row.get(body), str) and row[body].strip():
        question = f"{body!r} + {question}"
    used = {"question": question, "solution": name(fmap.solution, SOLUTION_FIELDS),
            "answer": name(fmap.answer, ANSWER_FIELDS)}
    # the GSM8K and MATH rules (module docstring) fill one part from the other
    if used["solution"] == "(none)" and seed.solution and used["answer"] != "(none)":
        used["solution"] = f"{used['answer']} (a worked text ending in '#### N')"
    elif used["answer"] == "(none)" and seed.answer and used["solution"] != "(none)":
        used["answer"] = f"{used['solution']} (its last \\boxed{{}})"
    if _first_present(row, CHOICE_FIELDS):
        used["choices"] = repr(_first_present(row, CHOICE_FIELDS))
    id_name = fmap.id or _first_present(row, ID_FIELDS)
    used["id"] = (repr(id_name) + (" (prefixed with the source)" if prefix_ids else "")) if id_name \
        else "(content hash)"
    return used


def _to_seed(row: Any, fmap: FieldMap, source: str, prefix_ids: bool = False) -> SeedQuestion:
    if not isinstance(row, dict):
        raise _RowProblem("not_object", f"row is a JSON {type(row).__name__}, not an object")
    question = _extract_question(row, fmap)
    solution = _optional(row, fmap.solution, SOLUTION_FIELDS, "solution")
    answer = _optional(row, fmap.answer, ANSWER_FIELDS, "answer")
    choices_name = _first_present(row, CHOICE_FIELDS)
    if choices_name is not None:
        question = _with_choices(question, row[choices_name])
    if answer is not None:
        m = _GSM8K_ANSWER.search(answer)
        if m and m.group("answer"):
            if solution is None and answer[: m.start()].strip():
                solution = answer
            answer = m.group("answer")
    elif solution is not None:
        answer = last_boxed(solution)
    # A row's own `source` field (e.g. graphgen's seed files, mixed-dataset files) wins
    # over the file stem; --source / fmap.source name another field.
    row_source = _as_text(row.get(fmap.source or "source")) or source
    seed_id = _optional(row, fmap.id, ID_FIELDS, "id")
    if seed_id is None:
        seed_id = stable_seed_id(question, row_source)
    elif prefix_ids:
        seed_id = f"{row_source}-{seed_id.strip()}"
    return SeedQuestion(
        id=seed_id.strip(), question=question, solution=solution, answer=answer, source=row_source,
        metadata=_metadata(row, fmap),
    )


_KNOWN_FIELDS = frozenset(QUESTION_FIELDS + BODY_FIELDS + SOLUTION_FIELDS + ANSWER_FIELDS + CHOICE_FIELDS
                          + ID_FIELDS + ("source",))


def _metadata(row: dict, fmap: FieldMap) -> dict:
    """The row's other short scalar fields (MATH `level`/`type`, Minerva `type`, ...), kept as
    metadata: the report and later stages can group by them."""
    named = {fmap.question, fmap.solution, fmap.answer, fmap.id, fmap.source}
    out = {}
    for key, value in row.items():
        if key in _KNOWN_FIELDS or key in named or value is None or isinstance(value, (dict, list)):
            continue
        if isinstance(value, float) and value != value:  # NaN from pandas
            continue
        if isinstance(value, (str, int, float, bool)) and len(str(value)) <= 200:
            out[str(key)] = value
    return out


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
        if not skip_invalid:
            where = _location(label, line, row_based)
            raise SeedInputError(f"{where}: {message}; {hint}", file=label, line=line, reason=reason)
        item = RejectedRow(file=label, line=line, reason=f"{reason}: {message}", raw=_truncate(raw))
        stats.add(item)
        return item

    for spec in paths:
        path, split, label = _resolve_path(spec)
        stats.files.append(label)
        kind = _split_source_suffix(path)[1][:1]
        row_based = path.is_dir() or bool(set(kind) & (PARQUET_SUFFIXES | JSON_SUFFIXES))
        # Only a JSONL line is the row's own JSON text; other formats are re-serialised.
        own_text = not path.is_dir() and bool(set(kind) & JSONL_SUFFIXES)
        src = source if source is not None else (path.name if path.is_dir() else _split_source_suffix(path)[0])
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
        except _FileProblem as p:
            hint = {
                "missing_file": "check the path",
                "unknown_file_type": "convert the file or rename it with a supported suffix",
            }.get(p.reason, "check the file, or pass --skip-invalid to skip it")
            yield reject(label, 0, row_based, p.reason, p.message, "", hint)
            continue
        except EOFError as e:  # a truncated .gz: what came before the break was read
            yield reject(
                label, 0, row_based, "truncated_file",
                f"the file is cut short ({one_line(e)}): {count} rows were read up to the break, every row "
                "after it is lost (how many cannot be known from a cut file)",
                "", f"download or compress the file again; --skip-invalid keeps the {count} rows read")
            continue
        except OSError as e:
            yield reject(label, 0, row_based, "unreadable_file", f"cannot read ({one_line(e)})", "",
                         "check the file, or pass --skip-invalid to skip it")
            continue
        if count == 0:
            yield reject(label, 0, row_based, "empty_file", "empty file (no rows)", "",
                         "check the path or the step that produced the file")


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


def read_benchmark_questions(path: str | Path, field_map: FieldMap | None = None) -> Iterator[tuple[str, str]]:
    """Yield ``(id, question text)`` for every row of a benchmark file (for decontamination).

    Uses the same formats and auto-detection as `read_seeds`, so it handles GSM8K
    (question), MATH (problem), SVAMP (Body + Question), ASDiv (body + question), MAWPS (input)
    and CollegeMath (question): split body/question texts are joined as ``"<body> <question>"``.
    The id is ``<file stem>-<native id>`` when the row has one (``id``, ``unique_id``, ``ID``,
    ``idx``), else ``<file stem>-<row number>``. Duplicate questions are kept (a benchmark is
    what it is); a row with no usable question raises `SeedInputError`.
    """
    path_obj, split, label = _resolve_path(path)
    src = path_obj.name if path_obj.is_dir() else _split_source_suffix(path_obj)[0]
    fmap = field_map or FieldMap()
    count = 0
    try:
        for line, row, _raw, error in _rows_of(path_obj, split):
            count += 1
            if error is not None:
                raise SeedInputError(f"{label}:{line}: {error[1]}; fix the benchmark file",
                                     file=label, line=line, reason=error[0])
            try:
                if not isinstance(row, dict):
                    raise _RowProblem("not_object", f"row is a {type(row).__name__}, not an object")
                text = _extract_question(row, fmap)
            except _RowProblem as p:
                raise SeedInputError(f"{label}:{line}: {p.message}", file=label, line=line,
                                     reason=p.reason) from None
            native = _as_text(row[name]) if (name := _first_present(row, ID_FIELDS)) else None
            yield f"{src}-{native if native is not None else line}", text
    except _FileProblem as p:
        raise SeedInputError(f"{label}: {p.message}", file=label, reason=p.reason) from None
    if count == 0:
        raise SeedInputError(f"{label}: empty file (no rows)", file=label, reason="empty_file")
