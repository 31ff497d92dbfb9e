"""Stage `filter`: exact and near-duplicate removal and benchmark decontamination.

    run(settings, store=None, inputs=FilterInputs(...)) -> FilterReport

Reads any row graphgen writes (generated, fused and variant rows; solve's paths.jsonl, the
question text taken from the verdicts.jsonl next to it; every export layout: Alpaca, ShareGPT,
ChatML, raw) or seed files with ``seeds=True``, from JSONL / JSON / CSV / Parquet files or
saved Hugging Face datasets, fields detected as for seeds (`graphgen.readers`), and writes:

- ``output``: the rows kept, each exactly as it was read (so `graphgen export` reads it);
- with a store: every row's `FilterDecision` (kept, or why not), which export honours;
- ``<output stem>.removed.jsonl``: one `RemovedRow` per removed row: its id, a `FilterReason` and the row;
- ``<output stem>.flagged.jsonl``: possible benchmark paraphrases that were kept (``--semantic`` without
  ``--drop-paraphrases``), as `RemovedRow` lines;
- the report (`FilterReport`), as JSON and as printed lines.

Order of the checks:

1. failed generations (no question) are removed;
2. decontamination: a row whose question (and with ``solutions`` its solution) shares an
   n-gram of normalised word tokens with a benchmark item (default 13, the GPT-3 / NeMo
   Curator convention; also with numbers masked, so a copy with changed numbers is caught;
   items shorter than n must appear whole in the row) is removed;
3. exact duplicates: the project's question normaliser (`graphgen.normalize.normalize_question`,
   case-folded),
   then a 64-bit hash; contaminated rows take part, ranked first, so a copy of a
   contaminated row goes with it (reported as its duplicate) instead of taking its place;
4. near duplicates: MinHash LSH over word 1..k-gram shingles (`graphgen.neardup`),
   estimated Jaccard >= ``jaccard``; with ``near_numbers="masked"`` (default) numbers are one
   placeholder in rows of at least `neardup.NEAR_MASK_MIN_WORDS` words, so number-shifted
   copies are near duplicates;
5. with ``semantic``: embedding near duplicates (cosine >= ``semantic_threshold``) and
   benchmark paraphrases (cosine >= ``paraphrase_threshold``; removed only with
   ``drop_paraphrases``), through the embedding cache (`graphgen.embed`);
6. with ``[judge] contamination`` on: each row still kept against its nearest benchmark
   questions by embedding, judged "same problem?" in both orders by a model
   (`graphgen.semantic.judge_contamination`, `graphgen.judge`); a yes removes it as a
   ``paraphrase`` whose reason carries benchmark, item, cosine and the judge's answers.

Lineage: rows made from one question on purpose (number-shifted variants of one original,
solve paths of one question) are never duplicates of each other, only of rows of other
lineages (the semantic pass does not look at lineage).

Keep-one rule inside every duplicate group: verified rows (``verified_field`` true) before
unverified ones, then the earliest row in input order; when every row is a generated row
(whose file order is the order its LLM calls finished), the smallest id instead, so a rerun
or a resumed run keeps the same rows. A removed duplicate is reported
against the kept row of its group, or against the contaminated row it copies.

Memory: rows stream through in batches; what stays per row is a few compact arrays (a 64-bit
hash, MinHash band keys, a 16-bit-per-value signature, flags) and its id; the rows themselves
(the bytes read) go to an unnamed spool file next to the output (a kill leaves nothing) and
are copied to kept / removed at the end, runs of kept rows whole. Reading builds no record
per row (`graphgen.readers.read_question_batches`: the same ids, questions and rejects as
`read_seeds`); decontamination tokenises and matches 2,000 rows at a time. Band keys and
signatures (~420 bytes a row) sit in memory-mapped blocks, handed to the clustering block by
block and freed with it, so the peak is what reading leaves (~0.75 KiB a row at the bench:
1M rows 1.06 GiB, 2M 1.8 GiB; BENCHMARKS.md, issue 11); a removed row's reason lives only
while its line is written (kept for all rows only when the store records decisions). Outputs
are written to temporary files and renamed into place, so an interrupted run leaves the old
outputs (and the inputs) untouched.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field

from graphgen import neardup
from graphgen.config import FilterSettings, Settings
from graphgen.neardup import normalise_question
from graphgen.progress import Progress
from graphgen.readers import (
    BenchmarkSummary,
    Example,
    FieldMap,
    QuestionBatch,
    SeedReadStats,
    benchmark_source,
    benchmark_summaries,
    load_benchmarks,
    read_question_batches,
)
from graphgen.records import FilterDecision, FilterReason
from graphgen.stage import StageReport
from graphgen.status import is_verified, marked_verified

__all__ = ["FilterInputs", "FilterReport", "run"]


class FilterInputs(BaseModel):
    """What one `filter` run reads and writes."""

    inputs: list[Path]
    output: Path = Field(description="kept rows (JSONL)")
    removed: Path | None = Field(None, description="removed rows with reasons [default: <output stem>.removed.jsonl next to output]")
    flagged: Path | None = Field(None, description="kept rows flagged as possible paraphrases [default: <output stem>.flagged.jsonl next to output]")
    report: Path | None = Field(None, description="report JSON [default: <output stem>.report.json next to output]")
    rejects: Path = Field(Path("rejects.jsonl"), description="unreadable rows (with skip_invalid)")
    field_map: FieldMap = Field(default_factory=FieldMap)
    seeds: bool = Field(False, description="the inputs are seed files (no failed/verified rows)")
    skip_invalid: bool = False
    quiet: bool = False

    def path(self, name: str) -> Path:
        given = getattr(self, name)
        if given is not None:
            return Path(given)
        if name == "report":
            return self.output.with_name(f"{self.output.stem}.report.json")
        return self.output.with_name(f"{self.output.stem}.{name}.jsonl")  # two runs never share one


class FilterReport(StageReport):
    stage: str = "filter"
    read: int = 0
    rejected: int = 0
    kept: int = 0
    removed: int = 0
    flagged: int = 0
    removed_by_kind: dict[str, int] = Field(default_factory=dict)
    clusters: dict[str, int] = Field(default_factory=dict, description="duplicate clusters (groups of 2+ rows) by kind")
    duplicate_examples: dict[str, list[Example]] = Field(default_factory=dict)
    benchmarks: list[BenchmarkSummary] = Field(default_factory=list)
    settings: dict = Field(default_factory=dict, description="the options that decided the result")
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per phase")
    outputs: dict[str, str] = Field(default_factory=dict)
    decisions_recorded: int = Field(0, description="rows whose decision went to the workspace (graphgen.status)")
    judge: dict | None = Field(None, description="--judge: mode, model, rows searched, pairs judged (each asked in "
                               "both orders), calls, rows removed")

    def lines(self) -> list[str]:
        out = [f"filter: read {self.read}, kept {self.kept}, removed {self.removed}, rejected {self.rejected}"
               + (f", flagged {self.flagged} possible paraphrases" if self.flagged else "")
               + f" ({self.elapsed_s:.1f}s)"]
        if self.removed_by_kind:
            out.append("removed by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(self.removed_by_kind.items())))
        for b in self.benchmarks:
            out.append(f"  {b.name}: {b.items} items, {b.items_matched} matched, {b.rows_removed} rows removed"
                       + (f", {b.paraphrases} paraphrases flagged" if b.paraphrases else ""))
            out.extend(f"    e.g. {e.row_id}: {e.detail}" for e in b.examples[:3])
        for kind, examples in self.duplicate_examples.items():
            out.append(f"  {kind}: {self.removed_by_kind.get(kind, 0)} rows in {self.clusters.get(kind, 0)} clusters")
            out.extend(f"    e.g. {e.row_id}: {e.detail}" for e in examples[:3])
        if self.judge is not None:
            j = self.judge
            out.append(f"paraphrase judge ({j['mode']}, {j['model']}): {j['pairs']} row/benchmark pairs within cosine "
                       f"{j['floor']} of {j['rows']} rows asked in both orders ({j['calls']} calls), "
                       f"{j['removed']} rows removed; {self.llm.line()}")
        out.extend(self.notes)
        out.append("wrote " + ", ".join(f"{k} {v}" for k, v in self.outputs.items()))
        if self.decisions_recorded:
            out.append(f"recorded {self.decisions_recorded} row decisions in the workspace (export leaves out removed rows)")
        return out


# --- benchmarks --------------------------------------------------------------------------


# --- per-row state -------------------------------------------------------------------------


class _Rows:
    """What is kept per row between the two passes: compact arrays, ids and a few dicts."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.kinds: list[str] = []
        self.lineage: list[str | None] = []  # variants / paths: the question they come from
        self.verdicts: dict = {}  # the store's solve verdicts by row id (graphgen.status)
        self.exact: list[np.ndarray] = []  # uint64 per batch
        self.verified: list[np.ndarray] = []
        self.usable: list[np.ndarray] = []  # False for failed rows
        self.bands = _Blocks()  # MinHash band keys, (rows, bands) uint64
        self.sig = _Blocks()  # MinHash signatures, (rows, num_perm) uint16
        self.failed: dict[int, str] = {}
        self.contaminated: dict[int, FilterReason] = {}
        self.texts_for_semantic: list[str] | None = None

    def arrays(self, name: str, dtype, width: int | None = None) -> np.ndarray:
        parts = getattr(self, name)
        if parts:
            return np.concatenate(parts)
        return np.zeros((0, width) if width else 0, dtype=dtype)


def _mapped(rows: int, like: np.ndarray) -> np.ndarray:
    """An uninitialised (rows, *like.shape[1:]) array of like's dtype in an anonymous memory
    map of its own: its pages cost memory only once written, and when the array goes the
    map goes, so the memory is back with the system at once. (A large malloc may instead be
    carved out of free heap space, and freed it stays in the process: at 2M rows ~800 MB of
    freed signature arrays sat under the near-duplicate copy made from them.)"""
    shape = (rows, *like.shape[1:])
    count = int(np.prod(shape, dtype=np.int64))
    buffer = mmap.mmap(-1, max(1, count * like.dtype.itemsize))
    return np.frombuffer(buffer, dtype=like.dtype, count=count).reshape(shape)


class _Blocks:
    """The rows of a per-row 2-D array (signatures, band keys) as batches add them, in
    memory-mapped blocks of ~16 MiB (`_mapped`), so the blocks copied into the
    near-duplicate subset are returned to the system one by one as they are copied."""

    BLOCK_BYTES = 16 << 20

    def __init__(self) -> None:
        self.blocks: list[np.ndarray] = []
        self._room = 0  # rows still free in the last block (its pages untouched until written)

    def append(self, values: np.ndarray) -> None:
        done = 0
        while done < len(values):
            if not self._room:
                self._room = max(1, self.BLOCK_BYTES // max(1, values[0].nbytes))
                self.blocks.append(_mapped(self._room, values))
            block = self.blocks[-1]
            at = len(block) - self._room
            count = min(self._room, len(values) - done)
            block[at:at + count] = values[done:done + count]
            self._room -= count
            done += count

    def take(self, rows: np.ndarray) -> np.ndarray:
        """Rows `rows` (ascending) as one array; the blocks are freed as they are copied, so
        the subset is never held beside the whole (at 1M rows the signatures and band keys
        are ~420 MB; concatenated and then indexed they were held up to three times over)."""
        blocks, self.blocks, self._room = self.blocks, [], 0
        out = _mapped(len(rows), blocks[0])
        lo = at = 0
        while blocks:
            block = blocks.pop(0)
            hi = lo + len(block)
            upto = int(np.searchsorted(rows, hi))
            out[at:upto] = block[rows[at:upto] - lo]
            at, lo = upto, hi
            del block
        return out


def _turns(row: dict) -> tuple[str | None, str | None]:
    """(question, solution) of a chat-layout row: ChatML `messages` or ShareGPT `conversations`."""
    for key, who, user, bot in (("messages", "role", "user", "assistant"), ("conversations", "from", "human", "gpt")):
        turns = row.get(key)
        if isinstance(turns, list):
            said = {t.get(who): t.get("content" if key == "messages" else "value")
                    for t in reversed(turns) if isinstance(t, dict)}
            return said.get(user), said.get(bot)
    return None, None


class _RowAdapter:
    """Any row graphgen writes, with its fields where seed detection looks: export layouts
    (ChatML, ShareGPT: the user turn is the question; Alpaca's `output` is the solution; every
    layout's `metadata` gives id, kind and lineage) and solve's paths (their question text from
    the verdicts.jsonl next to the paths file)."""

    def __init__(self, inputs: list[Path]):
        self.questions: dict[str, str] = {}
        for path in inputs:
            verdicts = Path(path).with_name("verdicts.jsonl")
            if Path(path).is_file() and verdicts.exists() and verdicts != Path(path):
                with verdicts.open(encoding="utf-8") as fh:
                    for line in fh:
                        try:
                            v = json.loads(line)
                        except ValueError:
                            continue  # a torn last line
                        if isinstance(v, dict) and v.get("question_id") and v.get("question"):
                            self.questions[str(v["question_id"])] = str(v["question"])

    def __call__(self, row: dict) -> dict:
        meta = row.get("metadata") if isinstance(row.get("metadata"), dict) else None
        out = row
        if meta is not None:
            question, solution = _turns(row)
            if question is None and "instruction" in row:
                question, solution = row.get("instruction"), row.get("output")
            out = {**row, "id": meta.get("id", row.get("id")), "kind": meta.get("kind", row.get("kind")),
                   "status": meta.get("status", row.get("status"))}
            if question is not None:
                out["question"], out["solution"] = question, solution
        elif "question_id" in row and "style" in row and "question" not in row:  # a solve path
            q = self.questions.get(str(row["question_id"]))
            out = {**row, "kind": "path", "solution": row.get("text")}
            if q is not None:
                out["question"] = q
        return out


def _lineage(row: dict) -> str | None:
    """The question a row was made from, when it is one of several by design: a number-shifted
    variant (its original) or a solve path (its question); such rows are never duplicates of
    their siblings (they are near copies on purpose), only of rows of other lineages."""
    if "metadata" not in row and "variant" not in row and row.get("kind") != "path":
        return None  # the common case, decided without the lookups below
    meta = row.get("metadata") if isinstance(row.get("metadata"), dict) else {}
    variant = row.get("variant") or meta.get("variant")
    if isinstance(variant, dict) and variant.get("original_id"):
        return str(variant["original_id"])
    if (row.get("kind") or meta.get("kind")) == "path":
        return str(row.get("question_id") or row.get("sample_id") or meta.get("sample_id") or "") or None
    return None


def _groups(state: "_Rows") -> np.ndarray:
    """One integer per row: rows of one lineage share it; every other row has its own (a
    variant's original is in its variants' lineage too)."""
    n = len(state.ids)
    ids: dict[str, int] = {}
    out = np.arange(n, dtype=np.int64)  # rows without lineage: each its own (equal ids too)
    for i, origin in enumerate(state.lineage):
        if origin:
            out[i] = n + ids.setdefault(origin, len(ids))
    originals = {row_id: i for i, row_id in enumerate(state.ids) if row_id in ids}
    for row_id, i in originals.items():  # the original belongs to its variants' lineage
        out[i] = n + ids[row_id]
    return out


def _exact_hash(normalised: str) -> int:
    return int.from_bytes(hashlib.blake2b(normalised.encode("utf-8"), digest_size=8).digest(), "little")


def _is_verified(row_id: str, row: dict, field: str, verdicts: dict) -> bool:
    """Verified by the stored verdict (graphgen.status); a row the store has no verdict for
    may say it itself (`verified_field`, e.g. from another tool)."""
    v = verdicts.get(row_id)
    if v is not None:
        return is_verified(v)
    return marked_verified(row, field)


def _failed(row: dict) -> str | None:
    return "generation failed" if row.get("status") == "failed" else None


def _reason_line(row_id: str, reason: FilterReason, raw: str) -> str:
    # The row goes out exactly as read: its text is spliced in, not re-serialised.
    return ('{"id": ' + json.dumps(row_id, ensure_ascii=False) + ', "reason": '
            + reason.model_dump_json(exclude_none=True) + ', "row": ' + raw + "}\n")


class _Spool:
    """The rows' text, in input order, in a temporary file next to the outputs: each row's
    bytes as read and a newline, with the end offset of every row kept, so runs of kept rows
    are copied out whole. The file has no name (unlinked as soon as it is made), so a killed
    run leaves nothing behind; spool files that older versions left by name are removed when
    their run is gone."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        _remove_dead_spools(directory)
        self._fh = tempfile.TemporaryFile("w+b", dir=directory, prefix=".filter-spool-")
        self._ends: list[np.ndarray] = []
        self._size = 0

    def add(self, raws: list[bytes]) -> None:
        if not raws:
            return
        blob = b"\n".join(raws) + b"\n"
        if blob.count(b"\n") != len(raws):  # a row's text with a newline in it: one line per row
            raws = [raw.replace(b"\n", b" ") for raw in raws]
            blob = b"\n".join(raws) + b"\n"
        self._fh.write(blob)
        ends = np.fromiter(map(len, raws), dtype=np.int64, count=len(raws))
        ends += 1
        np.cumsum(ends, out=ends)
        ends += self._size
        self._ends.append(ends)
        self._size += len(blob)

    def ends(self) -> np.ndarray:
        """The end offset of every row (row i is bytes ends[i-1]:ends[i], its newline included)."""
        return np.concatenate(self._ends) if self._ends else np.zeros(0, dtype=np.int64)

    def reader(self):
        self._fh.flush()
        self._fh.seek(0)
        return self._fh

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def _remove_dead_spools(directory: Path) -> None:
    """Named spool files (`.filter-spool-<pid>-<ns>.jsonl`) whose run is no longer alive."""
    for path in directory.glob(".filter-spool-*-*.jsonl"):
        try:
            pid = int(path.name.split("-")[2])
            os.kill(pid, 0)
        except ProcessLookupError:
            path.unlink(missing_ok=True)
        except (ValueError, IndexError, PermissionError):
            continue


# --- the stage -----------------------------------------------------------------------------


def run(settings: Settings, store=None, inputs: FilterInputs | None = None) -> FilterReport:
    """Filter `inputs.inputs` into kept / removed files; see the module docstring."""
    if inputs is None:
        raise ValueError("filter needs inputs (FilterInputs)")
    opts = settings.filter
    started = time.monotonic()
    report = FilterReport()
    timings: Counter[str] = Counter()

    t = time.monotonic()
    items: list = []
    summaries: list[BenchmarkSummary] = []
    index = None
    if opts.benchmarks:
        files, key = benchmark_source(opts)
        index = neardup.BenchmarkIndex.cached_source(key, lambda: load_benchmarks(opts)[0], neardup.index_cache_dir(),
                                                     n=opts.ngram, number_variants=opts.number_variants,
                                                     boilerplate_items=opts.boilerplate_items)
        items, summaries = index.items, benchmark_summaries(files, index.items)
        if not items:
            index = None
    timings["benchmark_index"] += time.monotonic() - t
    if not items:
        report.notes.append("no benchmarks given: decontamination skipped (pass --benchmarks or list them in graphgen.toml)")
    bands_n, rows_per_band = neardup.lsh_params(opts.jaccard, opts.num_perm)

    state = _Rows()
    if store is not None:
        state.verdicts = {v.question_id: v for v in store.verdicts()}
    judging = settings.judge.contamination != "off" and bool(items)
    if opts.semantic or judging:
        state.texts_for_semantic = []
    out_dir = inputs.output.parent
    spool = _Spool(out_dir)
    stats = SeedReadStats()
    rejects_fh = None
    try:
        progress = Progress(None, label="filter", quiet=inputs.quiet)
        batches = read_question_batches(inputs.inputs, inputs.field_map, batch_rows=opts.batch_rows,
                                        skip_invalid=inputs.skip_invalid, stats=stats,
                                        skip=None if inputs.seeds else _failed,
                                        adapt=None if inputs.seeds else _RowAdapter(inputs.inputs),
                                        solutions=opts.solutions)
        for batch in batches:
            for item in batch.rejects:
                if rejects_fh is None:
                    inputs.rejects.parent.mkdir(parents=True, exist_ok=True)
                    rejects_fh = open(inputs.rejects, "w", encoding="utf-8")
                rejects_fh.write(item.model_dump_json() + "\n")
                progress.update(ok=False)
            if not len(batch):
                continue
            base = len(state.ids)
            for k, why in batch.skipped.items():
                state.failed[base + k] = why or "skipped"
                row_id = batch.rows[k].get("id")
                batch.ids[k] = str(row_id) if row_id is not None else hashlib.sha256(batch.raws[k]).hexdigest()[:16]
            spool.add(batch.raws)
            if inputs.seeds:
                state.kinds.extend(["seed"] * len(batch))
            else:
                state.kinds.extend(sys.intern(str(row.get("kind") or "row")) for row in batch.rows)  # one str per kind
            state.lineage.extend(map(_lineage, batch.rows))
            state.ids.extend(batch.ids)
            _process_batch(batch, state, index, opts, bands_n, rows_per_band, timings)
            progress.update(ok=True, n=len(batch))  # once per batch: no per-row work
        progress.close()
        report.read = stats.read + len(state.failed)
        report.rejected = stats.rejected

        t = time.monotonic()
        keep_of, similarity, kind_of = _duplicates(state, opts)
        timings["duplicates"] += time.monotonic() - t
        paraphrases: dict[int, FilterReason] = {}
        if opts.semantic:
            t = time.monotonic()
            from graphgen.semantic import semantic_pass

            candidates = np.flatnonzero((kind_of == 0) & _clean(state))
            paraphrases = semantic_pass(settings, state.texts_for_semantic or [], candidates, _rank(state),
                                        items, keep_of, similarity, kind_of, quiet=inputs.quiet)
            timings["semantic"] += time.monotonic() - t
        judged: dict[int, FilterReason] = {}
        if judging:
            # the judge behind the n-gram rule: rows the rule and dedup kept, against their
            # nearest benchmark questions (graphgen.semantic.judge_contamination)
            t = time.monotonic()
            from graphgen.semantic import judge_contamination

            candidates = np.flatnonzero((kind_of == 0) & _clean(state))
            judged, judge, asked = judge_contamination(settings, state.texts_for_semantic or [], candidates, items,
                                                       quiet=inputs.quiet)
            report.add_judge(judge.tally, judge.from_journal)
            report.judge = {"mode": settings.judge.contamination, "model": judge.model, "rows": int(len(candidates)),
                            "pairs": asked, "calls": judge.tally.done, "removed": len(judged),
                            "top_k": settings.judge.contamination_top_k,
                            "floor": settings.judge.contamination_floor}
            timings["judge"] += time.monotonic() - t
        t = time.monotonic()
        decisions = _write_outputs(inputs, opts, state, spool, keep_of, similarity, kind_of, paraphrases, items,
                                   summaries, report, judged, decisions=store is not None)
        if store is not None:  # the row status every later stage reads (graphgen.status)
            report.decisions_recorded = store.add_filter_decisions(decisions)
        timings["write"] += time.monotonic() - t
    finally:
        spool.close()
        if rejects_fh is not None:
            rejects_fh.close()
    if index is not None:
        for item_idx in index.matched_items:
            name = items[item_idx][0]
            next(s for s in summaries if s.name == name).items_matched += 1
    report.benchmarks = summaries
    report.settings = {
        "ngram": opts.ngram, "number_variants": opts.number_variants, "solutions": opts.solutions,
        "jaccard": opts.jaccard, "shingle": opts.shingle, "num_perm": opts.num_perm,
        "lsh_bands": bands_n, "lsh_rows_per_band": rows_per_band, "minhash": opts.minhash, "near_numbers": opts.near_numbers,
        "semantic": opts.semantic, "benchmark_ngrams_indexed": index.size if index is not None else 0,
        "boilerplate_items": opts.boilerplate_items, "min_item_coverage": opts.min_item_coverage,
        "boilerplate_ngrams_dropped": index.boilerplate_dropped if index is not None else 0,
        "boilerplate_examples": index.boilerplate if index is not None else {},
    }
    if opts.semantic:
        report.settings.update(semantic_threshold=opts.semantic_threshold,
                               paraphrase_threshold=opts.paraphrase_threshold,
                               drop_paraphrases=opts.drop_paraphrases)
    report.timings = {k: round(v, 3) for k, v in timings.items()}
    report.elapsed_s = time.monotonic() - started
    report_path = inputs.path("report")
    report.outputs["report"] = str(report_path)
    _atomic_write_text(report_path, json.dumps(report.to_json(), indent=2, ensure_ascii=False) + "\n")
    return report


def _process_batch(batch: QuestionBatch, state: _Rows, index, opts: FilterSettings,
                   bands_n: int, rows_per_band: int, timings: Counter) -> None:
    """Decontaminate one batch and compute its hashes and MinHash signatures."""
    if not len(batch):
        return
    base = len(state.ids) - len(batch)
    usable = np.ones(len(batch), dtype=bool)
    if batch.skipped:
        usable[np.fromiter(batch.skipped, dtype=np.int64)] = False
    questions = batch.questions
    state.usable.append(usable)
    field = opts.verified_field
    if state.verdicts:
        verified = (_is_verified(state.ids[base + k], row, field, state.verdicts) for k, row in enumerate(batch.rows))
    else:  # no stored verdicts: only rows that carry the field can say they are verified
        verified = (field in row and marked_verified(row, field) for row in batch.rows)
    state.verified.append(np.fromiter(verified, dtype=bool, count=len(batch)))
    if state.texts_for_semantic is not None:
        state.texts_for_semantic.extend(questions)

    t = time.monotonic()
    # tokens and matches in chunks whose arrays stay in the CPU cache (a whole batch's do not:
    # the same work took ~2x longer); the near-duplicate pass gets the batch's tokens whole
    parts = []
    for c in range(0, len(batch), _CHUNK_ROWS):
        tokens, words = neardup.tokenize(questions[c:c + _CHUNK_ROWS])
        parts.append(tokens)
        if index is None:
            continue
        fields = [("question", tokens, words)]
        if opts.solutions:
            fields.append(("solution", *neardup.tokenize([solution or "" for solution in batch.solutions[c:c + _CHUNK_ROWS]])))
        for field, toks, wl in fields:
            for i, hits in index.match(toks, wl).items():
                _contaminated(state, index, opts, base + c + i, bool(usable[c + i]), hits, field)
    tokens = neardup.concat_tokens(parts) if opts.near else None
    timings["decontamination"] += time.monotonic() - t

    t = time.monotonic()
    if opts.exact:
        state.exact.append(np.fromiter((_exact_hash(normalise_question(q)) for q in questions), dtype=np.uint64,
                                       count=len(questions)))
    else:
        state.exact.append(np.zeros(len(questions), dtype=np.uint64))
    timings["exact_hash"] += time.monotonic() - t
    if opts.near:
        t = time.monotonic()
        flat, offsets = neardup.shingle_hashes(tokens, opts.shingle, masked=opts.near_numbers == "masked")
        sig = neardup.minhash_signatures(flat, offsets, opts.num_perm, opts.minhash)
        state.bands.append(neardup.band_keys(sig, bands_n, rows_per_band))
        state.sig.append(sig.astype(np.uint16))  # 16 bits per value are plenty to compare
        timings["minhash"] += time.monotonic() - t


_CHUNK_ROWS = 2000  # rows tokenised and matched at once


def _contaminated(state: _Rows, index, opts: FilterSettings, row: int, usable: bool, hits: list, field: str) -> None:
    """Record row `row` as contaminated when one of its benchmark hits counts."""
    if not usable or row in state.contaminated:
        return
    # a plain n-gram hit counts when the shared n-grams cover enough of the item
    # (a sibling problem sharing one stock sentence is not a copy)
    hits = [h for h in hits if h.kind != "ngram" or h.coverage >= opts.min_item_coverage]
    if not hits:
        return
    hit = max(hits, key=lambda h: (h.coverage, -h.item))
    bench, item_id, _text = index.items[hit.item]
    how = {"ngram": f"{index.n}-gram", "ngram-numbers": f"{index.n}-gram (numbers masked)",
           "contained": "whole item contained",
           "contained-numbers": "whole item contained, numbers masked",
           "one-word-changed": "whole item, one word changed"}[hit.kind]
    more = (f" and {len(hit.ngrams) - 1} more" if len(hit.ngrams) > 1 else "") + \
        f"; {hit.coverage:.0%} of the item covered"
    state.contaminated[row] = FilterReason(
        kind="contaminated", benchmark=bench, item_id=item_id, ngram=hit.ngram, ngrams=hit.ngrams, coverage=round(hit.coverage, 4),
        match=hit.kind, field=field,
        message=f"contaminated by {bench}:{item_id} ({field}, {how}: \"{hit.ngram}\"{more})")


_JOURNAL_KINDS = {"concepts", "fusion", "variant", "path"}


def _rank(state: _Rows) -> np.ndarray:
    """Keep priority (lower rank is kept): contaminated rows first, so that a copy of a
    contaminated row is removed with it instead of being kept in its place; then verified
    rows, then input order (generated rows only: by id)."""
    verified = state.arrays("verified", bool)
    n = len(verified)
    contaminated = np.zeros(n, dtype=bool)
    if state.contaminated:
        contaminated[np.fromiter(state.contaminated, dtype=np.int64)] = True
    # generated rows arrive in the order their LLM calls finished, which a rerun or a resume
    # changes: among them the smallest id is kept, so the same rows give the same result
    journal = n and all(k in _JOURNAL_KINDS for k in state.kinds)
    last = np.argsort(np.argsort(np.array(state.ids, dtype=object), kind="stable")) if journal else np.arange(n)
    order = np.lexsort((last, ~verified, ~contaminated))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank


def _clean(state: _Rows) -> np.ndarray:
    """Rows that take part in dedup: not failed, not contaminated."""
    clean = state.arrays("usable", bool).copy()
    if state.contaminated:
        clean[np.fromiter(state.contaminated, dtype=np.int64)] = False
    return clean


def _duplicates(state: _Rows, opts: FilterSettings) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """keep_of[i] (i itself when kept), similarity[i], kind_of[i] (0 kept, 1 exact, 2 near)."""
    n = len(state.ids)
    keep_of = np.arange(n, dtype=np.int64)
    similarity = np.ones(n, dtype=np.float32)
    kind_of = np.zeros(n, dtype=np.int8)
    if not n:
        return keep_of, similarity, kind_of
    rank = _rank(state)
    groups = _groups(state)
    rows = np.flatnonzero(state.arrays("usable", bool))
    if opts.exact and len(rows):
        exact = state.arrays("exact", np.uint64)
        order = rows[np.lexsort((rank[rows], exact[rows]))]
        h = exact[order]
        del exact
        first = np.concatenate(([True], h[1:] != h[:-1]))
        leader = order[np.maximum.accumulate(np.where(first, np.arange(len(order)), 0))]
        dup = ~first & (groups[order] != groups[leader])  # siblings of one lineage stay
        keep_of[order[dup]] = leader[dup]
        kind_of[order[dup]] = 1
        rows = np.sort(order[~dup])
    if opts.near and len(rows) > 1:
        bands = state.bands.take(rows)
        sig = state.sig.take(rows)
        local_keep, sims = neardup.near_duplicate_clusters(bands, sig, rank[rows], opts.jaccard,
                                                           groups=groups[rows])
        del bands, sig
        dup = local_keep != np.arange(len(rows))
        keep_of[rows[dup]] = rows[local_keep[dup]]
        similarity[rows[dup]] = sims[dup]
        kind_of[rows[dup]] = 2
    state.bands, state.sig = _Blocks(), _Blocks()  # not needed after this: freed before the outputs are written
    return keep_of, similarity, kind_of


_KIND_NAMES = {1: "duplicate", 2: "near_duplicate", 3: "semantic_duplicate"}


def _dup_reason(kind: int, kept_id: str, sim: float) -> FilterReason:
    if kind == 1:
        return FilterReason(kind="duplicate", of=kept_id, cluster=kept_id,
                            message=f"duplicate of {kept_id} (same normalised question)")
    if kind == 2:
        return FilterReason(kind="near_duplicate", of=kept_id, cluster=kept_id, similarity=round(float(sim), 4),
                            message=f"near duplicate of {kept_id} (estimated Jaccard {sim:.2f})")
    return FilterReason(kind="semantic_duplicate", of=kept_id, cluster=kept_id, similarity=round(float(sim), 4),
                        message=f"semantic near duplicate of {kept_id} (cosine {sim:.3f})")


def _write_outputs(inputs: FilterInputs, opts: FilterSettings, state: _Rows, spool: _Spool,
                   keep_of: np.ndarray, similarity: np.ndarray, kind_of: np.ndarray,
                   paraphrases: dict[int, FilterReason], items, summaries: list[BenchmarkSummary],
                   report: FilterReport, judged: dict[int, FilterReason] | None = None,
                   decisions: bool = False) -> list[FilterDecision]:
    """Kept rows to the output as read (runs of kept rows copied from the spool whole),
    removed and flagged rows with their reasons; with ``decisions`` every row's
    `FilterDecision` (for the store)."""
    judged = judged or {}
    paths = {name: inputs.path(name) for name in ("output", "removed", "flagged")}
    paths["output"] = inputs.output
    tmp = {name: p.with_name(f".{p.name}.tmp-{os.getpid()}") for name, p in paths.items()}
    by_name = {s.name: s for s in summaries}
    removed_by_kind: Counter[str] = Counter()
    examples: dict[str, list[Example]] = {}
    for p in tmp.values():
        p.parent.mkdir(parents=True, exist_ok=True)
    handles = {name: open(p, "wb") for name, p in tmp.items()}
    # with `decisions`, every removed row's reason (for the store); without, none is kept: at
    # 1M rows the ~700k removed rows' reasons held ~600 MB until the end
    reasons: dict[int, FilterReason] = {}
    n = len(state.ids)
    # rows that need a look: failed, contaminated, duplicates, judged, flagged; the rest are kept
    special = kind_of != 0
    for marked in (state.failed, state.contaminated, judged, paraphrases):
        if marked:
            special[np.fromiter(marked, dtype=np.int64, count=len(marked))] = True
    ends = spool.ends()
    if len(ends) != n:
        raise RuntimeError(f"filter: the spool holds {len(ends)} rows for {n} read")  # never silently
    src = spool.reader()
    out = handles["output"]
    special = np.flatnonzero(special)  # in input order, as Python ints 64k at a time
    todo = (i for k in range(0, len(special), 1 << 16) for i in special[k:k + (1 << 16)].tolist())

    def copy_kept(upto: int) -> None:
        """Rows from the spool's position up to row `upto` (exclusive) go to the output whole."""
        size = int(ends[upto - 1]) - src.tell() if upto else 0
        while size > 0:
            chunk = src.read(min(size, 1 << 24))
            if not chunk:
                raise RuntimeError("filter: the spool ended early")
            out.write(chunk)
            size -= len(chunk)

    try:
        for i in todo:
            copy_kept(i)
            line = src.read(int(ends[i]) - src.tell())
            raw = line[:-1].decode("utf-8")
            row_id = state.ids[i]
            reason: FilterReason | None = None
            if i in state.failed:
                reason = FilterReason(kind="failed", message=state.failed[i])
            elif i in state.contaminated:
                reason = state.contaminated[i]
                bench = by_name[reason.benchmark]
                bench.rows_removed += 1
                if len(bench.examples) < opts.examples:
                    bench.examples.append(Example(row_id=row_id, detail=reason.message))
            elif kind_of[i]:
                reason = _dup_reason(int(kind_of[i]), state.ids[keep_of[i]], similarity[i])
                if (source := state.contaminated.get(int(keep_of[i]))) is not None:
                    reason.message += f", itself contaminated by {source.benchmark}:{source.item_id}"
                bucket = examples.setdefault(reason.kind, [])
                if len(bucket) < opts.examples:
                    bucket.append(Example(row_id=row_id, detail=reason.message))
            elif i in judged:  # the judge confirmed a benchmark paraphrase: removed, whatever drop_paraphrases says
                reason = judged[i]
                bench = by_name[reason.benchmark]
                bench.paraphrases += 1
                bench.rows_removed += 1
                if len(bench.examples) < opts.examples:
                    bench.examples.append(Example(row_id=row_id, detail=reason.message))
            elif i in paraphrases and report.judge is None:
                # (with the judge on, a cosine flag alone is not a paraphrase: the judge said no)
                para = paraphrases[i]
                by_name[para.benchmark].paraphrases += 1
                if opts.drop_paraphrases:
                    reason = para
                else:
                    handles["flagged"].write(_reason_line(row_id, para, raw).encode("utf-8"))
                    report.flagged += 1
            if reason is None:
                out.write(line)
            else:
                if decisions:
                    reasons[i] = reason
                handles["removed"].write(_reason_line(row_id, reason, raw).encode("utf-8"))
                removed_by_kind[reason.kind] += 1
                report.removed += 1
        copy_kept(n)
        report.kept = n - report.removed
        for fh in handles.values():
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
        for name, p in tmp.items():
            if name == "flagged" and not report.flagged:
                p.unlink()
                continue
            os.replace(p, paths[name])
            report.outputs[name if name != "output" else "kept"] = str(paths[name])
    finally:
        for fh in handles.values():
            fh.close()
        for p in tmp.values():
            p.unlink(missing_ok=True)
    report.removed_by_kind = dict(removed_by_kind)
    report.duplicate_examples = examples
    dup = kind_of > 0
    for code, name in _KIND_NAMES.items():
        members = dup & (kind_of == code)
        if members.any():
            report.clusters[name] = int(len(np.unique(keep_of[members])))
    if not decisions:
        return []
    return [FilterDecision(row_id=row_id, row_kind=kind, decision="kept" if (reason := reasons.get(i)) is None else reason.kind,
                           reason=reason if reason is not None else paraphrases.get(i))
            for i, (row_id, kind) in enumerate(zip(state.ids, state.kinds))]


def _atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
