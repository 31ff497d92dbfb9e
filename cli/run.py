"""`graphgen run`: the whole pipeline, extract to report, in one resumable command."""

from __future__ import annotations

from pathlib import Path

import click

from graphgen_cli.common import (echo_report, engine_options, friendly_errors, llm_options, open_graph_store,
                                 settings_from, store_options)


@click.command("run")
@click.argument("seeds", nargs=-1, type=click.Path(exists=True))
@click.option("-o", "--out-dir", type=click.Path(file_okay=False), help="every stage's outputs [default: run; [pipeline] out_dir]")
@click.option("-n", "--samples", type=int, help="concept samples, about as many generated questions [default 200]")
@click.option("--seed", type=int, help="random seed of the sampler [default 7]")
@click.option("--from-annotations", "annotations", type=click.Path(exists=True, dir_okay=False), help="hand-written extractions instead of the LLM")
@click.option("--fusion/--no-fusion", default=None, help="also fusion pairs and fused questions [default off]")
@click.option("--variants/--no-variants", default=None, help="number-shifted variants of verified questions [default on]")
@click.option("--check/--no-check", "check", default=None, help="check every generated row for being well-posed (graphgen check) before filter and export [default on]")
@click.option("--benchmarks", multiple=True, type=click.Path(exists=True), help="benchmark files or directories to decontaminate against [also: [filter] benchmarks]")
@click.option("--layout", type=click.Choice(["alpaca", "sharegpt", "chatml", "raw"]), help="dataset row layout [default chatml]")
@store_options
@llm_options
@engine_options
@click.pass_context
@friendly_errors
def run(ctx, seeds, out_dir, samples, seed, annotations, fusion, variants, check, benchmarks, layout, **opts):
    """Run the pipeline on SEEDS: extract -> sample -> generate -> solve -> variants ->
    check -> filter -> export -> report, ending with the clean dataset (train.jsonl: only rows that
    passed every gate; train_paths.jsonl: verified reasoning paths) and report.html in the
    output directory. Running it again resumes: finished work is never paid twice.
    Options not given here come from graphgen.toml ([pipeline] and each stage's section).

    \b
    Examples:
      graphgen run seeds.jsonl -o run --benchmarks benchmarks/
      graphgen run examples/seeds.jsonl --from-annotations examples/annotations.jsonl -n 100 --fusion
      graphgen run                      # seeds and everything else from [pipeline] in graphgen.toml
    """
    from graphgen import pipeline

    pipe = {"seeds": [Path(s) for s in seeds] or None, "out_dir": out_dir, "samples": samples, "seed": seed,
            "annotations": annotations, "fusion": fusion, "variants": variants, "check": check}
    sections = {"pipeline": pipe, "export": {"layout": layout},
                "filter": {"benchmarks": [Path(b) for b in benchmarks] or None}}
    settings = settings_from(ctx, sections=sections, **opts)

    def show(name: str, rep) -> None:
        click.echo(f"== {name}")
        echo_report(rep)

    with open_graph_store(settings, create=True) as store:
        result = pipeline.run(settings, store, pipeline.PipelineInputs(quiet=bool(opts.get("quiet"))), on_stage=show)
    click.echo("==")
    echo_report(result)
