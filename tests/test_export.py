"""Export: every format x layout, rows validated against the layout's model and JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

jsonschema = pytest.importorskip("jsonschema")

from graphgen.stages.export import (  # noqa: E402
    LAYOUT_MODELS,
    AlpacaRow,
    ChatMLRow,
    ExportSummary,
    RawRow,
    ShareGPTRow,
    arrow_schema,
    export_rows,
    to_layout,
)
from graphgen.records import GeneratedQuestion, LLMUsage  # noqa: E402

FORMATS = ["jsonl", "parquet", "hf"]
LAYOUTS = ["alpaca", "sharegpt", "chatml", "raw"]


def sample_rows() -> list[GeneratedQuestion]:
    return [
        GeneratedQuestion(
            id="gen-1", kind="concepts", question="Solve 2x + 3 = 11.",
            solution="Subtract 3: 2x = 8. Divide by 2: x = 4.", answer="4",
            sample_id="s-1", concept_ids=["topic:linear equation", "kp:isolating a variable"],
            exemplar_seed_ids=["gsm8k_train-aaaa"], model="m-1", prompt_version="generate_v1",
            usage=LLMUsage(model="m-1", prompt_tokens=100, completion_tokens=50, cost_usd=0.001),
        ),
        GeneratedQuestion(
            id="gen-2", kind="concepts", question="What is the area of a 3 by 4 rectangle?",
            solution="Area = 3 * 4 = 12.", answer="12",
            concept_ids=["topic:geometry", "topic:linear equation", "kp:area of rectangle"],
            model="m-1", prompt_version="generate_v1",
        ),
        GeneratedQuestion(
            id="gen-3", kind="fusion", question="Ann has twice the answer of (2+3) apples. How many?",
            solution="2+3 = 5, so 2*5 = 10.", answer="10", seed_ids=["seed-a", "seed-b"],
            similarity=0.83, strategy="sequential", model="m-2", prompt_version="fuse_v1",
        ),
        GeneratedQuestion(
            id="gen-4", kind="concepts", status="failed", error="reply never validated",
            raw="```json {broken", concept_ids=["topic:geometry"], model="m-1",
        ),
        GeneratedQuestion(
            id="gen-5", kind="fusion", question="Which is larger, 2^10 or 10^3?",
            solution="2^10 = 1024 > 1000 = 10^3.", answer="2^10", seed_ids=["seed-c", "seed-d"],
            similarity=0.7, strategy="conditional",
        ),
    ]


def read_back(path: Path, fmt: str) -> list[dict]:
    if fmt == "jsonl":
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    datasets = pytest.importorskip("datasets")
    return datasets.load_from_disk(str(path)).to_list()


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_and_layout_validates(tmp_path, fmt, layout):
    if fmt == "hf":
        pytest.importorskip("datasets")
    model = LAYOUT_MODELS[layout]
    schema = model.model_json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)

    out = tmp_path / f"out.{fmt}"
    summary = export_rows(sample_rows(), out, fmt=fmt, layout=layout, system_prompt="Think step by step.")
    assert summary.written == 4 and summary.failed_skipped == 1

    rows = read_back(out, fmt)
    assert len(rows) == 4
    for row in rows:
        validator.validate(row)
        model.model_validate(row)
    # every exported row is traceable: lineage in `metadata`
    assert [r["metadata"]["id"] for r in rows] == ["gen-1", "gen-2", "gen-3", "gen-5"]
    first, _, fused, _ = rows
    assert first["metadata"]["concept_ids"] == ["topic:linear equation", "kp:isolating a variable"]
    assert first["metadata"]["exemplar_seed_ids"] == ["gsm8k_train-aaaa"]
    assert (first["metadata"]["model"], first["metadata"]["prompt_version"]) == ("m-1", "generate_v1")
    assert first["metadata"]["answer"] == "4"
    assert fused["metadata"]["seed_ids"] == ["seed-a", "seed-b"]
    assert fused["metadata"]["strategy"] == "sequential" and fused["metadata"]["similarity"] == 0.83
    # the same rows whatever the file format
    assert rows == read_back_jsonl_reference(tmp_path, layout)


def read_back_jsonl_reference(tmp_path: Path, layout: str) -> list[dict]:
    ref = tmp_path / "reference.jsonl"
    export_rows(sample_rows(), ref, fmt="jsonl", layout=layout, system_prompt="Think step by step.")
    return read_back(ref, "jsonl")


def test_layout_contents():
    row = sample_rows()[0]
    a = to_layout(row, "alpaca")
    assert isinstance(a, AlpacaRow)
    assert a.instruction == row.question and a.input == ""
    assert a.output == "Subtract 3: 2x = 8. Divide by 2: x = 4.\n\nThe answer is: 4"

    s = to_layout(row, "sharegpt").model_dump(by_alias=True)
    assert [t["from"] for t in s["conversations"]] == ["human", "gpt"]
    assert s["conversations"][1]["value"].endswith("The answer is: 4")
    s = to_layout(row, "sharegpt", system_prompt="sys").model_dump(by_alias=True)
    assert s["conversations"][0] == {"from": "system", "value": "sys"}

    c = to_layout(row, "chatml").model_dump()
    assert [m["role"] for m in c["messages"]] == ["user", "assistant"]
    c = to_layout(row, "chatml", system_prompt="sys")
    assert isinstance(c, ChatMLRow)
    assert [m.role for m in c.messages] == ["system", "user", "assistant"]

    r = to_layout(row, "raw")
    assert isinstance(r, RawRow)
    assert GeneratedQuestion.model_validate(r.model_dump()) == row  # the full record survives


def test_schemas_reject_wrong_rows():
    bad = {"conversations": [{"from": "user", "value": "q"}, {"from": "gpt", "value": "a"}],
           "metadata": {"id": "x", "kind": "concepts"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, ShareGPTRow.model_json_schema())
    bad = {"messages": [{"role": "user", "content": "q"}], "metadata": {"id": "x", "kind": "concepts"}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, ChatMLRow.model_json_schema())


def test_failed_rows_excluded_by_default_and_counted(tmp_path):
    s = export_rows(sample_rows(), tmp_path / "a.jsonl", layout="raw")
    assert (s.written, s.failed_skipped, s.failed_written) == (4, 1, 0)
    ids = [json.loads(x)["id"] for x in (tmp_path / "a.jsonl").read_text().splitlines()]
    assert "gen-4" not in ids

    s = export_rows(sample_rows(), tmp_path / "b.jsonl", layout="raw", include_failed=True)
    assert (s.written, s.failed_skipped, s.failed_written) == (5, 0, 1)
    rows = [json.loads(x) for x in (tmp_path / "b.jsonl").read_text().splitlines()]
    failed = next(r for r in rows if r["id"] == "gen-4")
    assert failed["status"] == "failed" and failed["error"] == "reply never validated"
    assert failed["metadata"]["status"] == "failed"


def test_summary_counts_per_topic_and_kind(tmp_path):
    s = export_rows(sample_rows(), tmp_path / "a.jsonl", layout="alpaca")
    assert isinstance(s, ExportSummary)
    assert s.by_topic == {
        "topic:linear equation": 2, "topic:geometry": 1,
        "fusion:sequential": 1, "fusion:conditional": 1,
    }
    assert s.by_kind == {"concepts": 2, "fusion": 2}
    assert s.top_topics(1) == [("topic:linear equation", 2)]
    # a concepts row without a topic is still counted
    row = GeneratedQuestion(id="x", kind="concepts", question="q", solution="s", answer="a",
                            concept_ids=["kp:only"])
    s = export_rows([row], tmp_path / "b.jsonl", layout="alpaca")
    assert s.by_topic == {"(no topic)": 1}


def test_streams_from_a_generator_in_batches(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    import graphgen.stages.export as export

    monkeypatch.setattr(export, "BATCH_ROWS", 7)
    consumed = []

    def gen():
        for i in range(50):
            consumed.append(i)
            yield GeneratedQuestion(id=f"g{i}", kind="concepts", question=f"q{i}", solution="s",
                                    answer=str(i), concept_ids=["topic:t"])

    s = export_rows(gen(), tmp_path / "x.parquet", fmt="parquet", layout="chatml")
    assert s.written == 50 and len(consumed) == 50
    t = pq.ParquetFile(tmp_path / "x.parquet")
    assert t.metadata.num_rows == 50 and t.metadata.num_row_groups == 8  # 7 rows per batch
    assert t.schema_arrow == arrow_schema(ChatMLRow)


def test_empty_export_is_loadable(tmp_path):
    for fmt in FORMATS:
        if fmt == "hf":
            pytest.importorskip("datasets")
        s = export_rows([], tmp_path / f"empty.{fmt}", fmt=fmt, layout="sharegpt")
        assert s.written == 0
        assert read_back(tmp_path / f"empty.{fmt}", fmt) == []


def test_overwrites_and_leaves_no_temp_files(tmp_path):
    datasets = pytest.importorskip("datasets")
    out = tmp_path / "ds"
    export_rows(sample_rows(), out, fmt="hf", layout="chatml")
    export_rows(sample_rows()[:1], out, fmt="hf", layout="chatml")
    assert len(datasets.load_from_disk(str(out))) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown export format 'csv'"):
        export_rows(sample_rows(), tmp_path / "x", fmt="csv")
    with pytest.raises(ValueError, match="unknown layout 'openai'"):
        export_rows(sample_rows(), tmp_path / "x", layout="openai")


def test_read_rows_round_trip(tmp_path):
    from graphgen.rows import read_rows

    path = tmp_path / "gen.jsonl"
    path.write_text("".join(r.model_dump_json() + "\n" for r in sample_rows()) + "\n")
    assert list(read_rows([path, path])) == sample_rows()  # merged by id: no duplicates
    path.write_text('{"id": "x"}\n')
    with pytest.raises(ValueError, match=r"gen\.jsonl:1: not a GeneratedQuestion record"):
        list(read_rows([path]))
