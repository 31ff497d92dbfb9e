"""Canonicalisation (`graphgen graph canonicalize`): time and peak RSS.

    python bench/bench_canonicalize.py workspace          # the 15k-seed workspace
    python bench/bench_canonicalize.py synthetic -n 100000 # 100k synthetic concept names

workspace: the 14,973 seeds of ../shared/data/seeds with the fake LLM server's extraction
(tests/fake_openai.py, as bench_graph_build.py), stored in a fresh SQLite file; then the
whole stage (`graphgen.stages.canonicalize.run`: read extractions, raw graph, embed names, propose,
write the review file, build the merged graph in memory), cold (empty embedding cache) and
warm (cache filled by the cold run).

synthetic: N names made from operation x object x context vocabularies, a fifth of them
near-duplicate variants of others ("Applying the ...", British spellings, one-letter typos,
plural/singular), all of one kind; `embed_names` then `propose_merges`, cold and warm.
`--vectors hashed` replaces the model by deterministic random unit vectors per text (no
embedding time; near-duplicates then merge only by equal words or acronyms): the cost of the
matching and clustering alone at that scale, for machines where embedding N names with the
model takes too long (the embedding rate is measured separately, `-n 2000`).

Each measurement runs in a fresh child process so its peak RSS is its own. The same-run
baseline is embedding the same names (the part no canonicaliser can skip): the report gives
proposal time / embedding time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
os.environ.setdefault("HF_HUB_OFFLINE", "1")

OPS = ["Adding", "Subtracting", "Multiplying", "Dividing", "Comparing", "Estimating", "Simplifying", "Factoring",
       "Graphing", "Solving", "Rounding", "Converting", "Measuring", "Ordering", "Modeling", "Interpreting",
       "Expanding", "Evaluating", "Classifying", "Decomposing", "Scaling", "Approximating", "Counting",
       "Averaging", "Tabulating", "Plotting", "Transforming", "Reflecting", "Rotating", "Translating",
       "Bisecting", "Partitioning", "Normalizing", "Differentiating", "Integrating", "Summing", "Sampling",
       "Proving", "Checking", "Computing"]
OBJECTS = ["fractions", "decimals", "percentages", "ratios", "integers", "polynomials", "matrices", "vectors",
           "angles", "triangles", "circles", "rectangles", "prisms", "cylinders", "cones", "spheres",
           "sequences", "series", "functions", "equations", "inequalities", "logarithms", "exponents",
           "radicals", "complex numbers", "probabilities", "permutations", "combinations", "means",
           "medians", "modes", "ranges", "histograms", "scatter plots", "coordinates", "slopes", "intercepts",
           "parabolas", "hyperbolas", "ellipses", "primes", "divisors", "multiples", "remainders",
           "place values", "money amounts", "time intervals", "distances", "speeds", "volumes", "areas",
           "perimeters", "temperatures", "weights", "lengths", "capacities", "interest rates", "discounts",
           "taxes", "profits"]
CONTEXTS = ["in word problems", "on a number line", "with variables", "with unlike denominators",
            "in tables", "in geometry", "with calculators", "mentally", "in real life", "with diagrams",
            "step by step", "in two steps", "with estimation", "in science", "with money", "with units",
            "in shopping", "in cooking", "in sports", "in maps", "on grids", "in proofs", "with technology",
            "using models", "with patterns", "in data sets", "over time", "with negative numbers",
            "with large numbers", "with small numbers", "in algebra", "in statistics", "in probability",
            "in finance", "in construction", "in travel", "in physics", "in chemistry", "in biology",
            "in economics"]
BRITISH = {"izing": "ising", "ization": "isation", "eling": "elling", "color": "colour"}


def synthetic_names(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    base = [f"{op} {obj} {ctx}" for op in OPS for obj in OBJECTS for ctx in CONTEXTS]
    rng.shuffle(base)
    n_var = n // 5
    names = base[: n - n_var]
    for name in rng.sample(names, n_var):
        r = rng.random()
        if r < 0.3:
            names.append(f"Applying the {name[0].lower()}{name[1:]}")
        elif r < 0.55:
            words = name.split(" ")
            i = max(range(len(words)), key=lambda k: len(words[k]))
            w = words[i]
            j = rng.randrange(1, len(w) - 1)
            words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]  # swap two letters
            names.append(" ".join(words))
        elif r < 0.8:
            british = name
            for a, b in BRITISH.items():
                british = british.replace(a, b)
            names.append(british if british != name else f"The {name.lower()}")
        else:
            names.append(name.replace("s ", " ", 1))  # plural -> singular
    return names[:n]


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def hashed_vectors(texts, dim: int = 384):
    import hashlib

    import numpy as np

    out = np.empty((len(texts), dim), dtype=np.float32)
    for i, t in enumerate(texts):
        seed = int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "big")
        out[i] = np.random.default_rng(seed).standard_normal(dim)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def child_synthetic(n: int, cache: str, vectors_from: str = "model") -> None:
    import numpy as np

    from graphgen.stages.canonicalize import embed_names, propose_merges
    from graphgen.config import Settings
    from graphgen.normalize import canonical_name
    from graphgen.records import Concept, ConceptKind

    names = synthetic_names(n)
    concepts = {}
    for i, name in enumerate(names):
        cid = f"topic:{canonical_name(name)}"
        concepts.setdefault(cid, Concept(id=cid, kind=ConceptKind.topic, name=cid[6:], display_name=name,
                                         frequency=1 + (i % 7)))
    concepts = sorted(concepts.values(), key=lambda c: c.id)
    settings = Settings()
    settings.canonicalize.embeddings_cache = Path(cache)
    t0 = time.perf_counter()
    texts = [c.display_name for c in concepts]
    vectors = hashed_vectors(texts) if vectors_from == "hashed" else embed_names(texts, settings, progress=False)
    t1 = time.perf_counter()
    merges, clusters = propose_merges(concepts, np.ascontiguousarray(vectors), settings.canonicalize)
    t2 = time.perf_counter()
    print(json.dumps({"names": len(names), "concepts": len(concepts), "merges": len(merges), "clusters": clusters,
                      "embed_s": round(t1 - t0, 2), "propose_s": round(t2 - t1, 2), "total_s": round(t2 - t0, 2),
                      "peak_rss_mib": round(peak_mib(), 1)}))


def child_workspace(db: str, cache: str, review: str) -> None:
    from graphgen.stages import canonicalize as stage
    from graphgen.config import Settings
    from graphgen.store.sqlite import SQLiteStore

    settings = Settings()
    settings.canonicalize.embeddings_cache = Path(cache)
    t0 = time.perf_counter()
    with SQLiteStore(db) as store:
        report = stage.run(settings, store, stage.CanonicalizeInputs(review=Path(review)))
    print(json.dumps({"concepts_before": report.concepts_before, "concepts_after": report.concepts_after,
                      "edges_before": report.edges_before, "edges_after": report.edges_after,
                      "merges": report.merges, "clusters": report.clusters,
                      "total_s": round(time.perf_counter() - t0, 2), "peak_rss_mib": round(peak_mib(), 1)}))


def child_embed_only(db: str, cache: str) -> None:
    """Baseline for the workspace: embedding its concept names into an empty cache."""
    from graphgen.stages.canonicalize import embed_names
    from graphgen.config import Settings
    from graphgen.graph import build_graph
    from graphgen.store.sqlite import SQLiteStore

    with SQLiteStore(db) as store:
        concepts = build_graph(store.extractions())[0]
    settings = Settings()
    settings.canonicalize.embeddings_cache = Path(cache)
    t0 = time.perf_counter()
    embed_names([c.display_name for c in concepts], settings, progress=False)
    print(json.dumps({"embed_s": round(time.perf_counter() - t0, 2), "peak_rss_mib": round(peak_mib(), 1)}))


def run_child(*args: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--child", *args], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def load() -> str:
    return open("/proc/loadavg").read().split()[0]


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        what, *rest = sys.argv[2:]
        {"synthetic": lambda n, c, v: child_synthetic(int(n), c, v), "workspace": child_workspace,
         "embed": child_embed_only}[what](*rest)
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["workspace", "synthetic"])
    parser.add_argument("-n", type=int, default=100_000)
    parser.add_argument("--vectors", choices=["model", "hashed"], default="model",
                        help="synthetic: embed with the model, or hashed random vectors (matching cost only)")
    args = parser.parse_args()
    print("command: python bench/bench_canonicalize.py " + " ".join(sys.argv[1:]))
    with tempfile.TemporaryDirectory() as tmp:
        if args.what == "synthetic":
            print(f"load average {load()}")
            cold = run_child("synthetic", str(args.n), f"{tmp}/emb.db", args.vectors)
            print("cold:", json.dumps(cold))
            if args.vectors == "model":
                warm = run_child("synthetic", str(args.n), f"{tmp}/emb.db", args.vectors)
                print("warm:", json.dumps(warm))
                print(f"proposal / embedding (cold): {cold['propose_s'] / cold['embed_s']:.2f}")
            print(f"load average {load()}")
            return
        from bench_graph_build import build, prepare  # noqa: F401 (build runs in bench_graph_build's child)

        seeds_path, ex_path = prepare(Path(tmp))
        subprocess.run([sys.executable, str(REPO / "bench" / "bench_graph_build.py"), str(seeds_path), str(ex_path),
                        f"{tmp}/g.db"], check=True, capture_output=True)
        print(f"load average {load()}")
        base = run_child("embed", f"{tmp}/g.db", f"{tmp}/baseline.db")
        print("baseline, embedding the names only (cold):", json.dumps(base))
        cold = run_child("workspace", f"{tmp}/g.db", f"{tmp}/emb.db", f"{tmp}/merges.tsv")
        print("canonicalize, cold cache:", json.dumps(cold))
        warm = run_child("workspace", f"{tmp}/g.db", f"{tmp}/emb.db", f"{tmp}/merges.tsv")
        print("canonicalize, warm cache:", json.dumps(warm))
        print(f"cold total / embedding only: {cold['total_s'] / base['embed_s']:.2f}; load average {load()}")
        lines = Path(f"{tmp}/merges.tsv").read_text().splitlines()
        print("first proposed merges:", *lines[5:10], sep="\n  ")


if __name__ == "__main__":
    main()
