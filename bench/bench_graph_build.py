"""Graph build: extractions for the 15,000 seeds of ../shared/data/seeds -> the stored graph.

Target (issue 2): <= 10 s on this machine, peak memory < 1 GiB.

    python bench/bench_graph_build.py

Concepts come from the fake LLM server's extraction function (tests/fake_openai.py,
exactly what the server answers), so the graph has the shape of a real extraction run:
1-2 of 80 topics and 1-5 of 800 knowledge points per seed. The build runs in a fresh
subprocess so its peak RSS is its own.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]


def prepare(workdir: Path) -> tuple[Path, Path]:
    from fake_openai import extraction_for

    from graphgen.readers import read_seeds

    seeds = list(read_seeds(sorted((REPO.parent / "shared/data/seeds").glob("*.jsonl"))))
    seeds_path, ex_path = workdir / "seeds.jsonl", workdir / "extractions.jsonl"
    with seeds_path.open("w") as fs, ex_path.open("w") as fe:
        for s in seeds:
            fs.write(s.model_dump_json() + "\n")
            fe.write(json.dumps({"seed_id": s.id, **extraction_for(s.question)}) + "\n")
    return seeds_path, ex_path


def build(seeds_path: str, ex_path: str, db: str) -> None:
    """Runs in the child: read records, store seeds and extractions, rebuild the graph."""
    from graphgen.graph import rebuild
    from graphgen.records import Extraction, SeedQuestion
    from graphgen.store.sqlite import SQLiteStore

    seeds = [SeedQuestion.model_validate_json(line) for line in open(seeds_path)]
    extractions = [Extraction.model_validate_json(line) for line in open(ex_path)]
    t0 = time.perf_counter()
    with SQLiteStore(db) as store:
        store.add_seeds(seeds)
        store.add_extractions(extractions)
        stats = rebuild(store)
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seeds": stats.seeds, "concepts": stats.concepts, "edges": stats.edges,
                      "seconds": round(elapsed, 2), "peak_rss_mib": round(peak, 1)}))


if __name__ == "__main__":
    if len(sys.argv) == 4:
        build(*sys.argv[1:])
        sys.exit()
    print("command: python bench/bench_graph_build.py")
    with tempfile.TemporaryDirectory() as tmp:
        seeds_path, ex_path = prepare(Path(tmp))
        out = subprocess.run([sys.executable, __file__, str(seeds_path), str(ex_path), f"{tmp}/g.db"],
                             capture_output=True, text=True, check=True).stdout
        result = json.loads(out)
        print(json.dumps(result, indent=2))
        ok = result["seconds"] <= 10 and result["peak_rss_mib"] < 1024
        print(f"target <= 10 s and < 1024 MiB: {'met' if ok else 'NOT met'}")
