"""Canonicalize's candidate search (issue 21): names are searched within their kind only,
and the approximate index used above `exact_threshold` proposes the same merges as exact
search, on the planted fixture of tests/fixtures/canonicalize/names.json plus filler names,
with the real embedding model."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from graphgen.config import Settings
from graphgen.normalize import concept_id
from graphgen.records import Concept, ConceptKind
from graphgen.stages import canonicalize as stage

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "canonicalize" / "names.json").read_text(encoding="utf-8"))
OPS = ["Adding", "Comparing", "Estimating", "Simplifying", "Factoring", "Graphing", "Rounding", "Converting",
       "Measuring", "Ordering", "Modeling", "Expanding", "Evaluating", "Classifying", "Scaling", "Counting"]
OBJECTS = ["fractions", "decimals", "percentages", "ratios", "integers", "polynomials", "matrices", "vectors",
           "angles", "triangles", "circles", "prisms", "sequences", "functions", "inequalities", "logarithms"]
CONTEXTS = ["in word problems", "on a number line", "with variables", "in geometry", "with units"]


def _concepts(settings: Settings, tmp_path: Path) -> tuple[list[Concept], np.ndarray]:
    names = [("topic", n, u) for n, u in FIXTURE["topic"]] + [("kp", n, u) for n, u in FIXTURE["kp"]]
    filler = [f"{o} {b} {c}" for o, b, c in itertools.product(OPS, OBJECTS, CONTEXTS)][::3]
    names += [("kp", n, 1) for n in filler]
    # the same words under both kinds: never candidates of each other
    names += [("topic", "Linear equations in one variable", 2), ("kp", "Linear equations in one variable", 3)]
    concepts = [Concept(id=concept_id(k, n), kind=ConceptKind(k), name=concept_id(k, n).split(":", 1)[1], display_name=n,
                        frequency=u) for k, n, u in names]
    settings.canonicalize.embeddings_cache = tmp_path / "embeddings.db"
    vectors = stage.embed_names([c.display_name for c in concepts], settings, progress=False)
    return concepts, vectors


def test_search_stays_within_a_kind_and_the_approximate_index_merges_as_exact(tmp_path):
    settings = Settings()
    concepts, vectors = _concepts(settings, tmp_path)
    kinds = [c.kind for c in concepts]
    assert sum(k is ConceptKind.knowledge_point for k in kinds) > 300  # above the approximate search's floor (256)
    pairs = set(stage._nearest(vectors, kinds, 10, 0.5))
    assert pairs and all(kinds[a] is kinds[b] for a, b in pairs)
    twins = [i for i, c in enumerate(concepts) if c.display_name == "Linear equations in one variable"]
    assert tuple(twins) not in pairs  # cosine 1.0, but a topic and a knowledge point

    opts = settings.canonicalize
    exact, exact_clusters = stage.propose_merges(concepts, vectors, opts)
    approx_opts = opts.model_copy(update={"exact_threshold": 0})
    approx, approx_clusters = stage.propose_merges(concepts, vectors, approx_opts)
    assert [(m.alias_id, m.canonical_id) for m in approx] == [(m.alias_id, m.canonical_id) for m in exact]
    assert approx_clusters == exact_clusters
    expected = {(concept_id(*a.split(":", 1)), concept_id(*c.split(":", 1))) for a, c in FIXTURE["merge"]}
    assert expected <= {(m.alias_id, m.canonical_id) for m in exact}
