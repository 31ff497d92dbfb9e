"""The import graph of graphgen's own modules: floors, arrows, circles (issue 19's measure).

    python bench/import_graph.py            # summary
    python bench/import_graph.py --arrows   # every arrow, module -> module

A module's floor is 1 + the highest floor it imports (0 for one that imports no graphgen
module); imports under `if TYPE_CHECKING:` count, since they too bind the layout. A circle is a
strongly connected set of modules; an arrow "running back up" goes from a module to one on
the same or a higher floor, which only a circle allows.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "graphgen"


def module_name(path: Path) -> str:
    parts = ["graphgen", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def imports_of(path: Path, name: str, known: set[str]) -> set[str]:
    """graphgen modules `path` imports (a `from pkg import mod` counts as pkg.mod)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    edges = {name: imports_of(path, name, known) for name, path in mods.items()}
    # a package's __init__ importing its own submodules is plumbing, not an arrow between rooms
    for name in edges:
        edges[name] = {t for t in edges[name] if not t.startswith(name + ".")}
    return edges


def circles(edges: dict[str, set[str]]) -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    sys.setrecursionlimit(10000)

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def floors(edges: dict[str, set[str]]) -> dict[str, int]:
    """Longest import chain below each module (a circle counts as one room)."""
    group = {m: tuple(c) for c in circles(edges) for m in c}
    memo: dict[str, int] = {}

    def floor(v: str, seen: frozenset) -> int:
        if v in memo:
            return memo[v]
        mine = set(group.get(v, (v,)))
        below = {w for m in mine for w in edges[m]} - mine
        f = 0 if not below else 1 + max(floor(w, seen | mine) for w in below)
        for m in mine:
            memo[m] = f
        return f

    return {v: floor(v, frozenset()) for v in edges}


def main() -> None:
    edges = graph()
    level = floors(edges)
    arrows = [(a, b) for a in sorted(edges) for b in sorted(edges[a])]
    back_up = [(a, b) for a, b in arrows if level[b] >= level[a]]
    print(f"rooms {len(edges)}  floors {max(level.values()) + 1}  arrows {len(arrows)}  "
          f"circles {len(circles(edges))}  arrows back up {len(back_up)}")
    for c in circles(edges):
        print("circle:", " <-> ".join(c))
    if "--arrows" in sys.argv:
        for a, b in arrows:
            print(f"{level[a]:2d} {a} -> {b}")


if __name__ == "__main__":
    main()
