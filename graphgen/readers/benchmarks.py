"""Benchmark files for decontamination: their questions, read with the seed readers' formats
and field detection, and the benchmark set a filter run compares against.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from graphgen.config import FilterSettings
from graphgen.readers.fields import (
    ID_FIELDS,
    FieldMap,
    _as_text,
    _extract_question,
    _first_present,
    _RowProblem,
)
from graphgen.readers.formats import (
    _FileProblem,
    _resolve_path,
    _rows_of,
    _split_source_suffix,
)
from graphgen.readers.seeds import SeedInputError

BENCHMARK_SUFFIXES = (".jsonl", ".ndjson", ".json", ".csv", ".tsv", ".parquet", ".pq", ".gz")


class Example(BaseModel):
    row_id: str
    detail: str


class BenchmarkSummary(BaseModel):
    name: str
    files: list[str] = Field(default_factory=list)
    items: int = 0
    items_matched: int = Field(0, description="benchmark items that at least one input row overlaps")
    rows_removed: int = Field(0, description="rows removed as contaminated by this benchmark")
    paraphrases: int = Field(0, description="rows flagged as possible paraphrases of this benchmark's items")
    examples: list[Example] = Field(default_factory=list)



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


def benchmark_files(paths: list[Path]) -> list[Path]:
    """Files (and saved HF datasets) named by `paths`; a plain directory means its files."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir() and not any((p / marker).exists() for marker in ("dataset_info.json", "dataset_dict.json", "state.json")):
            found = sorted(f for f in p.iterdir() if f.is_file() and f.name.lower().endswith(BENCHMARK_SUFFIXES))
            if not found:
                raise SeedInputError(f"{p}: no benchmark files in this directory (expected .jsonl, .json, .csv, .parquet)")
            out.extend(found)
        elif not p.exists():
            raise SeedInputError(f"{p}: benchmark file not found; check the path")
        else:
            out.append(p)
    return out


def _benchmark_name(path: Path) -> str:
    name = path.name
    for suffix in (".gz",) + BENCHMARK_SUFFIXES:
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
    return name or path.name


def load_benchmarks(settings: FilterSettings) -> tuple[list[tuple[str, str, str]], list[BenchmarkSummary]]:
    """Every benchmark item as (benchmark, item id, question), and one summary per benchmark."""
    items: list[tuple[str, str, str]] = []
    fmap = FieldMap(question=settings.benchmark_question_field)
    files = benchmark_files(settings.benchmarks)
    for path in files:
        name = _benchmark_name(path)
        try:
            for item_id, text in read_benchmark_questions(path, fmap):
                items.append((name, item_id, text))
        except SeedInputError as exc:
            message = str(exc).replace("--question-field", "--benchmark-question-field")
            raise SeedInputError(f"benchmark {message}", file=exc.file, line=exc.line, reason=exc.reason) from None
    return items, benchmark_summaries(files, items)


def benchmark_summaries(files: list[Path], items: list[tuple[str, str, str]]) -> list[BenchmarkSummary]:
    """One summary per benchmark (its files, its item count), in the order of `files`."""
    summaries: dict[str, BenchmarkSummary] = {}
    for path in files:
        summaries.setdefault(_benchmark_name(path), BenchmarkSummary(name=_benchmark_name(path))).files.append(str(path))
    for name, _item_id, _text in items:
        summaries[name].items += 1
    return list(summaries.values())


#: what reading the benchmark files gives; bump it when the reading rules change, so that
#: benchmark sets cached by an earlier version are read again
BENCHMARK_READING_VERSION = 1


def benchmark_source(settings: FilterSettings) -> tuple[list[Path], str]:
    """The benchmark files and a digest of everything their items depend on: the reading
    rules' version, the question field, and every file's path and bytes (a saved dataset
    directory: every file in it), so a cache keyed by it is used only for identical input."""
    files = benchmark_files(settings.benchmarks)
    digest = hashlib.sha256(json.dumps([BENCHMARK_READING_VERSION, settings.benchmark_question_field]).encode())
    for path in files:
        parts = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for part in parts:
            data = part.read_bytes()
            digest.update(f"\0{part}\0{len(data)}\0".encode("utf-8", "surrogateescape"))
            digest.update(data)
    return files, digest.hexdigest()
