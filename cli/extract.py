"""`graphgen extract`: seeds -> concepts -> the stored concept graph."""

from __future__ import annotations

from pathlib import Path

import click

from graphgen_cli.common import (echo_json, echo_report, engine_options, friendly_errors, llm_options, open_graph_store,
                                 settings_from, store_options)


@click.command()
@click.argument("seeds", nargs=-1, required=True, type=click.Path())
@click.option("--question-field", help="field holding the question [auto: question, problem, ...]")
@click.option("--solution-field", help="field holding the worked solution [auto]")
@click.option("--answer-field", help="field holding the final answer [auto]")
@click.option("--id-field", help="field holding a stable id [auto; else a content hash]")
@click.option("--source", help="dataset name recorded on each seed [default: file stem]")
@click.option("--prefix-ids", is_flag=True, default=None, help="make native ids <source>-<id>, for files that all number their rows 0, 1, 2 ...")
@click.option("--skip-invalid", is_flag=True, default=None, help="go on past bad rows; write them with reasons to --rejects")
@click.option("--rejects", type=click.Path(dir_okay=False), default="rejects.jsonl", show_default=True, help="where --skip-invalid writes rejected rows")
@click.option("--failures", type=click.Path(dir_okay=False), default="extract-failures.jsonl", show_default=True, help="replies that never validated, with raw text (appended, with the run id)")
@click.option("--from-annotations", type=click.Path(exists=True, dir_okay=False), help="build the graph from hand-written annotations (JSONL) instead of an LLM")
@click.option("--include-solution", is_flag=True, default=None, help="show the seed's solution to the LLM too")
@click.option("--limit", type=click.IntRange(min=0), help="only the first N seeds")
@click.option("--dry-run", is_flag=True, help="render prompts and estimate tokens and cost; call no LLM")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@store_options
@llm_options
@engine_options
@click.pass_context
@friendly_errors
def extract(ctx, seeds, question_field, solution_field, answer_field, id_field, source, prefix_ids, skip_invalid,
            rejects, failures, from_annotations, include_solution, limit, dry_run, as_json, quiet, **opts):
    """Extract topics and knowledge points from SEEDS and build the concept graph.

    SEEDS are JSONL, JSON, CSV, Parquet files or saved Hugging Face dataset directories.
    Re-running resumes: seeds already extracted are skipped, cached replies cost nothing.
    Options can also live in an [extract] section of graphgen.toml.

    \b
    Examples:
      graphgen extract examples/seeds.jsonl --from-annotations examples/annotations.jsonl
      graphgen extract data/gsm8k_train.jsonl --model gpt-4o-mini --concurrency 32
      graphgen extract math.jsonl --question-field problem --dry-run
      graphgen extract data/gsm8k_train.jsonl --ray        # on the Ray cluster this node belongs to
    """
    from graphgen.stages import extract as stage

    sections = {"extract": {
        "question_field": question_field, "solution_field": solution_field, "answer_field": answer_field,
        "id_field": id_field, "source": source, "prefix_ids": prefix_ids, "skip_invalid": skip_invalid,
        "include_solution": include_solution}}
    settings = settings_from(ctx, sections=sections, **opts)
    inputs = stage.ExtractInputs(
        seed_files=[Path(s) for s in seeds], annotations=Path(from_annotations) if from_annotations else None,
        rejects=Path(rejects), failures=Path(failures), limit=limit, dry_run=dry_run, quiet=quiet)
    if dry_run and settings.store.kind != "neo4j" and not settings.store.path.exists():
        # a dry run writes nothing, not even an empty workspace: a throwaway one answers
        import tempfile

        with tempfile.TemporaryDirectory(prefix="graphgen-dry-run-") as tmp:
            scratch = settings.model_copy(update={"store": settings.store.model_copy(update={"path": Path(tmp) / "ws.db"})})
            with open_graph_store(scratch, create=True) as store:
                report = stage.run(settings, store, inputs)
    else:
        with open_graph_store(settings, create=True) as store:
            report = stage.run(settings, store, inputs)
    if report.estimate is not None:
        echo_json(report.estimate)
        for line in report.warnings:
            click.echo(line, err=True)
    else:
        echo_report(report, as_json)
