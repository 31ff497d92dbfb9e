"""`graphgen filter`: dedup and benchmark decontamination of generated (or seed) rows."""

from __future__ import annotations

from pathlib import Path

import click

from graphgen.errors import one_line
from graphgen_cli.common import (echo_report, friendly_errors, judge_options, judge_section, llm_options, open_graph_store,
                                 settings_from, store_options)


@click.command("filter")
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="kept rows (JSONL), each as it was read")
@click.option("--removed", type=click.Path(dir_okay=False), help="removed rows with reasons [default: <output stem>.removed.jsonl next to -o]")
@click.option("--flagged", type=click.Path(dir_okay=False), help="kept rows flagged as possible paraphrases [default: <output stem>.flagged.jsonl next to -o]")
@click.option("--report", type=click.Path(dir_okay=False), help="report JSON [default: <output stem>.report.json next to -o]")
@click.option("--benchmarks", multiple=True, type=click.Path(), help="benchmark file or directory (repeatable; JSONL, JSON, CSV, Parquet, HF dataset) [also: [filter] benchmarks in graphgen.toml]")
@click.option("--benchmark-question-field", help="question field of the benchmark files [auto: question, problem, Question+Body, input, ...]")
@click.option("--ngram", type=click.Choice(["8", "10", "13"]), help="decontamination n-gram length in words [default 13]")
@click.option("--boilerplate-items", type=int, help="n-grams shared by at least this many benchmark items are boilerplate and never match; 0 counts every n-gram [default 0]")
@click.option("--min-item-coverage", type=float, help="a plain n-gram match counts when the shared n-grams cover at least this share of the benchmark item [default 0.5]")
@click.option("--no-number-variants", is_flag=True, default=None, help="do not also match n-grams with numbers masked")
@click.option("--solutions", is_flag=True, default=None, help="also check solutions against the benchmarks")
@click.option("--jaccard", type=float, help="near-duplicate threshold, estimated Jaccard of word shingles [default 0.8]")
@click.option("--no-exact", is_flag=True, default=None, help="keep exact duplicates")
@click.option("--no-near", is_flag=True, default=None, help="skip MinHash near-duplicate removal")
@click.option("--near-numbers", type=click.Choice(["masked", "exact"]), help="near-duplicate shingles with every number as one placeholder (a copy with its numbers shifted is a near duplicate) or numbers as written [default masked]")
@click.option("--minhash", type=click.Choice(["rensa", "datasketch"]), help="MinHash library [default rensa]")
@click.option("--semantic", is_flag=True, default=None, help="also embedding near duplicates (cosine >= 0.95) and benchmark paraphrase flags (>= 0.9)")
@click.option("--semantic-threshold", type=float, help="cosine for semantic near duplicates [default 0.95]")
@click.option("--paraphrase-threshold", type=float, help="cosine to a benchmark item flagged as paraphrase [default 0.9]")
@click.option("--drop-paraphrases", is_flag=True, default=None, help="remove flagged paraphrases instead of only reporting them")
@click.option("--embeddings-cache", type=click.Path(dir_okay=False), help="embedding cache file for --semantic [default graphgen-embeddings.db]")
@click.option("--seeds", is_flag=True, help="the inputs are seed files (check seeds themselves against benchmarks)")
@click.option("--question-field", help="field holding the question [auto: question, problem, ...]")
@click.option("--solution-field", help="field holding the solution (for --solutions) [auto]")
@click.option("--id-field", help="field holding the row id [auto: id, ...; else a content hash]")
@click.option("--skip-invalid", is_flag=True, help="go on past bad rows; write them with reasons to --rejects")
@click.option("--rejects", type=click.Path(dir_okay=False), default="rejects.jsonl", show_default=True, help="where --skip-invalid writes rejected rows")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
@judge_options("contamination")
@click.option("--judge-top-k", type=int, help="--judge: nearest benchmark questions judged per row [default 3]")
@click.option("--judge-floor", type=float, help="--judge: cosine a benchmark neighbour needs to be judged [default 0.75]")
@store_options
@llm_options
@click.pass_context
@friendly_errors
def filter_(ctx, inputs, output, removed, flagged, report, benchmarks, benchmark_question_field, ngram,
            boilerplate_items, min_item_coverage, no_number_variants, solutions, jaccard, no_exact, no_near, near_numbers, minhash, semantic, semantic_threshold,
            paraphrase_threshold, drop_paraphrases, embeddings_cache, seeds, question_field, solution_field,
            id_field, skip_invalid, rejects, as_json, quiet, judge_mode, judge_model, judge_top_k, judge_floor, **opts):
    """Remove duplicates and benchmark-contaminated rows from INPUTS (generated, fused,
    variant or path rows; seed files with --seeds): exact duplicates, MinHash near
    duplicates, n-gram overlap with benchmark questions. Writes the kept rows unchanged,
    <output stem>.removed.jsonl with a reason per row, and a report. When the workspace
    exists (--db, or Neo4j), every row's decision is recorded there too, and `graphgen
    export` leaves out the rows filter removed; otherwise export the kept file.

    \b
    Examples:
      graphgen filter examples/generated.jsonl -o kept.jsonl --benchmarks examples/benchmarks/
      graphgen filter gen.jsonl fused.jsonl -o kept.jsonl --benchmarks bench/ --ngram 10 --solutions
      graphgen filter seeds.jsonl --seeds -o clean_seeds.jsonl --benchmarks gsm8k_test.jsonl
      graphgen filter gen.jsonl -o kept.jsonl --benchmarks bench/ --judge always   # reworded benchmark items too

    With --judge, each row's nearest benchmark questions by embedding (--judge-top-k above
    --judge-floor) go to a model asking "same problem?" in both orders; a yes removes the row
    as a paraphrase, with the benchmark, the item and the judge's answers.
    """
    from graphgen.stages.filter import FilterInputs, run
    from graphgen.readers import FieldMap

    sections = judge_section("contamination", judge_mode, judge_model)
    sections["judge"].update(contamination_top_k=judge_top_k, contamination_floor=judge_floor)
    settings = settings_from(ctx, sections=sections, **opts)
    flt = settings.filter
    updates = {
        "benchmarks": [Path(b) for b in benchmarks] or None,
        "benchmark_question_field": benchmark_question_field,
        "ngram": int(ngram) if ngram else None,
        "number_variants": False if no_number_variants else None,
        "boilerplate_items": boilerplate_items, "min_item_coverage": min_item_coverage,
        "solutions": solutions, "jaccard": jaccard,
        "exact": False if no_exact else None, "near": False if no_near else None,
        "near_numbers": near_numbers, "minhash": minhash, "semantic": semantic, "semantic_threshold": semantic_threshold,
        "paraphrase_threshold": paraphrase_threshold, "drop_paraphrases": drop_paraphrases,
        "embeddings_cache": embeddings_cache,
    }
    try:
        settings.filter = flt.model_validate({**flt.model_dump(), **{k: v for k, v in updates.items() if v is not None}})
    except ValueError as exc:
        raise click.ClickException(one_line(exc)) from None
    job = FilterInputs(
        inputs=[Path(p) for p in inputs], output=Path(output),
        removed=Path(removed) if removed else None, flagged=Path(flagged) if flagged else None,
        report=Path(report) if report else None, rejects=Path(rejects),
        field_map=FieldMap(question=question_field, solution=solution_field, id=id_field),
        seeds=seeds, skip_invalid=skip_invalid, quiet=quiet,
    )
    if settings.store.kind == "neo4j" or settings.store.path.exists():
        with open_graph_store(settings) as store:
            result = run(settings, store, job)
    else:
        result = run(settings, None, job)
    echo_report(result, as_json)
    if result.rejected:
        click.echo(f"{result.rejected} rejected rows written to {rejects}", err=True)
