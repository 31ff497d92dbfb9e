"""`graphgen check`: is each generated question well-posed, with one answer, and of which type?"""

from __future__ import annotations

import json
from pathlib import Path

import click

from graphgen_cli.common import (echo_json, echo_report, engine_options, friendly_errors, judge_options, judge_section,
                                 llm_options, open_graph_store, settings_from, store_options)


@click.command()
@click.argument("inputs", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--out-dir", default="checked", show_default=True, type=click.Path(file_okay=False),
              help="where checks.jsonl and the judgements journal go (resumable)")
@click.option("--fail-type", "fail_types", multiple=True,
              type=click.Choice(["proof", "multiple_choice", "yes_no", "invalid"]),
              help="problem types that fail the check (repeat) [default: proof, invalid; [check] fail_problem_types]")
@click.option("--limit", type=int, help="check at most this many rows")
@click.option("--dry-run", is_flag=True, help="count the judgements still to make and estimate tokens and cost; call no LLM")
@click.option("--report", "report_path", type=click.Path(dir_okay=False), help="also write the summary as JSON")
@judge_options("questions")
@store_options
@llm_options
@engine_options
@click.pass_context
@friendly_errors
def check(ctx, inputs, out_dir, fail_types, limit, dry_run, report_path, judge_mode, judge_model, quiet, **opts):
    """Check each generated question: rule pre-checks first (an empty or cut-off question
    fails without a call; the answer type is read from the answer where its form is plain),
    then the model judge says whether it is well-posed and solvable, whether it has one
    answer, its answer type (integer, decimal, fraction, expression, interval, set,
    multiple_choice, proof, other) and its problem type (regular, proof, multiple_choice,
    yes_no, invalid). The result is stored as row status; export leaves out the rows that
    failed (--include-all keeps them, with their status) and can select by type.

    INPUTS: `graphgen generate` outputs; with none, every generated row in the store.
    --judge off checks with the rules alone; --judge-model picks another judge model.
    Each judgement is asked once: a rerun, or a run resumed after a crash, pays nothing twice.
    --ray runs the judge calls on a Ray cluster, --batch through the provider's Batch API
    (about half the price; rerun the same command to resume). Run it before `graphgen solve`:
    solve and variants skip the rows that failed (--include-failed-check keeps them).

    \b
    Examples:
      graphgen check generated.jsonl -o checked
      graphgen check                                  # the store's generated rows
      graphgen check generated.jsonl --judge-model gpt-4o --dry-run
      graphgen check generated.jsonl -o checked --batch            # Batch API, half the price
      graphgen check generated.jsonl -o checked --ray              # on the Ray cluster
      graphgen export generated.jsonl -o train.jsonl --problem-type regular --answer-type integer
    """
    from graphgen.stages.check import CheckInputs, run

    sections = judge_section("questions", judge_mode, judge_model)
    if fail_types:
        sections["check"] = {"fail_problem_types": list(fail_types)}
    settings = settings_from(ctx, sections=sections, quiet=quiet, **opts)
    request = CheckInputs(files=[Path(p) for p in inputs], out_dir=Path(out_dir), limit=limit, dry_run=dry_run,
                          quiet=quiet)
    exists = settings.store.kind == "neo4j" or settings.store.path.exists()
    if inputs and dry_run and not exists:
        report = run(settings, None, request)
    else:
        with open_graph_store(settings, create=bool(inputs)) as store:
            report = run(settings, store, request)
    if report.estimate is not None:
        echo_json(report.estimate)
        return
    echo_report(report)
    if report_path:
        Path(report_path).write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")
