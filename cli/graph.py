"""`graphgen graph …`: look at, export, push and pull the concept graph."""

from __future__ import annotations

import json
from pathlib import Path

import click

from graphgen_cli.common import (echo_json, echo_report, friendly_errors, judge_options, judge_section, llm_options,
                                 open_graph_store, settings_from, store_options)


@click.group()
def graph() -> None:
    """Inspect and move the concept graph."""


@graph.command()
@click.option("--top", default=10, show_default=True, help="how many top concepts per kind")
@click.option("--json", "as_json", is_flag=True, help="print machine-readable JSON")
@store_options
@click.pass_context
@friendly_errors
def stats(ctx, top, as_json, **opts):
    """Counts, degree distribution and top concepts.

    \b
    Example:
      graphgen graph stats --top 5
    """
    from graphgen.graph import graph_report

    with open_graph_store(settings_from(ctx, **opts)) as store:
        st = store.stats()
        report = {"seeds": st.seeds, "extracted_seeds": st.extracted_seeds, "generated": st.generated,
                  **graph_report(list(store.concepts()), list(store.edges()), top=top)}
    if as_json:
        echo_json(report)
        return
    click.echo(f"seeds: {report['seeds']} ({report['extracted_seeds']} extracted); generated questions: {report['generated']}")
    click.echo("concepts: " + (", ".join(f"{v} {k}" for k, v in report["concepts"].items()) or "none"))
    click.echo("edges:    " + (", ".join(f"{v} {k}" for k, v in report["edges"].items()) or "none"))
    for kind, label in (("topic", "topics"), ("kp", "knowledge points")):
        if f"{kind}_degree" not in report:
            continue
        d = report[f"{kind}_degree"]
        hist = "  ".join(f"{b}:{n}" for b, n in d["histogram"].items())
        click.echo(f"\n{label} degree: min {d['min']}, median {d['median']}, mean {d['mean']}, max {d['max']}")
        click.echo(f"  histogram  {hist}")
        click.echo(f"  top {label} (frequency, degree):")
        for row in report[f"top_{kind}"]:
            click.echo(f"    {row['frequency']:>6} {row['degree']:>5}  {row['name']}")


@graph.command(name="export")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help=".graphml or .json (node-link)")
@click.option("--format", "fmt", type=click.Choice(["graphml", "node-link"]), help="[default: from the file extension]")
@store_options
@click.pass_context
@friendly_errors
def export_graph(ctx, output, fmt, **opts):
    """Write the concept graph as GraphML or node-link JSON (networkx).

    \b
    Examples:
      graphgen graph export -o concepts.graphml
      graphgen graph export -o concepts.json
    """
    import networkx as nx

    from graphgen.graph import to_networkx

    fmt = fmt or ("graphml" if output.endswith(".graphml") else "node-link")
    with open_graph_store(settings_from(ctx, **opts)) as store:
        g = to_networkx(store.concepts(), store.edges())
    if fmt == "graphml":
        nx.write_graphml(g, output)
    else:
        Path(output).write_text(json.dumps(nx.node_link_data(g, edges="links"), ensure_ascii=False), encoding="utf-8")
    click.echo(f"wrote {g.number_of_nodes()} concepts and {g.number_of_edges()} edges to {output} ({fmt})")


def _both_stores(ctx, opts):
    """(embedded SQLite store, Neo4j store) from the same settings, whatever `store.kind` says."""
    from graphgen.store import SQLiteStore, StoreError, open_store

    settings = settings_from(ctx, **opts)
    if not settings.store.neo4j_uri:
        raise click.ClickException("no Neo4j to copy to/from: set NEO4J_URI (and NEO4J_PASSWORD) or pass --neo4j-uri")
    try:
        neo4j = open_store(settings.store.model_copy(update={"kind": "neo4j"}))
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    return SQLiteStore(settings.store.path), neo4j


def _existing_sqlite(settings):
    """The embedded workspace to push from: it must exist (never create an empty one)."""
    open_graph_store(settings.model_copy(update={"store": settings.store.model_copy(update={"kind": "sqlite"})})).close()


def _copy(src, dst, what: str) -> None:
    from graphgen.workspace_copy import copy_workspace

    with src, dst:
        counts = copy_workspace(src, dst, progress=lambda step, n: click.echo(f"  {step}: {n}", err=True))
    click.echo(f"{what}: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + " (counts match)")


@graph.command()
@store_options
@click.pass_context
@friendly_errors
def push(ctx, **opts):
    """Copy the embedded workspace (seeds, extractions, concept graph, generated questions
    with lineage, and every row's status: solve's verdicts, filter's decisions, check's results, pass rates) into Neo4j.
    Re-pushing the same workspace changes nothing.

    \b
    Example:
      NEO4J_URI=bolt://localhost:7687 NEO4J_PASSWORD=secret graphgen graph push --db graphgen.db
    """
    _existing_sqlite(settings_from(ctx, **opts))
    sqlite, neo4j = _both_stores(ctx, opts)
    _copy(sqlite, neo4j, "pushed to Neo4j")


@graph.command()
@store_options
@click.pass_context
@friendly_errors
def pull(ctx, **opts):
    """Copy a whole Neo4j workspace into the embedded SQLite file (--db).

    \b
    Example:
      NEO4J_URI=bolt://localhost:7687 NEO4J_PASSWORD=secret graphgen graph pull --db copy.db
    """
    sqlite, neo4j = _both_stores(ctx, opts)
    _copy(neo4j, sqlite, "pulled from Neo4j")


@graph.command()
@click.option("-o", "--output", default="merges.tsv", show_default=True, type=click.Path(dir_okay=False),
              help="review file to write the proposed merges to")
@click.option("--apply", "apply_file", type=click.Path(dir_okay=False, exists=True),
              help="store this (reviewed) merge file in the workspace and rebuild the graph through it")
@click.option("--min-cosine", type=float, help="embedding cosine names with similar words need [default 0.8]")
@click.option("--word-ratio", type=float, help="spelling similarity (0-1) each differing word needs [default 0.7]")
@click.option("--embeddings-cache", help="embedding cache file, or 'off' [default ./graphgen-embeddings.db]")
@click.option("--judge-min-cosine", type=float, help="embedding cosine a pair needs to go to the judge [default 0.6]")
@click.option("--dry-run", is_flag=True, help="say how many pairs the judge would be asked about, and the cost; write nothing")
@click.option("--json", "as_json", is_flag=True, help="print the summary as JSON")
@judge_options("concepts")
@llm_options
@store_options
@click.pass_context
@friendly_errors
def canonicalize(ctx, output, apply_file, min_cosine, word_ratio, embeddings_cache, judge_min_cosine, dry_run,
                 as_json, judge_mode, judge_model, **opts):
    """Merge near-duplicate concepts: propose merges into a review file, or --apply one.

    Names of one kind merge when they have the same words ("Applying the Pythagorean
    theorem"), similarly spelled words and close embeddings ("Pythagoras' theorem"), or one
    is the other's acronym ("GCD"). Opposites never merge (like/unlike, increasing/decreasing,
    non-/un-/in- prefixes, different numbers), judge or not. With --judge, a model is asked
    "same concept?" about close pairs the rules refuse (fallback) or about every close pair
    (always); the review file shows its reason. Extractions keep the names as written; the
    stored map is applied whenever the graph is built. Undo a merge by deleting its line and
    applying the file again.

    \b
    Examples:
      graphgen graph canonicalize -o merges.tsv
      graphgen graph canonicalize -o merges.tsv --judge fallback --dry-run
      graphgen graph canonicalize -o merges.tsv --judge fallback --judge-model gpt-4o
      graphgen graph canonicalize --apply merges.tsv
    """
    from graphgen.stages import canonicalize as stage

    sections = {"canonicalize": {"min_cosine": min_cosine, "word_ratio": word_ratio,
                                 "embeddings_cache": embeddings_cache},  # "off" disables it (config)
                **judge_section("concepts", judge_mode, judge_model)}
    sections["judge"]["min_cosine"] = judge_min_cosine
    settings = settings_from(ctx, sections=sections, **opts)
    inputs = stage.CanonicalizeInputs(review=Path(output), apply=Path(apply_file) if apply_file else None,
                                      dry_run=dry_run, quiet=bool(opts.get("quiet")))
    with open_graph_store(settings) as store:
        report = stage.run(settings, store, inputs)
    echo_report(report, as_json)
