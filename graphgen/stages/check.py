"""Stage `check` (issue 20): is each generated question well-posed, with one answer, and of
which answer type and problem type? Stored as row status beside solve's verdicts and filter's
decisions; export leaves out the rows that failed, the report counts them.

    report = run(settings, store, CheckInputs(files=[Path("generated.jsonl")], out_dir=Path("checked")))

1. Rows: generated outputs (`graphgen generate` files, merged by id) or, with none, every
   generated row in the store. Failed generations are skipped (export leaves them out anyway).
2. Rule pre-checks, where a rule is reliable: an empty question, or one cut off (it ends on a
   dangling word or operator, or its LaTeX braces do not close), fails without asking anyone;
   the answer type is read from the row's own answer where its form is unambiguous (integer,
   decimal, fraction, a mixed-bracket interval, a LaTeX set, an option letter beside options).
3. The judge (graphgen.judge, task `question_check`, `[judge] questions`; `off`: the rules
   alone) reads each remaining question with its answer and says: well-posed and solvable
   (yes/no), single answer (yes/no), answer type, problem type (NeMo-Skills' classes:
   regular / proof / multiple_choice / yes_no / invalid), and why. Each judgement is a unit
   keyed by its inputs (question, answer, prompt version, judge model): appended to
   `<out>/judgements.jsonl` as it arrives, so a killed run resumes without paying twice even
   with the response cache off. The calls run on the `[engine]` like every LLM stage's: this
   process, a Ray cluster (`--ray`) or the provider's Batch API (`--batch`, half the price;
   a rerun resumes polling the batches it submitted, state in `<out>/judge.runs/`).
4. The decision, recomputed from the rules and the journal on every run (cheap, so a change of
   `[check] fail_problem_types` needs no new call): `failed` when the rule found the question
   empty or truncated, or the judge says it is ill-posed, is of a failing problem type
   (default proof, invalid), or has more than one answer; `unknown` when the judge gave no
   valid reply (never counted as passed; the next run asks again); else `passed`. The answer
   type is the rule's where it is sure, else the judge's; both are kept.
Outputs: `<out>/checks.jsonl` (one `QuestionCheck` per row, rewritten atomically) and the
store's question checks (SQLite table / Neo4j :QuestionCheck linked to the row).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel, Field

from graphgen.config import Settings
from graphgen.jsonl import write_jsonl
from graphgen.judge import PROMPTS as JUDGE_PROMPTS, Judge, JudgeAsk, Judgement, per_thousand
from graphgen.records import AnswerType, GeneratedQuestion, QuestionCheck
from graphgen.rows import lock_output, rows_to_read, stable_id
from graphgen.stage import StageReport
from graphgen.store.base import GraphStore

__all__ = ["CheckInputs", "CheckReport", "run", "rule_answer_type", "rule_problem", "decide"]


class CheckInputs(BaseModel):
    files: list[Path] = Field(default_factory=list, description="generated-row files; empty: the store's generated rows")
    out_dir: Path = Path("checked")
    limit: int | None = Field(None, description="check at most this many rows")
    dry_run: bool = False
    quiet: bool = False


class CheckReport(StageReport):
    stage: str = "check"
    rows: int = 0
    mode: str = "always"
    by_status: dict[str, int] = Field(default_factory=dict, description="passed / failed / unknown -> rows")
    by_reason: dict[str, int] = Field(default_factory=dict, description="failed rows by their first reason")
    answer_types: dict[str, int] = Field(default_factory=dict)
    problem_types: dict[str, int] = Field(default_factory=dict)
    rule_failed: int = Field(0, description="rows the rule pre-checks failed (no judge asked)")
    rule_typed: int = Field(0, description="rows whose answer type the rule read from the answer")
    asked: int = Field(0, description="rows the judge was asked about (this run or journalled before)")
    already_judged: int = Field(0, description="judgements read from the journal (paid for by an earlier run)")
    judge_calls: int = Field(0, description="judgements asked this run (paid or served from the response cache)")
    estimate: dict | None = None
    outputs: dict[str, str] = Field(default_factory=dict)

    def lines(self) -> list[str]:
        out = super().lines()
        if self.estimate is not None:
            return out
        status = ", ".join(f"{n} {k}" for k, n in sorted(self.by_status.items()))
        out.append(f"{self.rows} rows checked: {status or 'none'}; judge ({self.mode}) asked about {self.asked} "
                   f"({self.judge_calls} this run, {self.already_judged} from the journal, "
                   f"{per_thousand(self.judge_calls + self.already_judged, self.rows):.0f} per 1,000 rows); "
                   f"{self.rule_failed} failed by rule")
        if self.by_reason:
            out.append("failed: " + ", ".join(f"{k} {n}" for k, n in sorted(self.by_reason.items(), key=lambda kv: -kv[1])))
        if self.answer_types:
            out.append("answer types: " + ", ".join(f"{k} {n}" for k, n in sorted(self.answer_types.items(), key=lambda kv: -kv[1]))
                       + f" ({self.rule_typed} read from the answer by rule)")
        if self.problem_types:
            out.append("problem types: " + ", ".join(f"{k} {n}" for k, n in sorted(self.problem_types.items(), key=lambda kv: -kv[1])))
        out += [f"{name}: {path}" for name, path in self.outputs.items()]
        return out


# --- rule pre-checks (only where a rule is reliable) ----------------------------------------------

# a question that ends on one of these was cut off (no well-formed question ends on "of" or "+");
# single letters are left out ("find the value of a" ends on a variable), and so are words a
# question may end on ("find how many there are", "... he talked to")
_DANGLING = re.compile(r"(?:\b(?:and|or|the|an|of|than|plus|minus)"
                       r"|[=+*/×÷,:(\[{^_\\-])\s*$", re.IGNORECASE)
_WORD = re.compile(r"[^\W_]+")


def rule_problem(question: str) -> tuple[str, str] | None:
    """(reason code, finding) when the question is empty or visibly cut off, else None."""
    text = question.strip()
    if len(_WORD.findall(text)) < 3:
        return "empty_question", f"the question is empty or too short to be a problem ({len(text)} characters)"
    if text.endswith(("...", "…")):
        return "truncated", "the question ends in an ellipsis"
    if _DANGLING.search(text):
        return "truncated", f"the question ends mid-sentence ({text[-30:]!r})"
    # group braces only: \{ and \} are delimiters (a piecewise function opens \left\{ and closes \right.)
    groups = re.sub(r"\\[{}]", "", text)
    if groups.count("{") > groups.count("}"):
        return "truncated", "the question's LaTeX braces do not close"
    return None


_NUM = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)"
_RULE_TYPES: list[tuple[AnswerType, re.Pattern]] = [
    ("integer", re.compile(rf"{_NUM}")),
    ("decimal", re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d*)\.\d+")),
    ("fraction", re.compile(r"[-+]?\d+\s*/\s*\d+|[-+]?\\[dt]?frac\s*\{\s*\d+\s*\}\s*\{\s*\d+\s*\}")),
    # mixed brackets, or an infinite end: "(2, 3)" alone may be a point, "[1, 3]" a list
    ("interval", re.compile(r"\(\s*[^,()\[\]]+,\s*[^,()\[\]]+\]|\[\s*[^,()\[\]]+,\s*[^,()\[\]]+\)"
                            r"|[(\[]\s*-?(?:\\infty|∞)\s*,[^,]+[)\]]|[(\[][^,]+,\s*\+?(?:\\infty|∞)\s*[)\]]")),
    ("set", re.compile(r"\\\{.*\\\}")),
]
_OPTIONS = re.compile(r"(?:^|\s)\(?[A-E]\)|Choices:", re.MULTILINE)


def _bare(answer: str) -> str:
    a = answer.strip().rstrip(".").strip()
    box = re.fullmatch(r"\\boxed\{(.*)\}", a)
    a = box.group(1) if box else a
    a = a.strip().strip("$").strip()
    return re.sub(r"^(?:\\\$|\$)\s*", "", a)  # a currency sign: "$1,000" is the integer 1000


def rule_answer_type(answer: str, question: str = "") -> AnswerType | None:
    """The answer's type when its form says it unambiguously, else None (the judge decides)."""
    a = _bare(answer)
    if not a:
        return None
    for kind, pattern in _RULE_TYPES:
        if pattern.fullmatch(a):
            return kind
    if re.fullmatch(r"\(?[A-E]\)?", a) and _OPTIONS.search(question):
        return "multiple_choice"
    return None


# --- the decision ---------------------------------------------------------------------------------


def decide(row: GeneratedQuestion, judgement: Judgement | None, *, key: str, fail_problem_types: list[str]) -> QuestionCheck:
    """One row's check from the rules and (when asked) the judge's reply."""
    check = QuestionCheck(row_id=row.id, row_kind=row.kind, key=key, status="passed",
                          rule_answer_type=rule_answer_type(row.answer, row.question))
    check.answer_type = check.rule_answer_type
    found = rule_problem(row.question)
    if found is not None:
        code, check.rule = found
        check.status, check.reasons, check.reason = "failed", [code], check.rule
        return check
    if judgement is None:  # judge off: the rules alone
        check.reason = "passed the rule pre-checks (judge off)"
        return check
    check.model, check.prompt_version = judgement.model, judgement.prompt_version
    reply = judgement.check
    if reply is None:
        check.status, check.reason = "unknown", f"the judge gave no valid reply ({judgement.error or 'failed'})"
        return check
    check.judge = reply
    check.well_posed, check.single_answer = reply.well_posed == "yes", reply.single_answer == "yes"
    check.problem_type = reply.problem_type
    if reply.problem_type == "multiple_choice" and not _OPTIONS.search(row.question):
        # a rule where one is reliable: no options, no multiple choice (a 0.5B judge called every
        # plain word problem multiple choice); the judge's own reply stays in `check.judge`
        check.problem_type = "regular"
    check.answer_type = check.rule_answer_type or reply.answer_type
    if check.answer_type == "multiple_choice" and not _OPTIONS.search(row.question):
        check.answer_type = None  # unknown: the rule could not read it and the judge misread it
    reasons = []
    if not check.well_posed:
        reasons.append("ill_posed")
    if check.problem_type in fail_problem_types:
        reasons.append(check.problem_type)
    elif reply.answer_type == "proof" and "proof" in fail_problem_types:
        reasons.append("proof")
    if not check.single_answer:
        reasons.append("multiple_answers")
    check.reasons = reasons
    check.status = "failed" if reasons else "passed"
    check.reason = reply.reason.strip()
    return check


def _rows(inputs: CheckInputs, store: GraphStore | None) -> Iterator[GeneratedQuestion]:
    rows = rows_to_read(inputs.files, store, "check")
    n = 0
    for row in rows:
        if row.status != "ok" or row.kind == "path":
            continue
        if inputs.limit is not None and n >= inputs.limit:
            return
        n += 1
        yield row


def run(settings: Settings, store: GraphStore | None, inputs: CheckInputs) -> CheckReport:
    """One run per output directory: it holds the lock on its journal for the whole run."""
    if inputs.dry_run:
        return _run(settings, store, inputs)
    with lock_output(Path(inputs.out_dir) / "judgements.jsonl"):
        return _run(settings, store, inputs)


def _run(settings: Settings, store: GraphStore | None, inputs: CheckInputs) -> CheckReport:
    t0 = time.monotonic()
    mode = settings.judge.questions
    report = CheckReport(mode=mode)
    out = Path(inputs.out_dir)
    journal_path = out / "judgements.jsonl"
    rows = list(_rows(inputs, store))
    report.rows = len(rows)
    judge = Judge(settings, quiet=inputs.quiet) if mode != "off" else None
    asks: dict[str, JudgeAsk] = {}  # row id -> ask, for rows the rules let through
    if judge is not None:
        for row in rows:
            if rule_problem(row.question) is None:
                asks[row.id] = JudgeAsk(task="question_check", first=row.question.strip(), second=row.answer.strip())
    todo = judge.pending(asks.values(), journal_path) if judge is not None else []
    if inputs.dry_run:
        report.estimate = {"rows": len(rows), "mode": mode, "rule_failed": sum(1 for r in rows if rule_problem(r.question)),
                           "already_judged": len({judge.key(a) for a in asks.values()}) - len(todo) if judge else 0}
        if judge is not None:
            report.estimate["judge"] = {"model": judge.model, "prompt_version": JUDGE_PROMPTS["question_check"],
                                        **judge.estimate(todo)}
        report.elapsed_s = time.monotonic() - t0
        return report

    out.mkdir(parents=True, exist_ok=True)
    got: dict[str, Judgement] = {}
    if judge is not None:
        # journalled as they arrive (a failed reply is asked again next run), on the run's
        # [engine]: this process, a Ray cluster (--ray) or the Batch API (--batch)
        got = judge.run(asks.values(), label="check", journal=journal_path, state_dir=out / "judge.runs")
        report.judge_calls = len(todo)
        report.already_judged = judge.from_journal
        report.add_judge(judge.tally, report.already_judged)  # check's every call is the judge's
    fail_types = list(settings.check.fail_problem_types)
    checks: list[QuestionCheck] = []
    for row in rows:
        ask = asks.get(row.id)
        if judge is not None and ask is not None:
            key = judge.key(ask)
            j = got.get(key) or Judgement(key=key, task="question_check", model=judge.model,
                                          prompt_version=JUDGE_PROMPTS["question_check"], error="not asked")
        else:
            key, j = stable_id("chk", row.question, row.answer), None
        checks.append(decide(row, j, key=key, fail_problem_types=fail_types))
    report.asked = len(asks)
    report.by_status = dict(Counter(c.status for c in checks))
    report.by_reason = dict(Counter(c.reasons[0] for c in checks if c.status == "failed" and c.reasons))
    report.answer_types = dict(Counter(c.answer_type or "unknown" for c in checks))
    report.problem_types = dict(Counter(c.problem_type for c in checks if c.problem_type))
    report.rule_failed = sum(1 for c in checks if c.rule)
    report.rule_typed = sum(1 for c in checks if c.rule_answer_type)
    write_jsonl(checks, out / "checks.jsonl")
    if store is not None:
        store.add_checks(checks)
    if report.by_status.get("unknown"):
        report.warnings.append(f"{report.by_status['unknown']} rows got no valid reply from the judge; they count as "
                               "not checked (left out by export): run the same command again to ask again")
    report.outputs = {"checks": str(out / "checks.jsonl"), "journal": str(journal_path)}
    report.elapsed_s = time.monotonic() - t0
    return report
