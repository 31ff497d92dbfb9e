"""`graphgen run`: the whole pipeline in one command, ending with the clean dataset and the
report.

    report = run(settings, store, PipelineInputs())     # [pipeline] of graphgen.toml

Order: extract -> sample concepts (and, with `fusion`, fusion pairs) -> generate questions
(and fusion) -> check them (is each generated row well-posed, with one answer; `[pipeline]
check`) -> solve the generated rows (those that failed the check are skipped, never paid for:
`[check] skip_failed`) -> variants of the verified ones -> check the variants -> solve them ->
filter (dedup, decontamination against `[filter] benchmarks`) -> export (clean: only rows that
passed every gate, graphgen.status) -> report. Every output goes under `out_dir` with a fixed
name, so running the same command again resumes each stage as that stage resumes on its own
(extracted seeds, generated rows, sampled paths and variants are never paid twice; sample,
filter, export and report recompute). Each stage's report is written as JSON to
`out_dir/reports/<n>-<stage>.json`, and the report page counts every stage's cost from them.

This module calls the stages' own `run` functions, one after the other; it adds no logic
of its own beyond naming the files.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field

from graphgen.config import Settings
from graphgen.stage import StageError, StageReport
from graphgen.store.base import GraphStore

__all__ = ["PipelineInputs", "PipelineReport", "run"]


class PipelineInputs(BaseModel):
    """One `graphgen run`: the [pipeline] settings decide the rest."""

    quiet: bool = False


class PipelineReport(StageReport):
    stage: str = "run"
    stages: list[dict] = Field(default_factory=list, description="each stage's report, in order")
    outputs: dict[str, str] = Field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"pipeline finished in {self.elapsed_s:.1f}s: " + " -> ".join(s["stage"] for s in self.stages)]
        out += [f"{name}: {path}" for name, path in self.outputs.items()]
        return out


def run(settings: Settings, store: GraphStore, inputs: PipelineInputs,
        on_stage: Callable[[str, StageReport], None] | None = None) -> PipelineReport:
    """Run every stage in order; `on_stage(name, report)` after each (the CLI prints it)."""
    from graphgen.stages import (check, export, extract, filter as filter_, generate, pairs, report as report_, sample,
                                 solve, variants)

    t0 = time.monotonic()
    p = settings.pipeline
    if not p.seeds:
        raise StageError("graphgen run: no seed files; pass SEEDS or set [pipeline] seeds in graphgen.toml")
    out = Path(p.out_dir)
    (out / "reports").mkdir(parents=True, exist_ok=True)
    result = PipelineReport()
    reports: list[Path] = []

    def done(name: str, rep: StageReport) -> StageReport:
        path = out / "reports" / f"{len(reports) + 1:02d}-{name.replace(' ', '-')}.json"
        path.write_text(json.dumps(rep.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        reports.append(path)
        result.stages.append({"stage": name, "report": str(path)})
        if on_stage is not None:
            on_stage(name, rep)
        return rep

    q = inputs.quiet
    done("extract", extract.run(settings, store, extract.ExtractInputs(
        seed_files=list(p.seeds), annotations=p.annotations, rejects=out / "rejects.jsonl",
        failures=out / "extract-failures.jsonl", quiet=q)))
    if not any(c.kind == "topic" for c in store.concepts()):
        # say what happened here, not sample's "run graphgen extract first": extract just ran
        raise StageError(f"graphgen run: extraction gave the graph no topic to sample from (see "
                         f"{out / 'extract-failures.jsonl'} for each failed seed's reply and reason); run the same "
                         "command again to retry the failed seeds, or use a stronger model (--model)")
    done("sample concepts", sample.run(settings, store, sample.SampleInputs(
        count=p.samples, output=out / "samples.jsonl", seed=p.seed)))
    generated = {out / "generated.jsonl": done("generate questions", generate.run(settings, store, generate.GenerateInputs(
        kind="questions", input=out / "samples.jsonl", output=out / "generated.jsonl", quiet=q)))}
    if p.fusion:
        done("sample fusion-pairs", pairs.run(settings, store, pairs.PairsInputs(output=out / "pairs.jsonl", quiet=q)))
        generated[out / "fused.jsonl"] = done("generate fusion", generate.run(settings, store, generate.GenerateInputs(
            kind="fusion", input=out / "pairs.jsonl", output=out / "fused.jsonl", quiet=q)))
    # a generation step whose every call failed wrote no row: the later stages read the others
    rows = [r for r in generated if r.exists() and r.stat().st_size]
    failures = [rep.failures_path for r, rep in generated.items() if r not in rows and rep.failures_path]
    result.notes += [f"{r.name}: no rows written" for r in generated if r not in rows]
    if not rows:
        raise StageError("graphgen run: generation wrote no rows (" + (
            f"each failure's reply and reason is in {', '.join(failures)}" if failures else "nothing to generate from")
            + "); run the same command again to retry them, or use a stronger model (--model)")
    if p.check:
        # before solve: a row that failed the check is not solved (solve reads the stored check)
        done("check", check.run(settings, store, check.CheckInputs(files=list(rows), out_dir=out / "checked", quiet=q)))
    solved = out / "solved"
    done("solve", solve.run(settings, store, solve.SolveInputs(files=[str(r) for r in rows], out_dir=solved, quiet=q)))
    if p.variants:
        variant_rows = out / "variants.jsonl"
        done("variants", variants.run(settings, store, variants.VariantsInputs(
            paths=[solved / "paths.jsonl"], questions=[solved / "verdicts.jsonl"], output=variant_rows, quiet=q)))
        if variant_rows.exists() and variant_rows.stat().st_size:
            rows.append(variant_rows)
            if p.check:
                done("check variants", check.run(settings, store, check.CheckInputs(
                    files=[variant_rows], out_dir=out / "checked-variants", quiet=q)))
            # a variant's answer comes from agreeing programs; solving it checks that (and
            # gives it the verdict export requires of every generated row once solve has run)
            done("solve variants", solve.run(settings, store, solve.SolveInputs(
                files=[str(variant_rows)], out_dir=out / "solved-variants", quiet=q)))
        else:
            result.notes.append("variants: none made (see the variants report); the dataset has none")
    kept = out / "kept.jsonl"
    done("filter", filter_.run(settings, store, filter_.FilterInputs(inputs=rows, output=kept, quiet=q)))
    train = out / f"train.{'jsonl' if settings.export.format == 'jsonl' else settings.export.format}"
    done("export", export.run(settings, store, export.ExportInputs(inputs=rows, output=train)))
    result.outputs["dataset"] = str(train)
    if p.paths:
        train_paths = train.with_name("train_paths" + train.suffix)
        try:
            done("export paths", export.run(settings, store, export.ExportInputs(
                paths=solved / "paths.jsonl", output=train_paths)))
            result.outputs["paths dataset"] = str(train_paths)
        except StageError as exc:  # no verified path is no reason to lose the report
            result.notes.append(f"paths dataset not written: {exc}")
    page = out / "report.html"
    # extraction and generation costs are in the store (every run's); every other stage's
    # (check, solve, variants, filter: their judges included) from its report
    costs = [r for r in reports if json.loads(r.read_text(encoding="utf-8")).get("stage")
             not in ("extract", "generate questions", "generate fusion")]
    done("report", report_.run(settings, store, report_.ReportInputs(
        output=page, samples=[out / "samples.jsonl"], stage_reports=costs)))
    result.outputs["report"] = str(page)
    result.elapsed_s = time.monotonic() - t0
    return result
