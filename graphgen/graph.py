"""Build the weighted concept graph from extractions (pure: records in, records out).

Nodes: topics and knowledge points, merged by canonical name (graphgen.normalize) and then
through the workspace's merge map (`graphgen canonicalize`: alias concept id -> canonical
concept id). Extractions keep the names the LLM wrote; the map is applied only here, so every
rebuild, and every later extraction, goes through it, and editing the map undoes a merge.
Edges: for every seed, every pair of its concepts co-occurs once. Three kinds:
topic-topic, topic-kp, kp-kp. `count` is the number of seeds in which the pair co-occurs;
`weight` = count / sqrt(freq(a) * freq(b)) (cosine association, in (0, 1]), so that an edge
between two very frequent concepts is not automatically "strong". The sampler walks
proportionally to `count` by default, as MathScale does, or to `weight` on request.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING
from itertools import combinations

from graphgen.normalize import canonical_name
from graphgen.records import Concept, ConceptEdge, ConceptKind, EdgeKind, Extraction, Mention

if TYPE_CHECKING:
    from graphgen.store.base import GraphStats, GraphStore

_KIND_ORDER = {ConceptKind.topic: 0, ConceptKind.knowledge_point: 1}


def mentions_of(extraction: Extraction) -> list[tuple[str, ConceptKind, str, str]]:
    """(concept_id, kind, canonical, surface) for each distinct concept of one extraction."""
    out: dict[str, tuple[str, ConceptKind, str, str]] = {}
    for kind, names in (
        (ConceptKind.topic, extraction.topics),
        (ConceptKind.knowledge_point, extraction.knowledge_points),
    ):
        for surface in names:
            canon = canonical_name(surface)
            if not canon:
                continue
            cid = f"{kind.value}:{canon}"
            out.setdefault(cid, (cid, kind, canon, surface.strip()))
    return list(out.values())


def edge_kind(a: ConceptKind, b: ConceptKind) -> EdgeKind:
    if a is ConceptKind.topic and b is ConceptKind.topic:
        return EdgeKind.topic_topic
    if a is ConceptKind.knowledge_point and b is ConceptKind.knowledge_point:
        return EdgeKind.kp_kp
    return EdgeKind.topic_kp


def build_graph(
    extractions: Iterable[Extraction], merges: Mapping[str, str] | None = None,
) -> tuple[list[Concept], list[ConceptEdge], list[Mention]]:
    """Concepts (sorted by id), edges (sorted by source, target) and mentions.

    `merges` maps alias concept ids to canonical concept ids (already resolved: a canonical
    is never itself an alias). A merged concept keeps the display name of its canonical
    and lists its aliases' display names in `aliases`.
    """
    merges = merges or {}
    seeds_of: dict[str, list[str]] = defaultdict(list)
    # surface counts per concept id as extracted (before merging), for display names
    surfaces: dict[str, Counter[str]] = defaultdict(Counter)
    kind_of: dict[str, ConceptKind] = {}
    pair_seeds: dict[tuple[str, str], list[str]] = defaultdict(list)
    mentions: list[Mention] = []

    for ex in extractions:
        found: dict[str, str] = {}  # merged concept id -> first surface used in this seed
        for raw_id, kind, _canon, surface in mentions_of(ex):
            surfaces[raw_id][surface] += 1
            cid = merges.get(raw_id, raw_id)
            kind_of[cid] = kind
            found.setdefault(cid, surface)
        for cid, surface in found.items():
            seeds_of[cid].append(ex.seed_id)
            # model_construct: the values are already validated records' fields
            mentions.append(Mention.model_construct(seed_id=ex.seed_id, concept_id=cid, surface=surface))
        # topics first, then by id: the topic is always the source of a topic-kp edge
        ordered = sorted(found, key=lambda c: (_KIND_ORDER[kind_of[c]], c))
        for a, b in combinations(ordered, 2):
            pair_seeds[(a, b)].append(ex.seed_id)

    alias_ids: dict[str, list[str]] = defaultdict(list)  # canonical id -> alias ids seen
    for raw_id in surfaces:
        if raw_id in merges:
            alias_ids[merges[raw_id]].append(raw_id)

    def display_name(cid: str) -> str:
        # the canonical's own most frequent surface form (or its aliases' if it was never
        # extracted itself); ties broken alphabetically for determinism
        counts = surfaces.get(cid) or sum((surfaces[a] for a in alias_ids[cid]), Counter())
        return _most_frequent(counts)

    concepts = [
        Concept(
            id=cid,
            kind=kind_of[cid],
            name=cid.split(":", 1)[1],
            display_name=display_name(cid),
            frequency=len(seeds),
            seed_ids=sorted(seeds),
            aliases=sorted({_most_frequent(surfaces[a]) for a in alias_ids.get(cid, ())}),
        )
        for cid, seeds in sorted(seeds_of.items())
    ]
    freq = {c.id: c.frequency for c in concepts}
    edges = [
        ConceptEdge.model_construct(
            source=a,
            target=b,
            kind=edge_kind(kind_of[a], kind_of[b]),
            count=len(seeds),
            weight=len(seeds) / math.sqrt(freq[a] * freq[b]),
            seed_ids=sorted(seeds),
        )
        for (a, b), seeds in sorted(pair_seeds.items())
    ]
    return concepts, edges, mentions


def _most_frequent(counts: Counter[str]) -> str:
    return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]


EXPORTED_SEED_IDS = 100  # per node: enough to open examples, small enough for Gephi's table


def to_networkx(concepts: Iterable[Concept], edges: Iterable[ConceptEdge], seed_ids: int = EXPORTED_SEED_IDS):
    """An undirected networkx Graph with the records' fields as attributes (for GraphML etc.).

    Provenance per node: `seed_count` (every seed mentioning the concept) and `seeds`, the
    first `seed_ids` of their ids (sorted) as JSON list text, unambiguous whatever an id
    holds (GraphML attributes are scalars); `graph push` puts every link in Neo4j."""
    import networkx as nx

    g = nx.Graph()
    for c in concepts:
        g.add_node(xml_text(c.id), kind=c.kind.value, name=xml_text(c.name),
                   display_name=xml_text(c.display_name), frequency=c.frequency,
                   seed_count=len(c.seed_ids),
                   seeds=json.dumps([xml_text(s) for s in c.seed_ids[:seed_ids]], ensure_ascii=False),
                   aliases=xml_text("; ".join(c.aliases)))
    for e in edges:
        g.add_edge(xml_text(e.source), xml_text(e.target), kind=e.kind.value, count=e.count, weight=e.weight)
    return g


# XML 1.0 cannot hold C0 controls other than tab, newline and carriage return, lone
# surrogates, or U+FFFE / U+FFFF: GraphML with any of them is not XML at all.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    """`text` without the characters XML 1.0 cannot hold."""
    return _NOT_XML.sub("", text)


def graph_report(concepts: list[Concept], edges: list[ConceptEdge], top: int = 10) -> dict:
    """Counts, degree distribution and top concepts, as plain data for printing."""
    degree: Counter[str] = Counter()
    for e in edges:
        degree[e.source] += 1
        degree[e.target] += 1
    report: dict = {"concepts": dict(Counter(c.kind.value for c in concepts)),
                    "edges": dict(Counter(e.kind.value for e in edges))}
    for kind in ConceptKind:
        degs = sorted(degree[c.id] for c in concepts if c.kind is kind)
        if not degs:
            continue
        buckets = Counter(_bucket(d) for d in degs)
        report[f"{kind.value}_degree"] = {
            "min": degs[0], "median": degs[len(degs) // 2], "max": degs[-1],
            "mean": round(sum(degs) / len(degs), 2),
            "histogram": {b: buckets[b] for b in _BUCKETS if buckets[b]},
        }
        ranked = sorted((c for c in concepts if c.kind is kind), key=lambda c: (-c.frequency, c.id))
        report[f"top_{kind.value}"] = [
            {"name": c.display_name, "frequency": c.frequency, "degree": degree[c.id]} for c in ranked[:top]
        ]
    return report


_BUCKETS = ["0", "1", "2-4", "5-9", "10-19", "20-49", "50-99", "100+"]


def _bucket(d: int) -> str:
    for label, hi in (("0", 0), ("1", 1), ("2-4", 4), ("5-9", 9), ("10-19", 19), ("20-49", 49), ("50-99", 99)):
        if d <= hi:
            return label
    return "100+"


def rebuild(store: GraphStore) -> GraphStats:
    """Recompute the store's concept graph from all its extractions and store it (one
    transaction: readers see the old graph or the new one) through the store's merge map
    (canonicalize); returns the store's counts."""
    merges = {m.alias_id: m.canonical_id for m in store.concept_merges()}
    concepts, edges, mentions = build_graph(store.extractions(), merges)
    store.replace_graph(concepts, edges, mentions)
    return store.stats()
