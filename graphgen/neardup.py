"""The algorithms behind `graphgen filter`: word tokens, hashed n-grams, MinHash, LSH clusters.

Everything works on batches of rows held as flat numpy arrays, so 2M rows cost seconds of
numpy work instead of millions of Python sets:

- `Tokens`: a batch of texts as one flat array of 64-bit token hashes plus row offsets.
  Tokens are normalised word tokens: the project's question normaliser
  (`graphgen.normalize.normalize_question`: NFKC, whitespace collapsed), case-folded, then
  runs of letters, and numbers (``12``, ``3.5``) as one token each. `tokenize` finds them
  for a whole batch at once with numpy (ASCII rows on their bytes, the others on their code
  points; no string per token); a `TokenText` slices out the words of the few rows a report
  shows.
  A number-masked view replaces every number by one placeholder, so a copy whose numbers
  were changed still shares its n-grams with the original; such a match counts only when
  the equal run covers most of the item (`NUMBER_VARIANT_COVER`), so problems that merely
  share a template's phrasing are not removed.
- `window_hashes` / `window_keys`: the hash (mixed) / the polynomial key of every n-token
  window of every row, in one vectorised pass.
- `BenchmarkIndex`: benchmark items as sorted arrays of n-gram keys (exact and
  number-masked) plus, for items shorter than n, the key of the whole item; every window of
  a batch is looked up in the n-gram tables through one slot per top bits of the key, a
  whole short item only where a row holds its first tokens; each hit is checked token by
  token against the item (so two windows whose 64-bit keys collide never match); the
  matching, the coverage and the number-masked runs are computed in arrays for the whole
  batch. Built once per benchmark set and cached (`cached_source`, keyed by the files' bytes).
- `minhash_signatures`: MinHash signatures of word 1..k-gram shingle sets through a
  maintained library (``rensa`` by default, ``datasketch`` as the alternative; see
  BENCHMARKS.md for the measurement that chose rensa).
- `near_duplicate_clusters`: LSH banding over the signatures in compact arrays (one sort per
  band), candidate pairs verified by estimated Jaccard, connected components (folded in
  band by band, so the pairs are never all held at once), then inside each component a
  greedy keep-one pass in priority order, so every removed row is within the threshold of
  the row it is reported against.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import os
import math
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from graphgen.normalize import normalize_question

__all__ = [
    "index_cache_dir",
    "Tokens",
    "TokenText",
    "tokenize",
    "concat_tokens",
    "window_hashes",
    "window_keys",
    "BenchmarkIndex",
    "ContaminationHit",
    "minhash_signatures",
    "shingle_hashes",
    "lsh_params",
    "near_duplicate_clusters",
    "greedy_keep",
    "estimated_jaccard",
]

# Numbers first (one token with their decimals), then runs of letters; everything else
# (punctuation, LaTeX backslashes, braces, $) separates tokens.
# A number-masked match must cover this share of the benchmark item in one run: a copy
# whose numbers were changed, not a phrase two problems of one template share.
NUMBER_VARIANT_COVER = 0.8
# a short item (fewer than 2n words) with this many words changed in place still matches:
# "one-word-changed" (a copy with one word swapped has no n-window free of the change)
SHORT_CHANGED_WORDS = 1
# a short item is looked for number-masked only with at least this many words besides numbers
SHORT_MASKED_MIN_WORDS = 3
# Near duplicates mask numbers only in rows with at least this many words: in a short
# problem ("Compute $\cos 72^\circ$", "What is the units digit of $23^{23}$?") the numbers are
# the problem, and masking them made distinct problems equal.
NEAR_MASK_MIN_WORDS = 10
_BUCKET_BITS = 21
_ANCHOR = 3  # a whole short item is looked for where a row holds its first (up to) 3 tokens
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+")
_NUMBER = re.compile(r"\d")
_MASK = np.uint64(0x9E3779B97F4A7C15)  # the placeholder every number becomes when masked
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@functools.cache
def _position() -> np.ndarray:
    """One odd multiplier per band position: a band's hash depends on value order (made on
    first use: numpy.random costs an import that decontamination alone does not need)."""
    return np.random.default_rng(0x5EED).integers(1, 2**63, size=64, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
# Base of the window hashes (odd, so invertible modulo 2**64) and its inverse.
_BASE = np.uint64(0x9FB21C651E98DF25)
_BASE_INVERSE = np.uint64(pow(int(_BASE), -1, 2**64))


def index_cache_dir() -> Path:
    """Where built benchmark indexes are kept between runs: $GRAPHGEN_CACHE_DIR, else
    $XDG_CACHE_HOME/graphgen, else ~/.cache/graphgen."""
    if os.environ.get("GRAPHGEN_CACHE_DIR"):
        return Path(os.environ["GRAPHGEN_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "graphgen"


def normalise_question(text: str) -> str:
    """The project's question normaliser, case-folded (duplicates up to case, as pairs do)."""
    return normalize_question(text).casefold()


def words(text: str) -> list[str]:
    """The normalised word tokens of `text` (what n-grams and shingles are made of)."""
    return _TOKEN.findall(normalise_question(text))


def _mix(h: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads the bits of a linear combination."""
    h = h ^ (h >> np.uint64(30))
    h = h * _MIX1
    h = h ^ (h >> np.uint64(27))
    h = h * _MIX2
    return h ^ (h >> np.uint64(31))


@dataclass
class Tokens:
    """Token hashes of a batch of texts, flat, with `offsets[i]:offsets[i+1]` per text."""

    hashes: np.ndarray  # uint64
    is_number: np.ndarray  # bool
    offsets: np.ndarray  # int64, len(texts) + 1
    _masked: np.ndarray | None = field(default=None, repr=False)

    _prefix: dict = field(default_factory=dict, repr=False)

    def prefix(self, masked: bool) -> tuple[np.ndarray, np.ndarray]:
        """(prefix sums of t[k] * P**k, P**-k), computed once per view."""
        if masked not in self._prefix:
            values = self.masked if masked else self.hashes
            total = len(values)
            prefix = np.zeros(total + 1, dtype=np.uint64)
            np.cumsum(values * _powers(_BASE, total), out=prefix[1:])
            self._prefix[masked] = (prefix, _powers(_BASE_INVERSE, total))
        return self._prefix[masked]

    def words_before(self) -> np.ndarray:
        if "words" not in self._prefix:
            self._prefix["words"] = np.concatenate(([0], np.cumsum(~self.is_number)))
        return self._prefix["words"]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    @property
    def masked(self) -> np.ndarray:
        if self._masked is None:
            self._masked = np.where(self.is_number, _MASK, self.hashes)
        return self._masked

    def __len__(self) -> int:
        return len(self.offsets) - 1


@dataclass
class TokenText:
    """Where each token of a `Tokens` batch sits in the normalised text, so the words of a
    few rows (a match to report) are sliced out on demand instead of kept for every row."""

    text: str
    starts: np.ndarray  # int64 character offset of each token
    ends: np.ndarray
    offsets: np.ndarray  # the batch's token offsets per row

    def words(self, row: int, start: int = 0, stop: int | None = None) -> list[str]:
        """Tokens start..stop of `row` as strings."""
        a, b = int(self.offsets[row]), int(self.offsets[row + 1])
        lo, hi = a + start, b if stop is None else min(b, a + stop)
        text = self.text
        return [text[i:j] for i, j in zip(self.starts[lo:hi].tolist(), self.ends[lo:hi].tolist())]

    def __getitem__(self, row: int) -> list[str]:
        return self.words(row)

    def __len__(self) -> int:
        return len(self.offsets) - 1


# Character classes of the tokeniser (`_TOKEN`): 0 separator, 1 letter ([^\W\d_]), 2 digit (\d).
_ASCII_CLASS = np.zeros(128, dtype=np.int8)
for _c in range(128):
    _ch = chr(_c)
    _ASCII_CLASS[_c] = 2 if _ch.isdecimal() else 1 if _ch.isalnum() else 0
_CLASS_CACHE: dict[int, tuple[int, bool]] = {}
_SEP = "\x00"
_CHAR_BASE = np.uint64(0xC2B2AE3D27D4EB4F)
_CHAR_BASE_INVERSE = np.uint64(pow(int(_CHAR_BASE), -1, 2**64))


def _classes(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(class, not-alphabetic) per code point; non-ASCII ones asked of Python once each."""
    ascii_ = codes < 128
    cls = _ASCII_CLASS[np.where(ascii_, codes, 0)]
    nonalpha = cls == 2
    if not ascii_.all():
        where = np.flatnonzero(~ascii_)
        uniq, inverse = np.unique(codes[where], return_inverse=True)
        found = []
        for c in uniq.tolist():
            got = _CLASS_CACHE.get(c)
            if got is None:
                ch = chr(c)
                klass = 2 if ch.isdecimal() else 1 if ch.isalnum() else 0
                got = _CLASS_CACHE[c] = (klass, klass != 0 and not ch.isalpha())
            found.append(got)
        table = np.array(found, dtype=np.int16).reshape(-1, 2)
        cls[where] = table[inverse, 0]
        nonalpha[where] = table[inverse, 1].astype(bool)
    return cls, nonalpha


def tokenize(texts: Sequence[str], normalised: bool = False) -> tuple[Tokens, TokenText]:
    """Tokens of every text (and where they are in the normalised text, for reporting).

    ``normalised``: the texts already went through the question normaliser.

    The same tokens as ``_TOKEN.findall`` (numbers with one decimal part, runs of letters),
    found for the whole batch at once with numpy: the batch is one string (rows joined by
    NUL), normalised in one call, and each token's hash is a polynomial of its code points
    taken from one prefix sum, so no token string is made. NFKC and case folding work
    character by character, so normalising the joined batch equals joining the normalised
    rows; whitespace is a separator either way. Rows that are ASCII (most) are worked on as
    bytes (one byte per character, classes by comparison, no table look-up); the others as
    code points; the hashes are the same either way, and the two are merged in row order.
    """
    if not normalised:  # NFKC leaves ASCII as it is, and str.isascii() costs nothing
        normalize = unicodedata.normalize
        texts = [t if t.isascii() else normalize("NFKC", t) for t in texts]
    ascii_rows = np.fromiter(map(str.isascii, texts), dtype=bool, count=len(texts))
    if ascii_rows.all():
        return _tokenize_ascii(texts, normalised)
    if not ascii_rows.any():
        return _tokenize_code_points(texts, normalised)
    a = np.flatnonzero(ascii_rows)
    u = np.flatnonzero(~ascii_rows)
    ta, xa = _tokenize_ascii([texts[i] for i in a.tolist()], normalised)
    tu, xu = _tokenize_code_points([texts[i] for i in u.tolist()], normalised)
    lengths = np.empty(len(texts), dtype=np.int64)
    lengths[a] = ta.lengths
    lengths[u] = tu.lengths
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    # the code-point rows' tokens go to their rows' places; the ASCII rows' fill the rest in order
    ulen = tu.lengths
    dest_u = np.repeat(offsets[u] - tu.offsets[:-1], ulen) + np.arange(int(ulen.sum()), dtype=np.int64)
    from_a = np.ones(int(offsets[-1]), dtype=bool)
    from_a[dest_u] = False
    shift = len(xa.text) + 1
    merged = []
    for va, vu in ((ta.hashes, tu.hashes), (ta.is_number, tu.is_number), (xa.starts, xu.starts + shift),
                   (xa.ends, xu.ends + shift)):
        out = np.empty(int(offsets[-1]), dtype=va.dtype)
        out[from_a] = va
        out[dest_u] = vu
        merged.append(out)
    hashes, is_number, starts, ends = merged
    return Tokens(hashes, is_number, offsets), TokenText(xa.text + _SEP + xu.text, starts, ends, offsets)


def _tokenize_ascii(texts: Sequence[str], normalised: bool) -> tuple[Tokens, TokenText]:
    """`tokenize` of ASCII texts, on their bytes: letters and digits by comparison (case
    folding is lower-casing in ASCII), tokens as the runs of one class."""
    joined = _SEP.join(texts)
    if not normalised:
        joined = joined.lower()
    codes = np.frombuffer(joined.encode("ascii"), dtype=np.uint8)
    size = len(codes)
    # 1 letter, 2 digit, 0 anything else (a NUL inside a row is a separator, as a space is)
    cls = (np.subtract(codes, 97, dtype=np.uint8) < 26).view(np.uint8)
    cls |= (np.subtract(codes, 48, dtype=np.uint8) < 10).view(np.uint8) << 1
    # class changes: a token starts at a change to a letter or digit and ends at a change from one
    change = np.empty(size + 1, dtype=bool)
    change[0] = change[-1] = True
    np.not_equal(cls[1:], cls[:-1], out=change[1:-1])
    edges = np.flatnonzero(change)
    after = cls[edges[:-1]]  # the class of each run
    # a '.' between digits joins a number (3.5), once per number: in 1.2.3 only the first. Such
    # a dot is a one-character run between two digit runs; dots in a chain (digits between
    # them only) join alternately, from the first
    runs = len(edges) - 1
    dot = np.flatnonzero((after[1:-1] == 0) & (edges[2:-1] - edges[1:-2] == 1) & (after[:-2] == 2)
                         & (after[2:] == 2)) + 1 if runs > 2 else np.zeros(0, dtype=np.int64)
    dot = dot[codes[edges[dot]] == 46]
    absorbed = np.zeros(runs, dtype=bool)
    if len(dot):
        linked = np.zeros(len(dot), dtype=bool)
        linked[1:] = dot[1:] - dot[:-1] == 2  # one digit run between two dots
        idx = np.arange(len(dot))
        first = np.maximum.accumulate(np.where(linked, 0, idx))
        dot = dot[(idx - first) % 2 == 0]
        absorbed[dot] = absorbed[dot + 1] = True  # the dot and the digits after it join the digits before
    token = np.flatnonzero((after != 0) & ~absorbed)  # (indexing by positions: much faster than by a mask)
    starts = edges[token]
    if len(dot):
        last_run = np.arange(runs, dtype=np.int64)
        last_run[dot - 1] = dot + 1
        ends = edges[last_run[token] + 1]
    else:
        ends = edges[token + 1]
    is_number = after[token] == 2
    row_start = np.zeros(len(texts), dtype=np.int64)
    if len(texts) > 1:
        np.cumsum(np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))[:-1] + 1, out=row_start[1:])
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    if len(texts):
        offsets[1:-1] = np.searchsorted(starts, row_start[1:])
        offsets[-1] = len(starts)
    if len(starts):
        prefix = np.zeros(size + 1, dtype=np.uint64)
        np.multiply(codes, _powers(_CHAR_BASE, size), out=prefix[1:])
        np.cumsum(prefix[1:], out=prefix[1:])
        h = (prefix[ends] - prefix[starts]) * _powers(_CHAR_BASE_INVERSE, size)[starts]
        h += (ends - starts).astype(np.uint64)
        hashes = _mix(h)
    else:
        hashes = np.zeros(0, dtype=np.uint64)
    return Tokens(hashes, is_number, offsets), TokenText(joined, starts, ends, offsets)


def _tokenize_code_points(texts: Sequence[str], normalised: bool) -> tuple[Tokens, TokenText]:
    """`tokenize` of any texts (NFKC already applied unless ``normalised``), on code points."""
    joined = _SEP.join(texts)
    if _SEP in joined and joined.count(_SEP) != max(0, len(texts) - 1):
        joined = _SEP.join(t.replace(_SEP, " ") for t in texts)
    if not normalised:
        joined = joined.casefold()
    codes = np.frombuffer(joined.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
    size = len(codes)
    cls, nonalpha = _classes(codes)
    if size:
        # a '.' between digits joins a number (3.5), once per number: in 1.2.3 only the first
        dots = np.flatnonzero(codes[1:-1] == 46) + 1 if size > 2 else np.zeros(0, dtype=np.int64)
        dots = dots[(cls[dots - 1] == 2) & (cls[dots + 1] == 2)]
        if len(dots):
            digits_before = np.concatenate(([0], np.cumsum(cls == 2)))
            linked = np.zeros(len(dots), dtype=bool)
            gap = dots[1:] - dots[:-1] - 1
            linked[1:] = (digits_before[dots[1:]] - digits_before[dots[:-1] + 1]) == gap
            idx = np.arange(len(dots))
            first = np.maximum.accumulate(np.where(linked, 0, idx))
            dots = dots[(idx - first) % 2 == 0]
            cls[dots] = 2
            nonalpha[dots] = True
    # token starts: a non-separator whose class differs from the previous character's
    prev = np.empty(size, dtype=cls.dtype)
    if size:
        prev[0] = 0
        prev[1:] = cls[:-1]
    is_start = (cls != 0) & (cls != prev)
    nxt = np.empty(size, dtype=cls.dtype)
    if size:
        nxt[-1] = 0
        nxt[:-1] = cls[1:]
    is_end = (cls != 0) & (cls != nxt)
    starts = np.flatnonzero(is_start)
    ends = np.flatnonzero(is_end) + 1
    # rows: token counts between the separators
    seps = np.flatnonzero(codes == 0) if len(texts) > 1 else np.zeros(0, dtype=np.int64)
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    if len(texts):
        offsets[1:-1] = np.searchsorted(starts, seps)
        offsets[-1] = len(starts)
    # token hash: sum c[k] * B**(k - start) over its characters, plus its length, mixed
    if len(starts):
        powers = _powers(_CHAR_BASE, size)
        prefix = np.zeros(size + 1, dtype=np.uint64)
        np.cumsum(codes.astype(np.uint64) * powers, out=prefix[1:])
        inverse = _powers(_CHAR_BASE_INVERSE, size)
        h = (prefix[ends] - prefix[starts]) * inverse[starts] + (ends - starts).astype(np.uint64)
        hashes = _mix(h)
        nonalpha_before = np.concatenate(([0], np.cumsum(nonalpha)))
        is_number = (nonalpha_before[ends] - nonalpha_before[starts]) > 0
    else:
        hashes, is_number = np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=bool)
    return Tokens(hashes, is_number, offsets), TokenText(joined, starts, ends, offsets)


def concat_tokens(parts: Sequence[Tokens]) -> Tokens:
    """One `Tokens` of several batches' rows, in order (what one `tokenize` call of all the
    texts returns)."""
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return Tokens(np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=bool), np.zeros(1, dtype=np.int64))
    shift = np.cumsum([0] + [int(p.offsets[-1]) for p in parts[:-1]])
    offsets = np.concatenate([parts[0].offsets[:1]] + [p.offsets[1:] + k for p, k in zip(parts, shift)])
    return Tokens(np.concatenate([p.hashes for p in parts]), np.concatenate([p.is_number for p in parts]), offsets)


def _powers(base: np.uint64, count: int) -> np.ndarray:
    if count <= 0:
        return np.zeros(0, dtype=np.uint64)
    cached = _POWERS.get(int(base))
    if cached is None or len(cached) < count:
        out = np.full(max(count, 1 << 16), base, dtype=np.uint64)
        out[0] = 1
        cached = _POWERS[int(base)] = np.cumprod(out, dtype=np.uint64)  # wraps modulo 2**64, as intended
    return cached[:count]


_POWERS: dict[int, np.ndarray] = {}


def window_hashes(tokens: Tokens, n: int, *, masked: bool = False,
                  min_words: int = 0, at: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, start positions) of every n-token window that lies inside one text.

    ``masked``: numbers all hash alike. ``min_words``: keep only windows with at least this
    many non-number tokens (so a masked window of bare numbers matches nothing).

    A window's hash is sum(t[s+j] * P**j) (`window_keys`) plus n, mixed. ``at``: only windows
    starting at these token positions.
    """
    h, starts = window_keys(tokens, n, masked=masked, min_words=min_words, at=at)
    return _mix(h + np.uint64(n)), starts


def window_keys(tokens: Tokens, n: int, *, masked: bool = False,
                min_words: int = 0, at: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """`window_hashes` unmixed: sum(t[s+j] * P**j) of every n-token window inside one text.

    Computed for every window from one prefix sum of t[k] * P**k, times the inverse power
    P**-s (P is odd, so it has an inverse modulo 2**64). The token hashes are mixed already,
    so these keys are spread over all 64 bits; the decontamination tables hold them (one
    length per table, every hit confirmed token by token).
    """
    total = len(tokens.hashes)
    if total < n or n <= 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    prefix, inverse = tokens.prefix(masked)
    if "row_end" not in tokens._prefix:
        tokens._prefix["row_end"] = np.repeat(tokens.offsets[1:], tokens.lengths)
    if at is None:
        starts = np.arange(total - n + 1, dtype=np.int64)
        row_end = tokens._prefix["row_end"][: total - n + 1]
    else:
        starts = at[at <= total - n]
        row_end = tokens._prefix["row_end"][starts]
    keep = starts + n <= row_end
    if min_words:
        words_before = tokens.words_before()
        keep &= (words_before[starts + n] - words_before[starts]) >= min_words
    starts = starts[keep]
    return (prefix[starts + n] - prefix[starts]) * inverse[starts], starts


def _all_window_keys(tokens: Tokens, n: int, masked: bool) -> np.ndarray:
    """`window_keys` of the window at every start 0 .. len - n, crossing rows or not (the
    caller checks the few that hit a table)."""
    total = len(tokens.hashes)
    prefix, inverse = tokens.prefix(masked)
    h = prefix[n:] - prefix[: total + 1 - n]
    h *= inverse[: total + 1 - n]
    return h


# --- decontamination ---------------------------------------------------------------------


@dataclass
class ContaminationHit:
    item: int  # index into BenchmarkIndex.items
    kind: str  # "ngram", "ngram-numbers", "contained", "contained-numbers" or "one-word-changed"
    coverage: float = 0.0  # share of the item's words the matched windows cover (1.0: a whole copy)
    # where the matched windows are in the row, for the words reported (sliced on demand)
    _text: TokenText | None = field(default=None, repr=False)
    _row: int = field(default=0, repr=False)
    # (start, length) of each window: two arrays, turned into words only for the rows reported
    _windows: tuple[np.ndarray, np.ndarray] | list[tuple[int, int]] = field(default_factory=list, repr=False)

    @functools.cached_property
    def ngrams(self) -> list[str]:
        """Every distinct matched window as words of the row, in order found (at most 20)."""
        out: list[str] = []
        if self._text is None:
            return out
        windows = self._windows
        if isinstance(windows, tuple):  # each (start, length) once, in order found (tables repeat them)
            windows = list(dict.fromkeys(zip(windows[0].tolist(), windows[1].tolist())))
        if not windows:
            return out
        # the words the first 20 windows span (all of the row's if more windows are needed),
        # joined by single spaces once; a window's text is then one slice
        head = windows[:20]
        lo, hi = min(s for s, _n in head), max(s + n for s, n in head)
        words = self._text.words(self._row, lo, hi)
        spaced = " ".join(words)
        begin = [0, *itertools.accumulate(len(w) + 1 for w in words)]
        seen: set[str] = set()
        for k, (start, length) in enumerate(windows):
            if k == 20:  # repeated texts among the first 20: the rest need the whole row
                lo, words = 0, self._text.words(self._row)
                spaced = " ".join(words)
                begin = [0, *itertools.accumulate(len(w) + 1 for w in words)]
            text = spaced[begin[start - lo]:begin[start - lo + length] - 1]
            if text not in seen:
                seen.add(text)
                out.append(text)
                if len(out) >= 20:
                    break
        return out

    @property
    def ngram(self) -> str:
        """The first matched window."""
        found = self.ngrams
        return found[0] if found else ""


class BenchmarkIndex:
    """Hashed n-grams of every benchmark item, built once, looked up by every row batch.

    Each table is three sorted parallel arrays: window hash, item, start of the window in
    the item; so a hit is confirmed by comparing the row's tokens with the item's tokens at
    that one place (so two windows whose 64-bit hashes collide never match).
    """

    def __init__(self, items: Sequence[tuple[str, str, str]], n: int = 13, number_variants: bool = True,
                 boilerplate_items: int = 0):
        """`items`: (benchmark name, item id, question text). `boilerplate_items`: an n-gram
        that at least this many items share (drawing code such as `label a a w label b b e`,
        stock phrases such as `express your answer as a common fraction`) is boilerplate and
        never matches (0: every n-gram counts), as NeMo Curator and GPT-3 drop frequent n-grams."""
        self.n = n
        self.boilerplate_items = boilerplate_items
        self.boilerplate: dict[str, int] = {}  # a few dropped n-grams (as words) -> items sharing them
        self.boilerplate_dropped = 0
        self.number_variants = number_variants
        self.min_words = math.ceil(n / 2)
        self.items = list(items)
        tokens, self.item_text = tokenize([text for _b, _i, text in self.items])
        self.item_tokens = tokens
        self.item_lengths = tokens.lengths
        owner = np.repeat(np.arange(len(self.items), dtype=np.int64), tokens.lengths)
        first = tokens.offsets[:-1]
        # (table, masked view, window length or 0 for "the item's own length", kind)
        self.tables: list[tuple[tuple[np.ndarray, np.ndarray, np.ndarray], bool, int, str]] = []
        h, starts = self._drop_boilerplate(*window_keys(tokens, n), owner, first)
        self.tables.append((self._table(h, starts, owner, first), False, n, "ngram"))
        if number_variants:
            h, starts = window_keys(tokens, n, masked=True, min_words=self.min_words)
            h, starts = self._drop_boilerplate(h, starts, owner, first, masked=True)
            self.tables.append((self._table(h, starts, owner, first), True, n, "ngram-numbers"))
        # Items shorter than n: the hash of the whole item, one table per length.
        lengths = tokens.lengths
        for length in sorted(set(lengths[(lengths > 0) & (lengths < n)].tolist())):
            h, starts = window_keys(tokens, length)
            whole = lengths[owner[starts]] == length
            whole &= starts == first[owner[starts]]
            self.tables.append((self._table(h[whole], starts[whole], owner, first), False, length, "contained"))
        short = (lengths > 0) & (lengths < n)
        self.short_firsts = np.unique(tokens.hashes[first[short]]) if short.any() else np.zeros(0, dtype=np.uint64)
        if number_variants:
            # Short items with a number, whole and number-masked: "Solve $3=-11(p-8)$" with
            # other numbers has no window of n words to match (issue 18: 24 of 1,000 planted
            # copies missed). At least 2 words, so a bare expression matches nothing.
            words = np.add.reduceat(~tokens.is_number, first) if len(first) and len(tokens.hashes) else lengths * 0
            numbers = lengths - words
            for length in sorted(set(lengths[short & (numbers > 0) & (words >= SHORT_MASKED_MIN_WORDS)].tolist())):
                h, starts = window_keys(tokens, length, masked=True)
                item = owner[starts]
                whole = (lengths[item] == length) & (starts == first[item]) & (numbers[item] > 0) & (words[item] >= SHORT_MASKED_MIN_WORDS)
                self.tables.append((self._table(h[whole], starts[whole], owner, first), True, length,
                                    "contained-numbers"))
            masked_first = tokens.masked[first[short & (numbers > 0)]]
            self.short_firsts = np.union1d(self.short_firsts, masked_first)
        # Items of 2k..2n-1 words (k = n/2): every n-window of a copy with one word changed
        # near the middle holds that word (issue 18: 68 of 1,000 planted copies missed). Their
        # k-windows are looked up, and a hit counts only when the row holds the whole item
        # there with at most SHORT_CHANGED_WORDS words changed in place ("one-word-changed").
        self.short_n = max(4, n // 2)
        # Only each item's first and last k words are kept: one changed word leaves one of the
        # two intact when the item has 2k words or more. (window k, shortest item, longest item)
        for k, lo, hi in ((self.short_n, 2 * self.short_n, 2 * n - 1), (4, 8, 2 * self.short_n - 1)):
            mid = (lengths >= lo) & (lengths <= hi)
            if mid.any():
                h, starts = window_keys(tokens, k)
                item = owner[starts]
                at = starts - first[item]
                pick = mid[item] & ((at == 0) | (at == lengths[item] - k))
                self.tables.append((self._table(h[pick], starts[pick], owner, first), False, k, "one-word-changed"))
        self._filters()
        self.matched_items: set[int] = set()

    def _filters(self) -> None:
        # each table's distinct keys and where their entries start (entries n .. n+1 share a key)
        self.distinct = []
        for (keys, _o, _p), _m, _l, _k in self.tables:
            first = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1]))) if len(keys) else \
                np.zeros(0, dtype=np.int64)
            self.distinct.append((keys[first], np.append(first, len(keys))))
        # the big tables (looked up at every start): the place of the first distinct key of
        # each bucket of top bits, so a look-up is one read of this array and one comparison
        self.buckets = {}
        for order, ((keys, _o, _p), _m, _l, kind) in enumerate(self.tables):
            if kind not in ("contained", "contained-numbers") and len(keys):
                bucket = self.distinct[order][0] >> np.uint64(64 - _BUCKET_BITS)
                first = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1])))
                slot = np.full(1 << _BUCKET_BITS, -1, dtype=np.int32)
                slot[bucket[first]] = first
                self.buckets[order] = slot
        # Whole short items are looked for only where a row holds the first min(length, 3)
        # tokens of one (number-masked for the masked tables): per view and anchor length, the
        # distinct anchor keys, a presence filter of their top bits, and which item lengths
        # start with each anchor.
        lengths = self.item_tokens.lengths
        self.anchors: dict[tuple[bool, int], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for view, kind in ((False, "contained"), (True, "contained-numbers")):
            owners = [t[1] for t, _m, _l, k in self.tables if k == kind and len(t[0])]
            if not owners:
                continue
            items = np.unique(np.concatenate(owners).astype(np.int64))
            prefix, inverse = self.item_tokens.prefix(view)
            for size in sorted(set(np.minimum(lengths[items], _ANCHOR).tolist())):
                these = items[np.minimum(lengths[items], _ANCHOR) == size]
                at = self.item_tokens.offsets[these]
                keys = (prefix[at + size] - prefix[at]) * inverse[at]
                distinct = np.unique(keys)
                starts_with = np.zeros((len(distinct), self.n), dtype=bool)
                starts_with[np.searchsorted(distinct, keys), lengths[these]] = True
                present = np.zeros(1 << 16, dtype=bool)
                present[distinct >> np.uint64(48)] = True
                self.anchors[(view, size)] = (distinct, present, starts_with)

    # what a saved index holds (bump the version when the tokens or tables change)
    _CACHE_VERSION = 8  # 8: main's 7 (issue 18's short-item tables) with unmixed window keys and UTF-8 item text

    @classmethod
    def cached(cls, items: Sequence[tuple[str, str, str]], directory: Path | None, **options) -> "BenchmarkIndex":
        """The index of `items`, loaded from `directory` when an earlier run built it with the
        same items and options (building costs ~0.35 s for the six benchmark files, loading a
        few ms), else built and saved there. ``directory=None``: always built."""
        if directory is None:
            return cls(items, **options)
        digest = hashlib.sha256(json.dumps([cls._CACHE_VERSION, SHORT_MASKED_MIN_WORDS, sorted(options.items()), items],
                                           ensure_ascii=False).encode("utf-8")).hexdigest()[:32]
        path = Path(directory) / f"benchmark-index-{digest}.npz"
        try:
            with np.load(path, allow_pickle=False) as saved:
                return cls._from_saved(items, options, saved)
        except (OSError, KeyError, ValueError):
            pass  # not there yet, or unreadable: build it
        index = cls(items, **options)
        _save_npz(path, index._arrays())
        return index

    @classmethod
    def cached_source(cls, key: str, load, directory: Path | None, **options) -> "BenchmarkIndex":
        """The index of the items `load()` returns, where `key` names those items (a digest
        of the benchmark files and how they are read: `graphgen.readers.benchmark_source`):
        when an earlier run saved an index for the same key and options, its items come from
        that file and `load` is not called (reading the six benchmark files cost ~0.1 s of
        the ~0.15 s a warm run spent on them). ``directory=None``: always built."""
        if directory is None:
            return cls(load(), **options)
        digest = hashlib.sha256(json.dumps([cls._CACHE_VERSION, SHORT_MASKED_MIN_WORDS, sorted(options.items()),
                                            key]).encode()).hexdigest()[:32]
        path = Path(directory) / f"benchmark-set-{digest}.npz"
        try:
            with np.load(path, allow_pickle=False) as saved:
                items = [tuple(item) for item in json.loads(saved["items"].tobytes().decode("utf-8"))]
                return cls._from_saved(items, options, saved)
        except (OSError, KeyError, ValueError):
            pass  # not there yet, or unreadable: read the files
        index = cls.cached(load(), directory, **options)
        _save_npz(path, {**index._arrays(), "items": np.frombuffer(
            json.dumps(index.items, ensure_ascii=False).encode("utf-8"), dtype=np.uint8)})
        return index

    def _arrays(self) -> dict[str, np.ndarray]:
        out = {"item_hashes": self.item_tokens.hashes, "item_is_number": self.item_tokens.is_number,
               "item_offsets": self.item_tokens.offsets, "item_starts": self.item_text.starts,
               "item_ends": self.item_text.ends,
               "item_text": np.frombuffer(self.item_text.text.encode("utf-8", "surrogatepass"), dtype=np.uint8),
               "short_firsts": self.short_firsts,
               "meta": np.array(json.dumps({"boilerplate": self.boilerplate, "dropped": self.boilerplate_dropped,
                                            "tables": [[m, n, k] for _t, m, n, k in self.tables]}))}
        for k, ((keys, owners, positions), _m, _l, _k) in enumerate(self.tables):
            out[f"t{k}_keys"], out[f"t{k}_owners"], out[f"t{k}_positions"] = keys, owners, positions
        return out

    @classmethod
    def _from_saved(cls, items, options: dict, saved) -> "BenchmarkIndex":
        self = cls.__new__(cls)
        self.n = options.get("n", 13)
        self.boilerplate_items = options.get("boilerplate_items", 0)
        self.number_variants = options.get("number_variants", True)
        self.min_words = math.ceil(self.n / 2)
        self.items = list(items)
        meta = json.loads(str(saved["meta"]))
        self.boilerplate, self.boilerplate_dropped = meta["boilerplate"], meta["dropped"]
        self.item_tokens = Tokens(saved["item_hashes"], saved["item_is_number"], saved["item_offsets"])
        self.item_text = TokenText(saved["item_text"].tobytes().decode("utf-8", "surrogatepass"), saved["item_starts"], saved["item_ends"],
                                   saved["item_offsets"])
        self.item_lengths = self.item_tokens.lengths
        self.short_firsts = saved["short_firsts"]
        self.short_n = max(4, self.n // 2)
        self.tables = [((saved[f"t{k}_keys"], saved[f"t{k}_owners"], saved[f"t{k}_positions"]), bool(m), int(n), str(kind))
                       for k, (m, n, kind) in enumerate(meta["tables"])]
        self._filters()
        self.matched_items = set()
        return self

    def _drop_boilerplate(self, hashes: np.ndarray, starts: np.ndarray, owner: np.ndarray, first: np.ndarray,
                          masked: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """The windows whose n-gram fewer than `boilerplate_items` distinct items share."""
        if self.boilerplate_items <= 0 or not len(hashes):
            return hashes, starts
        items = owner[starts]
        pairs = np.unique(np.column_stack((hashes.view(np.int64), items)), axis=0)
        keys, counts = np.unique(pairs[:, 0], return_counts=True)
        common = keys[counts >= self.boilerplate_items]
        if not len(common):
            return hashes, starts
        drop = np.isin(hashes.view(np.int64), common)
        self.boilerplate_dropped += len(common)
        for w in np.flatnonzero(drop)[:2000].tolist():  # a few examples, for the report
            if len(self.boilerplate) >= 12:
                break
            item, pos = int(items[w]), int(starts[w] - first[items[w]])
            words = self.item_text.words(item, pos, pos + self.n)
            if masked:
                words = _masked_words(words)
            key = " ".join(words)
            if key not in self.boilerplate:
                self.boilerplate[key] = int(counts[np.searchsorted(keys, hashes[w:w + 1].view(np.int64))[0]])
        return hashes[~drop], starts[~drop]

    @staticmethod
    def _table(hashes: np.ndarray, starts: np.ndarray, owner: np.ndarray, first: np.ndarray):
        items = owner[starts] if len(starts) else np.zeros(0, dtype=np.int64)
        pos = starts - first[items] if len(starts) else np.zeros(0, dtype=np.int64)
        order = np.argsort(hashes, kind="stable")
        return hashes[order], items[order].astype(np.int32), pos[order].astype(np.int32)

    @property
    def size(self) -> int:
        return sum(len(table[0]) for table, _m, _l, _k in self.tables)

    def match(self, tokens: Tokens, text: TokenText | None = None) -> dict[int, list[ContaminationHit]]:
        """For every row of the batch that overlaps a benchmark item: the confirmed hits
        (first the item with the smallest index), each checked token by token.

        All in arrays: every window of the batch is looked up in every table at once, hits
        are confirmed by comparing the token hashes of the two windows, and per (row, item)
        pair the covered row positions and the number-masked runs are counted with sorts,
        so a batch costs the same few numpy passes however many rows it has.
        """
        n_items = max(1, len(self.items))
        total = len(tokens.hashes)
        offsets = tokens.offsets
        row_start = offsets[:-1]
        item_first = self.item_tokens.offsets[:-1]
        parts = []  # per table: (pair key, row start s, window length, table order, masked)
        # whole short items can only start where a row holds their first tokens (the anchor, as
        # written or number-masked): their windows are looked up at those few positions only
        anchored: dict[tuple[bool, int], tuple[np.ndarray, np.ndarray]] = {}  # -> (positions, anchor)
        for (view, size), (distinct, present, _starts_with) in self.anchors.items():
            if total < size:
                continue
            h = _all_window_keys(tokens, size, view)
            maybe = np.flatnonzero(present[h >> np.uint64(48)])
            anchor = np.searchsorted(distinct, h[maybe])
            found = distinct[np.minimum(anchor, len(distinct) - 1)] == h[maybe]
            anchored[(view, size)] = (maybe[found], anchor[found])
        every: dict[tuple[bool, int], np.ndarray] = {}  # the keys of the windows at every start
        for order, ((keys, owners, positions), masked, length, kind) in enumerate(self.tables):
            if not len(keys) or total < length:
                continue
            whole = kind in ("contained", "contained-numbers")
            if whole:
                size = min(length, _ANCHOR)
                if (masked, size) not in anchored:
                    continue
                # only where the row holds the anchor of an item of this length
                at, anchor = anchored[(masked, size)]
                at = at[self.anchors[(masked, size)][2][anchor, length]]
                at = at[at <= total - length]
                prefix, inverse = tokens.prefix(masked)
                h = (prefix[at + length] - prefix[at]) * inverse[at]
            else:
                at = None
                if (masked, length) not in every:
                    every[(masked, length)] = _all_window_keys(tokens, length, masked)
                h = every[(masked, length)]
            distinct, first_entry = self.distinct[order]
            if order in self.buckets:  # every start: the bucket of its top bits gives the key's place
                key, starts = _bucket_lookup(self.buckets[order], distinct, h)
            else:  # the few anchored starts: a binary search each
                key = np.searchsorted(distinct, h, side="left")
                found = distinct[np.minimum(key, len(distinct) - 1)] == h
                key, starts = key[found], at[found]
            # the windows found: inside one row (and, number-masked n-grams, with enough words)
            row = np.searchsorted(offsets, starts, side="right") - 1
            inside = starts + length <= offsets[row + 1]
            if masked and not whole:
                words_before = tokens.words_before()
                inside &= (words_before[starts + length] - words_before[starts]) >= self.min_words
            hit = np.flatnonzero(inside)
            if not len(hit):
                continue
            lo = key[hit]
            lo, hi = first_entry[lo], first_entry[lo + 1]
            # one entry per (window, item entry of its key)
            count = hi - lo
            win = np.repeat(hit, count)
            entry = np.repeat(lo - np.cumsum(count) + count, count) + np.arange(int(count.sum()))
            item = owners[entry].astype(np.int64)
            pos = positions[entry].astype(np.int64)
            start = starts[win]
            # confirm: the two windows' tokens are equal (number-masked ones for the masked table)
            mine_values = tokens.masked if masked else tokens.hashes
            theirs_values = self.item_tokens.masked if masked else self.item_tokens.hashes
            ok = np.ones(len(win), dtype=bool)
            for j in range(length):
                ok &= mine_values[start + j] == theirs_values[item_first[item] + pos + j]
            start, item, pos, row = start[ok], item[ok], pos[ok], row[win][ok]
            if kind == "one-word-changed":
                start, item, pos, row, length_of = self._whole_but_one(tokens, start, item, pos, row)
                parts.append((row * n_items + item, start - row_start[row], pos, length_of, order, False))
                continue
            # a whole short item masked needs no run check: it is all of the item
            parts.append((row * n_items + item, start - row_start[row], pos, length, order,
                          masked and kind != "contained-numbers"))
        if not parts:
            return {}
        pair = np.concatenate([p[0] for p in parts])
        s = np.concatenate([p[1] for p in parts])
        pos = np.concatenate([p[2] for p in parts])
        length = np.concatenate([np.broadcast_to(np.asarray(p[3], dtype=np.int64), len(p[0])) for p in parts])
        table = np.concatenate([np.full(len(p[0]), p[4], dtype=np.int64) for p in parts])
        masked = np.concatenate([np.full(len(p[0]), p[5], dtype=bool) for p in parts])
        # which pairs count: any plain (or whole-item) hit; a masked hit only when its run of
        # equal masked tokens covers NUMBER_VARIANT_COVER of the item (a copy with changed
        # numbers, not a phrase two problems of one template share)
        accepted = np.unique(pair[~masked])
        variants = np.zeros(0, dtype=np.int64)
        if masked.any():
            variants = self._number_variant_pairs(tokens, pair[masked], s[masked], pos[masked], n_items)
            accepted = np.union1d(accepted, variants)
        keep = _member(pair, accepted)
        # a masked window of a pair accepted otherwise counts in its coverage, not for its kind
        table = np.where(masked & ~_member(pair, variants), table + len(self.tables), table)
        pair, s, length, table = pair[keep], s[keep], length[keep], table[keep]
        if not len(pair):
            return {}
        # coverage: the union of the pair's windows [s, s + length) over the item's length,
        # from the windows sorted by start and the running maximum of their ends
        order = np.lexsort((s, pair))
        ps, ss, ls = pair[order], s[order], length[order]
        group = np.cumsum(np.concatenate(([True], ps[1:] != ps[:-1]))) - 1
        span = int((ss + ls).max()) + 1
        start_g, end_g = ss + group * span, ss + ls + group * span
        reach = np.maximum.accumulate(end_g)
        before = np.concatenate(([-1], reach[:-1]))
        first = np.concatenate(([True], ps[1:] != ps[:-1]))
        before[first] = -1
        gain = end_g - np.maximum(start_g, before)
        covered = np.add.reduceat(np.maximum(gain, 0), np.flatnonzero(first))
        # the kind of a pair: that of its first table with a hit; windows in (table, start) order
        order = np.lexsort((s, table, pair))
        pair, s, length, table = pair[order], s[order], length[order], table[order]
        bounds = np.flatnonzero(np.concatenate(([True], pair[1:] != pair[:-1])))
        ends = np.concatenate((bounds[1:], [len(pair)]))
        hits: dict[int, list[ContaminationHit]] = {}
        for p, b, e, c in zip(pair[bounds].tolist(), bounds.tolist(), ends.tolist(), covered.tolist()):
            row, item = divmod(p, n_items)
            kind = self.tables[int(table[b]) % len(self.tables)][3]
            coverage = min(1.0, c / max(1, int(self.item_lengths[item])))
            hits.setdefault(row, []).append(ContaminationHit(item, kind, coverage, text, row, (s[b:e], length[b:e])))
        for found in hits.values():
            self.matched_items.update(hit.item for hit in found)
        return hits


    def _whole_but_one(self, tokens: Tokens, start, item, pos, row):
        """The hits of short windows whose row holds the whole item, aligned where the window
        sits, with at most SHORT_CHANGED_WORDS words (not numbers) different: one hit per (row, item,
        alignment), as the window (item start in the row, item length)."""
        at = start - pos  # batch index where the item would begin in the row
        if not len(at):
            return (np.zeros(0, dtype=np.int64),) * 5
        # one per (row, item, at), in that order: one int64 key (np.unique over rows is slow)
        low = int(at.min())
        width = int(at.max()) - low + 1
        n_items = max(1, len(self.items))
        if (len(tokens) + 1) * n_items * width < 2**62:
            _, first = np.unique((row * n_items + item) * width + (at - low), return_index=True)
            row, item, at = row[first], item[first], at[first]
        else:  # a key would overflow: unique rows of the three columns
            key = np.unique(np.column_stack((row, item, at)), axis=0)
            row, item, at = key[:, 0], key[:, 1], key[:, 2]
        length = self.item_lengths[item].astype(np.int64)
        inside = (at >= tokens.offsets[row]) & (at + length <= tokens.offsets[row + 1])
        row, item, at, length = row[inside], item[inside], at[inside], length[inside]
        if not len(row):
            return (np.zeros(0, dtype=np.int64),) * 4 + (np.zeros(0, dtype=np.int64),)
        width = int(length.max())
        j = np.arange(width, dtype=np.int64)[None, :]
        valid = j < length[:, None]
        mine = tokens.hashes[np.clip(at[:, None] + j, 0, len(tokens.hashes) - 1)]
        item_first = self.item_tokens.offsets[:-1]
        theirs = self.item_tokens.hashes[np.clip(item_first[item][:, None] + j, 0, len(self.item_tokens.hashes) - 1)]
        is_number = self.item_tokens.is_number[np.clip(item_first[item][:, None] + j, 0,
                                                       len(self.item_tokens.hashes) - 1)]
        changed = (mine != theirs) & valid
        # a changed number is the number-masked rules' to judge (off with number_variants=False)
        good = (changed.sum(axis=1) <= SHORT_CHANGED_WORDS) & ~(changed & is_number).any(axis=1)
        return at[good], item[good], np.zeros(int(good.sum()), dtype=np.int64), row[good], length[good]

    def _number_variant_pairs(self, tokens: Tokens, pair: np.ndarray, s: np.ndarray, pos: np.ndarray,
                              n_items: int) -> np.ndarray:
        """The (row, item) pairs whose number-masked hits lie in one run of equal masked
        tokens covering NUMBER_VARIANT_COVER of the item: a copy with its numbers changed,
        not a phrase two problems of one template share.

        Hits of a pair on one diagonal (same offset between row and item) that overlap or
        touch are one run; each run is then extended token by token both ways (in blocks,
        for all runs at once) past windows the number filter left out, so a run through a
        matrix of numbers is measured whole.
        """
        n = self.n
        diagonal = s - pos
        order = np.lexsort((s, diagonal, pair))
        pair, s, diagonal = pair[order], s[order], diagonal[order]
        new_run = np.ones(len(pair), dtype=bool)
        new_run[1:] = (pair[1:] != pair[:-1]) | (diagonal[1:] != diagonal[:-1]) | (s[1:] - s[:-1] > n)
        heads = np.flatnonzero(new_run)
        run_pair, first = pair[heads], s[heads]
        last = np.maximum.reduceat(s, heads)
        row, item = run_pair // n_items, run_pair % n_items
        d = diagonal[heads]
        mine, theirs = tokens.masked, self.item_tokens.masked
        row_lo, row_hi = tokens.offsets[row], tokens.offsets[row + 1]
        item_lo = self.item_tokens.offsets[item]
        item_hi = self.item_tokens.offsets[item + 1]
        # absolute token index in the batch of row position p: row_lo + p; in the items: item_lo + p - d
        right = _extend(mine, theirs, row_lo + last + n, item_lo + last + n - d,
                        np.minimum(row_hi - (row_lo + last + n), item_hi - (item_lo + last + n - d)), 1)
        left = _extend(mine, theirs, row_lo + first - 1, item_lo + first - d - 1,
                       np.minimum(first, first - d), -1)
        run_len = left + (last - first + n) + right
        need = NUMBER_VARIANT_COVER * self.item_lengths[item]
        return np.unique(run_pair[run_len >= need])


def _bucket_lookup(slot: np.ndarray, distinct: np.ndarray, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(place in `distinct`, position in `h`) of every key of `h` that `distinct` holds, where
    ``slot[b]`` is the place of the first distinct key whose top bits are b (-1: none): a
    bucket holds ~0.1 keys on average, so most keys are told apart by one read and one
    comparison; the rare bucket with more keys is walked on."""
    shift = np.uint64(64 - _BUCKET_BITS)
    place = slot[h >> shift]
    maybe = np.flatnonzero(place >= 0)
    place, want = place[maybe].astype(np.int64), h[maybe]
    places, positions = [], []
    last = len(distinct) - 1
    while len(maybe):
        hit = distinct[place] == want
        places.append(place[hit])
        positions.append(maybe[hit])
        # not this key: the next distinct key, when it is in the same bucket
        nxt = np.minimum(place + 1, last)
        more = ~hit & (place < last) & ((distinct[nxt] >> shift) == (want >> shift))
        maybe, place, want = maybe[more], nxt[more], want[more]
    if not places:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if len(places) == 1:
        return places[0], positions[0]
    place, position = np.concatenate(places), np.concatenate(positions)
    order = np.argsort(position, kind="stable")
    return place[order], position[order]


def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a cache file whole (temp file, then rename); a read-only cache only costs the
    rebuild next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:
        pass


def _member(values: np.ndarray, sorted_unique: np.ndarray) -> np.ndarray:
    """np.isin(values, sorted_unique) for a sorted array of distinct values: one binary search each."""
    if not len(sorted_unique):
        return np.zeros(len(values), dtype=bool)
    where = np.minimum(np.searchsorted(sorted_unique, values), len(sorted_unique) - 1)
    return sorted_unique[where] == values


def _extend(mine: np.ndarray, theirs: np.ndarray, a: np.ndarray, b: np.ndarray, limit: np.ndarray,
            step: int, block: int = 32) -> np.ndarray:
    """How many tokens stay equal from mine[a], theirs[b] onward in direction `step`, at most
    `limit` each: compared `block` at a time, only for the runs still equal."""
    out = np.zeros(len(a), dtype=np.int64)
    limit = np.maximum(limit, 0)
    active = np.flatnonzero(limit > 0)
    offsets = np.arange(block, dtype=np.int64) * step
    while len(active):
        ia = a[active, None] + out[active, None] * step + offsets
        ib = b[active, None] + out[active, None] * step + offsets
        inside = np.arange(block)[None, :] < (limit[active] - out[active])[:, None]
        ia = np.clip(ia, 0, len(mine) - 1)
        ib = np.clip(ib, 0, len(theirs) - 1)
        equal = (mine[ia] == theirs[ib]) & inside
        steps = np.where(equal.all(axis=1), block, np.argmin(equal, axis=1))
        out[active] += steps
        active = active[(steps == block) & (out[active] < limit[active])]
    return out


def _masked_words(words: list[str]) -> list[str]:
    return [w if w.isalpha() else "#" for w in words]


# --- MinHash -------------------------------------------------------------------------------


def shingle_hashes(tokens: Tokens, sizes: int, masked: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Flat shingle hashes (word 1..`sizes`-grams) and row offsets, for MinHash.

    ``masked``: every number is the one placeholder, so copies that differ only in their
    numbers have equal shingle sets. A text with no tokens gets one shingle unique to it,
    so it matches nothing.
    """
    parts, owners = [], []
    row_of = np.repeat(np.arange(len(tokens), dtype=np.int64), tokens.lengths)
    if masked:
        # only rows with enough words: in "Compute $\cos 72^\circ$" the numbers are the problem
        if len(tokens.hashes):
            before = tokens.words_before()
            long_row = (before[tokens.offsets[1:]] - before[tokens.offsets[:-1]]) >= NEAR_MASK_MIN_WORDS
            values = np.where(tokens.is_number & long_row[row_of], _MASK, tokens.hashes)
            tokens = Tokens(values, tokens.is_number, tokens.offsets)
    for k in range(1, sizes + 1):
        h, starts = window_hashes(tokens, k)
        parts.append(h)
        owners.append(row_of[starts])
    empty = np.flatnonzero(tokens.lengths == 0)
    if len(empty):
        parts.append(_mix(empty.astype(np.uint64) + np.uint64(0xE111)))
        owners.append(empty)
    h = np.concatenate(parts) if parts else np.zeros(0, dtype=np.uint64)
    owner = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
    order = np.argsort(owner, kind="stable")
    counts = np.bincount(owner, minlength=len(tokens))
    offsets = np.zeros(len(tokens) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return h[order], offsets


def minhash_signatures(flat: np.ndarray, offsets: np.ndarray, num_perm: int = 128,
                       backend: str = "rensa", seed: int = 1) -> np.ndarray:
    """(rows, num_perm) uint32 MinHash signatures of the shingle sets `flat[offsets[i]:offsets[i+1]]`."""
    n = len(offsets) - 1
    if n == 0:
        return np.zeros((0, num_perm), dtype=np.uint32)
    if backend == "rensa":
        import rensa

        # a few thousand rows per call: the matrix comes back as Python lists of ints (~100 MB
        # for a 20,000-row batch, freed but left in the heap), the signatures are the same
        flat = np.ascontiguousarray(flat, dtype=np.uint64)
        out = np.empty((n, num_perm), dtype=np.uint32)
        for lo in range(0, n, _RENSA_ROWS):
            part = offsets[lo:lo + _RENSA_ROWS + 1]
            matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
                flat[part[0]:part[-1]], (part - part[0]).astype(np.uint64), num_perm, seed)
            out[lo:lo + len(part) - 1] = np.array(matrix.to_rows(), dtype=np.uint32).reshape(len(part) - 1, num_perm)
        return out
    if backend == "datasketch":
        from datasketch import MinHash

        out = np.empty((n, num_perm), dtype=np.uint32)
        # datasketch hashes each item with `hashfunc`; ours are already hashes, folded to the
        # 32 bits of its default scheme. The permutations are drawn once and shared.
        folded = ((flat ^ (flat >> np.uint64(32))) & np.uint64(0xFFFFFFFF)).tolist()
        template = MinHash(num_perm=num_perm, seed=seed, hashfunc=int)
        for i in range(n):
            m = MinHash(num_perm=num_perm, seed=seed, hashfunc=int, permutations=template.permutations,
                        scheme=template.scheme)
            m.update_batch(folded[offsets[i]:offsets[i + 1]])
            out[i] = m.hashvalues
        return out
    raise ValueError(f"unknown MinHash backend {backend!r}; choose rensa or datasketch")


_RENSA_ROWS = 2048  # rows per rensa call in `minhash_signatures`


def lsh_params(threshold: float, num_perm: int, recall: float = 0.99) -> tuple[int, int]:
    """(bands, rows per band): the most rows per band whose S-curve still makes a pair at
    exactly `threshold` a candidate with probability >= `recall` (fewer false candidates)."""
    best = (num_perm, 1)
    for r in range(1, num_perm + 1):
        b = num_perm // r
        if 1 - (1 - threshold ** r) ** b >= recall:
            best = (b, r)
    return best


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(n, bands) uint64 hash of each band of each signature."""
    n = signatures.shape[0]
    sig = signatures[:, : bands * rows].astype(np.uint64).reshape(n, bands, rows)
    h = np.zeros((n, bands), dtype=np.uint64)
    for k in range(rows):
        h += sig[:, :, k] * _position()[k]
    return _mix(h)


def estimated_jaccard(sig: np.ndarray, a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Share of equal MinHash values (the Jaccard estimate) between rows a and b of `sig`."""
    return (sig[a] == sig[b]).mean(axis=-1)


def near_duplicate_clusters(bands: np.ndarray, sig: np.ndarray, rank: np.ndarray,
                            threshold: float, block: int = 1 << 20,
                            groups: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Keep-one clustering of rows by MinHash.

    `bands` (n, b) band keys, `sig` (n, P) signature values (any integer width), `rank` the
    keep priority (lower keeps). Returns (keeper, similarity): keeper[i] == i for rows kept,
    else the row that i duplicates with estimated Jaccard similarity[i] >= threshold.

    Candidate pairs are the rows sharing a band key, linked to their bucket's best-ranked row
    and to their predecessor in the bucket; pairs below the threshold are dropped before the
    connected components are taken, and inside a component rows are kept greedily by rank,
    each removed row being within the threshold of the kept row it is reported against.
    `groups` (lineage: variants of one question, paths of one question): rows of one group are
    never duplicates of each other, only of rows of other groups.

    Memory: the components are folded in band by band (whenever a quarter of n verified
    pairs is pending), and a later band's pair whose rows are already in one component is
    dropped before it is verified: an edge inside a component changes no component. So the
    pairs held are at most ~n/4 plus one band's, in 32-bit row numbers, instead of every
    verified pair of every band (at 1M rows with numbers masked: ~1 GiB less at the peak).
    """
    n = len(rank)
    keeper = np.arange(n, dtype=np.int64)
    similarity = np.ones(n, dtype=np.float32)
    if n < 2:
        return keeper, similarity
    index = np.int32 if n < 2**31 else np.int64
    step = max(1, block // max(1, sig.shape[1]))
    label = None  # component of every row from the pairs folded in so far (None: none yet)
    pending_a: list[np.ndarray] = []
    pending_b: list[np.ndarray] = []
    pending = 0
    for j in range(bands.shape[1]):
        order = np.lexsort((rank, bands[:, j])).astype(index)
        keys = bands[order, j]
        same = keys[1:] == keys[:-1]
        del keys
        if not same.any():
            continue
        starts = np.concatenate(([True], ~same))
        del same
        group_first = order[np.maximum.accumulate(np.where(starts, np.arange(n, dtype=index), 0))]
        members = np.flatnonzero(~starts)
        del starts
        a = np.concatenate((order[members], order[members]))
        b = np.concatenate((group_first[members], order[members - 1]))
        del order, group_first, members
        pick = a != b
        if groups is not None:
            pick &= groups[a] != groups[b]
        if label is not None:
            pick &= label[a] != label[b]
        a, b = a[pick], b[pick]
        del pick
        ok = np.zeros(len(a), dtype=bool)
        for s in range(0, len(a), step):
            ok[s:s + step] = estimated_jaccard(sig, a[s:s + step], b[s:s + step]) >= threshold
        if ok.any():
            pending_a.append(a[ok])
            pending_b.append(b[ok])
            pending += len(pending_a[-1])
        del a, b, ok
        if pending and pending >= n // 4:
            label = _components(n, label, pending_a, pending_b, index)
            pending_a, pending_b, pending = [], [], 0
    if pending:
        label = _components(n, label, pending_a, pending_b, index)
    if label is None:
        return keeper, similarity
    if groups is None:
        return greedy_keep(label, rank, lambda a, b: estimated_jaccard(sig, a, b), threshold)

    def similarity_to(a, b):
        sims = estimated_jaccard(sig, a, b)
        return np.where(groups[a] == groups[b], 0.0, sims)

    return greedy_keep(label, rank, similarity_to, threshold)


def _components(n: int, label: np.ndarray | None, src: list[np.ndarray], dst: list[np.ndarray],
                index) -> np.ndarray:
    """Connected components of n rows: those of `label` (None: every row alone) joined by
    the pairs src[k][i] - dst[k][i]. A component of `label` enters as a star (each row linked
    to its first row), so the graph has at most n + len(pairs) edges."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    src, dst = list(src), list(dst)
    if label is not None:
        first = np.empty(int(label.max()) + 1, dtype=index)
        first[label[::-1]] = np.arange(n - 1, -1, -1, dtype=index)  # the first row of each component
        rep = first[label]
        linked = np.flatnonzero(rep != np.arange(n, dtype=index)).astype(index)
        src.append(linked)
        dst.append(rep[linked])
        del first, rep, linked
    a, b = np.concatenate(src), np.concatenate(dst)
    del src, dst
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    del a, b
    return connected_components(graph.tocsr(), directed=False)[1]


def greedy_keep(label: np.ndarray, rank: np.ndarray, similarity_to, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Inside each group of equal `label`, keep rows greedily in `rank` order.

    The best-ranked row is kept; every other row of the group with
    `similarity_to(rows, kept) >= threshold` becomes its duplicate; the rest form the
    group anew. Returns (keeper, similarity) as `near_duplicate_clusters` does.
    """
    n = len(label)
    keeper = np.arange(n, dtype=np.int64)
    similarity = np.ones(n, dtype=np.float32)
    sizes = np.bincount(label)
    in_cluster = np.flatnonzero(sizes[label] > 1)
    order = in_cluster[np.lexsort((rank[in_cluster], label[in_cluster]))]
    bounds = np.flatnonzero(np.diff(label[order])) + 1
    for members in np.split(order, bounds) if len(order) else []:
        while len(members) > 1:
            kept = members[0]
            sims = np.asarray(similarity_to(members[1:], kept))
            dup = sims >= threshold
            keeper[members[1:][dup]] = kept
            similarity[members[1:][dup]] = sims[dup]
            members = members[1:][~dup]
    return keeper, similarity
