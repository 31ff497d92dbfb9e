"""`graphgen sample …`: concept combinations (random walks) and fusion pairs.

Each command maps its flags onto a section of the settings ([sample], [pairs]), calls the
stage's `run`, and prints its report. Flags left unset keep graphgen.toml's values.
"""

from __future__ import annotations

from pathlib import Path

import click

from graphgen_cli.common import echo_report, friendly_errors, open_graph_store, settings_from, store_options


@click.group()
def sample() -> None:
    """Sample what to generate from: concept combinations or seed pairs."""


def _steps(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    lo, _, hi = text.partition("-")
    try:
        return int(lo), int(hi or lo)
    except ValueError:
        raise click.BadParameter(f"{text!r}: expected MIN-MAX, e.g. 1-2") from None


@sample.command()
@click.option("-n", "count", type=int, required=True, help="how many distinct concept combinations")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="samples JSONL")
@click.option("--seed", type=int, default=0, show_default=True, help="random seed (same seed, same samples)")
@click.option("--topic-steps", help="steps on the topic subgraph, MIN-MAX [default 1-2]")
@click.option("--kp-steps", help="steps on the knowledge-point subgraph, MIN-MAX [default 0-4]")
@click.option("--start", type=click.Choice(["frequency", "uniform"]), help="how the start topic is chosen [default frequency]")
@click.option("--edge-weight", type=click.Choice(["count", "weight"]), help="steps proportional to co-occurrence count (MathScale) or association weight [default count]")
@click.option("--coverage", is_flag=True, default=None, help="bias starts toward the topics covered least so far")
@click.option("--coverage-interval", type=click.IntRange(min=1),
              help="--coverage: walks between re-weightings once warmed up (rounds of 1, 2, 4, ... walks first) [default 4096]")
@click.option("--exemplars", type=int, help="k few-shot seeds per sample, closest by knowledge-point Jaccard [default 3]")
@store_options
@click.pass_context
@friendly_errors
def concepts(ctx, count, output, seed, topic_steps, kp_steps, start, edge_weight, coverage, coverage_interval,
             exemplars, **opts):
    """MathScale random walks: topic -> topic(s) -> knowledge point(s).

    \b
    Examples:
      graphgen sample concepts -n 1000 -o samples.jsonl --seed 7
      graphgen sample concepts -n 200000 -o samples.jsonl --coverage --exemplars 0
    """
    from graphgen.stages import sample as stage

    walk = dict(topic_steps=_steps(topic_steps), kp_steps=_steps(kp_steps), start=start, edge_weight=edge_weight,
                coverage=coverage, coverage_interval=coverage_interval, exemplars=exemplars)
    settings = settings_from(ctx, sections={"sample": walk}, **opts)
    with open_graph_store(settings) as store:
        report = stage.run(settings, store, stage.SampleInputs(count=count, output=Path(output), seed=seed))
    echo_report(report)


@sample.command(name="fusion-pairs")
@click.argument("seeds", nargs=-1, type=click.Path())
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help="pairs JSONL")
@click.option("--top-k", type=int, help="nearest neighbours taken per seed [default 1]")
@click.option("--same-source", is_flag=True, default=None, help="pair only seeds of the same source dataset (as MathFusion did)")
@click.option("--min-similarity", type=float, help="drop pairs below this cosine similarity [default 0.0]")
@click.option("--max-similarity", type=float, help="drop pairs above this (near-duplicates fuse trivially) [default 0.98; graph 1.0]")
@click.option("--mutual-only", is_flag=True, default=None, help="keep a pair only if each seed is the other's neighbour")
@click.option("--max-uses", type=int, help="how many pairs one seed may be part of")
@click.option("--exact-threshold", type=int, help="seeds above which an approximate faiss index replaces exact search [default 50000]")
@click.option("--graph-guided", is_flag=True, default=None, help="pair seeds whose concepts are joined by strong co-occurrence but which share few concepts")
@click.option("--max-overlap", type=float, help="--graph-guided: max Jaccard overlap of the two seeds' concepts [default 0.34]")
@click.option("--embedding-model", help="sentence-transformers name or path, or API model [default all-MiniLM-L6-v2, offline]")
@click.option("--embedding-provider", type=click.Choice(["sentence-transformers", "openai"]), help="where embeddings come from [default sentence-transformers]")
@click.option("--prefix-ids", is_flag=True, help="SEEDS: make native ids <source>-<id> (as `extract --prefix-ids`)")
@click.option("--embeddings-cache", help="embedding cache file (per model and text) [default graphgen-embeddings.db]")
@click.option("--quiet", is_flag=True, help="no embedding progress bar")
@store_options
@click.pass_context
@friendly_errors
def fusion_pairs(ctx, seeds, output, top_k, same_source, min_similarity, max_similarity, mutual_only, max_uses,
                 exact_threshold, graph_guided, max_overlap, embedding_model, embedding_provider, prefix_ids, embeddings_cache,
                 quiet, **opts):
    """Pairs of related seeds to fuse (MathFusion), by embedding search or the concept graph.

    SEEDS (optional) are stored first and only they are paired; without SEEDS every seed in
    the store is paired.

    \b
    Examples:
      graphgen sample fusion-pairs -o pairs.jsonl --same-source --max-similarity 0.95
      graphgen sample fusion-pairs examples/seeds.jsonl -o pairs.jsonl --mutual-only
      graphgen sample fusion-pairs -o graph-pairs.jsonl --graph-guided
    """
    from graphgen.stages import pairs as stage

    common = dict(top_k=top_k, same_source=same_source, min_similarity=min_similarity, max_similarity=max_similarity,
                  mutual_only=mutual_only, max_uses_per_seed=max_uses, exact_threshold=exact_threshold)
    sections = {
        "pairs": {"method": "graph" if graph_guided else None, "embeddings_cache": embeddings_cache,
                  "embedding": common, "graph": {**common, "max_overlap": max_overlap}},
        "embedding": {"model": embedding_model, "provider": embedding_provider},
    }
    settings = settings_from(ctx, sections=sections, **opts)
    inputs = stage.PairsInputs(output=Path(output), seed_files=[Path(s) for s in seeds], prefix_ids=prefix_ids,
                               quiet=quiet)
    with open_graph_store(settings, create=bool(seeds)) as store:
        report = stage.run(settings, store, inputs)
    echo_report(report)
