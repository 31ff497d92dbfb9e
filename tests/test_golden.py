"""Outputs recorded before the architecture refactor (issue 9): the same `--seed` must give
byte-identical samples and pairs, and generation the same row ids and lineage.

The fixtures in tests/fixtures/golden/ were recorded from main before the refactor by
`python tests/test_golden.py --record`. Re-record only for a deliberate change of output
(say which in the commit message), never to make a refactor pass.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from clirun import EXAMPLES, cli_env, graphgen

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "golden"


def _lineage(path: Path) -> bytes:
    """Generated rows reduced to what must not change: id and lineage (not reply text)."""
    keep = ("id", "kind", "sample_id", "concept_ids", "exemplar_seed_ids", "seed_ids", "strategy",
            "similarity", "prompt_version", "model", "status")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows.sort(key=lambda r: r["id"])
    return "".join(json.dumps({k: r.get(k) for k in keep}, sort_keys=True) + "\n" for r in rows).encode()


def produce(ws: Path, llm_url: str) -> dict[str, bytes]:
    """Run the commands whose outputs are pinned; return {fixture name: bytes}."""
    graphgen("extract", EXAMPLES / "seeds.jsonl", "--from-annotations", EXAMPLES / "annotations.jsonl", cwd=ws)
    graphgen("sample", "concepts", "-n", "60", "-o", "samples.jsonl", "--seed", "7", cwd=ws)
    graphgen("sample", "concepts", "-n", "40", "-o", "samples-coverage.jsonl", "--seed", "11", "--coverage",
             "--exemplars", "0", "--topic-steps", "1-1", "--kp-steps", "1-3", "--start", "uniform", cwd=ws)
    graphgen("sample", "fusion-pairs", "-o", "pairs.jsonl", "--same-source", "--mutual-only", cwd=ws)
    graphgen("sample", "fusion-pairs", "-o", "graph-pairs.jsonl", "--graph-guided", "--max-overlap", "0.3", cwd=ws)
    env = cli_env(llm_url)
    graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "generated.jsonl", "--quiet",
             "--cache", "off", "--difficulty", "hard", cwd=ws, env=env)
    few = ws / "few-pairs.jsonl"
    few.write_text("".join((ws / "pairs.jsonl").read_text().splitlines(keepends=True)[:5]))
    graphgen("generate", "fusion", "--pairs", few.name, "-o", "fused.jsonl", "--strategy", "all", "--quiet",
             "--cache", "off", cwd=ws, env=env)
    out = {name: (ws / name).read_bytes()
           for name in ("samples.jsonl", "samples-coverage.jsonl", "pairs.jsonl", "graph-pairs.jsonl")}
    out["generated.lineage.jsonl"] = _lineage(ws / "generated.jsonl")
    out["fused.lineage.jsonl"] = _lineage(ws / "fused.jsonl")
    return out


def _same_pairs(data: bytes, expected: bytes) -> bool:
    """Pair files match exactly except for a similarity's last digit: the embedding model's float
    sums differ by ~1e-7 across torch builds and CPUs, which rounding to 6 places can show."""
    got, want = ([json.loads(x) for x in d.splitlines()] for d in (data, expected))
    if len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if abs(g.pop("similarity", 0.0) - w.pop("similarity", 0.0)) > 2e-6 or g != w:
            return False
    return True


def test_outputs_match_those_recorded_before_the_refactor(tmp_path, fake_llm):
    produced = produce(tmp_path, fake_llm.url)
    for name, data in produced.items():
        expected = (GOLDEN / name).read_bytes()
        if name.endswith("pairs.jsonl"):
            assert _same_pairs(data, expected), f"{name} differs from tests/fixtures/golden/{name}"
        else:
            assert data == expected, f"{name} differs from tests/fixtures/golden/{name}"
    assert len(produced["samples.jsonl"].splitlines()) == 60


if __name__ == "__main__" and sys.argv[1:] == ["--record"]:
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fake_openai import FakeServerProcess

    GOLDEN.mkdir(parents=True, exist_ok=True)
    with FakeServerProcess() as srv, tempfile.TemporaryDirectory() as tmp:
        for name, data in produce(Path(tmp), srv.url).items():
            (GOLDEN / name).write_bytes(data)
            print(f"recorded {GOLDEN / name} ({len(data)} bytes)")
