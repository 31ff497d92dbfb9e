"""filter's batch reader (`read_question_batches`, issue 21) reads exactly what the row reader
(`read_question_rows`, whose ids and questions `read_seeds` makes) reads: the same ids,
questions, solutions, rows' text and rejects, the same one-line errors; and filter writes
kept rows back byte for byte."""

from __future__ import annotations

import codecs
import json

import pytest

from clirun import graphgen
from graphgen.readers import FieldMap, SeedInputError, read_question_batches, read_question_rows

ROWS = [
    {"id": "a", "question": "What is 2 + 2?", "answer": "4"},
    {"id": 7, "question": "Tom has 3 apples.", "answer": "He has 3.\n#### 3"},
    {"problem": "Find $x$.", "solution": "So $x=\\boxed{5}$."},
    {"Body": "Jack had 8 pens", "Question": "How many now?", "Answer": 8.0},
    {"question": "Pick one", "options": ["1", "2"], "id": "mc"},
    {"question": "With a source", "source": "mine"},
    {"question": "   "},
    {"question": 5},
    {"text": "no question here"},
    [1, 2],
    {"id": "unicode", "question": "Straße ² ½ naïve"},
    {"id": "cr", "question": "a line with a \r inside"},
    {"id": "  padded  ", "question": "An id with spaces around it"},
    {"id": " ", "question": "A blank id: the id is made from the text"},
    {"id": "long", "question": "x" * 20_001},
]


def _write(path, rows, *, bom=False, crlf=False, extra=()):
    lines = [json.dumps(r, ensure_ascii=False) for r in rows] + list(extra)
    data = ("\r\n" if crlf else "\n").join(lines) + "\n"
    raw = data.encode("utf-8")
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + raw)


def _by_rows(paths, **kw):
    out, rejects = [], []
    for item in read_question_rows(paths, unique_ids=False, skip_invalid=True, **kw):
        if hasattr(item, "seed"):
            out.append((item.seed.id, item.seed.question, item.seed.solution, item.raw))
        else:
            rejects.append(item.model_dump())
    return out, rejects


def _by_batches(paths, batch_rows, **kw):
    out, rejects = [], []
    for batch in read_question_batches(paths, skip_invalid=True, batch_rows=batch_rows, solutions=True, **kw):
        rejects += [r.model_dump() for r in batch.rejects]
        out += [(i, q, s, raw.decode("utf-8")) for i, q, s, raw in zip(batch.ids, batch.questions, batch.solutions,
                                                                        batch.raws)]
    return out, rejects


@pytest.mark.parametrize("batch_rows", [1, 3, 1000])
def test_batches_read_what_the_row_reader_reads(tmp_path, batch_rows):
    jsonl = tmp_path / "rows.jsonl"
    _write(jsonl, ROWS, bom=True, crlf=True, extra=["", "   ", "{not json", ' {"question": "leading space"}',
                                                      '{"question": "trailing"} \t', '{"question": "x"} extra'])
    (tmp_path / "bad.jsonl").write_bytes(b'{"question": "ok"}\n\xff\xfe{"question": "bad utf8"}\n')
    (tmp_path / "t.csv").write_text("id,question,answer\n1,What is 1+1?,2\n2,,3\n3,three,cells,too\n", encoding="utf-8")
    (tmp_path / "empty.jsonl").write_text("", encoding="utf-8")
    paths = [jsonl, tmp_path / "bad.jsonl", tmp_path / "t.csv", tmp_path / "empty.jsonl", tmp_path / "missing.jsonl"]
    rows, rejects = _by_rows(paths)
    got, got_rejects = _by_batches(paths, batch_rows)
    assert got == rows
    assert got_rejects == rejects
    assert len(rows) >= 9 and len(rejects) >= 8
    for fmap in (FieldMap(question="question"), FieldMap(id="id"), FieldMap(solution="solution")):
        assert _by_batches([jsonl], batch_rows, field_map=fmap) == _by_rows([jsonl], field_map=fmap)


def test_the_first_bad_row_is_the_same_one_line_error(tmp_path):
    path = tmp_path / "rows.jsonl"
    for bad in ('{"text": "no question"}', "{not json", '{"question": null}'):
        _write(path, ROWS[:2], extra=[bad])
        with pytest.raises(SeedInputError) as by_rows:
            list(read_question_rows([path], unique_ids=False))
        with pytest.raises(SeedInputError) as by_batches:
            list(read_question_batches([path]))
        assert str(by_batches.value) == str(by_rows.value)
        assert str(by_rows.value).startswith(f"{path}:3: ") and "\n" not in str(by_rows.value)


def test_filter_writes_kept_rows_byte_for_byte(tmp_path):
    """CRLF line ends become LF (as before); a carriage return inside a row, non-ASCII text and
    a BOM'd first line come out as read, and every row is kept or removed once."""
    path = tmp_path / "seeds.jsonl"
    rows = [r for r in ROWS if isinstance(r, dict) and isinstance(r.get("question", r.get("problem")), str)
            and (r.get("question") or r.get("problem") or "").strip() and len(r.get("question") or "") <= 20_000] + [{"id": "dup", "question": "What is 2 + 2?"}]
    _write(path, rows, bom=True, extra=['{"id": "raw-cr",\r"question": "A raw carriage return between keys"}'])
    graphgen("filter", path, "--seeds", "-o", tmp_path / "kept.jsonl", "--quiet", cwd=tmp_path)
    kept = [line + b"\n" for line in (tmp_path / "kept.jsonl").read_bytes().split(b"\n")[:-1]]
    removed = [json.loads(line) for line in (tmp_path / "kept.removed.jsonl").read_text(encoding="utf-8").splitlines()]
    expected = path.read_bytes()[len(codecs.BOM_UTF8):].split(b"\n")[:-1]
    assert [r["id"] for r in removed] == ["dup"]
    assert kept == [line + b"\n" for line in expected if b'"dup"' not in line]
    assert b"\\r inside" in b"".join(kept) and b'"raw-cr",\r"question"' in b"".join(kept)
