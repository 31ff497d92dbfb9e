"""Export generated rows to the formats fine-tuning tools read.

Formats (``fmt``): ``jsonl`` (one object per line), ``parquet`` (pyarrow ``ParquetWriter``,
written in batches) and ``hf`` (a directory written by ``datasets.Dataset.save_to_disk``: rows
are streamed to an Arrow file first, memory-mapped, then saved). Memory stays flat however many
rows are exported. Output is written to a temporary path next to ``out`` and renamed into place
at the end, so an interrupted export never leaves a half-written file behind.

Layouts (``layout``), each a pydantic model whose JSON Schema documents the row:

- ``alpaca`` (`AlpacaRow`): ``instruction`` = question, ``input`` = "", ``output`` = solution
  followed by the final answer line ``The answer is: <answer>`` (`answer_line`).
- ``sharegpt`` (`ShareGPTRow`): ``conversations`` = [{from: system}?, {from: human}, {from: gpt}].
- ``chatml`` (`ChatMLRow`): ``messages`` = [{role: system}?, {role: user}, {role: assistant}]
  (OpenAI messages).
- ``raw`` (`RawRow`): the full `GeneratedQuestion` record.

Every layout carries a ``metadata`` column (`ExportMetadata`) with the row's lineage: id, kind,
status, concept ids, seed ids, exemplar seed ids, sample id, strategy, similarity, model, prompt
version and the bare final answer, so any exported row can be traced to its concepts and seeds.

Rows with ``status == "failed"`` are skipped (and counted) unless ``include_failed``.

The stage (`run`) exports clean rows by default: only rows that passed every gate that ran
(check's question checks, solve's verification, filter's decisions, read from the workspace
through `graphgen.status`; ``[export] answer_types`` / ``problem_types`` select by check's types),
counting the rest per reason; ``[export] include_all`` writes them too, each with its status in
``metadata`` (``verification``, ``verified_by``, ``filter``, ``left_out``). When nothing is left
it writes nothing and fails with one line.
"""

from __future__ import annotations

import itertools
import json
import shutil
import tempfile
import types
import typing
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

from graphgen.config import ExportLayout as Layout
from graphgen.config import ExportFormat as Format
from graphgen.config import Settings
from graphgen.jsonl import atomic_path, chunked, write_lines
from graphgen.errors import one_line
from graphgen.records import AnswerType, GeneratedQuestion, ProblemType, VariantLineage
from graphgen.stage import StageError, StageReport
from graphgen.status import Gates, left_out_line

if TYPE_CHECKING:
    from graphgen.store.base import GraphStore

__all__ = [
    "ExportMetadata",
    "AlpacaRow",
    "ShareGPTTurn",
    "ShareGPTRow",
    "ChatMLMessage",
    "ChatMLRow",
    "RawRow",
    "ExportSummary",
    "LAYOUT_MODELS",
    "FORMATS",
    "export_rows",
    "to_layout",
    "answer_line",
    "arrow_schema",
]

FORMATS: tuple[str, ...] = get_args(Format)
BATCH_ROWS = 5000
ANSWER_LINE = "The answer is: {answer}"


# --- row models (their JSON Schemas go to schema/) -----------------------------------------


class ExportMetadata(BaseModel):
    """Lineage of one exported row."""

    model_config = ConfigDict(extra="forbid")
    id: str
    kind: Literal["concepts", "fusion", "variant", "path"]
    status: Literal["ok", "failed"] = "ok"
    answer: str = Field("", description="bare final answer, for answer checking at train time")
    concept_ids: list[str] = Field(default_factory=list)
    seed_ids: list[str] = Field(default_factory=list, description="fusion: the two source seeds")
    exemplar_seed_ids: list[str] = Field(default_factory=list)
    sample_id: str | None = None
    strategy: str | None = None
    similarity: float | None = None
    variant: VariantLineage | None = Field(None, description="number-shifted variants: original, mode, numbers")
    model: str = ""
    prompt_version: str = ""
    error: str | None = None
    verification: Literal["verified", "unverified", "unverifiable"] | None = Field(
        None, description="solve's verdict on the row's question (graphgen.status); None: never solved")
    verified_by: Literal["gold", "vote"] | None = None
    judge: Literal["verified", "unverified", "unverifiable"] | None = Field(
        None, description="the answer judge's verdict on the row's question, beside the rule's (solve --judge); None: not judged")
    filter: str | None = Field(None, description="filter's decision: kept, duplicate, near_duplicate, contaminated, ...; None: not filtered")
    check: Literal["passed", "failed", "unknown"] | None = Field(
        None, description="graphgen check's result on the row's question; None: not checked")
    check_reasons: list[str] = Field(default_factory=list, description="why the check failed (graphgen.status.LEFT_OUT codes)")
    answer_type: AnswerType | None = Field(None, description="graphgen check: the final answer's type")
    problem_type: ProblemType | None = Field(None, description="graphgen check: regular, proof, multiple_choice, yes_no, invalid")
    left_out: str | None = Field(None, description="--include-all: the gate that would have left the row out")


class AlpacaRow(BaseModel):
    """Alpaca layout: instruction / input / output."""

    model_config = ConfigDict(extra="forbid")
    instruction: str
    input: str = ""
    output: str
    metadata: ExportMetadata


class ShareGPTTurn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    from_: Literal["system", "human", "gpt"] = Field(alias="from")
    value: str


class ShareGPTRow(BaseModel):
    """ShareGPT layout: ``{"conversations": [{"from": "human", "value": ...}, {"from": "gpt", ...}]}``."""

    model_config = ConfigDict(extra="forbid")
    conversations: list[ShareGPTTurn] = Field(min_length=2, max_length=3)
    metadata: ExportMetadata


class ChatMLMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "user", "assistant"]
    content: str


class ChatMLRow(BaseModel):
    """ChatML / OpenAI messages layout: ``{"messages": [{"role": "user", ...}, ...]}``."""

    model_config = ConfigDict(extra="forbid")
    messages: list[ChatMLMessage] = Field(min_length=2, max_length=3)
    metadata: ExportMetadata


class RawRow(GeneratedQuestion):
    """Raw layout: the whole `GeneratedQuestion` plus the common ``metadata`` column."""

    model_config = ConfigDict(extra="forbid")
    metadata: ExportMetadata


LAYOUT_MODELS: dict[str, type[BaseModel]] = {
    "alpaca": AlpacaRow,
    "sharegpt": ShareGPTRow,
    "chatml": ChatMLRow,
    "raw": RawRow,
}


class ExportSummary(BaseModel):
    """What `export_rows` wrote.

    ``by_topic`` counts written rows per topic concept id (ids starting with ``topic:``; a row
    with two topics counts under both; a concept row with no topic counts under ``"(no topic)"``);
    fusion rows count under ``"fusion:<strategy>"``, variants under ``"variant:<mode>"``. ``by_kind`` counts rows per kind.
    """

    out: str
    fmt: str
    layout: str
    written: int = 0
    failed_skipped: int = 0
    failed_written: int = 0
    left_out: dict[str, int] = Field(default_factory=dict, description="rows left out per reason (graphgen.status.LEFT_OUT)")
    by_topic: dict[str, int] = Field(default_factory=dict)
    by_kind: dict[str, int] = Field(default_factory=dict)

    def top_topics(self, n: int = 20) -> list[tuple[str, int]]:
        return sorted(self.by_topic.items(), key=lambda kv: (-kv[1], kv[0]))[:n]


# --- building rows ------------------------------------------------------------------------


def answer_line(answer: str) -> str:
    return ANSWER_LINE.format(answer=answer.strip())


def _assistant_text(row: GeneratedQuestion) -> str:
    """Solution, then the final answer line (unless there is no answer)."""
    solution = row.solution.strip()
    if not row.answer.strip():
        return solution
    return f"{solution}\n\n{answer_line(row.answer)}" if solution else answer_line(row.answer)


def _metadata(row: GeneratedQuestion, status: dict | None = None) -> ExportMetadata:
    return ExportMetadata(**(status or {}),
        id=row.id, kind=row.kind, status=row.status, answer=row.answer,
        concept_ids=list(row.concept_ids), seed_ids=list(row.seed_ids),
        exemplar_seed_ids=list(row.exemplar_seed_ids), sample_id=row.sample_id,
        strategy=row.strategy, similarity=row.similarity, variant=row.variant, model=row.model,
        prompt_version=row.prompt_version, error=row.error,
    )


def to_layout(row: GeneratedQuestion, layout: Layout, *, system_prompt: str | None = None,
              status: dict | None = None) -> BaseModel:
    """One generated row in a layout, as its (validated) pydantic model; `status` adds the
    row's status fields to its metadata."""
    meta = _metadata(row, status)
    if layout == "alpaca":
        return AlpacaRow(instruction=row.question, input="", output=_assistant_text(row), metadata=meta)
    if layout == "sharegpt":
        turns = [ShareGPTTurn(from_="system", value=system_prompt)] if system_prompt else []
        turns += [ShareGPTTurn(from_="human", value=row.question),
                  ShareGPTTurn(from_="gpt", value=_assistant_text(row))]
        return ShareGPTRow(conversations=turns, metadata=meta)
    if layout == "chatml":
        msgs = [ChatMLMessage(role="system", content=system_prompt)] if system_prompt else []
        msgs += [ChatMLMessage(role="user", content=row.question),
                 ChatMLMessage(role="assistant", content=_assistant_text(row))]
        return ChatMLRow(messages=msgs, metadata=meta)
    if layout == "raw":
        return RawRow(**row.model_dump(), metadata=meta)
    raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUT_MODELS)}")


# --- pydantic model -> Arrow schema (so Parquet/HF columns always match the models) --------


def _arrow_type(annotation: Any):
    import pyarrow as pa

    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            raise TypeError(f"cannot map {annotation!r} to Arrow")
        return _arrow_type(inner[0])
    if origin is Literal:
        return pa.string()
    if origin is list:
        return pa.list_(_arrow_type(args[0]))
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return pa.struct([pa.field(n, t) for n, t in _model_fields(annotation)])
    mapping = {str: pa.string(), int: pa.int64(), float: pa.float64(), bool: pa.bool_()}
    if annotation in mapping:
        return mapping[annotation]
    raise TypeError(f"cannot map {annotation!r} to Arrow")


def _model_fields(model: type[BaseModel]) -> list[tuple[str, Any]]:
    return [(f.alias or name, _arrow_type(f.annotation)) for name, f in model.model_fields.items()]


def arrow_schema(model: type[BaseModel]):
    """The Arrow schema of a layout model (aliases used as column names)."""
    import pyarrow as pa

    return pa.schema([pa.field(n, t) for n, t in _model_fields(model)])


# --- writers ------------------------------------------------------------------------------


def _write_jsonl(dicts: Iterator[dict], out: Path) -> None:
    write_lines((json.dumps(d, ensure_ascii=False) + "\n" for d in dicts), out)


def _write_arrow_batches(dicts: Iterator[dict], schema, writer) -> None:
    import pyarrow as pa

    for batch in chunked(dicts, BATCH_ROWS):
        writer.write_table(pa.Table.from_pylist(batch, schema=schema))


def _write_parquet(dicts: Iterator[dict], out: Path, schema) -> None:
    import pyarrow.parquet as pq

    with atomic_path(out) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        _write_arrow_batches(dicts, schema, writer)


def _write_hf(dicts: Iterator[dict], out: Path, schema) -> None:
    import datasets
    import pyarrow as pa

    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".graphgen-export-", dir=out.parent))
    try:
        arrow_path = work / "rows.arrow"
        # datasets' own on-disk format is an Arrow IPC *stream*; write it in batches, then
        # memory-map it and let save_to_disk shard it.
        with pa.OSFile(str(arrow_path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            _write_arrow_batches(dicts, schema, writer)
        ds = datasets.Dataset.from_file(str(arrow_path))
        quiet = not datasets.utils.are_progress_bars_disabled()
        if quiet:
            datasets.utils.disable_progress_bars()
        try:
            with atomic_path(out) as tmp:
                # num_shards=1 for an empty dataset: datasets cannot load a zero-shard directory
                ds.save_to_disk(str(tmp), num_shards=1 if len(ds) == 0 else None)
        finally:
            if quiet:
                datasets.utils.enable_progress_bars()
        del ds
    finally:
        shutil.rmtree(work, ignore_errors=True)


# --- public entry point -------------------------------------------------------------------


def export_rows(
    rows: Iterable[GeneratedQuestion],
    out: str | Path,
    *,
    fmt: Format = "jsonl",
    layout: Layout = "chatml",
    include_failed: bool = False,
    system_prompt: str | None = None,
    status: typing.Callable[[GeneratedQuestion], dict] | None = None,
) -> ExportSummary:
    """Stream generated rows into ``out`` as ``fmt`` in ``layout``; return what was written.

    ``system_prompt`` adds a system turn (ShareGPT, ChatML); it is ignored by Alpaca and raw.
    ``status(row)`` gives the status fields of a row's metadata (graphgen.status). Rows are validated against the layout model as they are written.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if layout not in LAYOUT_MODELS:
        raise ValueError(f"unknown layout {layout!r}; choose one of {', '.join(LAYOUT_MODELS)}")
    out = Path(out)
    summary = ExportSummary(out=str(out), fmt=fmt, layout=layout)
    by_topic: Counter[str] = Counter()
    by_kind: Counter[str] = Counter()

    def dicts() -> Iterator[dict]:
        for row in rows:
            if row.status == "failed":
                if not include_failed:
                    summary.failed_skipped += 1
                    continue
                summary.failed_written += 1
            model = to_layout(row, layout, system_prompt=system_prompt, status=status(row) if status else None)
            summary.written += 1
            by_kind[row.kind] += 1
            if row.kind in ("fusion", "variant"):
                by_topic[f"{row.kind}:{row.strategy or 'unknown'}"] += 1
            else:
                topics = [c for c in row.concept_ids if c.startswith("topic:")]
                for t in topics or ["(no topic)"]:
                    by_topic[t] += 1
            yield model.model_dump(mode="json", by_alias=True)

    if fmt == "jsonl":
        _write_jsonl(dicts(), out)
    elif fmt == "parquet":
        _write_parquet(dicts(), out, arrow_schema(LAYOUT_MODELS[layout]))
    else:
        _write_hf(dicts(), out, arrow_schema(LAYOUT_MODELS[layout]))
    summary.by_topic = dict(by_topic)
    summary.by_kind = dict(by_kind)
    return summary


# --- the stage: run(settings, store, inputs) -> ExportReport ---------------------------------


class ExportInputs(BaseModel):
    """One `graphgen export` invocation."""

    inputs: list[Path] = Field(default_factory=list, description="generate outputs (merged by id); empty: the store's rows")
    output: Path
    paths: Path | None = Field(None, description="solve's paths.jsonl: one training row per kept path")
    verdicts: Path | None = Field(None, description="solve's verdicts.jsonl [default: next to `paths`; else the store's]")
    verified_only: bool = Field(False, description="require solve's verdicts even where the workspace has none "
                                "(otherwise verification applies whenever solve has run on rows of the kind exported)")


class ExportReport(StageReport):
    stage: str = "export"
    summary: ExportSummary

    def lines(self) -> list[str]:
        s = self.summary
        out = [f"wrote {s.written} rows to {s.out} ({s.fmt}, {s.layout}); {left_out_line(s.left_out)}"
               + (" (included with their status: --include-all)" if self.included_all else "")]
        out += [f"  {n:>7}  {key}" for key, n in s.top_topics(20)]
        return out + self.notes

    included_all: bool = False


_GENERATED_KINDS = {"concepts", "fusion", "variant", "row"}


def run(settings: Settings, store: GraphStore | None, inputs: ExportInputs) -> ExportReport:
    """Export solve's kept paths (`inputs.paths`), the rows of `inputs.inputs` (merged by id),
    or, with neither, every row in `store`: only rows that passed every gate that ran (solve's
    verification, filter's decisions; graphgen.status), unless `[export] include_all`."""
    import time

    from graphgen.rows import path_rows, read_verdicts, rows_to_read
    from graphgen.jsonl import read_jsonl
    from graphgen.records import SolvePath

    t0 = time.perf_counter()
    cfg = settings.export
    notes: list[str] = []
    if inputs.verdicts:
        verdicts = read_verdicts(inputs.verdicts)
    elif inputs.paths and (inputs.paths.parent / "verdicts.jsonl").exists():
        verdicts = read_verdicts(inputs.paths.parent / "verdicts.jsonl")
    elif store is not None:
        verdicts = {v.question_id: v for v in store.verdicts()}
    else:
        verdicts = {}
    decisions = {d.row_id: d for d in store.filter_decisions()} if store is not None else {}
    checks = {c.row_id: c for c in store.checks()} if store is not None else {}
    if (cfg.answer_types or cfg.problem_types) and not checks:
        raise StageError("--answer-type / --problem-type select by `graphgen check`'s results, and this workspace "
                         "has none: run `graphgen check` on these rows first")
    if inputs.paths:
        if not verdicts:
            raise StageError(f"{inputs.paths}: no verdicts for these paths; pass --verdicts (solve's verdicts.jsonl)")
        # the questions' lineage (concepts, seeds) for their paths: only the fields, only of these questions
        lineage = {g.id: g.model_copy(update={"question": "", "solution": "", "raw": None})
                   for g in store.generated() if g.id in verdicts} if store is not None else {}
        rows: Iterable[GeneratedQuestion] = path_rows(read_jsonl(inputs.paths, SolvePath), verdicts, lineage)
        verification = True
        filtering = Gates.ran(decisions.values(), {"path"})
    else:
        rows = rows_to_read(inputs.inputs, store, "export")
        if inputs.verified_only and not verdicts:
            raise StageError("--verified-only: no verdicts; run `graphgen solve` on these rows first, "
                             "or pass --verdicts FILE (solve's verdicts.jsonl)")
        verification = inputs.verified_only or any(v.question_kind != "seed" for v in verdicts.values())
        filtering = Gates.ran(decisions.values(), _GENERATED_KINDS)
    if not verification:
        notes.append("verification: `graphgen solve` has not run on these rows; they are exported unverified")
    if not filtering and inputs.paths and Gates.ran(decisions.values(), _GENERATED_KINDS):
        notes.append("filter: the paths themselves were not filtered; their questions' filter decisions applied")
    elif not filtering:
        notes.append("filter: `graphgen filter` has not run on these rows (with this workspace); "
                     "no dedup or decontamination decisions applied")
    if not checks:
        notes.append("check: `graphgen check` has not run on these rows (with this workspace); "
                      "no question was checked for being well-posed")
    gates = Gates(verdicts, decisions, verification=verification, filtering=filtering, policy=cfg.verified_by,
                  checks=checks, answer_types=cfg.answer_types, problem_types=cfg.problem_types)
    if verification and cfg.verified_by != "rule" and not any(v.judge for v in verdicts.values()):
        notes.append(f"--verified-by {cfg.verified_by}: no verdict carries a judge's (run solve with --judge)")
    left_out: Counter[str] = Counter()
    reasons: dict[str, str] = {}

    def reason_of(row: GeneratedQuestion) -> str | None:
        if row.kind == "path":
            reason = gates.path_reason(row.id, row.sample_id or "")
        else:
            reason = gates.row_reason(row.id, row.status, row.kind, row.variant)
        if reason == "failed" and cfg.include_failed:
            return None
        return reason

    def passing() -> Iterator[GeneratedQuestion]:
        for row in rows:
            reason = reason_of(row)
            if reason is not None:
                if not cfg.include_all:
                    left_out[reason] += 1
                    continue
                reasons[row.id] = reason
            yield row

    def status(row: GeneratedQuestion) -> dict:
        fields = gates.status_fields(row.sample_id if row.kind == "path" else row.id, row.id)
        fields["left_out"] = reasons.pop(row.id, None)
        return fields

    stream = passing()
    try:
        first = next(stream, None)
        if first is None:
            what = left_out_line(dict(left_out)) if left_out else "no rows in the input"
            raise StageError(f"nothing to export: {what}; {inputs.output} not written "
                             "(see `graphgen solve` / `graphgen filter`, or pass --include-all)")
        summary = export_rows(itertools.chain([first], stream), inputs.output, fmt=cfg.format, layout=cfg.layout,
                              include_failed=True, system_prompt=cfg.system_prompt, status=status)
    except ValueError as exc:  # a row that is not a GeneratedQuestion, a layout it does not fit
        raise StageError(one_line(exc)) from None
    summary.left_out = dict(left_out)
    summary.failed_skipped = left_out.get("failed", 0)
    return ExportReport(summary=summary, notes=notes, included_all=cfg.include_all,
                        elapsed_s=time.perf_counter() - t0)
