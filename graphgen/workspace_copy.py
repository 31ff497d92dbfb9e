"""Copy a whole workspace between two graph stores (`graphgen graph push` / `pull`).

Generic over the GraphStore interface: seeds, extractions (exactly as stored), the merge
map (canonicalize), then the
concept graph is recomputed in the destination from those extractions (the same
graphgen.graph.build_graph in both stores, so concepts and edges come out identical), then
generated questions with their lineage, then each row's status (solve's verdicts, filter's
decisions, check's results, each model's pass rates). Everything streams; nothing is held in memory
beyond one batch. Copying twice changes nothing (every write is an upsert by id).
"""

from __future__ import annotations

from collections.abc import Callable

from graphgen.graph import rebuild
from graphgen.store.base import GraphStats, GraphStore, StoreError


def _total(stats: GraphStats) -> dict[str, int]:
    return {
        "seeds": stats.seeds,
        "extracted_seeds": stats.extracted_seeds,
        "concepts": sum(stats.concepts.values()),
        "edges": sum(stats.edges.values()),
        "generated": stats.generated,
    }


def copy_workspace(
    src: GraphStore,
    dst: GraphStore,
    *,
    check: bool = True,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, int]:
    """Copy seeds, extractions, the concept graph and generated rows from `src` to `dst`.

    Returns the counts copied: {"seeds", "extractions", "merges", "generated", "verdicts",
    "filter_decisions", "checks", "pass_rates"} as written, plus the
    destination's {"concepts", "edges"} after its graph rebuild. With `check` (default), the
    destination's counts must equal the source's, else StoreError says which differ (e.g. the
    destination already held other data, or the source's graph was not rebuilt since its
    last extraction).
    """
    note = progress or (lambda step, n: None)
    counts: dict[str, int] = {}
    counts["seeds"] = dst.add_seeds(src.seeds())
    note("seeds", counts["seeds"])
    counts["extractions"] = dst.add_extractions(src.extractions())
    note("extractions", counts["extractions"])
    counts["merges"] = dst.set_concept_merges(src.concept_merges())
    after = rebuild(dst)
    counts["concepts"] = sum(after.concepts.values())
    counts["edges"] = sum(after.edges.values())
    note("graph", counts["concepts"] + counts["edges"])
    counts["generated"] = dst.add_generated(src.generated())
    note("generated", counts["generated"])
    # row status (graphgen.status): solve's verdicts and filter's decisions, after the rows
    # they link to
    counts["verdicts"] = dst.add_verdicts(src.verdicts())
    note("verdicts", counts["verdicts"])
    counts["filter_decisions"] = dst.add_filter_decisions(src.filter_decisions())
    note("filter decisions", counts["filter_decisions"])
    counts["checks"] = dst.add_checks(src.checks())
    note("checks", counts["checks"])
    counts["pass_rates"] = dst.add_pass_rates(src.pass_rates())
    note("pass rates", counts["pass_rates"])
    if check:
        want, got = _total(src.stats()), _total(dst.stats())
        diff = {k: (want[k], got[k]) for k in want if want[k] != got[k]}
        if diff:
            detail = ", ".join(f"{k}: source {a}, destination {b}" for k, (a, b) in diff.items())
            raise StoreError(f"copy finished but counts differ ({detail}); was the destination empty, "
                             "and was the source's graph rebuilt after its last extraction?")
    return counts
