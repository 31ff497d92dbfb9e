"""Final answers: extract them from solutions and program output, and decide whether two
answers are the same with math-verify (LaTeX and sympy equivalence: fractions, decimals,
percentages, intervals, sets), never by plain string equality.

    final_answer("... so the total is \\boxed{\\frac{3}{4}}.")    -> "\\frac{3}{4}"
    program_answer("x = 3\\n0.75\\n")                              -> "0.75"
    checker = AnswerChecker(timeout_s=5)
    checker.equivalent("\\frac{3}{4}", "0.75")                    -> True
    checker.groups(["3/4", "0.75", "1"])                          -> [[0, 1], [2]]

Extraction order for a written solution: the last `\\boxed{...}` (or `\\fbox{...}`), then a
GSM8K-style `#### N` line, then the last "the (final) answer is X". For a program, the last
non-empty line it printed (itself searched for those markers first).

Equivalence results are cached per checker (both the parse of each answer and each pair),
so majority votes and repeated gold checks cost one math-verify call per distinct pair.
math-verify's own time limit uses SIGALRM, which only works in the main thread; elsewhere
the check runs without it (the solve stage checks in the main thread).

Nothing an answer holds can stop a run (a model or a seed file may hold anything):
- integers are compared as digit strings, never through `int()` (which refuses more than
  4,300 digits);
- an answer longer than `MAX_ANSWER_CHARS` is not checked at all: it equals nothing, and
  `problem()` says why;
- a check that times out equals nothing and is recorded: `problem()` says so, and with a
  `timeouts_path` the pair is appended there so a rerun does not spend the time again;
- math-verify's own warnings (which print the whole answer) are not used: errors are
  raised to this module and only their kind is kept.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from pathlib import Path
from typing import Any


__all__ = ["final_answer", "program_answer", "last_boxed", "AnswerChecker", "clean_answer", "MAX_ANSWER_CHARS",
           "PROGRAM_OUTPUT_CHARS", "shorten"]

# Longest answer that is checked at all: a real final answer is a number or a short
# expression; anything longer costs math-verify seconds and is not worth training on.
MAX_ANSWER_CHARS = 1000
# Most of a program's output that is kept (solve's runs, variants' programs): output is kept
# whole up to here, and a program that prints more has no answer (never a cut one).
PROGRAM_OUTPUT_CHARS = 16384

_HASHES = re.compile(r"^\s*####\s*(.+?)\s*$", re.MULTILINE)
_ANSWER_IS = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|=|:)\s*[:=]?\s*(.+?)(?:\.\s*$|\.\s+[A-Z]|\n|$)",
    re.IGNORECASE | re.MULTILINE,
)


def clean_answer(ans: str) -> str:
    """Strip what is not the answer: surrounding $, trailing period, \\text{...} units words."""
    a = ans.strip()
    a = a.strip("$").strip()
    a = re.sub(r"\\(?:left|right)\b", "", a)
    if a.endswith(".") and not re.search(r"\d\.$", a[:-1] + "0"):
        a = a[:-1].rstrip()
    return a


def final_answer(text: str) -> str | None:
    """The final answer a written solution states, or None if it states none."""
    if not text:
        return None
    boxed = last_boxed(text)
    if boxed is not None:
        return clean_answer(boxed)
    hashes = _HASHES.findall(text)
    if hashes:
        return clean_answer(hashes[-1])
    said = _ANSWER_IS.findall(text)
    if said:
        a = clean_answer(said[-1])
        return a or None
    return None


def program_answer(stdout: str) -> str | None:
    """The answer a program printed: its last non-empty line (markers inside it honoured)."""
    lines = [ln.strip() for ln in stdout.splitlines() if ln.strip()]
    if not lines:
        return None
    last = lines[-1]
    return final_answer(last) or clean_answer(last) or None


_INT = re.compile(r"[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)")


def shorten(text: str, limit: int = 60) -> str:
    """An answer as messages show it: never whole when long."""
    return text if len(text) <= limit else f"{text[:limit // 2]}...{text[-limit // 4:]} ({len(text):,} characters)"


def _as_int(answer: str) -> str | None:
    """The integer an answer plainly is ('1,250', '\\$18', '-3'), as canonical digits with
    a sign ('1250', '18', '-3'), else None. Digit strings, not int(): any length is exact."""
    a = answer.replace("\\$", "").replace("$", "").strip()
    if not _INT.fullmatch(a):
        return None
    sign = "-" if a.startswith("-") else ""
    digits = a.lstrip("+-").replace(",", "").lstrip("0") or "0"
    return ("" if digits == "0" else sign) + digits


def _pair_key(gold: str, answer: str) -> str:
    return hashlib.sha256(f"{gold}\0{answer}".encode()).hexdigest()[:32]


class AnswerChecker:
    """Equivalence of final answers with math-verify, cached. Thread-safe.

    `timeouts_path`: a JSONL file of pairs whose check timed out (read at start, appended to
    as they happen), so a rerun records the same verdict without spending the time again."""

    def __init__(self, timeout_s: int = 5, timeouts_path: Path | None = None,
                 max_chars: int = MAX_ANSWER_CHARS):
        self.timeout_s = max(1, int(timeout_s))
        self.max_chars = max_chars
        self._parsed: dict[str, Any] = {}
        self._pairs: dict[tuple[str, str], bool] = {}
        self._problems: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self.checks = 0
        self.cache_hits = 0
        self.timeouts = 0
        self.timeouts_path = Path(timeouts_path) if timeouts_path else None
        self._timed_out: set[str] = set()
        if self.timeouts_path and self.timeouts_path.exists():
            with self.timeouts_path.open(encoding="utf-8", errors="replace") as fh:
                for line in fh:
                    try:
                        self._timed_out.add(json.loads(line)["key"])
                    except (ValueError, KeyError, TypeError):
                        pass  # a torn line from a kill: that check simply runs again

    def _timeout(self) -> int | None:
        return self.timeout_s if threading.current_thread() is threading.main_thread() else None

    def parse(self, answer: str) -> Any:
        """math-verify's parse of `answer`; [] if it does not parse, is too long or timed out."""
        try:
            return self._parse(answer)
        except TimeoutError:
            return []

    def _parse(self, answer: str) -> Any:
        a = clean_answer(answer)
        if len(a) > self.max_chars:
            return []
        with self._lock:
            if a in self._parsed:
                if self._parsed[a] is TimeoutError:
                    raise TimeoutError("parsing timed out")
                return self._parsed[a]
        from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse
        from math_verify.errors import TimeoutException

        cfg = [LatexExtractionConfig(), ExprExtractionConfig()]
        t = self._timeout()
        try:
            parsed = parse(f"${a}$", extraction_config=cfg, parsing_timeout=t, raise_on_error=True)
            if not parsed:
                parsed = parse(a, extraction_config=cfg, parsing_timeout=t, raise_on_error=True)
        except TimeoutException:
            parsed = TimeoutError
        except Exception:
            parsed = []
        with self._lock:
            self._parsed[a] = parsed
        if parsed is TimeoutError:
            raise TimeoutError("parsing timed out")
        return parsed

    def problem(self, gold: str | None, answer: str | None) -> str | None:
        """Why `equivalent(gold, answer)` did not really compare them (too long, timed out), or None."""
        if gold is None or answer is None:
            return None
        return self._problems.get((clean_answer(gold), clean_answer(answer)))

    def equivalent(self, gold: str, answer: str) -> bool:
        """Is `answer` the same as `gold`? (gold first: math-verify is not symmetric)."""
        if gold is None or answer is None:
            return False
        g, a = clean_answer(gold), clean_answer(answer)
        if not g or not a:
            return False
        key = (g, a)
        with self._lock:
            hit = self._pairs.get(key)
            if hit is not None:
                self.cache_hits += 1
                return hit
        problem = None
        if g == a:
            same = True
        elif len(g) > self.max_chars or len(a) > self.max_chars:
            same = False
            which = "gold answer" if len(g) > self.max_chars else "answer"
            problem = (f"not checked: {which} of {max(len(g), len(a)):,} characters is over the "
                       f"{self.max_chars:,}-character limit")
        elif (gi := _as_int(g)) is not None and (ai := _as_int(a)) is not None:
            same = gi == ai  # two integers (GSM8K): exact, without a sympy round trip
        elif _pair_key(g, a) in self._timed_out:
            same, problem = False, f"not checked: the check timed out ({self.timeout_s}s) in an earlier run"
        else:
            same, problem = self._verify(g, a)
        with self._lock:
            self.checks += 1
            self._pairs[key] = same
            if problem:
                self._problems[key] = problem
        return same

    def _verify(self, g: str, a: str) -> tuple[bool, str | None]:
        from math_verify import verify
        from math_verify.errors import TimeoutException

        try:
            pg, pa = self._parse(g), self._parse(a)
            return bool(pg and pa and verify(pg, pa, timeout_seconds=self._timeout(), raise_on_error=True)), None
        except (TimeoutError, TimeoutException):
            self._record_timeout(g, a)
            return False, f"not checked: the check timed out ({self.timeout_s}s)"
        except Exception:
            return False, None

    def _record_timeout(self, g: str, a: str) -> None:
        key = _pair_key(g, a)
        with self._lock:
            self.timeouts += 1
            self._timed_out.add(key)
            if self.timeouts_path is not None:
                self.timeouts_path.parent.mkdir(parents=True, exist_ok=True)
                with self.timeouts_path.open("a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"key": key, "gold": shorten(g), "answer": shorten(a)}) + "\n")

    def groups(self, answers: list[str | None]) -> list[list[int]]:
        """Indices of `answers` grouped by equivalence (first member represents a group), in
        order of first appearance; None answers are left out."""
        out: list[list[int]] = []
        for i, a in enumerate(answers):
            if a is None:
                continue
            for g in out:
                rep = answers[g[0]]
                if self.equivalent(rep, a) or self.equivalent(a, rep):
                    g.append(i)
                    break
            else:
                out.append([i])
        return out


def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) in a solution, braces balanced."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth, j = 1, i
    while j < len(text):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                inner = text[i:j].strip()
                return inner or None
        j += 1
    return None


# --- multiple choice ------------------------------------------------------------------------

_CHOICES_BLOCK = re.compile(r"\nChoices:\s*(.*)\Z", re.DOTALL)
_OPTION = re.compile(r"(?:^|\s)\(?([A-Ea-e])\s*[).:]\s*(.+?)(?=\s+\(?[A-Ea-e]\s*[).:]|\n|$)", re.MULTILINE)
_LETTER = re.compile(r"([A-E])[).:]?|\(\s*([A-Ea-e])\s*\)")  # a bare lower-case letter is a variable


def options_of(question: str) -> dict[str, str]:
    """A multiple-choice question's options by letter, from the `Choices:` block the seed
    reader appends (one `A) value` per line, or all on one line)."""
    m = _CHOICES_BLOCK.search(question)
    if not m:
        return {}
    return {k.upper(): v.strip() for k, v in _OPTION.findall(m.group(1)) if v.strip()}


def option_letter(answer: str | None) -> str | None:
    """The option letter an answer names ('B', '(b)', 'B)', '\\text{(B)}', 'B) 12'), else None."""
    if not answer:
        return None
    a = re.sub(r"\\text(?:bf)?\{(.*?)\}", r"\1", answer).strip().strip("$").strip()
    m = _LETTER.fullmatch(a) or re.match(r"\(?([A-E])\)\s", a)
    return next(g for g in m.groups() if g).upper() if m else None
