"""Canonicalize: merge near-duplicate concept names of one kind (stage `canonicalize`).

An LLM names one idea many ways ("Pythagorean theorem", "The Pythagorean Theorem",
"Applying the Pythagorean theorem", "Pythagoras' theorem"); `graphgen.normalize` already
merges case, spacing, punctuation and plurals. This stage proposes the rest, and applies
a reviewed merge map.

When two names of one kind are one concept (`mergeable`), from their *words* (each name's
canonical form without stop words and generic verbs like "applying"/"solving", as a set)
and their embeddings (all-MiniLM-L6-v2 by default, cached per text):

- the same words ("Applying the Pythagorean theorem" / "pythagorean theorem"), or
- as many words each, every differing word close in spelling to its counterpart (rapidfuzz
  ratio >= `word_ratio`, digits and words under 4 letters must be equal) *and* embedding
  cosine >= `min_cosine` ("Pythagoras' theorem" / "Pythagorean theorem"; not "Mean" /
  "Median": the spelling is close, the meaning is not), or
- one is the acronym of the other ("GCD" / "Greatest common divisor") and cosine >=
  `acronym_min_cosine`.

Before any of these, guards (`opposed`) refuse pairs that must never merge whatever the
spelling, the embedding or a model say: antonyms and negations (like/unlike, convex/concave,
"non-perfect"/"perfect", "impossible"/"possible") and names whose numbers differ. Embeddings
put such pairs at cosine 0.8-0.97; the spelling rule sees one changed prefix.

With the judge (`graphgen.judge`, `[judge] concepts`), candidate pairs within cosine
`[judge] min_cosine` that pass the guards go to a model asking "same concept?": `fallback`
only the pairs the rules refuse (paraphrases: "Dividing ..." / "Splitting ... into equal
shares"), `always` every such pair (so the judge can veto a rule's merge). The review file
shows the judge's verdict and reason, and lists guarded and judged-apart pairs as comments.

A name with extra words is a different, narrower concept ("Systems of linear equations" is
not "Linear equations"). Candidates come from equal words, acronyms and each name's nearest
`neighbours` by embedding; they are clustered by complete linkage (a cluster grows only when
every member is mergeable with every other), so chains of look-alikes never join. Each
cluster's canonical is its most frequent name.

Proposals go to a review file (TSV: one line per alias -> canonical, with cosine, word
similarity and both frequencies). `apply` reads a (hand-edited) review file, checks it
against the extracted concepts (unknown concept, merge across kinds, cycle, alias given two
canonicals: one line naming file, line and problem, nothing changed), stores the resolved
map in the workspace and rebuilds the graph through it (`graphgen.graph.build_graph`).
Extractions keep the names the LLM wrote, so a merge is undone by editing the file and
applying it again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field
from rapidfuzz import fuzz

from graphgen.config import CanonicalizeSettings, Settings
from graphgen.graph import build_graph, rebuild
from graphgen.jsonl import write_lines
from graphgen.judge import Judge, JudgeAsk, Judgement, JudgeMode
from graphgen.normalize import canonical_name
from graphgen.records import Concept, ConceptKind, ConceptMerge
from graphgen.stage import StageError, StageReport
from graphgen.store.base import GraphStore

_STOP = {"the", "a", "an", "of", "and", "in", "to", "for", "with", "on", "by", "from", "its",
         "their", "into", "using", "use", "applying", "apply", "application", "understanding",
         "understand", "concept", "basic", "basics", "introduction", "solving", "solve"}
_KINDS = {k.value for k in ConceptKind}
HEADER = ["alias", "canonical", "similarity", "words", "alias_frequency", "canonical_frequency", "judge"]


class CanonicalizeError(StageError, ValueError):
    """A review file that cannot be applied: `file:line: problem`."""


# --- when two names are one concept ----------------------------------------------------------


def _tokens(name: str) -> list[str]:
    return [t.replace("'", "") for t in canonical_name(name).split(" ") if t.replace("'", "")]


def _initials(words: Sequence[str]) -> str:
    return "".join(w[0] for w in words if w)


class NameForm:
    """The parts of one name the merge rules look at."""

    __slots__ = ("name", "words", "key", "initials", "acronym")

    def __init__(self, name: str):
        self.name = name
        tokens = _tokens(name)
        content = [t for t in tokens if t not in _STOP] or tokens
        # "Greatest common divisor (GCD)": a word spelling the others' initials adds nothing
        if len(content) > 2 and content[-1] == _initials(content[:-1]):
            content = content[:-1]
        self.words = content
        self.key = frozenset(content)
        self.initials = _initials(content) if len(content) >= 2 else ""
        only = content[0] if len(content) == 1 else ""
        self.acronym = only if 2 <= len(only) <= 6 and only.isalpha() else ""


def _similar_words(a: frozenset[str], b: frozenset[str], word_ratio: float) -> bool:
    """Same number of words, each differing word close in spelling to one of the other's."""
    ra, rb = sorted(a - b), sorted(b - a)
    if len(ra) != len(rb):
        return False
    left = list(rb)
    for w in ra:
        if len(w) < 4 or any(ch.isdigit() for ch in w):
            return False
        best = max(left, key=lambda x: fuzz.ratio(w, x))
        if len(best) < 4 or any(ch.isdigit() for ch in best) or fuzz.ratio(w, best) < word_ratio * 100:
            return False
        left.remove(best)
    return True


# --- guards: opposites never merge (whatever the spelling, the embedding or the judge say) ----
#
# Embeddings put a word and its opposite close together ("like"/"unlike" denominators: cosine
# 0.9+), and the spelling rule sees one changed prefix; a merge would pour two opposite
# concepts into one node. These pairs are cheap to name, so they are refused before any rule
# or judge looks at a pair.

_ANTONYMS: list[tuple[str, ...]] = [
    ("like", "unlike"), ("increasing", "decreasing"), ("increase", "decrease"), ("increased", "decreased"),
    ("maximum", "minimum"), ("max", "min"), ("maximize", "minimize"), ("maximise", "minimise"),
    ("maximizing", "minimizing"), ("maximising", "minimising"), ("maximal", "minimal"),
    ("interior", "exterior"), ("inner", "outer"), ("inside", "outside"), ("convex", "concave"),
    ("dependent", "independent"), ("finite", "infinite"), ("equation", "inequality"), ("equality", "inequality"),
    ("terminating", "nonterminating"), ("repeating", "nonrepeating"), ("rational", "irrational"),
    ("positive", "negative"), ("even", "odd"), ("prime", "composite"), ("greatest", "least"),
    ("largest", "smallest"), ("highest", "lowest"), ("upper", "lower"), ("proper", "improper"),
    ("simple", "compound"), ("direct", "inverse"), ("direct", "indirect"), ("horizontal", "vertical"),
    ("parallel", "perpendicular"), ("real", "imaginary"), ("regular", "irregular"), ("above", "below"),
    ("more", "less"), ("profit", "loss"), ("gain", "loss"), ("ascending", "descending"),
    ("clockwise", "counterclockwise"), ("clockwise", "anticlockwise"), ("union", "intersection"),
    ("acute", "obtuse"), ("numerator", "denominator"), ("inscribed", "circumscribed"),
    ("addition", "subtraction"), ("adding", "subtracting"), ("add", "subtract"),
    ("multiplication", "division"), ("multiplying", "dividing"), ("multiply", "divide"),
    ("sum", "difference"), ("product", "quotient"), ("perfect", "imperfect"), ("necessary", "sufficient"),
    ("continuous", "discontinuous"), ("defined", "undefined"), ("bounded", "unbounded"), ("open", "closed"),
    ("sine", "cosine"), ("arithmetic", "geometric"), ("permutation", "combination"), ("mean", "median"),
    ("mean", "mode"), ("median", "mode"), ("area", "perimeter"), ("area", "volume"), ("radius", "diameter"),
    ("left", "right"), ("before", "after"), ("first", "last"), ("input", "output"), ("deposit", "withdrawal"),
]
_OPPOSITE: dict[str, set[str]] = {}
for _pair in _ANTONYMS:
    for _w in _pair:
        _OPPOSITE.setdefault(_w, set()).update(x for x in _pair if x != _w)
# prefixes that negate the word they are glued to ("non-perfect", "unlike", "irrational", "nonzero")
_NEGATING = ("non", "un", "in", "im", "ir", "il", "dis", "anti")
_NEGATION_WORDS = {"not", "no", "non", "without", "never", "neither", "nor"}
_NUMBER_WORDS = {
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
    "hundred", "thousand", "million", "billion", "half", "halves", "third", "quarter",
    "fourth", "fifth", "tenth", "hundredth", "thousandth",
}


def _guard_words(name: str) -> list[str]:
    """A name's words for the guards: hyphens split ("non-perfect" -> non, perfect), and a
    hyphenated negation also kept glued ("nonperfect") so it meets its one-word spelling."""
    out: list[str] = []
    for token in canonical_name(name).split(" "):
        parts = [p for p in token.replace("'", "").split("-") if p]
        out.extend(parts)
        if len(parts) > 1 and parts[0] in _NEGATING:
            out.append("".join(parts))
    return out


def _negates(w: str, v: str) -> bool:
    """`w` is `v` with a negating prefix ("unlike"/"like", "nonperfect"/"perfect")."""
    return any(w == p + v for p in _NEGATING) and len(v) >= 3


def opposed(a: str, b: str) -> str | None:
    """Why two concept names must never merge (opposites, a negation, different numbers), or None."""
    wa, wb = _guard_words(a), _guard_words(b)
    sa, sb = set(wa), set(wb)
    only_a, only_b = sa - sb, sb - sa
    for w in only_a:
        for v in only_b:
            if v in _OPPOSITE.get(w, ()):
                return f"opposites: {w}/{v}"
    for mine, theirs in ((only_a, sb), (only_b, sa)):
        for w in mine:
            for v in theirs:
                if _negates(w, v):
                    return f"negation: {w}/{v}"
    neg_a, neg_b = sa & _NEGATION_WORDS, sb & _NEGATION_WORDS
    if neg_a != neg_b:
        return f"negation: {'/'.join(sorted(neg_a ^ neg_b))} in one name only"
    nums_a = sorted(w for w in wa if any(ch.isdigit() for ch in w) or w in _NUMBER_WORDS)
    nums_b = sorted(w for w in wb if any(ch.isdigit() for ch in w) or w in _NUMBER_WORDS)
    # both name numbers and they differ ("2-digit"/"3-digit"); one name without any may be
    # the general case or a paraphrase ("Doubling" / "Multiplying by two"): the judge's call
    if nums_a and nums_b and nums_a != nums_b:
        return f"numbers differ: {' '.join(nums_a) or '-'} / {' '.join(nums_b) or '-'}"
    return None


def mergeable(a: NameForm, b: NameForm, cosine: float, opts: CanonicalizeSettings) -> str | None:
    """Why names `a` and `b` (of one kind) are one concept, or None when they are not."""
    if opposed(a.name, b.name):
        return None
    if a.key == b.key:
        return "same words"
    if (a.acronym and a.acronym == b.initials) or (b.acronym and b.acronym == a.initials):
        return "acronym" if cosine >= opts.acronym_min_cosine else None
    if cosine >= opts.min_cosine and _similar_words(a.key, b.key, opts.word_ratio):
        return "similar words"
    return None


# --- proposing merges -------------------------------------------------------------------------


class ProposedMerge(BaseModel):
    """One line of the review file."""

    alias_id: str
    alias: str = Field(description="display name of the alias")
    canonical_id: str
    canonical: str = Field(description="display name of the canonical")
    similarity: float = Field(description="embedding cosine of the two names")
    words: str = Field(description="why: same words, similar words, acronym or judge")
    alias_frequency: int
    canonical_frequency: int
    judge: str = Field("", description="the judge's verdict and reason, when it was asked")


def _nearest(vectors: np.ndarray, kinds: Sequence, k: int, min_cosine: float,
             exact_threshold: int = 50_000) -> Iterable[tuple[int, int]]:
    """(i, j), i < j, for each name's `k` nearest others *of its kind* with cosine >= min_cosine.

    Topics and knowledge points never merge, so each kind is searched on its own (no cross-kind
    similarity is ever computed), through the shared neighbour search (`graphgen.knn`): exact
    and blockwise up to `exact_threshold` names of a kind, a faiss index above it
    (100,000 names: the exact search grows as n**1.5-1.65 and holds GiBs of similarities)."""
    from graphgen.config import PairOptions
    from graphgen.knn import nearest_neighbours

    # identical names are the first candidates here, not near duplicates to skip
    options = PairOptions(max_similarity=1.0, exact_threshold=exact_threshold)
    kinds = np.asarray([str(getattr(x, "value", x)) for x in kinds])
    for kind in sorted(set(kinds.tolist())):
        rows = np.flatnonzero(kinds == kind)
        kk = min(k, len(rows) - 1)
        if kk <= 0:
            continue
        j, sims, _method = nearest_neighbours(np.ascontiguousarray(vectors[rows], dtype=np.float32), kk, options)
        for r, (cols, vals) in enumerate(zip(j.tolist(), sims.tolist())):
            i = int(rows[r])
            for c, v in zip(cols, vals):
                if c < 0 or v < min_cosine:
                    continue
                other = int(rows[c])
                yield (i, other) if i < other else (other, i)


class Proposal(BaseModel):
    """What a proposal run decided besides the merges: pairs the guards kept apart and pairs
    the judge said are different (both listed in the review file for the reviewer)."""

    guarded: list[tuple[str, str, float, str]] = Field(default_factory=list, description="(a, b, cosine, why)")
    judged_apart: list[tuple[str, str, float, str]] = Field(default_factory=list, description="(a, b, cosine, judge's line)")
    judged: int = Field(0, description="distinct pairs asked of the judge")
    judge_calls: int = Field(0, description="judge calls paid or served from cache")


def propose_merges(concepts: Sequence[Concept], vectors: np.ndarray, opts: CanonicalizeSettings,
                   judge: Judge | None = None, mode: JudgeMode = "off", judge_min_cosine: float = 0.6,
                   proposal: Proposal | None = None,
                   dry_asks: list[JudgeAsk] | None = None,
                   judge_neighbours: int = 2) -> tuple[list[ProposedMerge], int]:
    """Merges among `concepts` (one row of L2-normalised `vectors` each) and the number of
    clusters they form. Deterministic: same names, vectors, options and judge replies, same merges.

    Guards (`opposed`) refuse a pair before anything else. With a judge, `fallback` asks it
    about candidate pairs the rules refuse (cosine >= `judge_min_cosine`, one name among the
    other's `judge_neighbours` nearest: a name's paraphrase is its nearest name or next to it,
    and asking about every close pair costs a call per name or more), `always` about every
    such pair (the rules' merges included: the judge can veto them). `proposal`, when
    given, collects the guarded and judged-apart pairs for the review file; `dry_asks`, when
    given, collects the first round's judge asks instead of asking them (a dry run)."""
    mode = mode if judge is not None else "off"
    forms = [NameForm(c.display_name) for c in concepts]
    kind = [c.kind for c in concepts]
    floor = min(opts.min_cosine, judge_min_cosine) if mode != "off" else opts.min_cosine
    candidates: set[tuple[int, int]] = set(_nearest(vectors, kind, opts.neighbours, min(floor, 1.0),
                                                    opts.exact_threshold))
    by_key: dict[tuple, list[int]] = {}
    by_initials: dict[tuple, list[int]] = {}
    for i, f in enumerate(forms):
        by_key.setdefault((kind[i], f.key), []).append(i)
        if f.initials:
            by_initials.setdefault((kind[i], f.initials), []).append(i)
    for group in by_key.values():
        candidates.update((a, b) for x, a in enumerate(group) for b in group[x + 1 :])
    for i, f in enumerate(forms):
        for j in by_initials.get((kind[i], f.acronym), ()) if f.acronym else ():
            candidates.add((min(i, j), max(i, j)))

    near = set(_nearest(vectors, kind, judge_neighbours, judge_min_cosine, opts.exact_threshold)) \
        if mode != "off" else set()
    rules: dict[tuple[int, int], str | None] = {}
    judged: dict[tuple[int, int], Judgement] = {}
    missing: set[tuple[int, int]] = set()  # pairs linkage needed that the judge has not seen

    def ask(a: int, b: int) -> JudgeAsk:
        return JudgeAsk(task="same_concept", first=concepts[a].display_name, second=concepts[b].display_name,
                        context="topic" if kind[a].value == "topic" else "knowledge point")

    def needs_judge(key: tuple[int, int]) -> bool:
        a, b = key
        if mode == "off" or kind[a] is not kind[b] or opposed(forms[a].name, forms[b].name):
            return False
        if rule(a, b):  # fallback: the rule's merge stands; always: the judge may veto it
            return mode == "always"
        return key in near

    def rule(a: int, b: int) -> str | None:
        key = (a, b) if a < b else (b, a)
        if key not in rules:
            cos = float(vectors[a] @ vectors[b])
            rules[key] = mergeable(forms[a], forms[b], cos, opts) if kind[a] is kind[b] else None
        return rules[key]

    def why(a: int, b: int) -> str | None:
        key = (a, b) if a < b else (b, a)
        if not needs_judge(key):
            return rule(a, b)
        if key not in judged:
            missing.add(key)
            return None
        return "judge" if judged[key].yes else None

    def consult(pairs: Iterable[tuple[int, int]]) -> None:
        todo = sorted(p for p in pairs if p not in judged and needs_judge(p))
        if not todo:
            return
        if dry_asks is not None:  # a dry run: count what would be asked, call nothing
            dry_asks.extend(ask(a, b) for a, b in todo)
            return
        replies = judge.run([ask(a, b) for a, b in todo], label="judge concepts")  # type: ignore[union-attr]
        for a, b in todo:
            got = replies.get(judge.key(ask(a, b)))  # type: ignore[union-attr]
            if got is not None:
                judged[(a, b)] = got

    consult(candidates)
    rank = {"same words": 0, "acronym": 1, "similar words": 2, "judge": 3}
    cluster: list[int] = []
    members: dict[int, list[int]] = {}
    for _round in range(4):  # linkage may need pairs no candidate list held: judge them, link again
        scored = []
        for a, b in candidates:
            reason = why(a, b)
            if reason:
                scored.append((rank[reason], -float(vectors[a] @ vectors[b]), concepts[a].id, concepts[b].id, a, b))
        scored.sort()
        missing.clear()
        # complete linkage: join two clusters only if every pair across them is mergeable
        cluster = list(range(len(concepts)))
        members = {i: [i] for i in range(len(concepts))}
        for *_, a, b in scored:
            ca, cb = cluster[a], cluster[b]
            if ca == cb or not all(why(x, y) for x in members[ca] for y in members[cb]):
                continue
            keep, gone = min(ca, cb), max(ca, cb)
            for x in members[gone]:
                cluster[x] = keep
            members[keep].extend(members.pop(gone))
        if not missing or mode == "off":
            break
        consult(set(missing))

    if proposal is not None:
        for a, b in sorted(candidates):
            if kind[a] is not kind[b]:
                continue
            cos = round(float(vectors[a] @ vectors[b]), 4)
            guard = opposed(forms[a].name, forms[b].name)
            if guard:
                proposal.guarded.append((concepts[a].id, concepts[b].id, cos, guard))
            elif (a, b) in judged and not judged[(a, b)].yes:
                proposal.judged_apart.append((concepts[a].id, concepts[b].id, cos, judged[(a, b)].line()))
        proposal.judged = len(judged)
        if judge is not None:
            proposal.judge_calls = judge.tally.done

    def judge_line(i: int, j: int) -> str:
        got = judged.get((i, j) if i < j else (j, i))
        return got.line() if got is not None else ""

    out: list[ProposedMerge] = []
    clusters = 0
    for group in members.values():
        if len(group) < 2:
            continue
        clusters += 1
        head = min(group, key=lambda i: (-concepts[i].frequency, len(concepts[i].display_name), concepts[i].id))
        for i in group:
            if i != head:
                out.append(ProposedMerge(
                    alias_id=concepts[i].id, alias=concepts[i].display_name,
                    canonical_id=concepts[head].id, canonical=concepts[head].display_name,
                    similarity=round(float(vectors[i] @ vectors[head]), 4), words=why(i, head) or "",
                    alias_frequency=concepts[i].frequency, canonical_frequency=concepts[head].frequency,
                    judge=judge_line(i, head),
                ))
    out.sort(key=lambda m: (m.canonical_id, m.alias_id))
    return out, clusters


def embed_names(names: Sequence[str], settings: Settings, progress: bool = True) -> np.ndarray:
    """L2-normalised embeddings of concept names (cached per model and text)."""
    from graphgen.embed import EmbeddingCache, create_embedder, embed_texts

    embedder = create_embedder(settings.embedding, settings.llm)
    path = settings.canonicalize.embeddings_cache
    cache = EmbeddingCache(path) if path else None
    try:
        return embed_texts(list(names), embedder, cache, progress=progress)
    finally:
        if cache is not None:
            cache.close()
        embedder.close()


# --- the review file ------------------------------------------------------------------------------


def write_review(path: Path, merges: Sequence[ProposedMerge], source: str,
                 proposal: Proposal | None = None, names: dict[str, str] | None = None) -> None:
    lines = [
        f"# graphgen concept merges proposed from {source}: one line per alias -> canonical.",
        "# Review: delete a line to keep two concepts apart, edit the canonical column to merge",
        "# elsewhere, add lines of your own (kind:name, tab-separated); then apply with",
        "#   graphgen graph canonicalize --apply THIS_FILE",
        "# The judge column holds the judge's verdict and reason when it was asked.",
        "\t".join(HEADER),
    ]
    for m in merges:
        kind_a, kind_c = m.alias_id.split(":", 1)[0], m.canonical_id.split(":", 1)[0]
        lines.append("\t".join([f"{kind_a}:{_cell(m.alias)}", f"{kind_c}:{_cell(m.canonical)}",
                                f"{m.similarity:.3f}", m.words, str(m.alias_frequency),
                                str(m.canonical_frequency), _cell(m.judge)]))
    if proposal is not None:
        # what was kept apart, so a reviewer sees the near misses (commented: never applied)
        shown = names or {}

        def ref(cid: str) -> str:
            return f"{cid.split(':', 1)[0]}:{_cell(shown.get(cid, cid.split(':', 1)[1]))}"

        for title, rows in (("kept apart by the guards (opposites, negations, other numbers)", proposal.guarded),
                            ("kept apart by the judge", proposal.judged_apart)):
            if rows:
                lines.append(f"# {title}:")
                lines.extend(f"#   {ref(a)}\t{ref(b)}\t{cos:.3f}\t{_cell(why)}" for a, b, cos, why in rows)
    write_lines((line + "\n" for line in lines), path)


def _cell(name: str) -> str:
    return re.sub(r"[\t\r\n]+", " ", name)


def read_review(path: Path, known: dict[str, Concept]) -> list[ConceptMerge]:
    """The resolved merge map of a review file, checked against the extracted concepts
    `known` (id -> concept). Chains (a -> b, b -> c) resolve to the end of the chain."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CanonicalizeError(f"{path}: cannot read ({exc})") from None
    target: dict[str, tuple[str, int, float | None]] = {}  # alias id -> (canonical id, line, cosine)
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        cells = line.split("\t")
        if cells[0].strip() == HEADER[0]:
            continue

        def fail(problem: str) -> CanonicalizeError:
            return CanonicalizeError(f"{path}:{n}: {problem}")

        if len(cells) < 2:
            raise fail("expected 'kind:alias<TAB>kind:canonical' (tab-separated)")
        alias, canon = (_resolve(c.strip(), known, fail) for c in cells[:2])
        if alias.kind is not canon.kind:
            raise fail(f"merge across kinds: {cells[0].strip()!r} is a {alias.kind.value}, "
                       f"{cells[1].strip()!r} is a {canon.kind.value}")
        if alias.id == canon.id:
            continue  # the same concept already: nothing to merge
        if alias.id in target and target[alias.id][0] != canon.id:
            raise fail(f"{cells[0].strip()!r} is already merged into {target[alias.id][0]!r} on line {target[alias.id][1]}")
        try:
            cosine = float(cells[2]) if len(cells) > 2 and cells[2].strip() else None
        except ValueError:
            cosine = None
        target[alias.id] = (canon.id, n, cosine)

    resolved: list[ConceptMerge] = []
    for alias_id, (canon_id, line, cosine) in target.items():
        seen = [alias_id]
        while canon_id in target:
            if canon_id in seen:
                cycle = " -> ".join(known[c].display_name for c in [*seen[seen.index(canon_id):], canon_id])
                first = min(target[c][1] for c in seen[seen.index(canon_id):])
                raise CanonicalizeError(f"{path}:{first}: cycle: {cycle}")
            seen.append(canon_id)
            canon_id = target[canon_id][0]
        resolved.append(ConceptMerge(alias_id=alias_id, canonical_id=canon_id, similarity=cosine))
    return sorted(resolved, key=lambda m: m.alias_id)


def _resolve(cell: str, known: dict[str, Concept], fail) -> Concept:
    kind, sep, name = cell.partition(":")
    if not sep or kind.strip() not in _KINDS:
        raise fail(f"{cell!r}: write concepts as topic:<name> or kp:<name>")
    cid = f"{kind.strip()}:{canonical_name(name)}"
    if cid not in known:
        raise fail(f"unknown concept {cell!r}: no extraction names it")
    return known[cid]


# --- the stage ----------------------------------------------------------------------------------


class CanonicalizeInputs(BaseModel):
    review: Path = Field(Path("merges.tsv"), description="review file written by a proposal run")
    apply: Path | None = Field(None, description="a reviewed file to store and rebuild the graph through")
    dry_run: bool = Field(False, description="estimate the judge's calls and cost; write nothing, call no LLM")
    quiet: bool = True


class CanonicalizeReport(StageReport):
    stage: str = "canonicalize"
    applied: bool = False
    review: str | None = None
    clusters: int = 0
    merges: int = 0
    concepts_before: int = 0
    concepts_after: int = 0
    edges_before: int = 0
    edges_after: int = 0
    guarded: int = Field(0, description="candidate pairs the guards kept apart (opposites, negations, numbers)")
    judge: str = Field("off", description="judge mode: off, fallback or always")
    judged: int = Field(0, description="distinct pairs the judge was asked about")
    judged_apart: int = Field(0, description="judged pairs the judge said are different")
    estimate: dict | None = Field(None, description="dry run: the judge calls, tokens and cost it would take")

    def lines(self) -> list[str]:
        if self.estimate is not None:
            e = self.estimate
            cost = f"${e['cost_usd_estimate']:.4f}" if e.get("cost_usd_estimate") is not None else "cost unknown"
            return [f"dry run: {self.concepts_before} concepts, {self.guarded} candidate pairs kept apart by the guards; "
                    f"the judge ({self.judge}, {e['model']}) would be asked about {e['calls']} pairs: "
                    f"~{e['prompt_tokens']:,} prompt tokens, {cost}"]
        what = f"applied {self.review}" if self.applied else f"proposed merges written to {self.review}"
        out = [
            f"{what}: {self.clusters} clusters, {self.merges} names merged into others",
            f"concepts: {self.concepts_before} -> {self.concepts_after}; "
            f"edges: {self.edges_before} -> {self.edges_after} ({self.elapsed_s:.1f}s)",
        ]
        if not self.applied:
            out.append(f"guards kept {self.guarded} candidate pairs apart; judge {self.judge}"
                       + (f": {self.judged} pairs judged, {self.judged_apart} said different; {self.llm.line()}"
                          if self.judge != "off" else ""))
        return [*out, *self.notes]


def run(settings: Settings, store: GraphStore, inputs: CanonicalizeInputs) -> CanonicalizeReport:
    """Propose merges into `inputs.review`, or with `inputs.apply` store a reviewed map and
    rebuild the graph through it."""
    t0 = time.monotonic()
    extractions = list(store.extractions())
    raw_concepts, raw_edges, _ = build_graph(extractions)
    if inputs.apply is not None:
        known = {c.id: c for c in raw_concepts}
        merges = read_review(inputs.apply, known)  # raises before anything is written
        before = store.stats()
        store.set_concept_merges(merges)
        after = rebuild(store)
        report = CanonicalizeReport(
            applied=True, review=str(inputs.apply), merges=len(merges),
            clusters=len({m.canonical_id for m in merges}),
            concepts_before=sum(before.concepts.values()), concepts_after=sum(after.concepts.values()),
            edges_before=sum(before.edges.values()), edges_after=sum(after.edges.values()),
        )
    else:
        mode = settings.judge.concepts
        judge = Judge(settings, quiet=inputs.quiet) if mode != "off" else None
        vectors = embed_names([c.display_name for c in raw_concepts], settings) if raw_concepts else np.zeros((0, 1))
        proposal = Proposal()
        dry: list[JudgeAsk] | None = [] if inputs.dry_run else None
        proposed, clusters = propose_merges(raw_concepts, vectors, settings.canonicalize, judge, mode,
                                            settings.judge.min_cosine, proposal, dry,
                                            settings.judge.concept_neighbours)
        if dry is not None:
            report = CanonicalizeReport(review=str(inputs.review), concepts_before=len(raw_concepts),
                                        guarded=len(proposal.guarded), judge=mode)
            report.estimate = (judge.estimate(dry) if judge is not None else
                               {"calls": 0, "model": "-", "prompt_tokens": 0, "cost_usd_estimate": 0.0})
            report.elapsed_s = time.monotonic() - t0
            return report
        write_review(inputs.review, proposed, "the workspace's extractions", proposal,
                     {c.id: c.display_name for c in raw_concepts})
        merged_concepts, merged_edges, _ = build_graph(extractions, {m.alias_id: m.canonical_id for m in proposed})
        report = CanonicalizeReport(
            review=str(inputs.review), merges=len(proposed), clusters=clusters,
            concepts_before=len(raw_concepts), concepts_after=len(merged_concepts),
            edges_before=len(raw_edges), edges_after=len(merged_edges),
            guarded=len(proposal.guarded), judge=mode, judged=proposal.judged,
            judged_apart=len(proposal.judged_apart),
        )
        if judge is not None:
            report.add_judge(judge.tally, judge.from_journal)
        applied = store.concept_merges()
        if applied:
            report.notes.append(f"the workspace already applies {len(applied)} merges; this proposal starts "
                                "from the names as extracted (apply it to replace them)")
    report.elapsed_s = time.monotonic() - t0
    return report
