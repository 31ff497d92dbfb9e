"""Reasoning paths (MMOS): normalise them so duplicates meet, and choose a diverse few.

Pure functions over strings, used by `solve` (and anything that keeps a minimal optimal set):
code is AST-normalised (variables renamed A, B, ..., functions a, b, ... in order of
appearance, then reprinted); prose has whitespace and number formats normalised; the kept
set is chosen greedily, each path maximising its summed edit distance (rapidfuzz
Levenshtein) to the ones already kept.
"""

from __future__ import annotations

import ast
import re


class _Renamer(ast.NodeTransformer):
    """Variables renamed A, B, ... and functions a, b, ... in order of appearance (MMOS)."""

    def __init__(self):
        import builtins

        self.keep = set(dir(builtins))
        self.vars: dict[str, str] = {}
        self.funcs: dict[str, str] = {}
        self.imported: set[str] = set()

    @staticmethod
    def _name(i: int, upper: bool) -> str:
        s = ""
        i += 1
        while i:
            i, r = divmod(i - 1, 26)
            s = chr((65 if upper else 97) + r) + s
        return s if upper else "f_" + s

    def _var(self, name: str) -> str:
        if name in self.keep or name in self.imported or name in self.funcs:
            return self.funcs.get(name, name)
        if name not in self.vars:
            self.vars[name] = self._name(len(self.vars), True)
        return self.vars[name]

    def visit_Import(self, node):
        for a in node.names:
            self.imported.add((a.asname or a.name).split(".")[0])
        return node

    def visit_ImportFrom(self, node):
        for a in node.names:
            self.imported.add(a.asname or a.name)
        return node

    def visit_FunctionDef(self, node):
        if node.name not in self.funcs:
            self.funcs[node.name] = self._name(len(self.funcs), False)
        node.name = self.funcs[node.name]
        self.generic_visit(node)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_arg(self, node):
        node.arg = self._var(node.arg)
        node.annotation = None
        return node

    def visit_Name(self, node):
        node.id = self._var(node.id)
        return node

    def visit_Expr(self, node):
        # docstrings and bare string expressions do not change what a program does
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return None
        self.generic_visit(node)
        return node


def normalize_code(code: str) -> str:
    """A program's canonical text: names renamed in order of appearance, comments and
    docstrings gone, reprinted by `ast.unparse`. Unparsable code is returned stripped."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, SystemError, RecursionError, MemoryError):  # SystemError: gh-106905
        return code.strip()
    tree = _Renamer().visit(tree)
    ast.fix_missing_locations(tree)
    try:
        return ast.unparse(tree)
    except Exception:  # pragma: no cover - unparse of a valid tree
        return code.strip()


_NUM = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?![\w])")


def normalize_prose(text: str) -> str:
    """Whitespace collapsed, case folded, numbers in one format (1,000.50 -> 1000.5)."""
    def num(m: re.Match) -> str:
        whole = m.group(1).replace(",", "")
        frac = (m.group(2) or "").rstrip("0").rstrip(".")
        return str(int(whole)) + frac

    t = _NUM.sub(num, text)
    t = re.sub(r"\$\s*", "$", t)
    return " ".join(t.split()).casefold()


def select_diverse(texts: list[str], keep: int) -> list[int]:
    """MMOS: start from the first, then repeatedly add the text with the largest summed
    Levenshtein distance to those already kept (ties: the earliest). Indices, in pick order."""
    from rapidfuzz.distance import Levenshtein

    if not texts or keep <= 0:
        return []
    chosen = [0]
    score = [0] * len(texts)
    while len(chosen) < min(keep, len(texts)):
        last = texts[chosen[-1]]
        best, best_score = -1, -1
        for i, t in enumerate(texts):
            if i in chosen:
                continue
            score[i] += Levenshtein.distance(last, t)
            if score[i] > best_score:
                best, best_score = i, score[i]
        chosen.append(best)
    return chosen
