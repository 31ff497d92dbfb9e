"""Stage: number-shifted problem variants (MMOS's problem generator), `graphgen generate variants`.

    report = run(settings, store, VariantsInputs(paths=[Path("paths.jsonl")], output=Path("variants.jsonl")))

Input: questions with verified code paths, as `graphgen solve` writes them (paths.jsonl: one
row per kept path; see `read_sources` for the fields read). Questions whose text is not in the
paths rows are looked up in `questions` files (seed files, generated or variant rows); without
any, in the verdicts.jsonl `graphgen solve` wrote beside each paths file.

For each question, each mode in `settings.variants.modes` and each of `per_question` variants:
draw new numbers (graphgen.numbershift: the question's numbers that the programs use, shifted
consistently in question and code), re-run the substituted programs in the sandbox, and keep
the variant when at least `min_agreement` of the original's deduplicated verified code paths
agree on the new answer and the answer keeps the original's kind (a count stays a non-negative
integer, a share stays at most 100%; a division by zero or a crash is a rejection). A rejected
draw is drawn again, up to `tries` times; a variant that never passes goes to the rejects file
with every draw's reason.

Output rows are `GeneratedQuestion`s of kind "variant" (so `export` and `solve` read them like
any generated row): question, the first agreeing program as the solution, the new answer, and
`variant` lineage (original id, question and answer, mode, number mapping, agreeing programs,
their path ids). With `rewrite`, one LLM call per kept variant fixes wording the new numbers
broke ("1 apples"); the rewrite is used only when its numbers are exactly the variant's.

Answer judge (`[judge] answers`, the same policy and prompt as solve's; graphgen.judge): the
rule groups the programs' printed answers by equal numbers, else math-verify, and misses
answers a program prints in another form ("1234 dollars", "Total: 12", "75%" for 0.75).
`fallback` asks the judge, for each draw the rule finds without agreement, whether the printed
answers of its groups are the same answer to the new question (answer_match: one group's answer
against another's); `always` asks about every pair of distinct printed answers. The judge's
groups decide its verdict, stored beside the rule's in the row (`VariantLineage.rule_agreed`,
`.rule`, `.judge`, never overwritten); a variant is made when either agrees, and
`graphgen.status.variant_agreed` (export's `--verified-by`) picks between them. With the judge
on, code paths solve's judge kept are sources too (their variants are not rule-agreed). Each
judgement is keyed by its inputs, appended to `<output>.judgements.jsonl` as it arrives and
cached: a rerun pays nothing. Calls run on the `[engine]` (`--ray`, `--batch`).

Question checks (`graphgen check`, graphgen.status.failed_check): an original that failed the
check is not made into variants (counted as skipped "failed-check"; `[check] skip_failed =
false`, `--include-failed-check`, makes them).

Reproducible and resumable: a variant's draws are seeded by (seed, original id, mode, index,
try), so the same inputs and seed give the same rows, in any order or shard; a variant's id
hashes those and the original's programs; ids already in the output or rejects file are
skipped on restart, except variants rejected for disagreement with the judge off, which a run
with the judge on draws again. Both files are append-only and a torn last line is cut before
appending.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from graphgen.answers import MAX_ANSWER_CHARS, PROGRAM_OUTPUT_CHARS, AnswerChecker, options_of
from graphgen.config import Settings
from graphgen.rows import GeneratedRowWriter, engine_state_dir, stable_id
from graphgen.jsonl import chunked, open_for_append, text_lines
from graphgen.numbershift import (
    ProgramSyntaxError,
    VariantPlan,
    VariantRejected,
    answer_kind_problem,
    code_literals,
    find_numbers,
    unexplained_literals,
    parse_number,
    plan_variant,
    same_number,
)
from graphgen.judge import PROMPTS as JUDGE_PROMPTS, Judge, Judgement, answer_ask, per_thousand
from graphgen.progress import Progress
from graphgen.records import GeneratedQuestion, JudgeVerdict, NumberChange, VariantLineage
from graphgen.stage import StageReport
from graphgen.status import Policy, failed_check, is_verified, kept_paths, marked_verified

if TYPE_CHECKING:
    from graphgen.store.base import GraphStore

__all__ = ["CodePath", "VariantSource", "VariantReject", "VariantsInputs", "VariantsReport",
           "VariantRewrite", "read_sources", "run", "REWRITE_PROMPT"]

REWRITE_PROMPT = "variants_rewrite_v1"
CHUNK = 64  # questions per sandbox batch
# Reasons that do not depend on the draw: drawing again cannot help.
FINAL_REASONS = frozenset({"no-numbers", "no-tied-numbers", "no-common-numbers", "ambiguous-literal"})


class CodePath(BaseModel):
    """One verified code path of the original question."""

    id: str
    program: str
    answer: str = ""
    by_rule: bool = Field(True, description="kept by solve's rule (False: only by its answer judge)")


class VariantSource(BaseModel):
    """A question with its verified code paths: what a variant is made from."""

    id: str
    question: str
    answer: str = Field("", description="the original's (gold or verified) answer")
    kind: str = Field("seed", description="seed, concepts, fusion or variant")
    paths: list[CodePath] = Field(default_factory=list)


class VariantReject(BaseModel):
    """A variant that no draw could make: why, per draw."""

    id: str
    original_id: str
    mode: str
    index: int
    reasons: list[str] = Field(description="one per draw, in order")
    detail: str = Field("", description="the last draw's detail")
    question: str = Field("", description="the last draw's shifted question, when one was made")
    judge: str = Field("off", description="the answer judge's mode when it was rejected (a variant rejected for "
                       "disagreement with the judge off is drawn again by a run with the judge on)")


class VariantRewrite(BaseModel):
    """LLM output for --rewrite: the variant's question with its wording fixed."""

    model_config = ConfigDict(extra="forbid")
    question: str = Field(min_length=1)


class VariantsInputs(BaseModel):
    paths: list[Path] = Field(description="code paths (graphgen solve's paths.jsonl)")
    questions: list[Path] = Field(default_factory=list, description="files with the questions' text, if not in paths rows")
    output: Path
    rejects: Path | None = Field(None, description="default: <output>.rejects.jsonl")
    limit: int | None = Field(None, description="at most this many questions")
    quiet: bool = False

    def rejects_path(self) -> Path:
        return self.rejects or self.output.with_name(self.output.name.removesuffix(".jsonl") + ".rejects.jsonl")

    def judgements_path(self) -> Path:
        """The answer judge's journal (`[judge] answers`): every judgement as it arrives."""
        return self.output.with_name(self.output.name.removesuffix(".jsonl") + ".judgements.jsonl")


class VariantsReport(StageReport):
    stage: str = "variants"
    output: str = ""
    rejects: str = ""
    questions: int = Field(0, description="questions read with code paths")
    questions_tried: int = Field(0, description="questions with >= min_agreement distinct programs")
    skipped: dict[str, int] = Field(default_factory=dict, description="questions not tried, by reason")
    variants_wanted: int = 0
    already_done: int = 0
    copied_from_store: int = Field(0, description="variants the store held but the output lacked, copied to it")
    copied_to_store: int = Field(0, description="variants of the output the store lacked, added to it")
    kept: dict[str, int] = Field(default_factory=dict, description="variants kept per mode")
    rejected: dict[str, int] = Field(default_factory=dict, description="variants given up per mode")
    draws_rejected: dict[str, int] = Field(default_factory=dict, description="rejected draws by reason")
    draws: int = 0
    programs_run: int = 0
    isolation: str | None = Field(None, description="the sandbox that ran the programs (bwrap or process)")
    sandbox_limits: str | None = Field(None, description="the limits that bound each program, as the sandbox states them")
    programs_with_typed_intermediates: int = Field(
        0, description="code paths left out: a literal the question does not state (a hand-typed intermediate)")
    rewrite_kept_original: dict[str, int] = Field(default_factory=dict, description="rewrites not used, by reason")
    variants_per_s: float = 0.0
    judge: VariantsJudgeSummary | None = None

    def lines(self) -> list[str]:
        kept = sum(self.kept.values())
        out = [
            f"variants: {self.questions_tried} of {self.questions} questions tried; "
            f"{kept} variants kept, {sum(self.rejected.values())} rejected, {self.already_done} already done "
            f"({self.elapsed_s:.1f}s, {self.variants_per_s:.1f} variants/s)",
            "kept per mode: " + (", ".join(f"{m} {n}" for m, n in sorted(self.kept.items())) or "none"),
        ]
        if self.programs_run:
            out.append(f"programs: {self.programs_run} run in the sandbox ({self.isolation}); "
                       f"sandbox limits: {self.sandbox_limits}")
        if self.copied_from_store or self.copied_to_store:
            out.append(f"reconciled with the store: {self.copied_from_store} variants the store already held written "
                       f"to the output, {self.copied_to_store} variants of the output added to the store")
        if self.skipped:
            out.append("questions not tried: " + ", ".join(f"{r} {n}" for r, n in sorted(self.skipped.items()))
                       + f" ({self.programs_with_typed_intermediates} code paths left out for hand-typed intermediates)")
        if self.draws_rejected:
            out.append(f"rejected draws ({sum(self.draws_rejected.values())} of {self.draws}) by reason: "
                       + ", ".join(f"{r} {n}" for r, n in sorted(self.draws_rejected.items(), key=lambda kv: -kv[1])))
        if self.rewrite_kept_original:
            out.append("rewrites not used: " + ", ".join(f"{r} {n}" for r, n in sorted(self.rewrite_kept_original.items())))
        if self.judge is not None:
            j = self.judge
            out.append(f"answer judge ({j.mode}): asked about {j.asked} of {j.draws} draws with answers "
                       f"({j.pairs} answer pairs) in {j.calls} calls, {j.from_journal} from the journal "
                       f"({per_thousand(j.calls, self.draws):.0f} calls per 1,000 draws); {j.kept_judge_only} variants "
                       f"kept by the judge only, {j.kept_rule_only} by the rule only, {j.judge_only_sources} from "
                       "code paths only solve's judge kept; export picks with --verified-by")
        out.append(f"rows: {self.output}; rejects with reasons: {self.rejects}")
        return out + StageReport.lines(self)[1:]


class VariantsJudgeSummary(BaseModel):
    """What the answer judge did in one variants run (BENCHMARKS.md's calls per 1,000 rows)."""

    mode: str
    draws: int = Field(0, description="draws whose programs printed at least min_agreement answers")
    asked: int = Field(0, description="draws the judge was asked about")
    pairs: int = Field(0, description="answer pairs asked about (distinct asks are paid once)")
    calls: int = Field(0, description="judge calls this run (paid or served from the response cache)")
    from_journal: int = Field(0, description="judgements read from the journal (paid by an earlier run)")
    kept_judge_only: int = Field(0, description="variants kept because the judge found agreement the rule did not")
    kept_rule_only: int = Field(0, description="variants the rule kept and the judge did not agree with (always)")
    judge_only_sources: int = Field(0, description="kept variants made from code paths only solve's judge kept")


# --- reading code paths ---------------------------------------------------------------------------

_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.S)


def program_of(text: str) -> str | None:
    """The program in a code path: its last ```python block, or the text itself if it parses."""
    blocks = _FENCE.findall(text)
    if blocks:
        return blocks[-1]
    try:
        code_literals(text)
    except ProgramSyntaxError:
        return None
    return text


def _first(row: dict, *names: str) -> Any:
    for n in names:
        if row.get(n) not in (None, ""):
            return row[n]
    return None


def _trusted_by(row: dict, verdicts: dict, policy: Policy = "rule") -> str | None:
    """Whether a code path may vote: "rule" (solve's rule verified its question and kept it),
    "judge" (only solve's answer judge did; used under policy any / judge), or None. The
    stored verdict decides (graphgen.status); a path whose question has no stored verdict says
    it itself (`correct`, ...); a bare program row without any marker is taken as given."""
    v = verdicts.get(str(row.get("question_id")))
    if v is not None:
        pid = str(row.get("id"))
        if policy != "judge" and is_verified(v) and pid in v.kept:
            return "rule"
        if policy != "rule" and is_verified(v, "judge") and pid in kept_paths(v, "judge"):
            return "judge"
        return None
    if _first(row, "verdict", "correct", "verified") is None:
        return "rule"
    return "rule" if marked_verified(row, "verdict", "correct", "verified") else None


def _verdicts_beside(paths: Iterable[Path]) -> list[Path]:
    """solve writes the questions' text in verdicts.jsonl next to paths.jsonl: the default
    `questions` file, so `--paths solved/paths.jsonl` works on its own."""
    return [v for p in paths if (v := Path(p).with_name("verdicts.jsonl")).is_file()]


def read_sources(paths: Iterable[Path], questions: Iterable[Path] = (),
                 verdicts: dict | None = None, policy: Policy = "rule") -> Iterator[VariantSource]:
    """Group code paths by question, in first-seen order.

    Path rows are `graphgen solve`'s `SolvePath`s: `question_id`, `question_kind`, `style`
    (only "code" rows are used), `index`, `text` (the program, bare or in a ```python block),
    `answer`, `correct` and `id`. A path is used when its question's stored verdict says
    verified and solve kept the path (`verdicts`, graphgen.status; `policy` "any": by its rule
    or by its answer judge); without a stored verdict,
    rows marked not correct are skipped. Rows may also carry
    `question` (its text) and `code` / `program` instead of `text`. The questions' text and
    gold answers come from `questions` files: solve's verdicts.jsonl, generated or variant
    rows, or seed files (any format `extract` reads).
    """
    grouped: dict[str, VariantSource] = {}
    for path in paths:
        rows = 0
        # one line per row; a line that is not UTF-8 is an error naming the file and line
        for lineno, line in text_lines(Path(path)):
            if not line.strip():
                continue  # (a last line without a newline is a row like any other)
            rows += 1
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not JSON ({exc.msg}: col {exc.colno})") from None
            if not isinstance(row, dict) or row.get("question_id") in (None, ""):
                raise ValueError(f"{path}:{lineno}: not a code path row (no question_id)")
            trusted = _trusted_by(row, verdicts or {}, policy)
            if str(row.get("style", "code")) != "code" or trusted is None or row.get("status", "ok") != "ok":
                continue
            raw = _first(row, "code", "program", "text", "solution")
            program = program_of(str(raw or ""))
            if not program:
                continue
            qid = str(row["question_id"])
            src = grouped.get(qid)
            if src is None:
                src = grouped[qid] = VariantSource(id=qid, question=str(row.get("question") or ""),
                                                   kind=str(row.get("question_kind") or "seed"))
            path_id = str(row.get("id") or f"{qid}#{_first(row, 'index') or len(src.paths)}")
            src.paths.append(CodePath(id=path_id, program=program, answer=str(row.get("answer") or ""),
                                      by_rule=trusted == "rule"))
        if not rows:
            raise ValueError(f"{path}: no path rows (expected JSONL with one solve path per line, "
                             "e.g. paths.jsonl of graphgen solve)")
    if questions:
        wanted = set(grouped)
        for qid, text, answer, kind in _question_texts(questions, wanted):
            src = grouped[qid]
            src.question = src.question or text
            src.answer = src.answer or answer
            if kind:
                src.kind = kind
    for src in grouped.values():
        if not src.answer and src.paths:
            src.answer = src.paths[0].answer  # a verified path's answer equals the gold
        yield src


def _question_texts(files: Iterable[Path], wanted: set[str]) -> Iterator[tuple[str, str, str, str]]:
    """(id, question, answer, kind) for wanted ids, from verdicts, generated rows or seed files."""
    from graphgen.readers import read_seeds

    for path in files:
        with Path(path).open(encoding="utf-8") as fh:
            head = fh.readline()
        try:
            first = json.loads(head) if head.strip() else {}
        except json.JSONDecodeError:
            first = {}
        if isinstance(first, dict) and "question_id" in first and "method" in first:  # solve verdicts
            with Path(path).open(encoding="utf-8") as fh:
                for line in fh:
                    if line.strip():
                        v = json.loads(line)
                        if v.get("question_id") in wanted and v.get("question"):
                            yield v["question_id"], v["question"], v.get("gold") or "", v.get("question_kind") or ""
        elif isinstance(first, dict) and "kind" in first and "id" in first:  # generated rows
            from graphgen.rows import read_rows

            for row in read_rows([Path(path)]):
                if row.id in wanted and row.status == "ok":
                    yield row.id, row.question, row.answer, row.kind
        else:
            for seed in read_seeds(Path(path)):
                if seed.id in wanted:
                    yield seed.id, seed.question, seed.answer or "", "seed"


def distinct_programs(paths: list[CodePath]) -> list[CodePath]:
    """Drop paths whose programs are the same after reprinting their syntax tree."""
    import ast

    seen: set[str] = set()
    out = []
    for p in paths:
        try:
            key = ast.dump(ast.parse(p.program))
        except SyntaxError:
            continue
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


# --- running and judging substituted programs -------------------------------------------------


def printed_answer(stdout: str) -> str:
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def answer_text(value: Fraction) -> str:
    """The new answer as a row shows it: an integer plainly, else 12 significant digits
    (float noise such as 87.50000000000001 dropped)."""
    r = round(value)
    if abs(value - r) <= Fraction(1, 10**9) * max(1, abs(r)):
        return str(r)
    return f"{float(value):.12g}"


_CHECKER = AnswerChecker()  # the one bounded checker: length limit, time limit, no int() limit


def equivalent(a: str, b: str) -> bool:
    """Printed answers that are not plain numbers ("3/4" vs "0.75" is numeric; "x+1") by math-verify."""
    return _CHECKER.equivalent(a, b)


# One sandbox run per draw: the draw's programs run one after another in the same forked child,
# each with fresh globals and its own captured stdout. They are all variants of the same
# question's verified paths, so sharing a child costs no isolation from graphgen or between
# questions; it saves a fork per program. If the batch does not finish cleanly (a timeout, a
# program that kills the interpreter or floods output), its programs run again one per child.
# Each program's output is kept whole up to PROGRAM_OUTPUT_CHARS; more is over_limit (never a
# cut answer).
_BATCH = """\
import contextlib as _c, io as _io, json as _j, sys as _s
_out = _s.stdout
for _i, _src in enumerate(_j.loads({payload!r})):
    _buf = _io.StringIO()
    try:
        with _c.redirect_stdout(_buf):
            exec(compile(_src, "program.py", "exec"), {{"__name__": "__main__", "__builtins__": __builtins__}})
        _r = ["ok", ""]
    except BaseException as _e:
        _r = ["crash", type(_e).__name__ + ": " + str(_e)[:200]]
    _o = _buf.getvalue()
    if len(_o) > {cap}:
        _r, _o = ["over_limit", "output over {cap} characters"], ""
    _out.write("\\x1e" + _j.dumps([_i, _r[0], _r[1], _o]) + "\\n")
    _out.flush()
"""


def run_programs(box, batches: list[list[str]]) -> list[list]:
    """Results (SandboxResult) per batch of programs, batches run in parallel over the sandbox."""
    from graphgen.sandbox import SandboxResult

    if not batches:
        return []
    wrapped = [_BATCH.format(payload=json.dumps(progs), cap=PROGRAM_OUTPUT_CHARS) for progs in batches]
    out: list[list] = []
    redo: list[tuple[int, list[str]]] = []
    for k, (progs, res) in enumerate(zip(batches, box.map(wrapped))):
        parsed = []
        if res.reason == "ok":
            for line in res.stdout.split("\x1e")[1:]:
                try:
                    _, reason, detail, stdout = json.loads(line)
                except (json.JSONDecodeError, ValueError):
                    break
                parsed.append(SandboxResult(reason="ok" if reason == "ok" and stdout.strip() else
                                            "no_output" if reason == "ok" else
                                            "over_limit" if reason == "over_limit" else "crash",
                                            detail=detail, stdout=stdout))
        if len(parsed) != len(progs):
            redo.append((k, progs))
            parsed = []
        out.append(parsed)
    if redo:
        flat = box.map([p for _, progs in redo for p in progs])
        at = 0
        for k, progs in redo:
            out[k] = flat[at:at + len(progs)]
            at += len(progs)
    return out


@dataclass
class _Draw:
    unit: _Unit
    attempt: int
    plan: VariantPlan | None = None
    reason: str = ""
    detail: str = ""


@dataclass
class _Unit:
    id: str
    src: VariantSource
    programs: list[CodePath]
    literals: list
    mode: str
    index: int
    reasons: list[str] = field(default_factory=list)
    detail: str = ""
    last_question: str = ""


Answer = tuple[int, str, "Fraction | None"]  # (voter position, printed answer, its value)


def _answers(results: list) -> tuple[list[Answer], Counter[str]]:
    """The printed answers of a draw's programs, and why the others gave none."""
    answers: list[Answer] = []
    failures: Counter[str] = Counter()
    for pos, res in enumerate(results):
        if res.reason != "ok":
            text = f"{res.detail}\n{res.stderr}"
            failures["division-by-zero" if "ZeroDivisionError" in text else f"program-{res.reason}"] += 1
            continue
        printed = printed_answer(res.stdout)
        if not printed:
            failures["program-no_output"] += 1
            continue
        if len(printed) > MAX_ANSWER_CHARS:  # never an answer: solve would not check it either
            failures["answer-too-long"] += 1
            continue
        answers.append((pos, printed, parse_number(printed)))
    return answers, failures


def _rule_groups(answers: list[Answer]) -> list[list[Answer]]:
    """The rule: answers are the same when their numbers are equal, else by math-verify."""
    groups: list[list[Answer]] = []
    for item in answers:
        for g in groups:
            a, b = g[0][2], item[2]
            if (same_number(a, b) if a is not None and b is not None else equivalent(g[0][1], item[1])):
                g.append(item)
                break
        else:
            groups.append([item])
    groups.sort(key=len, reverse=True)
    return groups


def _agreed(groups: list[list[Answer]], min_agreement: int) -> bool:
    """The largest group reaches min_agreement and no other group is as large."""
    return bool(groups) and len(groups[0]) >= min_agreement and not (len(groups) > 1 and len(groups[1]) == len(groups[0]))


def judge(draw: _Draw, results: list, min_agreement: int) -> tuple[str, str, list[int]] | None:
    """The rule's verdict: (answer text, printed, agreeing voter positions), or None with
    draw.reason set."""
    answers, failures = _answers(results)
    groups = _rule_groups(answers)
    if not _agreed(groups, min_agreement):
        if failures and len(answers) < min_agreement:
            draw.reason = failures.most_common(1)[0][0]
        else:
            draw.reason = "no-agreement"
        draw.detail = f"answers {[a[1] for a in answers]}; failures {dict(failures)}"
        return None
    best = groups[0]
    value = best[0][2]
    if value is not None:
        problem = answer_kind_problem(draw.unit.src.question, parse_number(draw.unit.src.answer), value)
        if problem:
            draw.reason, draw.detail = problem, f"new answer {best[0][1]} (original {draw.unit.src.answer})"
            return None
        text = answer_text(value)
    else:
        text = best[0][1]
    return text, best[0][1], [pos for pos, _, _ in best]


# --- the answer judge behind the rule ([judge] answers) ---------------------------------------------


def judge_nodes(answers: list[Answer], mode: str) -> list[list[Answer]]:
    """What the judge compares: with `fallback` the rule's groups (its matches stand, the judge
    decides between groups); with `always` every distinct printed answer."""
    if mode == "fallback":
        return _rule_groups(answers)
    nodes: dict[str, list[Answer]] = {}
    for a in answers:
        nodes.setdefault(a[1], []).append(a)
    return list(nodes.values())


def judge_groups(nodes: list[list[Answer]], same: dict[tuple[int, int], bool]) -> list[list[Answer]]:
    """Nodes joined where the judge said "same" (`same[(i, j)]`, i < j), largest first."""
    parent = list(range(len(nodes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for (i, j), yes in same.items():
        if yes:
            parent[root(j)] = root(i)
    merged: dict[int, list[Answer]] = {}
    for i, node in enumerate(nodes):
        merged.setdefault(root(i), []).extend(node)
    groups = [sorted(g) for g in merged.values()]
    groups.sort(key=len, reverse=True)
    return groups


def _judge_pick(draw: _Draw, best: list[Answer]) -> tuple[str, str, list[int]] | str:
    """The answer of a group the judge joined: the first program's whose value keeps the
    original answer's kind (a row shows a number plainly), else the first printed text; that
    program first. A reason (str) when every value breaks the kind."""
    original = parse_number(draw.unit.src.answer)
    problem = ""
    for item in best:
        if item[2] is None:
            continue
        problem = answer_kind_problem(draw.unit.src.question, original, item[2]) or ""
        if not problem:
            rest = [pos for pos, _, _ in best if pos != item[0]]
            return answer_text(item[2]), item[1], [item[0], *rest]
    if problem:
        return problem
    return best[0][1], best[0][1], [pos for pos, _, _ in best]


@dataclass
class _Judged:
    """One draw's two verdicts, side by side."""

    draw: _Draw
    results: list
    rule: tuple[str, str, list[int]] | None
    rule_reason: str = ""
    rule_detail: str = ""
    nodes: list[list[Answer]] = field(default_factory=list)
    pairs: list[tuple[int, int]] = field(default_factory=list)


# --- the stage -------------------------------------------------------------------------------------


def _rejects_done(path: Path, mode: str) -> set[str]:
    """Ids of rejected variants a run with this judge mode does not draw again: all of them,
    except, with the judge on, those rejected for disagreement while it was off."""
    final: set[str] = set()
    if not path.exists():
        return final
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rid = row["id"]
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
            if mode == "off" or row.get("judge", "off") != "off" or "no-agreement" not in (row.get("reasons") or []):
                final.add(rid)
    return final


def _ids_in(path: Path) -> set[str]:
    ids: set[str] = set()
    if not path.exists():
        return ids
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                try:
                    ids.add(json.loads(line)["id"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue
    return ids


def _unit_id(src: VariantSource, programs: list[CodePath], mode: str, index: int, settings: Settings) -> str:
    digest = hashlib.sha256("\x1e".join(p.program for p in programs).encode()).hexdigest()[:16]
    v = settings.variants
    return stable_id("v", src.id, mode, index, v.seed, v.min_agreement, v.tries, digest)


def _row(draw: _Draw, answer: str, printed: str, agreeing: list[int], settings: Settings) -> GeneratedQuestion:
    unit, plan = draw.unit, draw.plan
    assert plan is not None
    programs = [plan.programs[pos] for pos in agreeing]
    path_ids = [unit.programs[plan.voters[pos]].id for pos in agreeing]
    solution = f"```python\n{programs[0].rstrip()}\n```\n```output\n{printed}\n```"
    lineage = VariantLineage(
        original_id=unit.src.id, original_question=unit.src.question, original_answer=unit.src.answer,
        mode=unit.mode, draw=f"{unit.index}.{draw.attempt}", seed=settings.variants.seed,
        numbers=[NumberChange(original=s.original, new=s.new, occurrences=s.occurrences,
                              code_literals=s.code_literals) for s in plan.shifts],
        programs=programs, path_ids=path_ids,
    )
    return GeneratedQuestion(id=unit.id, kind="variant", question=plan.question, solution=solution,
                             answer=answer, strategy=unit.mode, variant=lineage)


def _rng(settings: Settings, unit: _Unit, attempt: int) -> random.Random:
    return random.Random(f"{settings.variants.seed}:{unit.src.id}:{unit.mode}:{unit.index}:{attempt}")


class _Engine:
    """Draw, run and judge variants a chunk of questions at a time (one sandbox batch per try;
    with the answer judge on, one judge run per try for the chunk's draws)."""

    def __init__(self, settings: Settings, box, report: VariantsReport, rejects_fh,
                 judge: Judge | None = None, journal: Path | None = None, state_dir: Path | None = None):
        self.settings, self.box, self.report, self.rejects_fh = settings, box, report, rejects_fh
        self.judge, self.journal, self.state_dir = judge, journal, state_dir
        self.mode = settings.judge.answers if judge is not None else "off"
        self._got: dict[str, Judgement] = {}

    def process(self, units: list[_Unit]) -> Iterator[GeneratedQuestion]:
        v = self.settings.variants
        pending = units
        given_up: list[_Unit] = []
        for attempt in range(v.tries):
            if not pending:
                break
            draws = [self._plan(u, attempt) for u in pending]
            planned = [d for d in draws if d.plan is not None]
            results = iter(run_programs(self.box, [d.plan.programs for d in planned]))
            self.report.programs_run += sum(len(d.plan.programs) for d in planned)
            judged = {id(d): self._rule(d, next(results)) for d in planned}
            if self.judge is not None:
                self._ask(list(judged.values()))
            still: list[_Unit] = []
            for d in draws:
                self.report.draws += 1
                if d.plan is not None:
                    row = self._decide(judged[id(d)])
                    if row is not None:
                        self.report.kept[d.unit.mode] = self.report.kept.get(d.unit.mode, 0) + 1
                        yield row
                        continue
                    d.unit.last_question = d.plan.question
                d.unit.reasons.append(d.reason)
                d.unit.detail = d.detail
                self.report.draws_rejected[d.reason] = self.report.draws_rejected.get(d.reason, 0) + 1
                if d.reason in FINAL_REASONS:
                    given_up.append(d.unit)
                else:
                    still.append(d.unit)
            pending = still
        for u in given_up + pending:
            self.report.rejected[u.mode] = self.report.rejected.get(u.mode, 0) + 1
            rej = VariantReject(id=u.id, original_id=u.src.id, mode=u.mode, index=u.index, reasons=u.reasons,
                                detail=u.detail[:500], question=u.last_question, judge=self.mode)
            self.rejects_fh.write(rej.model_dump_json() + "\n")
        self.rejects_fh.flush()

    def _rule(self, d: _Draw, results: list) -> _Judged:
        j = _Judged(d, results, judge(d, results, self.settings.variants.min_agreement))
        j.rule_reason, j.rule_detail = d.reason, d.detail
        if self.judge is None:
            return j
        answers, _ = _answers(results)
        if len(answers) < self.settings.variants.min_agreement:
            return j  # too few answers: no judge can make them agree
        self.report.judge.draws += 1  # type: ignore[union-attr]
        if self.mode == "fallback" and (j.rule is not None or j.rule_reason != "no-agreement"):
            return j  # the rule's yes stands; a kind problem (a negative count) is no question of matching
        if self.mode == "always" and j.rule is None and j.rule_reason != "no-agreement":
            return j
        j.nodes = judge_nodes(answers, self.mode)
        j.pairs = [(a, b) for a in range(len(j.nodes)) for b in range(a + 1, len(j.nodes))]
        return j

    def _ask_of(self, j: _Judged, pair: tuple[int, int]):
        a, b = pair
        return answer_ask(j.nodes[a][0][1], j.nodes[b][0][1], j.draw.plan.question)  # type: ignore[union-attr]

    def _ask(self, judged: list[_Judged]) -> None:
        asks = [self._ask_of(j, pair) for j in judged for pair in j.pairs]
        summary = self.report.judge
        assert summary is not None and self.judge is not None
        summary.asked += sum(1 for j in judged if j.pairs)
        summary.pairs += len(asks)
        if asks:
            self._got |= self.judge.run(asks, label="judge variants", journal=self.journal, state_dir=self.state_dir)

    def _decide(self, j: _Judged) -> GeneratedQuestion | None:
        d = j.draw
        verdict: JudgeVerdict | None = None
        pick = j.rule
        if self.judge is not None:
            verdict, judge_pick = self._judge_verdict(j)
            if pick is None and judge_pick is not None:
                pick = judge_pick
                self.report.judge.kept_judge_only += 1  # type: ignore[union-attr]
            elif pick is not None and verdict is not None and verdict.status != "verified":
                self.report.judge.kept_rule_only += 1  # type: ignore[union-attr]
            if pick is None and verdict is not None and verdict.reason:
                d.detail = f"{j.rule_detail}; judge: {verdict.reason}"
        if pick is None:
            return None
        d.reason = ""
        answer, printed, agreeing = pick
        plan = d.plan
        assert plan is not None
        from_rule_paths = all(d.unit.programs[plan.voters[pos]].by_rule for pos in agreeing)
        if not from_rule_paths and self.report.judge is not None:
            self.report.judge.judge_only_sources += 1
        row = _row(d, answer, printed, agreeing, self.settings)
        lineage = row.variant
        assert lineage is not None
        lineage.rule_agreed = j.rule is not None and from_rule_paths
        if j.rule is not None:
            lineage.rule = f"{len(j.rule[2])} of {len(j.results)} programs agree on {j.rule[1]}" + (
                "" if from_rule_paths else " (programs of paths only solve's judge kept)")
        else:
            lineage.rule = f"no agreement ({j.rule_detail})"
        lineage.judge = verdict
        return row

    def _judge_verdict(self, j: _Judged) -> tuple[JudgeVerdict | None, tuple[str, str, list[int]] | None]:
        """The judge's verdict on one draw and, when it agrees, its pick (answer, printed, voters)."""
        assert self.judge is not None
        base = dict(model=self.judge.model, prompt_version=JUDGE_PROMPTS["answer_match"], mode=self.mode)
        min_agreement = self.settings.variants.min_agreement
        if not j.nodes:
            if self.mode == "fallback" and j.rule is not None:
                return JudgeVerdict(status="verified", reason="the rule's agreement stands (fallback)",
                                    accepted=len(j.rule[2]), **base), None
            return None, None  # not a question of matching (too few answers, a kind problem)
        got = self._got
        same: dict[tuple[int, int], bool] = {}
        said: list[str] = []
        for pair in j.pairs:
            jd: Judgement | None = got.get(self.judge.key(self._ask_of(j, pair)))
            same[pair] = jd is not None and jd.yes
            a, b = pair
            said.append(f"{j.nodes[a][0][1]!r} vs {j.nodes[b][0][1]!r}: " + (jd.line() if jd else "not asked"))
        groups = judge_groups(j.nodes, same)
        asked = len(j.pairs)
        if not _agreed(groups, min_agreement):
            sizes = [len(g) for g in groups]
            return JudgeVerdict(status="unverified", asked=asked, accepted=sizes[0] if sizes else 0,
                                reason=f"no agreement by the judge (groups of {sizes}): " + "; ".join(said), **base), None
        picked = _judge_pick(j.draw, groups[0])
        if isinstance(picked, str):
            return JudgeVerdict(status="unverified", asked=asked, accepted=len(groups[0]),
                                reason=f"the judge's agreed answer breaks the original's kind: {picked}", **base), None
        reason = (f"{len(groups[0])} of {len(j.results)} programs agree on {picked[1]} by the judge"
                  + (": " + "; ".join(said) if said else " (every program printed the same answer)"))
        return JudgeVerdict(status="verified", asked=asked, accepted=len(groups[0]), reason=reason, **base), picked

    def _plan(self, unit: _Unit, attempt: int) -> _Draw:
        d = _Draw(unit, attempt)
        try:
            d.plan = plan_variant(unit.src.question, [p.program for p in unit.programs], unit.mode,
                                  _rng(self.settings, unit, attempt),
                                  min_voters=self.settings.variants.min_agreement, literals=unit.literals)
        except VariantRejected as exc:
            d.reason, d.detail = exc.reason, exc.detail
        return d


def _units(sources: Iterable[VariantSource], settings: Settings, done: set[str], report: VariantsReport,
           limit: int | None, stored: set[str] = frozenset(), recover: list[str] | None = None,
           checks: dict | None = None) -> Iterator[_Unit]:
    """The units still to make. Units whose rows only the store holds (a kill between the
    store's commit and the file's write) go to `recover`: copied to the file, not redone.
    Originals that failed the question check (graphgen.status.failed_check) are skipped
    unless `[check] skip_failed` is off."""
    v = settings.variants
    for n, src in enumerate(sources):
        if limit is not None and n >= limit:
            return
        report.questions += 1
        if checks and settings.check.skip_failed and failed_check(checks.get(src.id)) is not None:
            report.skipped["failed-check"] = report.skipped.get("failed-check", 0) + 1
            continue
        if not src.question:
            report.skipped["no-question-text"] = report.skipped.get("no-question-text", 0) + 1
            continue
        if options_of(src.question):
            # new numbers would need new options (and one of them right): not made, counted
            report.skipped["multiple-choice"] = report.skipped.get("multiple-choice", 0) + 1
            continue
        programs, literals = [], []
        qnums = find_numbers(src.question)
        for p in distinct_programs(src.paths):
            try:
                lits = code_literals(p.program)
            except ProgramSyntaxError:
                continue
            if unexplained_literals(src.question, lits, qnums):
                report.programs_with_typed_intermediates += 1
                continue
            literals.append(lits)
            programs.append(p)
        if len(programs) < v.min_agreement:
            report.skipped["too-few-code-paths"] = report.skipped.get("too-few-code-paths", 0) + 1
            continue
        report.questions_tried += 1
        for mode in v.modes:
            for index in range(v.per_question):
                report.variants_wanted += 1
                uid = _unit_id(src, programs, mode, index, settings)
                if uid in done:
                    report.already_done += 1
                    continue
                if uid in stored and recover is not None:
                    report.already_done += 1
                    report.copied_from_store += 1
                    recover.append(uid)
                    continue
                yield _Unit(uid, src, programs, literals, mode, index)


def run(settings: Settings, store: GraphStore | None, inputs: VariantsInputs) -> VariantsReport:
    """Make number-shifted variants of every question in `inputs.paths` (see module docstring)."""
    from graphgen.sandbox import Sandbox, SandboxLimits

    v = settings.variants
    start = time.monotonic()
    out_path, rejects_path = Path(inputs.output), inputs.rejects_path()
    report = VariantsReport(output=str(out_path), rejects=str(rejects_path))
    progress = Progress(None, "variants", quiet=inputs.quiet)

    # the store first, the output file after (one run per output file: the writer locks it)
    with GeneratedRowWriter(out_path, store) as writer, \
            Sandbox(workers=v.workers, limits=SandboxLimits(timeout_s=v.timeout_s, output_bytes=PROGRAM_OUTPUT_CHARS), isolation=v.isolation) as box, \
            open_for_append(rejects_path) as rejects_fh:
        report.copied_to_store = writer.copied_to_store
        report.isolation, report.sandbox_limits = box.isolation, box.describe()
        mode = settings.judge.answers
        done = _ids_in(out_path) | _rejects_done(rejects_path, mode)
        verdicts = {x.question_id: x for x in store.verdicts()} if store is not None else {}
        checks = {c.row_id: c for c in store.checks()} if store is not None and settings.check.skip_failed else {}
        # with the judge on, code paths solve's answer judge kept vote too (not rule-agreed)
        sources = read_sources(inputs.paths, inputs.questions or _verdicts_beside(inputs.paths), verdicts,
                               policy="rule" if mode == "off" else "any")
        units = _units(sources, settings, done, report, inputs.limit, writer.in_store, writer.recover, checks)
        judge = Judge(settings, quiet=inputs.quiet) if mode != "off" else None
        if judge is not None:
            report.judge = VariantsJudgeSummary(mode=mode)
        engine = _Engine(settings, box, report, rejects_fh, judge, journal=inputs.judgements_path(),
                         state_dir=engine_state_dir(out_path) / "judge")

        def kept_rows() -> Iterator[GeneratedQuestion]:
            for chunk in chunked(units, CHUNK * max(1, len(v.modes) * v.per_question)):
                before = sum(report.rejected.values())
                n_kept = 0
                for row in engine.process(chunk):
                    n_kept += 1
                    yield row
                for _ in range(n_kept):
                    progress.update(ok=True)
                for _ in range(sum(report.rejected.values()) - before):
                    progress.update(ok=False)

        try:
            if v.rewrite:
                _rewrite(settings, kept_rows(), writer.add, report, quiet=inputs.quiet)
            else:
                for row in kept_rows():
                    writer.add(row)
        finally:
            progress.close()
            if judge is not None:
                report.add_judge(judge.tally, judge.from_journal)
                report.judge.calls, report.judge.from_journal = judge.tally.done, judge.from_journal  # type: ignore[union-attr]
    report.elapsed_s = time.monotonic() - start
    kept = sum(report.kept.values())
    report.variants_per_s = kept / report.elapsed_s if report.elapsed_s > 0 else 0.0
    return report


# --- optional rewrite ---------------------------------------------------------------------------


def same_numbers(a: str, b: str) -> bool:
    """The same numbers, as (kind, value), in the same order."""
    return [(n.kind, n.value) for n in find_numbers(a)] == [(n.kind, n.value) for n in find_numbers(b)]


def _rewrite(settings: Settings, rows: Iterator[GeneratedQuestion], write, report: VariantsReport,
             *, quiet: bool) -> None:
    """One LLM call per kept row; the rewrite replaces the question only if its numbers are unchanged."""
    from graphgen.llm import LLMClient
    from graphgen.prompts import load_prompt
    from graphgen.runner import LLMJob, run_jobs

    prompt = load_prompt(REWRITE_PROMPT)

    def jobs() -> Iterator[LLMJob]:
        for row in rows:
            yield LLMJob(key=row.id, messages=prompt.messages(question=row.question), output=VariantRewrite,
                         payload=row)

    def sink(job: LLMJob, result) -> None:
        row: GeneratedQuestion = job.payload
        new = result.value.question.strip() if result.value is not None else None
        if new is None:
            why = "llm-failed"
        elif not same_numbers(new, row.question):
            why = "numbers-changed"
        else:
            why = ""
            row.question = new
            row.variant.rewritten = True  # type: ignore[union-attr]
            row.model, row.prompt_version, row.usage = result.usage.model, prompt.version, result.usage
        if why:
            report.rewrite_kept_original[why] = report.rewrite_kept_original.get(why, 0) + 1
        write(row)

    totals = run_jobs(LLMClient(settings.llm), jobs(), sink, label="rewrite", quiet=quiet)
    t = report.llm
    t.ok, t.failed, t.cached = t.ok + totals.ok, t.failed + totals.failed, t.cached + totals.cached
    t.prompt_tokens += totals.prompt_tokens
    t.completion_tokens += totals.completion_tokens
    t.saved_tokens += totals.saved_tokens
    t.cost_usd += totals.cost_usd
    t.cost_known = t.cost_known and totals.cost_known
