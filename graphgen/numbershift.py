"""Numbers in a word problem and in its code solutions: find them, tie them, shift them.

This is the pure core of MMOS's problem generator (cyzhh/MMOS `src/attack.py`), used by
`graphgen.stages.variants`. Nothing here runs code or does I/O.

Contract:
- `find_numbers(question)` finds the numbers a reader sees: integers, decimals, money
  (`$12.50`), percentages (`25%`, `25 percent`), thousands separators (`1,200`) and fractions
  written `a/b`. Not numbers: ordinals (`3rd`), times (`3:30`), ranges (`3-5`), dates
  (`12/25/2020`), negative numbers, numbers glued to letters (`5kg`, `v2`) and number words
  ("two", "twice", "half"): those are left alone.
- `code_literals(program)` finds the numeric literals of a Python program through its syntax
  tree (so numbers inside strings, comments and names are never touched), and `a/b` divisions
  of two integer literals (a fraction written in code).
- A question number is *tied* to a code literal of equal value (a percentage also to its
  share, 25% -> 0.25; a fraction also to its decimal, 3/4 -> 0.75). Numbers are grouped by
  value: a number repeated in the question is one *key* and gets one new value everywhere.
  A key is left alone when it is not tied to any program, when it is zero, or when the
  question's words imply the same value (e.g. "2" next to "twice", "60" next to "hour",
  "100" next to "percent"): the code's literal could be either, so shifting it is unsafe.
  Likewise a common constant (1-12, 24, 30, 52, 60, 100, 365, 1000) that a program writes more
  often than the question states it is not that program's to shift.
- `draw(key, mode, rng)` picks the new value. Modes as in MMOS: `distribution` adds
  `int(N(1000, 300))`, `similar` adds `N(5, 1)` rounded to the number's kind, `scale`
  multiplies by a factor in [1/3, 3] and rounds to the kind. Kinds are kept: an integer stays
  an integer, a decimal keeps its places, money keeps its cents, a count stays positive, a
  share (a percentage up to 100, a proper fraction) stays a share; `distribution` leaves
  shares alone (as MMOS does: +1000 can never stay a share). A draw that breaks its kind is
  drawn again, a bounded number of times, then the number is reported as unshiftable.
- `substitute_*` rewrite the question and programs by span, right to left, so every
  occurrence of a key changes to the same new value, each in its own surface style.
"""

from __future__ import annotations

import ast
import math
import random
import re
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Literal

Mode = Literal["distribution", "similar", "scale"]
MODES: tuple[str, ...] = ("distribution", "similar", "scale")
Kind = Literal["int", "decimal", "money", "percent", "fraction"]

MAX_DRAWS = 20  # redraws before a number counts as unshiftable (MMOS redraws until >= 0)
SCALE_RANGE = (1 / 3, 3.0)

# A number as a reader sees it. Boundaries keep ordinals, times, ranges, dates, negatives and
# numbers glued to letters out (see the module contract).
_QNUM = re.compile(
    r"(?<![\w.\-/:,$])"
    r"(?P<money>\$\s?)?"
    r"(?:(?P<fnum>\d+)/(?P<fden>\d+)"
    r"|(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+))"
    r"(?P<pct>\s?%|\s(?:percent|per\scent)\b)?"
    r"(?![\w%]|[.,:/]\d|-\d)"
)

# Words whose meaning is a number a program may write as a literal.
_IMPLIED_WORDS: list[tuple[str, tuple[int, ...]]] = [
    (w, vals) for w, vals in [
        ("one|once|single|a unit", (1,)), ("two|twice|double[sd]?|pairs?|couples?|both|halve[sd]?|half|halves|bicycles?|twins?", (2,)),
        ("three|thrice|triple[sd]?|thirds?|tricycles?|triplets", (3,)), ("four|quadruple|quarters?|fourths?", (4,)),
        ("five|fifths?", (5,)), ("six|sixths?", (6,)), ("seven|weeks?|weekly|sevenths?", (7, 52)),
        ("eight|eighths?", (8,)), ("nine|ninths?", (9,)), ("ten|tenths?|decades?", (10,)),
        ("eleven", (11,)), ("twelve|dozens?|months?|monthly|feet|foot|inch(?:es)?", (12,)),
        ("thirteen", (13,)), ("fourteen|fortnights?", (14,)), ("fifteen", (15,)), ("sixteen|pounds?|ounces?", (16,)),
        ("seventeen", (17,)), ("eighteen", (18,)), ("nineteen", (19,)), ("twenty|score", (20,)),
        ("thirty", (30,)), ("forty", (40,)), ("fifty", (50,)), ("sixty", (60,)), ("seventy", (70,)),
        ("eighty", (80,)), ("ninety", (90,)),
        ("hours?|hourly|minutes?|seconds?", (60, 24, 3600)), ("days?|daily", (24, 7, 30, 365)),
        ("years?|yearly|annual(?:ly)?", (12, 52, 365)),
        ("hundreds?|percent(?:age)?s?|per\\s?cent|cents?|century|centuries|centimeters?|meters?", (100,)),
        ("thousands?|kilo\\w*|millimeters?|grams?|liters?", (1000,)), ("yards?", (3, 36)), ("miles?", (5280,)),
        ("gallons?|quarts?", (4, 128)), ("cups?", (8,)), ("millions?", (1_000_000,)),
    ]
]
# one pass over the text: group i matches the words of _IMPLIED_WORDS[i]
_IMPLIED = re.compile("|".join(rf"(?P<g{i}>\b(?:{w})\b)" for i, (w, _) in enumerate(_IMPLIED_WORDS)), re.I)


Key = tuple  # ("num" | "pct", value) or ("frac", (numerator, denominator))


@dataclass(frozen=True)
class QNumber:
    """One number in the question, with its surface style."""

    start: int
    end: int
    text: str
    value: Fraction
    kind: Kind
    places: int = 0  # decimals shown
    grouped: bool = False  # thousands separators
    num: int = 0  # fraction parts (value = num/den)
    den: int = 0
    prefix: str = ""  # "$" or "$ "
    suffix: str = ""  # "%", " %", " percent"

    @property
    def key(self) -> Key:
        """Numbers with equal keys get one new value (a repeated number maps consistently)."""
        if self.kind == "fraction":
            return ("frac", (self.num, self.den))
        return ("pct" if self.kind == "percent" else "num", self.value)


def _num_value(text: str) -> Fraction:
    return Fraction(Decimal(text.replace(",", "")))


def find_numbers(question: str) -> list[QNumber]:
    """Every number a reader sees in `question`, in order (see the module contract)."""
    out: list[QNumber] = []
    for m in _QNUM.finditer(question):
        money, pct = bool(m.group("money")), bool(m.group("pct"))
        if m.group("fnum") is not None:
            num, den = int(m.group("fnum")), int(m.group("fden"))
            if money or pct or den == 0:
                continue  # "$3/4" or "3/4%": not a plain fraction; leave alone
            out.append(QNumber(m.start(), m.end(), m.group(0), Fraction(num, den), "fraction", num=num, den=den))
            continue
        raw = m.group("num")
        places = len(raw.split(".", 1)[1]) if "." in raw else 0
        kind: Kind = "percent" if pct else "money" if money else "decimal" if places else "int"
        out.append(QNumber(m.start(), m.end(), m.group(0), _num_value(raw), kind, places, "," in raw,
                           prefix=m.group("money") or "", suffix=m.group("pct") or ""))
    return out


@lru_cache(maxsize=4096)
def implied_values(question: str) -> frozenset[int]:
    """Values the question's words imply ("twice" -> 2, "hour" -> 60, "percent" -> 100)."""
    vals: set[int] = {100} if "%" in question else set()
    for m in _IMPLIED.finditer(question):
        vals.update(_IMPLIED_WORDS[int(m.lastgroup[1:])][1])
    return frozenset(vals)


# --- code literals -------------------------------------------------------------------------


@dataclass(frozen=True)
class CodeLiteral:
    """A numeric literal in a program: its span (character offsets) and value."""

    start: int
    end: int
    value: Fraction
    is_float: bool


@dataclass(frozen=True)
class CodeFraction:
    """`a / b` with two integer literals: a fraction written in code."""

    num: CodeLiteral
    den: CodeLiteral


@dataclass
class ProgramLiterals:
    literals: list[CodeLiteral] = field(default_factory=list)
    fractions: list[CodeFraction] = field(default_factory=list)


class ProgramSyntaxError(ValueError):
    pass


def _offsets(program: str) -> list[int]:
    """Character offset of each line start (1-based lines; index 0 unused)."""
    starts = [0, 0]
    for line in program.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    return starts


def code_literals(program: str) -> ProgramLiterals:
    """Numeric literals of `program` with their character spans (bools and complex excluded)."""
    try:
        tree = ast.parse(program)
    except SyntaxError as exc:
        raise ProgramSyntaxError(f"program does not parse: {exc.msg} (line {exc.lineno})") from None
    starts = _offsets(program)
    lines = program.splitlines(keepends=True)

    def span(node: ast.AST) -> tuple[int, int]:
        # ast offsets are UTF-8 byte columns; convert to character offsets
        def char_col(lineno: int, col: int) -> int:
            return len(lines[lineno - 1].encode("utf-8")[:col].decode("utf-8", "replace"))

        return (starts[node.lineno] + char_col(node.lineno, node.col_offset),
                starts[node.end_lineno] + char_col(node.end_lineno, node.end_col_offset))

    found = ProgramLiterals()
    by_node: dict[int, CodeLiteral] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            if isinstance(node.value, float) and not math.isfinite(node.value):
                continue
            start, end = span(node)
            value = Fraction(node.value) if isinstance(node.value, int) else Fraction(Decimal(repr(node.value)))
            lit = CodeLiteral(start, end, value, isinstance(node.value, float))
            by_node[id(node)] = lit
            found.literals.append(lit)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div) and id(node.right) in by_node):
            continue
        # `3 / 4`, and `x * 3 / 4` or `3 * x / 4` (parsed as (x * 3) / 4): the fraction 3/4
        left = node.left
        nums = [left]
        if isinstance(left, ast.BinOp) and isinstance(left.op, ast.Mult):
            nums = [left.right, left.left]
        a = next((by_node[id(n)] for n in nums if id(n) in by_node), None)
        b = by_node[id(node.right)]
        if a is not None and not a.is_float and not b.is_float and b.value:
            found.fractions.append(CodeFraction(a, b))
    found.literals.sort(key=lambda lit: lit.start)
    return found


# --- tying question numbers to code literals -------------------------------------------------


@dataclass
class Tie:
    """Where one question key occurs in one program: literals to replace, and how."""

    plain: list[CodeLiteral] = field(default_factory=list)  # literal == value
    share: list[CodeLiteral] = field(default_factory=list)  # percent: literal == value/100
    fractions: list[CodeFraction] = field(default_factory=list)  # fraction: a / b in code
    decimal: list[CodeLiteral] = field(default_factory=list)  # fraction: literal == a/b

    def __bool__(self) -> bool:
        return bool(self.plain or self.share or self.fractions or self.decimal)


def tie(key: Key, lits: ProgramLiterals) -> Tie:
    """The literals of one program that stand for question key `key`."""
    family, value = key
    t = Tie()
    if family == "frac":
        num, den = value
        t.fractions = [f for f in lits.fractions if (f.num.value, f.den.value) == (num, den)]
        in_fraction = {id(x) for f in t.fractions for x in (f.num, f.den)}
        t.decimal = [lit for lit in lits.literals
                     if lit.is_float and lit.value == Fraction(num, den) and id(lit) not in in_fraction]
        return t
    t.plain = [lit for lit in lits.literals if lit.value == value]
    if family == "pct":
        t.share = [lit for lit in lits.literals if lit.value == value / 100 and lit.value != value]
    return t


# --- drawing new values ------------------------------------------------------------------------


class Unshiftable(Exception):
    """No draw kept the number's kind within MAX_DRAWS (reason in the message)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class KeyStyle:
    """What the new value of a key must look like: the coarsest style among its occurrences."""

    family: str
    value: Fraction
    places: int  # decimals (min over occurrences, so every occurrence can show it exactly)
    share: bool  # percentage <= 100 or proper fraction
    num: int = 0  # fraction parts
    den: int = 0


def key_style(occurrences: list[QNumber]) -> KeyStyle:
    first = occurrences[0]
    family = first.key[0]
    if family == "frac":
        return KeyStyle(family, first.value, 0, first.num < first.den, first.num, first.den)
    places = min(q.places for q in occurrences)
    share = family == "pct" and first.value <= 100
    return KeyStyle(family, first.value, places, share)


def _round(x: float, places: int) -> Fraction:
    return Fraction(Decimal(repr(round(x, places))).quantize(Decimal(1).scaleb(-places)))


def _shift(value: Fraction, mode: str, places: int, rng: random.Random) -> Fraction:
    if mode == "distribution":
        return value + int(rng.gauss(1000, 300))
    if mode == "similar":
        return value + _round(rng.gauss(5, 1), places)
    if mode == "scale":
        lo, hi = SCALE_RANGE
        factor = math.exp(rng.uniform(math.log(lo), math.log(hi)))
        return _round(float(value) * factor, places)
    raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")


def draw(style: KeyStyle, mode: str, rng: random.Random) -> Fraction | tuple[int, int] | None:
    """A new value for a key (a (num, den) pair for a fraction); None = leave it alone.

    Raises Unshiftable when MAX_DRAWS draws all broke the kind.
    """
    if style.share and mode == "distribution":
        return None  # +1000 can never stay a share; MMOS leaves percentages alone too
    if style.family == "frac":
        if not style.share:
            return None  # improper fractions (5/2) are rare; left alone
        for _ in range(MAX_DRAWS):
            den = int(_shift(Fraction(style.den), mode, 0, rng))
            if den < 2:
                continue
            num = min(max(1, round(style.num * den / style.den)), den - 1)
            if (num, den) != (style.num, style.den):
                return (num, den)
        raise Unshiftable("fraction-unshiftable")
    last_reason = "unchanged"
    for _ in range(MAX_DRAWS):
        new = _shift(style.value, mode, style.places, rng)
        if new == style.value:
            last_reason = "unchanged"
        elif new <= 0:
            last_reason = "count-not-positive"
        elif style.share and new > 100:
            last_reason = "share-over-100"
        else:
            return new
    raise Unshiftable(last_reason)


# --- formatting new values ----------------------------------------------------------------------


def decimal_text(value: Fraction) -> str:
    """Exact decimal text of a terminating fraction (1005, 0.3, 12.125)."""
    d = Decimal(value.numerator) / Decimal(value.denominator)
    text = format(d.normalize(), "f")
    return text


def question_text(q: QNumber, new: Fraction | tuple[int, int]) -> str:
    """`new` written the way the question wrote `q` ("$1,015.50", "30%", "5/8")."""
    if isinstance(new, tuple):
        return f"{new[0]}/{new[1]}"
    d = Decimal(new.numerator) / Decimal(new.denominator)
    spec = f"{',' if q.grouped else ''}.{q.places}f"
    return f"{q.prefix}{format(d, spec)}{q.suffix}"


def _code_text(new: Fraction, as_float: bool) -> str:
    if new.denominator == 1:
        return f"{new.numerator}.0" if as_float else str(new.numerator)
    return decimal_text(new)


def _code_edits(t: Tie, new: Fraction | tuple[int, int]) -> list[tuple[int, int, str]]:
    edits: list[tuple[int, int, str]] = []
    if isinstance(new, tuple):
        num, den = new
        for f in t.fractions:
            edits += [(f.num.start, f.num.end, str(num)), (f.den.start, f.den.end, str(den))]
        edits += [(lit.start, lit.end, f"({num}/{den})") for lit in t.decimal]
        return edits
    edits += [(lit.start, lit.end, _code_text(new, lit.is_float)) for lit in t.plain]
    edits += [(lit.start, lit.end, decimal_text(new / 100)) for lit in t.share]
    return edits


def apply_edits(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Replace spans, right to left. Spans never overlap (callers check)."""
    for start, end, new in sorted(edits, reverse=True):
        text = text[:start] + new + text[end:]
    return text


# --- one variant: which numbers move, the new question and programs ----------------------------


# Values that programs often write without the question stating them (per week, per day, per
# dozen, per hour, percent, a pair, both of two things): see plan_variant.
COMMON_CONSTANTS = frozenset(Fraction(v) for v in (*range(1, 13), 24, 30, 52, 60, 100, 365, 1000))


class VariantRejected(Exception):
    """A draw that cannot become a variant; `reason` is a short slug counted in the summary."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class NumberShift:
    """One question key that moved: its surface text before and after, and its code value."""

    original: str
    new: str
    occurrences: int
    code_literals: int  # literals replaced over the voting programs


@dataclass
class VariantPlan:
    question: str
    programs: list[str]  # the voting programs, substituted
    voters: list[int]  # their indices in the input list
    shifts: list[NumberShift]
    left_alone: dict[str, str]  # question number text -> why it did not move


def plan_variant(question: str, programs: list[str], mode: str, rng: random.Random, *,
                 min_voters: int = 2, literals: list[ProgramLiterals] | None = None) -> VariantPlan:
    """Shift the question's numbers that the programs use; raise VariantRejected if impossible.

    `literals` (one per program) can be passed in to parse each program once per question.
    Voters are the programs that use every shifted number; when fewer than `min_voters` do,
    only the numbers every program uses are shifted and every program votes.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {', '.join(MODES)}")
    lits = literals if literals is not None else [code_literals(p) for p in programs]
    qnums = find_numbers(question)
    if not qnums:
        raise VariantRejected("no-numbers", "the question has no numbers")
    groups: dict[Key, list[QNumber]] = {}
    for q in qnums:
        groups.setdefault(q.key, []).append(q)
    implied = implied_values(question)
    values_by_family: dict[Fraction, set[str]] = {}
    for fam, val in groups:
        if fam != "frac":
            values_by_family.setdefault(val, set()).add(fam)
    left_alone: dict[str, str] = {}
    ties: dict[Key, list[Tie]] = {}
    for key, occ in groups.items():
        family, value = key
        if family != "frac" and value == 0:
            left_alone[occ[0].text] = "zero"
        elif family != "frac" and value.denominator == 1 and int(value) in implied:
            left_alone[occ[0].text] = "implied-by-words"
        elif family != "frac" and len(values_by_family[value]) > 1:
            left_alone[occ[0].text] = "same-value-as-percentage"
        else:
            program_ties = [tie(key, lit) for lit in lits]
            if family == "num" and value in COMMON_CONSTANTS:
                # A common constant written more often in a program than the question states
                # it ("2 Fridays" next to Wednesdays-and-Fridays' `* 2`): some of its literals
                # are the hidden constant, and which ones is unknowable; that program cannot
                # carry this number.
                program_ties = [Tie() if len(t.plain) > len(occ) else t for t in program_ties]
            if any(program_ties):
                ties[key] = program_ties
            else:
                left_alone[occ[0].text] = "not-in-code"
    if not ties:
        raise VariantRejected("no-tied-numbers", "no question number appears as a literal in the code")
    shifting = list(ties)
    voters = [i for i in range(len(programs)) if all(ties[k][i] for k in shifting)]
    if len(voters) < min_voters:
        shifting = [k for k in shifting if all(ties[k])]
        voters = list(range(len(programs)))
        if not shifting:
            raise VariantRejected("no-common-numbers", "the programs share no tied question number")
    new_values: dict[Key, Fraction | tuple[int, int]] = {}
    for key in shifting:
        try:
            new = draw(key_style(groups[key]), mode, rng)
        except Unshiftable as exc:
            left_alone[groups[key][0].text] = exc.reason
            continue
        if new is None:
            left_alone[groups[key][0].text] = "share-kept-in-distribution-mode"
        else:
            new_values[key] = new
    if not new_values:
        raise VariantRejected("nothing-to-shift", "; ".join(f"{k}: {v}" for k, v in left_alone.items()))
    q_edits = [(q.start, q.end, question_text(q, new_values[q.key])) for q in qnums if q.key in new_values]
    new_programs = []
    literal_counts = {key: 0 for key in new_values}
    for i in voters:
        edits: list[tuple[int, int, str]] = []
        for key, new in new_values.items():
            e = _code_edits(ties[key][i], new)
            literal_counts[key] += len(e)
            edits += e
        spans = sorted((s, e) for s, e, _ in edits)
        if any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
            raise VariantRejected("ambiguous-literal", "one code literal stands for two question numbers")
        new_programs.append(apply_edits(programs[i], edits))
    shifts = [NumberShift(groups[k][0].text, question_text(groups[k][0], v), len(groups[k]), literal_counts[k])
              for k, v in new_values.items()]
    return VariantPlan(apply_edits(question, q_edits), new_programs, voters, shifts, left_alone)


# --- answers ------------------------------------------------------------------------------------

_ANSWER_NUM = re.compile(r"^[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][-+]?\d+)?$")


def parse_number(text: str) -> Fraction | None:
    """A printed answer as a number ("1,005", "$12.50", "30%", "2.0", "3/4"), else None."""
    t = text.strip().rstrip(".").replace("$", "").replace("\\%", "").rstrip("%").strip()
    if "/" in t:
        a, _, b = t.partition("/")
        pa, pb = parse_number(a), parse_number(b)
        return pa / pb if pa is not None and pb else None
    if not t or not _ANSWER_NUM.match(t) or t in "+-.":
        return None
    try:
        return Fraction(Decimal(t.replace(",", "")))
    except (ArithmeticError, ValueError):
        return None


_ASKS_SHARE = re.compile(r"\b(?:what|which)\s+(?:\w+\s+){0,2}(?:percent(?:age)?|per\s?cent|%)", re.I)


def answer_kind_problem(question: str, original: Fraction | None, new: Fraction) -> str | None:
    """Why `new` breaks the original answer's kind, or None. Kinds: a count (a non-negative
    integer answer) stays a non-negative integer; a non-negative answer stays non-negative; a
    share (the question asks for a percentage and the answer was at most 100) stays <= 100."""
    if original is None:
        return None
    if original >= 0 and new < 0:
        return "count-negative" if original.denominator == 1 else "answer-negative"
    if original.denominator == 1 and original >= 0 and _tolerant_int(new) is None:
        return "count-fractional"
    if _ASKS_SHARE.search(question) and 0 <= original <= 100 and new > 100:
        return "share-over-100"
    return None


def _tolerant_int(x: Fraction) -> int | None:
    """x as an integer if it is one up to float noise (7.000000000000001 -> 7)."""
    r = round(x)
    return r if abs(x - r) <= Fraction(1, 10**9) * max(1, abs(r)) else None


def same_number(a: Fraction, b: Fraction) -> bool:
    """Equal up to float noise in printed program output (relative 1e-9)."""
    return abs(a - b) <= Fraction(1, 10**9) * max(1, abs(a), abs(b))


def unexplained_literals(question: str, lits: ProgramLiterals, qnums: list[QNumber] | None = None) -> list[Fraction]:
    """Literals of a program that neither the question states nor its words imply: likely an
    intermediate result typed in by hand ("270" for the overtime pay). Such a program would not
    follow a shift of the numbers behind it, so it must not vote on a variant's answer.

    Explained: a question number (a percentage also as its share, a fraction as its parts and
    its decimal), a value implied by the question's words and its reciprocal ("half" -> 2, 0.5),
    and small whole numbers below 10 (indices, rounding places, +1).
    """
    qnums = find_numbers(question) if qnums is None else qnums
    known: set[Fraction] = set()
    for q in qnums:
        known.add(q.value)
        if q.kind == "percent":
            known.add(q.value / 100)
        if q.kind == "fraction":
            known.update((Fraction(q.num), Fraction(q.den)))
    for v in implied_values(question):
        known.update((Fraction(v), Fraction(1, v)))
    return [lit.value for lit in lits.literals
            if lit.value not in known and not (lit.value.denominator == 1 and 0 <= lit.value < 10)]
