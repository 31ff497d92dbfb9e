"""`graphgen export`: generated rows to the formats fine-tuning tools read."""

from __future__ import annotations

from pathlib import Path

import click

from graphgen_cli.common import echo_report, friendly_errors, open_graph_store, settings_from, store_options


@click.command()
@click.argument("inputs", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", required=True, type=click.Path(), help="output file (jsonl, parquet) or directory (hf)")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "parquet", "hf"]), help="file format; hf = a `datasets` save_to_disk directory [default jsonl]")
@click.option("--layout", type=click.Choice(["alpaca", "sharegpt", "chatml", "raw"]), help="row layout; every layout keeps lineage in `metadata` [default chatml]")
@click.option("--system-prompt", help="system turn for sharegpt/chatml")
@click.option("--include-failed", is_flag=True, default=None, help="also export rows whose generation failed")
@click.option("--include-all", is_flag=True, default=None, help="also rows a gate left out (unverified, duplicates, contaminated, ...), each with its status in metadata")
@click.option("--verified-only", is_flag=True, help="require solve's verdicts even where none exist for these rows (fails when there are none); verification applies by default whenever solve has run")
@click.option("--verified-by", type=click.Choice(["rule", "judge", "both", "any"]), help="which verdict makes a row verified: the rule's (math-verify / vote), the judge's (solve --judge), both or any [default rule]")
@click.option("--answer-type", "answer_types", multiple=True, type=click.Choice(["integer", "decimal", "fraction", "expression", "interval", "set", "multiple_choice", "proof", "other"]), help="only rows `graphgen check` gave this answer type (repeat for several) [default: any]")
@click.option("--problem-type", "problem_types", multiple=True, type=click.Choice(["regular", "proof", "multiple_choice", "yes_no", "invalid"]), help="only rows `graphgen check` gave this problem type (repeat for several) [default: any]")
@click.option("--paths", "paths_file", type=click.Path(exists=True, dir_okay=False), help="solve's paths.jsonl: one training row per kept path")
@click.option("--verdicts", "verdicts_file", type=click.Path(exists=True, dir_okay=False), help="solve's verdicts.jsonl [default: next to --paths; else the store's verdicts]")
@store_options
@click.pass_context
@friendly_errors
def export(ctx, inputs, output, fmt, layout, system_prompt, include_failed, include_all, verified_only, verified_by,
           answer_types, problem_types, paths_file, verdicts_file, **opts):
    """Export generated rows from INPUTS (generate outputs, e.g. shards) or, with no
    INPUTS, every generated row in the store. Rows are merged by id: no duplicates.

    Clean by default: only rows that passed every gate that ran on them (check's question
    checks, solve's verification, filter's decisions, as recorded in the workspace or
    --verdicts); the rest are counted per reason. Nothing left: nothing written, exit status 1.

    \b
    Examples:
      graphgen export generated.jsonl fused.jsonl -o train.jsonl --layout chatml
      graphgen export gen.*.jsonl -o train.parquet --format parquet --layout alpaca
      graphgen export -o train_hf --format hf --layout sharegpt
      graphgen export generated.jsonl --verified-only --verdicts solved/verdicts.jsonl -o train.jsonl
      graphgen export --paths solved/paths.jsonl -o train_paths.jsonl
      graphgen export --paths solved/paths.jsonl --verified-by any -o train_paths.jsonl
      graphgen export generated.jsonl -o train.jsonl --problem-type regular --answer-type integer
    """
    from graphgen.stages import export as stage

    section = {"format": fmt, "layout": layout, "system_prompt": system_prompt, "include_failed": include_failed,
               "include_all": include_all, "verified_by": verified_by,
               "answer_types": list(answer_types) or None, "problem_types": list(problem_types) or None}
    settings = settings_from(ctx, sections={"export": section}, **opts)
    request = stage.ExportInputs(inputs=[Path(p) for p in inputs], output=Path(output), verified_only=verified_only,
                                 paths=Path(paths_file) if paths_file else None,
                                 verdicts=Path(verdicts_file) if verdicts_file else None)
    # The workspace holds the row status (verdicts, filter decisions): read whenever it exists;
    # files alone are exported with what --verdicts says.
    exists = settings.store.kind == "neo4j" or settings.store.path.exists()
    if (paths_file or inputs) and not exists:
        report = stage.run(settings, None, request)
    else:
        with open_graph_store(settings) as store:
            report = stage.run(settings, store, request)
    echo_report(report)
