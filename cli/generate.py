"""`graphgen generate …`: new questions from concept samples, fused questions from pairs."""

from __future__ import annotations

import json
from pathlib import Path

import click

from graphgen.errors import one_line
from graphgen.records import FUSION_STRATEGIES
from graphgen_cli.common import (echo_json, echo_report, engine_options, friendly_errors, include_failed_check_option,
                                 judge_options, judge_section, llm_options, open_graph_store, settings_from,
                                 store_options)


@click.group()
def generate() -> None:
    """Generate new questions with step-by-step solutions through the LLM."""


def _shard(text):
    from graphgen.rows import Shard

    try:
        Shard.parse(text)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return text


def _run_generate(ctx, inputs_kw: dict, dry_run: bool, sections: dict, opts: dict) -> None:
    """Map flags to settings, then estimate (--dry-run) or run the generate stage and print its report."""
    from graphgen.stages import generate as stage

    settings = settings_from(ctx, sections={"generate": sections}, **opts)
    inputs = stage.GenerateInputs(**inputs_kw)
    with open_graph_store(settings) as store:
        if dry_run:
            echo_json(stage.estimate(settings, store, inputs))
            return
        report = stage.run(settings, store, inputs)
    echo_report(report)


@generate.command()
@click.option("--samples", required=True, type=click.Path(exists=True, dir_okay=False), help="samples JSONL from `graphgen sample concepts`")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="generated rows JSONL (appended; resumable)")
@click.option("--difficulty", help="e.g. easy, medium, hard, competition [default medium]")
@click.option("--style", help="e.g. 'word problem', 'symbolic', 'multiple choice' [default word problem]")
@click.option("--shard", help="i/n: run only this machine's share (0-based), disjoint and reproducible")
@click.option("--dry-run", is_flag=True, help="render the prompts still to run and estimate tokens and cost; call no LLM")
@store_options
@llm_options
@engine_options
@click.pass_context
@friendly_errors
def questions(ctx, samples, output, difficulty, style, shard, dry_run, quiet, **opts):
    """One new question + solution + answer per concept sample (MathScale).

    \b
    Examples:
      graphgen generate questions --samples samples.jsonl -o generated.jsonl
      graphgen generate questions --samples samples.jsonl -o gen.1.jsonl --shard 1/4 --difficulty hard
      graphgen generate questions --samples samples.jsonl -o generated.jsonl --dry-run
      graphgen generate questions --samples samples.jsonl -o generated.jsonl --ray 10.0.0.5:6379
      graphgen generate questions --samples samples.jsonl -o generated.jsonl --batch
    """
    _run_generate(ctx, dict(kind="questions", input=Path(samples), output=Path(output), shard=_shard(shard), quiet=quiet),
                  dry_run, {"difficulty": difficulty, "style": style}, opts)


@generate.command()
@click.option("--pairs", required=True, type=click.Path(exists=True, dir_okay=False), help="pairs JSONL from `graphgen sample fusion-pairs`")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="fused rows JSONL (appended; resumable)")
@click.option("--strategy", type=click.Choice([*FUSION_STRATEGIES, "all"]), help="MathFusion fusion strategy [default all]")
@click.option("--shard", help="i/n: run only this machine's share (0-based)")
@click.option("--dry-run", is_flag=True, help="render the prompts still to run and estimate tokens and cost; call no LLM")
@store_options
@llm_options
@engine_options
@click.pass_context
@friendly_errors
def fusion(ctx, pairs, output, strategy, shard, dry_run, quiet, **opts):
    """Fuse each seed pair into one new problem (MathFusion).

    Sequential: one problem's result feeds the other. Parallel: one problem needing both
    ideas at once. Conditional: both give comparable quantities; the question compares them.

    \b
    Examples:
      graphgen generate fusion --pairs pairs.jsonl -o fused.jsonl --strategy all
      graphgen generate fusion --pairs pairs.jsonl -o seq.jsonl --strategy sequential
    """
    strategies = None if strategy is None else list(FUSION_STRATEGIES) if strategy == "all" else [strategy]
    _run_generate(ctx, dict(kind="fusion", input=Path(pairs), output=Path(output), shard=_shard(shard), quiet=quiet),
                  dry_run, {"strategies": strategies}, opts)


@generate.command()
@click.option("--paths", "paths", multiple=True, required=True, type=click.Path(exists=True, dir_okay=False), help="verified code paths (paths.jsonl from `graphgen solve`); repeatable")
@click.option("--questions", multiple=True, type=click.Path(exists=True, dir_okay=False), help="seed or generated-row files with the questions' text, if the paths rows lack it; repeatable")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="variant rows JSONL (appended; resumable)")
@click.option("--rejects", type=click.Path(dir_okay=False), help="rejected variants with reasons [default: <output>.rejects.jsonl]")
@click.option("--mode", "modes", multiple=True, type=click.Choice(["distribution", "similar", "scale"]), help="number shift (repeatable) [default: all three]: distribution + int(N(1000,300)), similar + N(5,1), scale x [1/3,3]")
@click.option("--per-question", type=int, help="variants per question and mode [default 1]")
@click.option("--tries", type=int, help="draws per variant before it is rejected [default 3]")
@click.option("--seed", type=int, help="random seed: same seed and inputs, same variants [default 0]")
@click.option("--min-agreement", type=int, help="distinct verified code paths that must agree on the new answer [default 2]")
@click.option("--rewrite", is_flag=True, default=None, help="one LLM call per kept variant to fix wording (numbers checked unchanged)")
@click.option("--program-timeout", type=float, help="sandbox seconds per program [default 5]")
@click.option("--workers", type=int, help="sandbox worker processes [default: CPU count]")
@click.option("--isolation", type=click.Choice(["auto", "bwrap", "process"]), help="sandbox for programs [default auto: bubblewrap if present]")
@click.option("--limit", type=int, help="only the first N questions")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="also write the summary as JSON")
@include_failed_check_option
@judge_options("answers")
@store_options
@llm_options
@engine_options
@click.pass_context
@friendly_errors
def variants(ctx, paths, questions, output, rejects, modes, per_question, tries, seed, min_agreement, rewrite,
             program_timeout, workers, isolation, limit, report_path, include_failed_check, judge_mode, judge_model,
             quiet, **opts):
    """Number-shifted variants of questions with verified code paths (MMOS problem generator).

    Shifts the numbers the code uses, consistently in question and code, re-runs the programs
    in the sandbox, and keeps a variant when enough of the original's code paths agree on the
    new answer and it keeps the original answer's kind. With --judge fallback, a model judges
    whether programs that print the answer in different forms ("1234 dollars" and 1234) agree
    where the rule cannot tell; its verdict is stored beside the rule's in each row and export
    picks with --verified-by. Originals that failed `graphgen check` are skipped.

    \b
    Examples:
      graphgen generate variants --paths paths.jsonl -o variants.jsonl
      graphgen generate variants --paths paths.jsonl --questions seeds.jsonl -o v.jsonl --mode similar --per-question 3 --seed 7
      graphgen generate variants --paths paths.jsonl -o v.jsonl --rewrite --model gpt-4o-mini
      graphgen generate variants --paths solved/paths.jsonl -o v.jsonl --judge fallback --judge-model gpt-4o
      graphgen generate variants --paths solved/paths.jsonl -o v.jsonl --judge fallback --batch
    """
    from graphgen.config import VariantsSettings
    from graphgen.stages.variants import VariantsInputs, run

    sections = judge_section("answers", judge_mode, judge_model)
    if include_failed_check:
        sections["check"] = {"skip_failed": False}
    settings = settings_from(ctx, sections=sections, quiet=quiet, **opts)
    given = {"modes": list(modes) or None, "per_question": per_question, "tries": tries, "seed": seed,
             "min_agreement": min_agreement, "rewrite": rewrite, "timeout_s": program_timeout, "workers": workers,
             "isolation": isolation}
    try:
        settings.variants = VariantsSettings.model_validate(
            {**settings.variants.model_dump(), **{k: v for k, v in given.items() if v is not None}})
    except ValueError as exc:
        raise click.BadParameter(str(exc).splitlines()[-1]) from None
    inputs = VariantsInputs(paths=[Path(p) for p in paths], questions=[Path(q) for q in questions],
                            output=Path(output), rejects=Path(rejects) if rejects else None, limit=limit, quiet=quiet)
    try:
        with open_graph_store(settings, create=True) as store:
            report = run(settings, store, inputs)
    except ValueError as exc:
        raise click.ClickException(one_line(exc)) from None
    echo_report(report)
    if report_path:
        Path(report_path).write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
