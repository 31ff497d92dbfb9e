"""Sandboxed programs per second (graphgen.sandbox, warm workers) versus one fresh
`python -I` process per program, measured in the same run.

    python bench/bench_sandbox.py [--n 400] [--workers 2] [--isolation auto|bwrap|process]

Three workloads: a trivial program (`print(1)`), a small arithmetic program typical of a
program-of-thought path, and a program importing sympy. The baseline runs the same programs
as `python -I -c CODE` with an empty environment, `workers` at a time (no limits, no
isolation: strictly cheaper per program than a safe fresh start would be).
Targets (issue 10): >= 3x the baseline, and >= 50 trivial programs/s on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphgen.sandbox import Sandbox, _graphgen_python  # noqa: E402

PROGRAMS = {
    "trivial": "print(1)",
    "arithmetic": ("price = 12.5\nqty = 8\ndiscount = 0.15\n"
                   "total = price * qty * (1 - discount)\nprint(round(total, 2))"),
    "sympy": "from sympy import Rational, sqrt\nprint(Rational(3, 4) + Rational(5, 6) * sqrt(8))",
}


def fresh_rate(code: str, n: int, workers: int) -> float:
    python = _graphgen_python()  # the interpreter the sandbox runs programs with

    def one(_):
        subprocess.run([python, "-I", "-c", code], capture_output=True, env={}, check=True)

    t = time.perf_counter()
    with ThreadPoolExecutor(workers) as ex:
        list(ex.map(one, range(n)))
    return n / (time.perf_counter() - t)


def sandbox_rate(box: Sandbox, code: str, n: int) -> float:
    box.map([code] * (2 * box.size))  # warm: workers started, modules imported
    t = time.perf_counter()
    results = box.map([code] * n)
    dt = time.perf_counter() - t
    bad = [r for r in results if not r.ok]
    assert not bad, bad[0]
    return n / dt


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=400)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    p.add_argument("--isolation", default="auto")
    a = p.parse_args()
    print(f"cpus={os.cpu_count()} workers={a.workers} n={a.n} load={os.getloadavg()[0]:.1f}")
    with Sandbox(workers=a.workers, isolation=a.isolation) as box:
        print(f"isolation={box.isolation}")
        for name, code in PROGRAMS.items():
            n_fresh = max(20, a.n // 10) if name == "sympy" else max(40, a.n // 4)
            fresh = fresh_rate(code, n_fresh, a.workers)
            sand = sandbox_rate(box, code, a.n)
            print(f"{name:10s} sandbox {sand:7.1f}/s   fresh python -I {fresh:6.1f}/s   ratio {sand / fresh:5.1f}x")


if __name__ == "__main__":
    main()
