"""`graphgen graph …`: look at, export, push and pull the concept graph."""

from __future__ import annotations

import json
from pathlib import Path

import click

from graphgen_cli.common import echo_json, friendly_errors, open_graph_store, settings_from, store_options


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
