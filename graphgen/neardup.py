"""The algorithms behind `graphgen filter`: word tokens, hashed n-grams, MinHash, LSH clusters.

Everything works on batches of rows held as flat numpy arrays, so 2M rows cost seconds of
numpy work instead of millions of Python sets:

- `Tokens`: a batch of texts as one flat array of 64-bit token hashes plus row offsets.
  Tokens are normalised word tokens: the project's question normaliser
  (`graphgen.normalize.normalize_question`: NFKC, whitespace collapsed), case-folded, then
  runs of letters, and numbers (``12``, ``3.5``) as one token each.
  A number-masked view replaces every number by one placeholder, so a copy whose numbers
  were changed still shares its n-grams with the original; such a match counts only when
  the equal run covers most of the item (`NUMBER_VARIANT_COVER`), so problems that merely
  share a template's phrasing are not removed.
- `window_hashes`: the hash of every n-token window of every row, in one vectorised pass.
- `BenchmarkIndex`: benchmark items as sorted arrays of n-gram hashes (exact and
  number-masked) plus, for items shorter than n, the hash of the whole item; a row's windows
  are looked up with `np.searchsorted`, and each hit is checked against the item's own tokens
  (so a 64-bit hash collision can never remove a row).
- `minhash_signatures`: MinHash signatures of word 1..k-gram shingle sets through a
  maintained library (``rensa`` by default, ``datasketch`` as the alternative; see
  BENCHMARKS.md for the measurement that chose rensa).
- `near_duplicate_clusters`: LSH banding over the signatures in compact arrays (one sort per
  band), candidate pairs verified by estimated Jaccard, connected components, then inside
  each component a greedy keep-one pass in priority order, so every removed row is within
  the threshold of the row it is reported against.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from itertools import chain
from dataclasses import dataclass, field

import numpy as np

from graphgen.normalize import normalize_question

__all__ = [
    "Tokens",
    "tokenize",
    "window_hashes",
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
_FILTER_BITS = 24
_TOKEN_HASHES: dict[str, int] = {}
_TOKEN_HASHES_MAX = 2_000_000
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[^\W\d_]+")
_NUMBER = re.compile(r"\d")
_MASK = np.uint64(0x9E3779B97F4A7C15)  # the placeholder every number becomes when masked
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
# One odd multiplier per band position: a band's hash depends on value order.
_POSITION = (np.random.default_rng(0x5EED).integers(1, 2**63, size=64, dtype=np.uint64) * np.uint64(2) + np.uint64(1))
# Base of the window hashes (odd, so invertible modulo 2**64) and its inverse.
_BASE = np.uint64(0x9FB21C651E98DF25)
_BASE_INVERSE = np.uint64(pow(int(_BASE), -1, 2**64))


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


def tokenize(texts: Sequence[str], normalised: bool = False) -> tuple[Tokens, list[list[str]]]:
    """Tokens of every text (and the token strings, kept for reporting matches).

    ``normalised``: the texts already went through the question normaliser.
    """
    find = _TOKEN.findall
    toks = [find(t) for t in texts] if normalised else [find(normalise_question(t)) for t in texts]
    lengths = np.fromiter(map(len, toks), dtype=np.int64, count=len(toks))
    offsets = np.zeros(len(toks) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = list(chain.from_iterable(toks))
    # A stable hash per distinct token (Python's own str hash changes from run to run, and
    # so would the MinHash decisions near the threshold); each token is hashed once.
    if len(_TOKEN_HASHES) > _TOKEN_HASHES_MAX:
        _TOKEN_HASHES.clear()
    for w in set(flat).difference(_TOKEN_HASHES):
        _TOKEN_HASHES[w] = int.from_bytes(hashlib.blake2b(w.encode("utf-8"), digest_size=8).digest(), "little")
    hashes = np.fromiter(map(_TOKEN_HASHES.__getitem__, flat), dtype=np.uint64, count=len(flat))
    is_number = ~np.fromiter(map(str.isalpha, flat), dtype=bool, count=len(flat))
    return Tokens(hashes, is_number, offsets), toks


def _powers(base: np.uint64, count: int) -> np.ndarray:
    out = np.full(count, base, dtype=np.uint64)
    out[0] = 1
    return np.cumprod(out, dtype=np.uint64)  # wraps modulo 2**64, as intended


def window_hashes(tokens: Tokens, n: int, *, masked: bool = False,
                  min_words: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, start positions) of every n-token window that lies inside one text.

    ``masked``: numbers all hash alike. ``min_words``: keep only windows with at least this
    many non-number tokens (so a masked window of bare numbers matches nothing).

    A window's hash is sum(t[s+j] * P**j), mixed: computed for every window length from
    one prefix sum of t[k] * P**k, times the inverse power P**-s (P is odd, so it has an
    inverse modulo 2**64).
    """
    total = len(tokens.hashes)
    if total < n or n <= 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    prefix, inverse = tokens.prefix(masked)
    starts = np.arange(total - n + 1, dtype=np.int64)
    row_end = np.repeat(tokens.offsets[1:], tokens.lengths)[: total - n + 1]
    keep = starts + n <= row_end
    if min_words:
        words_before = tokens.words_before()
        keep &= (words_before[starts + n] - words_before[starts]) >= min_words
    starts = starts[keep]
    h = (prefix[starts + n] - prefix[starts]) * inverse[starts] + np.uint64(n)
    return _mix(h), starts


# --- decontamination ---------------------------------------------------------------------


@dataclass
class ContaminationHit:
    item: int  # index into BenchmarkIndex.items
    ngram: str  # the matched words as they appear in the row
    kind: str  # "ngram", "ngram-numbers" or "contained"
    ngrams: list[str] = field(default_factory=list)  # every distinct matched window, in order found
    covered: set[int] = field(default_factory=set)  # row word positions inside matched windows
    coverage: float = 0.0  # share of the item's words the matched windows cover (1.0: a whole copy)


class BenchmarkIndex:
    """Hashed n-grams of every benchmark item, built once, looked up by every row batch.

    Each table is three sorted parallel arrays: window hash, item, start of the window in
    the item; so a hit is confirmed by comparing the row's words with the item's words at
    that one place.
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
        tokens, self.item_words = tokenize([text for _b, _i, text in self.items])
        self.item_masked = [_masked_words(ws) for ws in self.item_words]
        owner = np.repeat(np.arange(len(self.items), dtype=np.int64), tokens.lengths)
        first = tokens.offsets[:-1]
        # (table, masked view, window length or 0 for "the item's own length", kind)
        self.tables: list[tuple[tuple[np.ndarray, np.ndarray, np.ndarray], bool, int, str]] = []
        h, starts = self._drop_boilerplate(*window_hashes(tokens, n), owner, first)
        self.tables.append((self._table(h, starts, owner, first), False, n, "ngram"))
        if number_variants:
            h, starts = window_hashes(tokens, n, masked=True, min_words=self.min_words)
            h, starts = self._drop_boilerplate(h, starts, owner, first, masked=True)
            self.tables.append((self._table(h, starts, owner, first), True, n, "ngram-numbers"))
        # Items shorter than n: the hash of the whole item, one table per length.
        lengths = tokens.lengths
        for length in sorted(set(lengths[(lengths > 0) & (lengths < n)].tolist())):
            h, starts = window_hashes(tokens, length)
            whole = lengths[owner[starts]] == length
            whole &= starts == first[owner[starts]]
            self.tables.append((self._table(h[whole], starts[whole], owner, first), False, length, "contained"))
        # A presence filter over the top bits of every key: most windows of a row miss every
        # table, and one look-up in this 16 MB array is cheaper than a binary search.
        self.present = np.zeros(1 << _FILTER_BITS, dtype=bool)
        for (keys, _o, _p), _m, _l, _k in self.tables:
            self.present[keys >> np.uint64(64 - _FILTER_BITS)] = True
        self.matched_items: set[int] = set()

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
            words = (self.item_masked if masked else self.item_words)[item][pos:pos + self.n]
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

    def match(self, tokens: Tokens, words: list[list[str]]) -> dict[int, list[ContaminationHit]]:
        """For every row of the batch that overlaps a benchmark item: the confirmed hits
        (first the item with the smallest index), each checked word by word."""
        out: dict[int, dict[int, ContaminationHit]] = {}
        row_of = np.repeat(np.arange(len(tokens)), tokens.lengths)
        row_start = tokens.offsets[:-1]
        masked_rows: dict[int, list[str]] = {}
        for (keys, owners, positions), masked, length, kind in self.tables:
            if not len(keys):
                continue
            h, starts = window_hashes(tokens, length, masked=masked,
                                      min_words=self.min_words if masked else 0)
            if not len(h):
                continue
            maybe = np.flatnonzero(self.present[h >> np.uint64(64 - _FILTER_BITS)])
            lo = np.searchsorted(keys, h[maybe], side="left")
            found_key = keys[np.minimum(lo, len(keys) - 1)] == h[maybe]
            hit, lo = maybe[found_key], lo[found_key]
            if not len(hit):
                continue
            hi = np.searchsorted(keys, h[hit], side="right")
            for w, a, b in zip(hit.tolist(), lo.tolist(), hi.tolist()):
                row = int(row_of[starts[w]])
                s = int(starts[w] - row_start[row])
                mine = words[row]
                found = out.setdefault(row, {})
                for item, pos in zip(owners[a:b].tolist(), positions[a:b].tolist()):
                    if item in found:
                        seen = found[item]
                        if masked or mine[s:s + length] == self.item_words[item][pos:pos + length]:
                            seen.covered.update(range(s, s + length))
                            text = " ".join(mine[s:s + length])
                            if len(seen.ngrams) < 20 and text not in seen.ngrams:
                                seen.ngrams.append(text)
                        continue
                    if masked:
                        mine_masked = masked_rows.get(row)
                        if mine_masked is None:
                            mine_masked = masked_rows[row] = _masked_words(mine)
                        theirs = self.item_masked[item]
                        ok = (_run(mine_masked, s, theirs, pos, length)
                              >= NUMBER_VARIANT_COVER * len(theirs))
                    else:
                        ok = mine[s:s + length] == self.item_words[item][pos:pos + length]
                    if ok:
                        text = " ".join(mine[s:s + length])
                        found[item] = ContaminationHit(item, text, kind, [text], set(range(s, s + length)))
        for found in out.values():
            for hit in found.values():
                hit.coverage = min(1.0, len(hit.covered) / max(1, len(self.item_words[hit.item])))
        hits = {row: sorted(found.values(), key=lambda hit: hit.item) for row, found in out.items() if found}
        for found in hits.values():
            self.matched_items.update(hit.item for hit in found)
        return hits


def _masked_words(words: list[str]) -> list[str]:
    return [w if w.isalpha() else "#" for w in words]


def _run(mine: list[str], start: int, theirs: list[str], pos: int, n: int) -> int:
    """Length of the run of equal tokens through mine[start:start+n] == theirs[pos:pos+n]
    (0 if those windows differ)."""
    if mine[start:start + n] != theirs[pos:pos + n]:
        return 0
    left = 0
    while start - left > 0 and pos - left > 0 and mine[start - left - 1] == theirs[pos - left - 1]:
        left += 1
    right = 0
    while (start + n + right < len(mine) and pos + n + right < len(theirs)
           and mine[start + n + right] == theirs[pos + n + right]):
        right += 1
    return left + n + right


# --- MinHash -------------------------------------------------------------------------------


def shingle_hashes(tokens: Tokens, sizes: int) -> tuple[np.ndarray, np.ndarray]:
    """Flat shingle hashes (word 1..`sizes`-grams) and row offsets, for MinHash.

    A text with no tokens gets one shingle unique to it, so it matches nothing.
    """
    parts, owners = [], []
    row_of = np.repeat(np.arange(len(tokens), dtype=np.int64), tokens.lengths)
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

        matrix = rensa.RMinHash.digest_matrix_from_flat_token_hashes(
            np.ascontiguousarray(flat, dtype=np.uint64), offsets.astype(np.uint64), num_perm, seed)
        return np.array(matrix.to_rows(), dtype=np.uint32).reshape(n, num_perm)
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
        h += sig[:, :, k] * _POSITION[k]
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
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    n = len(rank)
    keeper = np.arange(n, dtype=np.int64)
    similarity = np.ones(n, dtype=np.float32)
    if n < 2:
        return keeper, similarity
    src_parts, dst_parts = [], []
    for j in range(bands.shape[1]):
        order = np.lexsort((rank, bands[:, j]))
        keys = bands[order, j]
        same = keys[1:] == keys[:-1]
        if not same.any():
            continue
        starts = np.concatenate(([True], ~same))
        group_first = order[np.maximum.accumulate(np.where(starts, np.arange(n), 0))]
        members = np.flatnonzero(~starts)
        a = np.concatenate((order[members], order[members]))
        b = np.concatenate((group_first[members], order[members - 1]))
        pick = a != b
        if groups is not None:
            pick &= groups[a] != groups[b]
        a, b = a[pick], b[pick]
        ok = np.zeros(len(a), dtype=bool)
        for s in range(0, len(a), block // max(1, sig.shape[1])):
            e = s + block // max(1, sig.shape[1])
            ok[s:e] = estimated_jaccard(sig, a[s:e], b[s:e]) >= threshold
        src_parts.append(a[ok])
        dst_parts.append(b[ok])
    if not src_parts:
        return keeper, similarity
    src = np.concatenate(src_parts)
    dst = np.concatenate(dst_parts)
    if not len(src):
        return keeper, similarity
    graph = coo_matrix((np.ones(len(src), dtype=np.int8), (src, dst)), shape=(n, n)).tocsr()
    _count, label = connected_components(graph, directed=False)
    if groups is None:
        return greedy_keep(label, rank, lambda a, b: estimated_jaccard(sig, a, b), threshold)

    def similarity_to(a, b):
        sims = estimated_jaccard(sig, a, b)
        return np.where(groups[a] == groups[b], 0.0, sims)

    return greedy_keep(label, rank, similarity_to, threshold)


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
