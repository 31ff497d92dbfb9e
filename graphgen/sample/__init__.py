"""MathScale concept sampling: vectorised random walks over the weighted concept graph.

Pure library: records (or numpy arrays) in, `ConceptSample` records out. Nothing here knows
which graph store the graph came from; `ConceptGraphArrays.from_store(store)` only calls the
store interface's `concepts()` and `edges()`.

Walk semantics (MathScale, Tang et al. 2024), for one walk
-----------------------------------------------------------
1. **Start.** Pick a topic with probability proportional to its `frequency`
   (``start="frequency"``) or uniformly among all topics (``start="uniform"``). In coverage
   mode the start weight is further divided by ``(1 + c)**coverage_alpha`` where ``c`` is the
   number of samples emitted so far that contain that topic (see *Coverage* below).
2. **Topic phase.** Draw ``t`` uniformly from ``topic_steps = (min, max)`` (inclusive), then
   take up to ``t`` steps on the topic subgraph (topic-topic edges). Each step moves from the
   current node to a neighbour of the allowed kind that the walk has *not visited yet*, with
   probability proportional to the edge's ``count`` (``edge_weight="count"``, MathScale's
   co-occurrence) or ``weight`` (``edge_weight="weight"``). Edges with a non-positive weight
   are never taken. If no unvisited neighbour with positive weight exists, the phase stops
   early ("stuck"; counted in ``SampleStats.stuck_topic_phase``) and the walk goes on.
3. **Topic -> knowledge point.** Exactly one step along a topic-kp edge from the *last*
   visited topic. If that topic has no knowledge-point neighbour with positive weight, the
   walk is **dropped** (no sample; counted in ``SampleStats.dropped_no_kp``); it is not
   retried from another topic - the next walk of the stream simply takes its place.
4. **Knowledge-point phase.** Draw ``k`` uniformly from ``kp_steps`` and take up to ``k``
   steps on the kp-kp subgraph by the same rule; stuck -> the phase stops early (counted in
   ``SampleStats.stuck_kp_phase``) and the walk ends there.

A sample's ``walk`` is the visit order (start topic first); ``topics`` and
``knowledge_points`` are the visited concepts of each kind, **sorted by id** (canonical, so
equal combinations have equal lists). So with the defaults a sample has 2-3 topics
(1 + 1..2 steps) and 1-5 knowledge points, fewer when the walk got stuck.

Stream, duplicates, reproducibility
-----------------------------------
Walks form an infinite stream numbered 0, 1, 2, ...; every random number walk ``i`` uses is
a counter-based hash of ``(seed, i, draw slot)`` (SplitMix64 finaliser), never a shared
generator state. Hence the output depends only on (graph, seed, options): not on the batch
size used internally, nor on the store the graph came from (concepts are indexed in id
order, adjacency sorted by neighbour id). Walks are read in stream order; a walk whose
concept *set* (topics + knowledge points) was already emitted is dropped and counted in
``duplicates``. ``sample_concepts(graph, n)`` yields the first ``n`` distinct combinations
of the stream, or fewer when ``max_walks`` walks did not produce ``n`` (``exhausted``).
Duplicate detection inside the sampler uses a 64-bit hash of the node-index set (the chance
of a false "duplicate" is ~ N^2 / 2^65, i.e. ~3e-8 for a million samples).

The sample id is ``"cs-"`` + the first 20 hex digits of SHA-1 over the sorted concept ids
joined by newlines: it depends only on the combination, so a resumed generation run can key
on it, and the same combination sampled from a rebuilt graph keeps its id.

`ConceptSampler.raw_walks(seed, start, stop)` returns stream positions as drawn (duplicates
and dropped walks included, with per-walk stuck/dropped flags) for inspection and tests;
`ConceptSampler.iter_batches` / `sample_walks` give the emitted samples as arrays, which is
~3-5x cheaper than building `ConceptSample` records.

Step choice is exact: a neighbour is drawn from the whole adjacency row (binary search in
normalised cumulative weights) and rejected if already visited, up to ``_RETRIES`` times;
walks still rejected after that draw from the exact masked distribution. Rejection keeps
the conditional distribution ``w(v) / sum of unvisited w`` exactly, so the fallback only
affects speed.

Coverage
--------
With ``coverage=True`` the stream is cut into rounds; before each round the start weights
become ``base(topic) / (1 + c(topic))**coverage_alpha`` with ``c`` the number of samples
emitted so far containing the topic (``base`` = frequency or 1 according to ``start``).
Rounds end at walks 1, 2, 4, 8, ... (doubling) until they reach ``coverage_interval``
walks, then every ``coverage_interval`` walks (`coverage_round_end`): coverage acts from
the second walk on, so at any ``n``, while a large run pays for only ~log2(interval) extra
small rounds. Rounds are fixed by walk index (not by ``n``), so coverage mode is
reproducible, and the first ``n`` samples of a run are the first ``n`` of any longer run
with the same seed. Every run reports concepts covered / total (``SampleStats``), coverage
mode or not.

Exemplars
---------
``ExemplarIndex`` returns, for a sample, the ``k`` seeds whose knowledge-point sets have the
highest Jaccard similarity with the sample's knowledge points (ties: smaller seed id first).
Candidates come from an inverted index (KP -> seeds), so only seeds sharing at least one KP
are scored. If fewer than ``k`` seeds share a KP, the remaining slots are filled with seeds
sharing a *topic*, ranked by topic-set Jaccard (ties by seed id); if that is still fewer
than ``k``, the list is shorter.
"""


from __future__ import annotations

from graphgen.config import WalkOptions
from graphgen.sample.arrays import KP_KP, TOPIC_KP, TOPIC_TOPIC, ConceptGraphArrays
from graphgen.sample.exemplars import ExemplarIndex
from graphgen.sample.walks import (
    ConceptSampler,
    RawWalks,
    SampleStats,
    WalkBatch,
    coverage_round_end,
    sample_concepts,
    sample_id,
    sample_walks,
)

__all__ = [
    "ConceptGraphArrays",
    "WalkOptions",
    "SampleStats",
    "WalkBatch",
    "RawWalks",
    "ConceptSampler",
    "ExemplarIndex",
    "sample_concepts",
    "sample_walks",
    "sample_id",
    "coverage_round_end",
    "TOPIC_TOPIC",
    "TOPIC_KP",
    "KP_KP",
]




