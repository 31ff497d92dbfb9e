"""Input files as raw rows, one reader per format, chosen by suffix.

- JSONL: ``.jsonl``, ``.ndjson`` (one JSON object per line; blank lines are ignored)
- JSON: ``.json`` holding a list of objects, or ``{"data": [...]}``
- CSV / TSV: ``.csv``, ``.tsv`` (first line is the header)
- any of the above gzip-compressed: ``.jsonl.gz``, ``.json.gz``, ``.csv.gz`` ...
- Parquet: ``.parquet`` / ``.pq`` (read in record batches through pyarrow)
- a directory written by ``datasets.Dataset.save_to_disk``; for a ``DatasetDict`` every split
  is read in order, or one split with ``path:split`` (e.g. ``data/gsm8k:train``)

Everything streams (JSON files are the exception: a JSON document is parsed whole). Each
reader yields ``(line_or_row, row_object_or_None, raw_text, error)``; error is
``(reason, message)`` for a row that could not be decoded, so the caller decides whether to
stop or reject it.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from graphgen.errors import one_line

JSONL_SUFFIXES = {".jsonl", ".ndjson"}


JSON_SUFFIXES = {".json"}


CSV_SUFFIXES = {".csv", ".tsv"}


PARQUET_SUFFIXES = {".parquet", ".pq"}


TEXT_SUFFIXES = JSONL_SUFFIXES | JSON_SUFFIXES | CSV_SUFFIXES


PARQUET_BATCH = 4096


def _split_source_suffix(path: Path) -> tuple[str, list[str]]:
    """('gsm8k_train', ['.jsonl', '.gz']) for gsm8k_train.jsonl.gz."""
    suffixes = [s.lower() for s in path.suffixes]
    name = path.name
    if suffixes and suffixes[-1] == ".gz" and len(suffixes) >= 2:
        stem = name[: -len("".join(path.suffixes[-2:]))]
        return stem or name, suffixes[-2:]
    return path.stem or name, suffixes[-1:]


_Raw = tuple[int, Any, str, tuple[str, str] | None]


def _open_binary(path: Path, gz: bool):
    return gzip.open(path, "rb") if gz else open(path, "rb")


_SCAN = json.JSONDecoder().scan_once  # json.loads' own decoder, without its per-call Python layers
_JSON_SPACE = " \t\n\r"


def _jsonl_lines(path: Path, gz: bool) -> Iterator[tuple[int, Any, bytes, str, tuple[str, str] | None]]:
    """``(line, row or None, the line's bytes, its text, error)`` per non-blank line of a JSONL
    file; the row is what ``json.loads`` makes of the text. The bytes are the line without the
    BOM of line 1 and without its line end (``\r\n`` stripped from the right); the text is the
    decoded line with its line end, stripped for a line that is not JSON, as decoded with
    replacement characters for one that is not UTF-8."""
    with _open_binary(path, gz) as f:
        for lineno, bline in enumerate(f, 1):
            try:
                text = bline.decode("utf-8-sig" if lineno == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raw = bline.decode("utf-8", errors="replace")
                yield lineno, None, bline, raw, ("invalid_encoding", f"invalid UTF-8 ({e.reason} at byte {e.start})")
                continue
            if lineno == 1 and bline.startswith(codecs.BOM_UTF8):
                bline = bline[len(codecs.BOM_UTF8):]
            # json.loads is scan_once at the first non-space character, then a check that only
            # JSON whitespace follows; a line that starts with a space, or fails, takes json.loads
            try:
                obj, end = _SCAN(text, 0)
                if end != len(text) and text[end:].strip(_JSON_SPACE):
                    raise ValueError
            except (StopIteration, ValueError):
                if not text.strip():
                    continue
                try:
                    obj = json.loads(text)
                except json.JSONDecodeError as e:
                    yield (lineno, None, bline.rstrip(b"\r\n"), text.rstrip("\r\n"),
                           ("invalid_json", f"invalid JSON ({e.msg}: col {e.colno})"))
                    continue
            yield lineno, obj, bline.rstrip(b"\r\n"), text, None


def _iter_jsonl(path: Path, gz: bool) -> Iterator[_Raw]:
    for lineno, obj, _raw, text, error in _jsonl_lines(path, gz):
        yield lineno, obj, text.rstrip("\r\n") if error is None else text, error


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
