"""JSONL files, in one place: typed reading, appending after a kill, atomic writing, chunking.

Contracts:
- `read_jsonl` streams typed records. A last line without a trailing newline is a record
  like any other when it is one (files written by hand or by other tools often end so); when
  it is not, it is a torn line (the writer was killed mid-line) and is skipped only in
  graphgen's own output files (`own_output=True`), else it is an error. Any bad line is a
  one-line ValueError naming the file and line.
- `open_for_append` first cuts such a torn last line (a complete JSON line only gets its
  missing newline), so appended rows never join a half row; it looks back from the end only (files hold millions of rows). `sync` makes what was
  written so far durable (flush + fsync) for writers that need that.
- `atomic_path` gives a temp path beside the target and moves it over the target only when
  the block succeeds (a file or a directory, e.g. a saved dataset); `write_lines` /
  `write_jsonl` use it, so readers see the old file or the new one, never half of one, and
  two runs writing one target at once never share a temp file.
- `chunked` is the one batching helper (as sqlite-utils' `chunks`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path
from typing import IO, TypeVar

from pydantic import BaseModel

from graphgen.errors import one_line

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Lists of up to `size` items, streaming."""
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def text_lines(path: Path, torn_ok: bool = False) -> Iterator[tuple[int, str]]:
    """(line number, line) of a UTF-8 text file, newlines kept; a line that is not UTF-8 is a
    one-line ValueError naming the file, the line and the byte (not a bare codec error),
    except a last line without newline when `torn_ok` (a kill can cut a character in two)."""
    with Path(path).open("rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if torn_ok and not raw.endswith(b"\n"):
                    return
                raise ValueError(f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column "
                                 f"{exc.start + 1}); re-save the file as UTF-8") from None


def read_jsonl(path: Path, model: type[M], own_output: bool = False) -> Iterator[M]:
    """Stream records. A last line without a newline is kept when it is a record; when it is
    not, it is skipped in graphgen's own output files (`own_output`: torn by a kill, the unit
    simply runs again) and an error elsewhere."""
    path = Path(path)
    for lineno, line in text_lines(path, torn_ok=own_output):
        if line.strip():
            try:
                yield model.model_validate_json(line)
            except ValueError as exc:
                if own_output and not line.endswith("\n"):
                    return  # torn tail from a kill
                raise ValueError(f"{path}:{lineno}: not a {model.__name__} record ({one_line(exc)})") from None


def cut_torn_tail(path: Path) -> None:
    """Truncate a last line that has no newline (left by a kill); intact files are untouched."""
    path = Path(path)
    if not path.exists() or not path.stat().st_size:
        return
    with path.open("rb+") as fh:
        end = fh.seek(0, 2)
        pos = end
        while pos > 0:
            start = max(0, pos - 65536)
            fh.seek(start)
            chunk = fh.read(pos - start)
            if pos == end and chunk.endswith(b"\n"):
                return  # intact
            cut = chunk.rfind(b"\n")
            if cut >= 0 or start == 0:
                keep = start + cut + 1 if cut >= 0 else 0
                fh.seek(keep)
                if _is_json(fh.read()):  # a whole last line that only lacks its newline
                    fh.write(b"\n")
                else:
                    fh.truncate(keep)
                return
            pos = start


def _is_json(data: bytes) -> bool:
    import json

    try:
        json.loads(data)
        return True
    except ValueError:
        return False


def open_for_append(path: Path) -> IO[str]:
    """Append mode (parent directories created), after cutting a torn last line left by a kill."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    cut_torn_tail(path)
    return path.open("a", encoding="utf-8")


def sync(fh: IO) -> None:
    """Make everything written to `fh` so far durable: flush Python's buffer, then fsync."""
    fh.flush()
    os.fsync(fh.fileno())


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temp path (`.<name>.tmp-<pid>` beside `path`) that replaces `path` when the block
    ends without an exception; on an exception the temp file or directory is removed and
    `path` is untouched."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        os.replace(tmp, path)
    finally:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def write_lines(lines: Iterable[str], path: Path) -> int:
    """Write newline-ended lines atomically (temp file + rename), streaming."""
    n = 0
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for line in lines:
            fh.write(line)
            n += 1
    return n


def write_jsonl(records: Iterable[BaseModel], path: Path) -> int:
    """Records as JSONL, atomically; returns how many were written."""
    return write_lines((rec.model_dump_json() + "\n" for rec in records), path)
