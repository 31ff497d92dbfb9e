"""`graphgen report`: the workspace as one self-contained HTML page (or its numbers as JSON)."""

from __future__ import annotations

from pathlib import Path

import click

from graphgen_cli.common import echo_report, friendly_errors, open_graph_store, settings_from, store_options


@click.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="HTML file to write [default: report.html unless --json]")
@click.option("--json", "as_json", is_flag=True, help="print the report's numbers as JSON (with -o: write the page too)")
@click.option("--samples", multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="concept samples JSONL for coverage [default: the generated rows' concepts] (repeatable)")
@click.option("--verdicts", multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="`graphgen solve` verdicts.jsonl [default: verdicts in the store, if any] (repeatable)")
@click.option("--filter-removed", multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="`graphgen filter` removed.jsonl or its report JSON (repeatable)")
@click.option("--stage-report", multiple=True, type=click.Path(dir_okay=False, exists=True),
              help="a stage's report JSON, for its tokens and cost (repeatable)")
@click.option("--top-topics", type=int, help="topics drawn and listed [default 30]")
@store_options
@click.pass_context
@friendly_errors
def report(ctx, output, as_json, samples, verdicts, filter_removed, stage_report, top_topics, **opts):
    """Write one self-contained HTML page of plots and tables about the workspace.

    Concepts per kind, degree distribution, components, top topics, merges applied, a
    drawing of the topic graph; for generated data its topic distribution against the
    seeds', concept coverage and how it grew, verification pass rates per topic (solve),
    rows removed by filter by reason, tokens and cost by stage. Nothing is fetched when the
    page is viewed. --json prints the same numbers.

    \b
    Examples:
      graphgen report -o report.html
      graphgen report --json > report.json
      graphgen report -o report.html --verdicts solved/verdicts.jsonl --filter-removed removed.jsonl
    """
    from graphgen.stages import report as stage

    settings = settings_from(ctx, sections={"report": {"top_topics": top_topics}}, **opts)
    target = Path(output) if output else (None if as_json else Path("report.html"))
    inputs = stage.ReportInputs(output=target, samples=[Path(p) for p in samples],
                                verdicts=[Path(p) for p in verdicts],
                                filter_removed=[Path(p) for p in filter_removed],
                                stage_reports=[Path(p) for p in stage_report])
    with open_graph_store(settings) as store:
        result = stage.run(settings, store, inputs)
    echo_report(result, as_json)
