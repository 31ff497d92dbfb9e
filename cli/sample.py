"""`graphgen sample …`: concept combinations (random walks) and fusion pairs."""

from __future__ import annotations

from pathlib import Path

import click

from graphgen_cli.common import echo_json, friendly_errors, open_graph_store, settings_from, store_options


@click.group()
def sample() -> None:
    """Sample what to generate from: concept combinations or seed pairs."""


def _steps(text: str) -> tuple[int, int]:
    lo, _, hi = text.partition("-")
    try:
        return int(lo), int(hi or lo)
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected MIN-MAX, e.g. 1-2") from None


@sample.command()
@click.option("-n", "count", type=int, required=True, help="how many distinct concept combinations")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="samples JSONL")
@click.option("--seed", type=int, default=0, show_default=True, help="random seed (same seed, same samples)")
@click.option("--topic-steps", default="1-2", show_default=True, help="steps on the topic subgraph, MIN-MAX")
@click.option("--kp-steps", default="0-4", show_default=True, help="steps on the knowledge-point subgraph, MIN-MAX")
@click.option("--start", type=click.Choice(["frequency", "uniform"]), default="frequency", show_default=True, help="how the start topic is chosen")
@click.option("--edge-weight", type=click.Choice(["count", "weight"]), default="count", show_default=True, help="steps proportional to co-occurrence count (MathScale) or association weight")
@click.option("--coverage", is_flag=True, help="bias starts toward the topics covered least so far")
@click.option("--exemplars", type=int, default=3, show_default=True, help="k few-shot seeds per sample, closest by knowledge-point Jaccard")
@store_options
@click.pass_context
@friendly_errors
def concepts(ctx, count, output, seed, topic_steps, kp_steps, start, edge_weight, coverage, exemplars, **opts):
    """MathScale random walks: topic -> topic(s) -> knowledge point(s).

    \b
    Examples:
      graphgen sample concepts -n 1000 -o samples.jsonl --seed 7
      graphgen sample concepts -n 200000 -o samples.jsonl --coverage --exemplars 0
    """
    from graphgen.generate import write_jsonl
    from graphgen.sample import ConceptGraphArrays, ExemplarIndex, SampleStats, WalkOptions, sample_concepts

    options = WalkOptions(topic_steps=_steps(topic_steps), kp_steps=_steps(kp_steps), start=start,
                          edge_weight=edge_weight, coverage=coverage, exemplars=exemplars)
    with open_graph_store(settings_from(ctx, **opts)) as store:
        graph = ConceptGraphArrays.from_store(store)
        index = ExemplarIndex(store.seed_concepts()) if exemplars else None
        stats = SampleStats()
        try:
            n = write_jsonl(sample_concepts(graph, count, seed=seed, options=options, exemplars=index, stats=stats), Path(output))
        except ValueError as exc:
            raise click.ClickException(f"{exc}; run `graphgen extract` first") from None
    click.echo(f"wrote {n} samples to {output} ({stats.walks} walks, {stats.duplicates} duplicate combinations dropped, "
               f"{stats.dropped_no_kp} walks dropped at a topic without knowledge points)")
    click.echo(f"coverage: {stats.concepts_covered}/{stats.concepts_total} concepts "
               f"({stats.topics_covered}/{stats.topics_total} topics, {stats.kps_covered}/{stats.kps_total} knowledge points)")
    if stats.exhausted:
        click.echo(f"only {n} distinct combinations found before the walk limit; the graph may be too small for -n {count}", err=True)
