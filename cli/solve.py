"""`graphgen solve`: several verified reasoning paths per question, the most diverse kept."""

from __future__ import annotations

import json
from pathlib import Path

import click

from graphgen.errors import one_line
from graphgen_cli.common import (echo_json, echo_report, engine_options, friendly_errors, include_failed_check_option,
                                 judge_options, judge_section, llm_options, open_graph_store, settings_from,
                                 store_options)


@click.command()
@click.argument("inputs", nargs=-1)
@click.option("--from-store", is_flag=True, help="solve the seeds in the store")
@click.option("-o", "--out-dir", default="solved", show_default=True, type=click.Path(file_okay=False), help="where paths.jsonl, verdicts.jsonl and failures.jsonl go (resumable)")
@click.option("--paths", "n_paths", type=int, help="reasoning paths per question and style [default 4]")
@click.option("--style", type=click.Choice(["cot", "code", "both"]), help="cot: prose + \\boxed{}; code: a Python program [default both]")
@click.option("--keep", type=int, help="most diverse correct paths kept per question [default 3]")
@click.option("--min-agreement", type=float, help="without gold: share of votes the majority needs [default 0.5]")
@click.option("--difficulty-aware", is_flag=True, default=None, help="sample more paths (up to --max-paths) where few are correct")
@click.option("--max-paths", type=int, help="difficulty-aware cap per question and style [default 16]")
@click.option("--answer-field", help="field holding the gold answer [default: detected]")
@click.option("--program-timeout", type=float, help="seconds per program [default 5]")
@click.option("--isolation", type=click.Choice(["auto", "bwrap", "process"]), help="sandbox for programs [default auto: bubblewrap if present]")
@click.option("--shard", help="i/n: solve only this machine's share of the questions (0-based)")
@click.option("--limit", type=int, help="solve at most this many questions")
@click.option("--skip-invalid", is_flag=True, help="record bad input rows in failures.jsonl instead of stopping")
@click.option("--reference", is_flag=True, help="a reference model's run (with --model REF): store only its pass rate per question (difficulty), keyed by model; leave the verdicts as they are")
@click.option("--dry-run", is_flag=True, help="count the paths still to sample and estimate tokens and cost; call no LLM")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="also write the summary as JSON")
@include_failed_check_option
@judge_options("answers")
@store_options
@llm_options
@engine_options
@click.pass_context
@friendly_errors
def solve(ctx, inputs, from_store, out_dir, n_paths, style, keep, min_agreement, difficulty_aware, max_paths,
          answer_field, program_timeout, isolation, shard, limit, skip_invalid, reference, dry_run, report_path, quiet,
          include_failed_check, judge_mode, judge_model, **opts):
    """Sample several reasoning paths per question (prose and/or Python programs), check
    them (gold answer, or majority vote), and keep the most diverse correct ones (MMOS).
    With --judge fallback, a model judges each answer math-verify rejects or cannot parse
    ("x = 3" for 3, "$1,000" for 1000); its verdict is stored beside the rule's and export
    picks with --verified-by.

    INPUTS: seed files (JSONL/JSON/CSV/Parquet/HF dataset dir), `graphgen generate` outputs,
    or nothing with --from-store. Programs run in a sandbox, never in graphgen's process.
    Rows that failed `graphgen check` are skipped (--include-failed-check solves them).
    --temperature sets the sampling temperature of the paths [default 0.7].

    \b
    Examples:
      graphgen solve examples/seeds.jsonl -o solved --paths 4 --style both
      graphgen solve generated.jsonl -o solved-gen --style code --min-agreement 0.6
      graphgen solve examples/seeds.jsonl -o solved --dry-run
      graphgen solve examples/seeds.jsonl -o solved --judge fallback --judge-model gpt-4o
      graphgen solve generated.jsonl -o solved-ref --reference --model qwen2.5-7b   # difficulty
      graphgen solve generated.jsonl -o solved-gen --ray        # sampling on the Ray cluster
      graphgen solve generated.jsonl -o solved-gen --include-failed-check   # also ill-posed rows
      graphgen export --paths solved/paths.jsonl -o train_paths.jsonl
    """
    from graphgen.config import SolveSettings
    from graphgen.stages.solve import SolveInputs, run

    if not inputs and not from_store:
        raise click.UsageError("give question files, or --from-store")
    temperature = opts.pop("temperature", None)
    sections = judge_section("answers", judge_mode, judge_model)
    if include_failed_check:
        sections["check"] = {"skip_failed": False}
    settings = settings_from(ctx, sections=sections, **opts)
    flags = {"paths": n_paths, "style": style, "keep": keep, "min_agreement": min_agreement,
             "difficulty_aware": difficulty_aware, "max_paths": max_paths, "answer_field": answer_field,
             "program_timeout_s": program_timeout, "isolation": isolation, "temperature": temperature}
    try:
        settings.solve = SolveSettings.model_validate(
            {**settings.solve.model_dump(), **{k: v for k, v in flags.items() if v is not None}})
        run_inputs = SolveInputs(files=list(inputs), from_store=from_store, out_dir=Path(out_dir), shard=shard,
                                 limit=limit, dry_run=dry_run, skip_invalid=skip_invalid, quiet=quiet,
                                 reference=reference)
    except ValueError as exc:
        raise click.BadParameter(one_line(exc)) from None
    try:
        if from_store or not dry_run:
            with open_graph_store(settings, create=True) as store:
                report = run(settings, store, run_inputs)
        else:
            report = run(settings, None, run_inputs)
    except ValueError as exc:
        raise click.ClickException(one_line(exc)) from None
    if report.estimate is not None:
        echo_json(report.estimate)
        return
    echo_report(report)
    if report.paths_failed:
        click.echo(f"{report.paths_failed} paths failed (reasons and raw replies in {report.outputs['failures']}); "
                   "run the same command again to retry them", err=True)
    if report_path:
        Path(report_path).write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
