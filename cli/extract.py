"""`graphgen extract`: seeds -> concepts -> the stored concept graph."""

from __future__ import annotations

from pathlib import Path

import click

from graphgen_cli.common import (echo_json, engine_options, friendly_errors, llm_options, open_graph_store, settings_from,
                                 store_options)


@click.command()
@click.argument("seeds", nargs=-1, required=True, type=click.Path())
@click.option("--question-field", help="field holding the question [auto: question, problem, ...]")
@click.option("--solution-field", help="field holding the worked solution [auto]")
@click.option("--answer-field", help="field holding the final answer [auto]")
@click.option("--id-field", help="field holding a stable id [auto; else a content hash]")
@click.option("--source", help="dataset name recorded on each seed [default: file stem]")
@click.option("--prefix-ids", is_flag=True, help="make native ids <source>-<id>, for files that all number their rows 0, 1, 2 ...")
@click.option("--skip-invalid", is_flag=True, help="go on past bad rows; write them with reasons to --rejects")
@click.option("--rejects", type=click.Path(dir_okay=False), default="rejects.jsonl", show_default=True, help="where --skip-invalid writes rejected rows")
@click.option("--failures", type=click.Path(dir_okay=False), default="extract-failures.jsonl", show_default=True, help="replies that never validated, with raw text (appended, with the run id)")
@click.option("--from-annotations", type=click.Path(exists=True, dir_okay=False), help="build the graph from hand-written annotations (JSONL) instead of an LLM")
@click.option("--include-solution", is_flag=True, help="show the seed's solution to the LLM too")
@click.option("--limit", type=int, help="only the first N seeds")
@click.option("--dry-run", is_flag=True, help="render prompts and estimate tokens and cost; call no LLM")
@store_options
@llm_options
@engine_options
@click.pass_context
@friendly_errors
def extract(ctx, seeds, question_field, solution_field, answer_field, id_field, source, prefix_ids, skip_invalid,
            rejects, failures, from_annotations, include_solution, limit, dry_run, quiet, **opts):
    """Extract topics and knowledge points from SEEDS and build the concept graph.

    SEEDS are JSONL, JSON, CSV, Parquet files or saved Hugging Face dataset directories.
    Re-running resumes: seeds already extracted are skipped, cached replies cost nothing.

    \b
    Examples:
      graphgen extract examples/seeds.jsonl --from-annotations examples/annotations.jsonl
      graphgen extract data/gsm8k_train.jsonl --model gpt-4o-mini --concurrency 32
      graphgen extract math.jsonl --question-field problem --dry-run
      graphgen extract data/gsm8k_train.jsonl --ray        # on the Ray cluster this node belongs to
    """
    from graphgen.graph import rebuild
    from graphgen.extract import ConceptExtractor, estimate_dry_run, ingest_seeds, pending_seeds, read_annotations, run_extraction
    from graphgen.records import RunSummary
    from graphgen.seeds import FieldMap, SeedReadStats, read_seeds, write_rejects

    settings = settings_from(ctx, **opts)
    field_map = FieldMap(question=question_field, solution=solution_field, answer=answer_field, id=id_field)
    summary = RunSummary()
    rejected: list = []
    with open_graph_store(settings, create=True) as store:
        read_stats = SeedReadStats()
        items = read_seeds([Path(s) for s in seeds], field_map, skip_invalid=skip_invalid, source=source,
                           prefix_ids=prefix_ids, stats=read_stats)
        seed_ids = ingest_seeds(store, items, summary, rejected, limit=limit)
        for line in read_stats.field_map_lines():  # a wrong guess is visible before anything is paid
            click.echo(f"fields: {line}", err=True)
        if rejected:
            write_rejects(rejected, Path(rejects))
            click.echo(f"{len(rejected)} rejected rows written to {rejects}", err=True)
        if not seed_ids and summary.rejected:
            raise click.ClickException(
                f"all {summary.rejected} rows were rejected (reasons in {rejects}): nothing to extract; "
                "check the files and the field mapping (--question-field, --id-field, ...)")
        if summary.changed:
            click.echo(f"{summary.changed} stored seeds have a new question text: their old extractions "
                       "were dropped and they are extracted again", err=True)
        if from_annotations:
            n = store.add_extractions(read_annotations(Path(from_annotations), set(seed_ids)))
            stats = rebuild(store)
            summary.extracted = n
            _print_summary(summary, stats, settings)
            return
        todo = pending_seeds(store, seed_ids, summary)
        extractor = ConceptExtractor(include_solution=include_solution)
        if dry_run:
            echo_json(estimate_dry_run(store, todo, extractor, settings.llm.model, settings.llm.price_for(settings.llm.model)))
            return
        from graphgen.llm import LLMClient

        from graphgen.engine import state_dir_for

        client = LLMClient(settings.llm)
        failed = run_extraction(store, client, todo, summary, extractor=extractor,
                                failures_path=Path(failures), quiet=quiet, engine=settings.engine,
                                state_dir=state_dir_for(settings, "extract", _store_identity(settings)))
        if failed:
            click.echo(f"{len(failed)} seeds failed (raw replies in {failures}); run again to retry them", err=True)
        _print_summary(summary, store.stats(), settings)


def _store_identity(settings) -> str:
    st = settings.store
    return f"neo4j {st.neo4j_uri} {st.neo4j_database}" if st.kind == "neo4j" else f"sqlite {Path(st.path).resolve()}"


def _print_summary(summary, stats, settings) -> None:
    t = summary.llm
    cost = t.cost_text() if settings.llm.price_for(settings.llm.model) else "unknown (no price for model)"
    click.echo(
        f"read {summary.read}, rejected {summary.rejected}, already done {summary.skipped_done}, "
        f"extracted {summary.extracted} ({t.cached} from cache), failed {t.failed}"
    )
    if t.tokens:
        click.echo(f"tokens: {t.prompt_tokens} prompt + {t.completion_tokens} completion; cost {cost}")
    concepts = ", ".join(f"{v} {k}" for k, v in stats.concepts.items()) or "none"
    edges = ", ".join(f"{v} {k}" for k, v in stats.edges.items()) or "none"
    click.echo(f"graph: {stats.extracted_seeds}/{stats.seeds} seeds extracted; concepts: {concepts}; edges: {edges}")
