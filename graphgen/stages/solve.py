"""Stage `solve` (MMOS): several reasoning paths per question, each checked, duplicates
removed, the most diverse few kept (the "minimal optimal set").

    report = run(settings, store, SolveInputs(files=["gsm8k_train.jsonl"], out_dir=Path("solved")))

1. Questions come from seed files (JSONL/JSON/CSV/Parquet/HF, fields detected as `extract`
   detects them), generated or fused rows (`graphgen generate` output), or the store's seeds.
   Gold answers: an `answer` field, GSM8K's `#### N`, or the last `\\boxed{}` of a MATH
   solution (`settings.solve.answer_field` overrides); generated rows have none, but their
   own answer counts as one vote. Multiple choice: the options are in the question text
   (`Choices:` lines with letters, as the seed reader writes them); a path matches when it
   names the gold's letter or its option's value; a letter gold without options is
   unverifiable.
2. Sampling: `paths` paths per question and style (`cot`: prose ending in \\boxed{};
   `code`: a Python program that prints the answer) at `temperature`. Each path is one unit
   of LLM work whose id (and cache key, through the prompt's attempt number) includes the
   path index; finished paths are in `<out>/samples.jsonl` and never paid for twice.
3. Programs run in graphgen.sandbox (never in this process); results go to `<out>/runs.jsonl`
   as they finish, so a resumed run does not re-run them either.
4. Verdicts (graphgen.answers: math-verify equivalence): with gold, a path is correct iff
   its answer is equivalent to the gold; without, majority vote (the row's own answer is one
   vote) and the majority must reach `min_agreement`.
5. Minimal optimal set: correct paths are deduplicated (code: AST-normalised, names renamed
   in order of appearance and reprinted; prose: whitespace and number formats normalised),
   then up to `keep` are chosen greedily, each maximising its summed edit distance
   (rapidfuzz Levenshtein) to the ones already kept. `difficulty_aware` samples more paths
   (up to `max_paths`) for questions that have fewer than `keep` distinct correct paths.
6. Answer judge (`[judge] answers`, graphgen.judge): `fallback` asks a model about each path
   whose answer the rule rejected or could not parse (question, gold or the row's own answer,
   the path's answer); `always` about every answered path. Its verdict (`SolveVerdict.judge`,
   with its own kept set) sits beside the rule's; graphgen.status picks by policy. Judgements
   are journalled in `<out>/judgements.jsonl` and run on the `[engine]` (`--ray`, `--batch`).
7. Questions whose stored question check failed (`graphgen check`; graphgen.status.failed_check)
   are not solved: counted as "skipped: failed check" (`[check] skip_failed = false`,
   `--include-failed-check`, solves them). A check with no reply from the judge is no failure.
Outputs in `out_dir`: paths.jsonl (paths kept by the rule or the judge), verdicts.jsonl (one row per question),
failures.jsonl (LLM failures, unparsable answers, failed programs, with reasons and raw
text), plus samples.jsonl / runs.jsonl (the resumable record of paid and executed work).
Verdicts are written to the store (SQLite table / Neo4j :Verdict nodes linked to the seed or
generated node), and so is the run's model's pass rate per question (`PassRate`: paths whose
answer matches the gold, else the row's own answer, over paths sampled): keyed by question and
model, so a reference model's difficulty estimate never replaces another's. `reference`
(`solve --reference --model REF`) records only the pass rates and leaves the verdicts as
they are: a reference model measures difficulty, it does not decide verification.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from graphgen.answers import (
    MAX_ANSWER_CHARS,
    PROGRAM_OUTPUT_CHARS,
    AnswerChecker,
    final_answer,
    last_boxed,
    option_letter,
    options_of,
    program_answer,
    shorten,
)
from graphgen.config import Settings
from graphgen.jsonl import open_for_append, read_jsonl, write_jsonl
from graphgen.paths import normalize_code, normalize_prose, select_diverse
from graphgen.progress import Progress
from graphgen.prompts import load_prompt
from graphgen.records import (
    CotSolution,
    GeneratedQuestion,
    ProgramRun,
    ProgramSolution,
    SeedQuestion,
    SolvePath,
    SolveQuestion,
    JudgeVerdict,
    PassRate,
    SolveVerdict,
)
from graphgen.judge import PROMPTS as JUDGE_PROMPTS, Judge, JudgeAsk, answer_ask
from graphgen.rows import Shard, lock_output, stable_id
from graphgen.stage import LLMTally, StageReport
from graphgen.status import failed_check, rule_verdict
from graphgen.store.base import GraphStore

__all__ = ["SolveInputs", "SolveReport", "SourceSummary", "run", "read_questions"]

PROMPTS = {"cot": "solve_cot_v2", "code": "solve_code_v2"}  # v2: free text, not JSON (issue 23)
OUTPUTS = {"cot": CotSolution, "code": ProgramSolution}
TYPICAL_COMPLETION_TOKENS = {"cot": 350, "code": 200}
_DIFFICULTY_ROUNDS = 3


class SolveInputs(BaseModel):
    files: list[str] = Field(default_factory=list, description="question files (seeds, generated rows, any JSONL/Parquet/HF)")
    from_store: bool = Field(False, description="solve the store's seeds")
    out_dir: Path = Path("solved")
    shard: str | None = Field(None, description="i/n: this machine's share of the questions")
    limit: int | None = Field(None, description="solve at most this many questions")
    dry_run: bool = False
    skip_invalid: bool = False
    quiet: bool = False
    reference: bool = Field(False, description="record only the model's pass rates (difficulty); leave the "
                            "stored verdicts as they are")


class SourceSummary(BaseModel):
    questions: int = 0
    with_gold: int = 0
    paths: int = 0
    correct: int = 0
    pass_at_1: float | None = Field(None, description="mean share of correct paths (with gold)")
    majority_accuracy: float | None = Field(None, description="share of questions whose majority matches the gold")
    verified: int = Field(0, description="questions verified (graphgen.status), by gold or by vote")
    verified_by_gold: int = 0
    verified_by_vote: int = 0
    unverified: int = 0
    unverifiable: int = 0
    unverifiable_reasons: dict[str, int] = Field(default_factory=dict, description="reason -> questions")
    kept_histogram: dict[int, int] = Field(default_factory=dict, description="kept paths per question -> questions")
    program_failures: dict[str, int] = Field(default_factory=dict, description="sandbox reason -> programs")
    no_answer: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0


class JudgeSummary(BaseModel):
    """What the answer judge did in one solve run (BENCHMARKS.md's calls per 1,000 rows)."""

    mode: str
    questions: int = 0
    paths: int = Field(0, description="answered paths")
    asked: int = Field(0, description="paths whose answer the judge was asked about")
    calls: int = Field(0, description="judge calls (distinct asks): paid or served from cache")
    verified: int = Field(0, description="questions the judge verifies")
    verified_rule_only: int = Field(0, description="verified by the rule, not by the judge")
    verified_judge_only: int = Field(0, description="verified by the judge, not by the rule")


class SolveReport(StageReport):
    stage: str = "solve"
    judge: JudgeSummary | None = None
    questions: int = 0
    other_shards: int = 0
    skipped_failed_check: int = Field(0, description="questions not solved: their stored question check failed "
                                      "(graphgen.status.failed_check; --include-failed-check solves them)")
    paths_sampled: int = 0
    paths_already_done: int = 0
    paths_failed: int = 0
    programs_run: int = 0
    programs_reused: int = 0
    kept: int = 0
    pass_rate_model: str = Field("", description="the model whose pass rates this run stored")
    mean_pass_rate: float | None = Field(None, description="its mean pass rate over questions with a reference answer")
    reference: bool = False
    isolation: str | None = Field(None, description="the sandbox that ran this run's programs (bwrap or process)")
    sandbox_limits: str | None = Field(None, description="the limits that bound each program, as the sandbox states them")
    programs_by_isolation: dict[str, int] = Field(
        default_factory=dict, description="program results this run's verdicts use, by the sandbox that ran them "
                                          "(reused ones included; 'unrecorded' for results stored before it was)")
    sampling_s: float = Field(0.0, description="wall time spent sampling paths (LLM)")
    programs_s: float = Field(0.0, description="wall time spent running programs (sandbox)")
    checking_s: float = Field(0.0, description="wall time spent extracting, comparing and selecting")
    per_source: dict[str, SourceSummary] = Field(default_factory=dict)
    estimate: dict | None = None
    outputs: dict[str, str] = Field(default_factory=dict)

    def lines(self) -> list[str]:
        out = super().lines()
        if self.estimate is not None:
            return out
        out.append(f"time: sampling {self.sampling_s:.1f}s, programs {self.programs_s:.1f}s, "
                   f"checking {self.checking_s:.1f}s")
        if self.skipped_failed_check:
            out.append(f"skipped: failed check: {self.skipped_failed_check} questions `graphgen check` failed are not "
                       "solved (--include-failed-check solves them)")
        out.append(f"{self.questions} questions ({self.other_shards} in other shards); "
                   f"{self.paths_sampled} paths sampled this run, {self.paths_already_done} already done, "
                   f"{self.paths_failed} failed; {self.kept} paths kept")
        if self.programs_run or self.programs_reused:
            ran = f" ({self.isolation})" if self.isolation else ""
            by = ", ".join(f"{k} {n}" for k, n in sorted(self.programs_by_isolation.items()))
            out.append(f"programs: {self.programs_run} run in the sandbox{ran}, {self.programs_reused} results reused"
                       + (f"; results by isolation: {by}" if by else ""))
        if self.sandbox_limits and self.programs_run:
            out.append(f"sandbox limits: {self.sandbox_limits}")
        for src, s in sorted(self.per_source.items()):
            parts = [f"{s.questions} questions", f"{s.paths} paths", f"{s.correct} correct"]
            if s.pass_at_1 is not None:
                parts.append(f"pass@1 {s.pass_at_1:.3f}")
            if s.majority_accuracy is not None:
                parts.append(f"majority-vote accuracy {s.majority_accuracy:.3f}")
            if s.questions - s.with_gold:
                parts.append(f"{s.questions - s.with_gold} without gold (judged by vote)")
            parts.append(f"{s.verified} verified ({s.verified_by_gold} by gold, {s.verified_by_vote} by vote), "
                         f"{s.unverified} unverified, {s.unverifiable} unverifiable")
            parts.extend(f"unverifiable: {n} x {reason}" for reason, n in sorted(s.unverifiable_reasons.items()))
            hist = ", ".join(f"{k}:{v}" for k, v in sorted(s.kept_histogram.items()))
            parts.append(f"kept per question {{{hist}}}")
            if s.program_failures:
                parts.append("program failures " + ", ".join(f"{k} {v}" for k, v in sorted(s.program_failures.items())))
            if s.no_answer:
                parts.append(f"{s.no_answer} without an answer")
            parts.append(f"tokens {s.prompt_tokens:,}+{s.completion_tokens:,}, ${s.cost_usd:.4f}")
            out.append(f"  {src}: " + "; ".join(parts))
        if self.mean_pass_rate is not None:
            out.append(f"pass rate of {self.pass_rate_model}: {self.mean_pass_rate:.3f} mean over questions with a "
                       "reference answer (stored per question and model)"
                       + ("; --reference: verdicts left as they were" if self.reference else ""))
        if self.judge is not None:
            j = self.judge
            out.append(f"answer judge ({j.mode}): asked about {j.asked} of {j.paths} answered paths in {j.calls} calls; "
                       f"{j.verified} questions verified by the judge ({j.verified_judge_only} the rule did not verify, "
                       f"{j.verified_rule_only} the rule verified and the judge did not); export picks with --verified-by")
        for name, path in self.outputs.items():
            out.append(f"{name}: {path}")
        return out


# --- questions -------------------------------------------------------------------------------


def _gold_from(seed: SeedQuestion, answer_field: str | None) -> str | None:
    if seed.answer is None:
        return None
    if answer_field:
        return answer_field
    sol = seed.solution or ""
    if re.search(r"^\s*####", sol, re.MULTILINE):
        return "####"
    if seed.answer == last_boxed(sol):
        return "boxed"  # MATH: the solution's last \\boxed{} (it may also be the answer field)
    return "answer"


def _looks_generated(path: Path) -> bool:
    """A `graphgen generate` output file: JSONL rows with a kind and a prompt version."""
    if not path.name.endswith((".jsonl", ".ndjson")):
        return False
    import json

    with path.open(encoding="utf-8", errors="replace") as fh:  # a peek: bad bytes are reported by the reader
        for line in fh:
            if line.strip():
                try:
                    row = json.loads(line)
                except ValueError:
                    return False
                return isinstance(row, dict) and row.get("kind") in ("concepts", "fusion", "variant") \
                    and "prompt_version" in row
    return False


def read_questions(inputs: SolveInputs, store: GraphStore | None, answer_field: str | None,
                   rejects: list | None = None) -> Iterator[SolveQuestion]:
    """Every question of the inputs, each id once (first wins)."""
    from graphgen.readers import FieldMap, read_seeds

    seen: set[str] = set()

    def once(q: SolveQuestion) -> Iterator[SolveQuestion]:
        if q.id not in seen:
            seen.add(q.id)
            yield q

    def from_seed(s: SeedQuestion, source: str) -> SolveQuestion:
        return SolveQuestion(id=s.id, kind="seed", question=s.question, gold=s.answer,
                             gold_from=_gold_from(s, answer_field), source=source)

    if inputs.from_store:
        if store is None:
            raise ValueError("solve --from-store needs a store")
        for s in store.seeds():
            yield from once(from_seed(s, f"store:{s.source or 'seeds'}"))
    for spec in inputs.files:
        path = Path(spec.split(":", 1)[0]) if not Path(spec).exists() else Path(spec)
        if path.is_file() and _looks_generated(path):
            for row in read_jsonl(path, GeneratedQuestion, own_output=True):
                if row.status == "ok" and row.question and row.kind == "variant":
                    # a number-shifted variant's answer was computed by agreeing programs: it is
                    # the gold, so solving variants measures robustness (MMOS)
                    yield from once(SolveQuestion(id=row.id, kind=row.kind, question=row.question,
                                                  gold=row.answer or None, gold_from="variant", source=path.name))
                elif row.status == "ok" and row.question:
                    yield from once(SolveQuestion(id=row.id, kind=row.kind, question=row.question,
                                                  own_answer=row.answer or None, source=path.name))
            continue
        fmap = FieldMap(answer=answer_field)
        for item in read_seeds(spec, fmap, skip_invalid=inputs.skip_invalid):
            if isinstance(item, SeedQuestion):
                yield from once(from_seed(item, path.name))
            elif rejects is not None:
                rejects.append(item)



# --- units -------------------------------------------------------------------------------


class _Unit(BaseModel):
    id: str
    question: SolveQuestion
    style: Literal["cot", "code"]
    index: int
    messages: list[dict]


class _Solver:
    def __init__(self, settings: Settings):
        self.opts = settings.solve
        self.model = settings.llm.model
        self.temperature = self.opts.temperature
        styles = ["cot", "code"] if self.opts.style == "both" else [self.opts.style]
        self.styles: list[Literal["cot", "code"]] = styles  # type: ignore[assignment]
        self.prompts = {s: load_prompt(PROMPTS[s]) for s in self.styles}

    def unit(self, q: SolveQuestion, style: str, index: int) -> _Unit:
        prompt = self.prompts[style]
        uid = stable_id("p", q.id, style, index, prompt.version, self.model, self.temperature)
        return _Unit(id=uid, question=q, style=style, index=index,
                     messages=prompt.messages(question=q.question, attempt=str(index + 1)))

    def row(self, unit: _Unit, result) -> SolvePath:
        usage = result.usage
        q = unit.question
        base = dict(id=unit.id, question_id=q.id, question_kind=q.kind, source=q.source, style=unit.style,
                    index=unit.index, model=usage.model or self.model, prompt_version=self.prompts[unit.style].version,
                    temperature=self.temperature, usage=usage)
        if result.value is None:
            return SolvePath(status="failed", error=result.error or "no valid reply", raw=result.raw, **base)
        text = result.value.solution if unit.style == "cot" else result.value.program
        return SolvePath(text=text, **base)


def _read_done(path: Path, model: type[BaseModel], key: str) -> dict:
    if not path.exists():
        return {}
    return {getattr(r, key): r for r in read_jsonl(path, model, own_output=True)}


class _RunRecord(BaseModel):
    path_id: str
    run: ProgramRun


def _sample(solver: _Solver, settings: Settings, units: list[_Unit], samples_path: Path,
            failed_path: Path, report: SolveReport, quiet: bool) -> dict[str, SolvePath]:
    """Pay for every unit not yet sampled; returns the new paths by id."""
    from graphgen.engine import run_llm_jobs
    from graphgen.llm import LLMClient
    from graphgen.runner import LLMJob

    new: dict[str, SolvePath] = {}
    if not units:
        return new
    llm = settings.llm.model_copy(update={"temperature": solver.temperature})
    client = LLMClient(llm)
    with open_for_append(samples_path) as out, failed_path.open("a", encoding="utf-8") as failed:

        def sink(job, result) -> None:
            row = solver.row(job.payload, result)
            if row.status == "ok":
                out.write(row.model_dump_json() + "\n")
                out.flush()
                new[row.id] = row
            else:
                failed.write(row.model_dump_json() + "\n")
                failed.flush()
                report.paths_failed += 1

        jobs = (LLMJob(key=u.id, messages=u.messages, output=OUTPUTS[u.style], payload=u)
                for u in units)
        totals = run_llm_jobs(client, jobs, sink, total=len(units), label="solve", quiet=quiet,
                              engine=settings.engine, state_dir=samples_path.with_name("samples.runs"))
    report.llm.add(LLMTally(ok=totals.ok, failed=totals.failed, cached=totals.cached,
                            prompt_tokens=totals.prompt_tokens, completion_tokens=totals.completion_tokens,
                            saved_tokens=totals.saved_tokens, cost_usd=totals.cost_usd,
                            cost_known=totals.cost_known))
    report.paths_sampled += totals.ok
    return new


def _execute(paths: Iterable[SolvePath], runs: dict[str, ProgramRun], runs_path: Path, settings: Settings,
             report: SolveReport, box_holder: dict, quiet: bool) -> None:
    """Run every code path without a recorded run, in the sandbox; append results as they come."""
    from graphgen.sandbox import Sandbox, SandboxLimits

    todo = [p for p in paths if p.style == "code" and p.id not in runs]
    if not todo:
        return
    opts = settings.solve
    if "box" not in box_holder:
        box_holder["box"] = Sandbox(workers=opts.sandbox_workers, isolation=opts.isolation,
                                    limits=SandboxLimits(timeout_s=opts.program_timeout_s,
                                                         memory_mb=opts.program_memory_mb,
                                                         # whole output up to the cap: more is over_limit,
                                                         # so an answer is never read from a cut output
                                                         output_bytes=PROGRAM_OUTPUT_CHARS))
    box = box_holder["box"]
    report.isolation, report.sandbox_limits = box.isolation, box.describe()
    progress = Progress(len(todo), "programs", quiet=quiet)
    try:
        with open_for_append(runs_path) as out, ThreadPoolExecutor(box.size, thread_name_prefix="solve-run") as ex:
            for path, res in zip(todo, ex.map(lambda p: box.run(p.text), todo)):
                run = ProgramRun(reason=res.reason, detail=res.detail, stdout=res.stdout,
                                 elapsed_s=res.elapsed_s, isolation=box.isolation)
                runs[path.id] = run
                out.write(_RunRecord(path_id=path.id, run=run).model_dump_json() + "\n")
                out.flush()
                report.programs_run += 1
                progress.update(ok=res.ok)
    finally:
        progress.close()


def _mc_equivalent(checker: AnswerChecker, options: dict[str, str], gold: str, answer: str) -> bool:
    """Multiple choice: the answer matches when it names the gold's letter or its option's value
    (either way round: a letter gold with a value answer, or a value gold with a letter answer)."""
    gold_letter, answer_letter = option_letter(gold), option_letter(answer)
    gold_value = options.get(gold_letter, gold) if gold_letter else gold
    if gold_letter and answer_letter:
        return gold_letter == answer_letter
    if answer_letter:
        value = options.get(answer_letter)
        return value is not None and checker.equivalent(gold_value, value)
    if checker.equivalent(gold_value, answer):
        return True
    return bool(gold_letter) and checker.equivalent(gold_letter, answer)


def _gold_problem(q: SolveQuestion, checker: AnswerChecker) -> str | None:
    """Why the gold answer cannot be compared with a path's answer (None: it can)."""
    gold = (q.gold or "").strip()
    if not gold:
        return "the gold answer is empty"
    letter = option_letter(gold)
    if letter:
        options = options_of(q.question)
        if not options:
            return f"the gold answer is option letter {letter} but the question shows no options"
        if letter not in options:
            return f"the gold answer is option letter {letter} but the options are {', '.join(sorted(options))}"
        return None
    if not checker.parse(gold) and not re.fullmatch(r"[\w\s.,/+-]+", gold):
        return f"the gold answer {shorten(gold)!r} cannot be parsed as math"
    return None


def _judge(q: SolveQuestion, paths: list[SolvePath], checker: AnswerChecker, keep: int,
           min_agreement: float) -> tuple[SolveVerdict, list[SolvePath]]:
    """Answers, correctness, votes, the rule's status (graphgen.status) and the kept set of one
    question's paths. Every sampled path is a vote, whether or not it produced an answer."""
    problems: list[str] = []
    for p in paths:
        if p.style == "cot":
            p.answer = final_answer(p.text)
        else:
            p.answer = program_answer(p.run.stdout) if p.run and p.run.reason == "ok" else None
        p.correct = None
        if p.answer is not None and len(p.answer) > MAX_ANSWER_CHARS:
            # never compared, never a vote: it is recorded as this path's failure instead
            p.error = (f"answer of {len(p.answer):,} characters is over the {MAX_ANSWER_CHARS:,}-character "
                       f"limit: not checked ({shorten(p.answer)})")
            problems.append(f"path {p.index} ({p.style}): {p.error}")
            p.answer = None
    answered = [p for p in paths if p.answer is not None]
    voters: list[str | None] = ([q.own_answer] if q.own_answer else []) + [p.answer for p in answered]
    groups = checker.groups(voters)
    offset = 1 if q.own_answer else 0
    total_votes = len(paths) + offset  # crashed and answerless paths count against every answer
    best = max(groups, key=len) if groups else []  # ties: first appearance (own answer first)
    majority = voters[best[0]] if best else None
    agreement = len(best) / total_votes if total_votes else 0.0
    votes = {voters[g[0]]: len(g) for g in groups}
    verdict = SolveVerdict(question_id=q.id, question_kind=q.kind, source=q.source, question=q.question,
                           gold=q.gold, gold_from=q.gold_from, own_answer=q.own_answer,
                           method="gold" if q.gold is not None else "vote", paths=len(paths),
                           answered=len(answered), votes=votes, majority=majority,
                           agreement=round(agreement, 6))
    gold_problem = _gold_problem(q, checker) if q.gold is not None else None
    own_in_majority = bool(q.own_answer) and 0 in best
    if q.gold is not None:
        if gold_problem is None:
            options = options_of(q.question)
            if options:  # multiple choice: letter or option value, either matches
                same = lambda a: _mc_equivalent(checker, options, q.gold, a)  # noqa: E731
            else:
                same = lambda a: checker.equivalent(q.gold, a)  # noqa: E731
            for p in answered:
                p.correct = same(p.answer)
            verdict.majority_correct = same(majority) if majority is not None else False
    status, verified_by, reason = rule_verdict(
        gold=q.gold, gold_problem=gold_problem, correct=sum(1 for p in answered if p.correct),
        own_answer=q.own_answer, own_in_majority=own_in_majority, majority=majority,
        majority_votes=len(best), total_votes=total_votes, min_agreement=min_agreement)
    verdict.status, verdict.verified_by, verdict.status_reason = status, verified_by, reason
    ran = sorted({p.run.isolation or "unrecorded" for p in paths if p.run is not None})
    verdict.isolation = "+".join(ran) or None
    for p in paths:  # what this question cost (the report's solve row reads it from the store)
        if p.usage and not p.usage.cached:
            verdict.calls += 1
            verdict.prompt_tokens += p.usage.prompt_tokens
            verdict.completion_tokens += p.usage.completion_tokens
            verdict.cost_usd += p.usage.cost_usd
    verdict.verified = status == "verified"
    if q.gold is None:
        # without gold, a path is correct only when it agrees with the row's own answer and the
        # vote verified that answer: a majority against the row's answer keeps nothing
        members = {i - offset for i in best if i >= offset} if status == "verified" else set()
        for i, p in enumerate(answered):
            p.correct = i in members
    # answers that were never really compared (too long, a check timed out), and why
    pairs = [(q.gold, p.answer) for p in answered] if q.gold is not None else \
        [(a, b) for a in voters for b in voters if a is not None and b is not None]
    problems += sorted({f"{shorten(a)} vs {shorten(b)}: {why}" for a, b in pairs if (why := checker.problem(a, b))})
    verdict.check_problems = problems
    for p in paths:
        if p.answer is None:
            p.correct = False
    correct = [p for p in paths if p.correct]
    verdict.correct = len(correct)
    verdict.pass_rate = round(len(correct) / len(paths), 6) if paths else 0.0
    kept, verdict.duplicates = _minimal_set(correct, keep)
    verdict.kept = [p.id for p in kept]
    return verdict, kept


def _minimal_set(correct: list[SolvePath], keep: int) -> tuple[list[SolvePath], int]:
    """The minimal optimal set of correct paths: dedup by normalised text, then the `keep`
    most diverse; and how many were dropped as duplicates."""
    seen: set[str] = set()
    unique: list[SolvePath] = []
    norms: list[str] = []
    duplicates = 0
    for p in sorted(correct, key=lambda p: (p.style, p.index)):
        n = normalize_code(p.text) if p.style == "code" else normalize_prose(p.text)
        if n in seen:
            duplicates += 1
            continue
        seen.add(n)
        unique.append(p)
        norms.append(n)
    return [unique[i] for i in select_diverse(norms, keep)], duplicates


def _judge_answers(settings: Settings, questions: list[SolveQuestion], verdicts: dict[str, SolveVerdict],
                   paths_of: dict[str, list[SolvePath]], checker: AnswerChecker, quiet: bool, out: Path) -> Judge:
    """The model judge behind math-verify ([judge] answers): each path's final answer against
    the gold (without gold: the row's own answer, which the vote checks), asked where the rule
    says no or cannot parse (`fallback`) or for every answered path (`always`). The judge's
    verdict goes into `SolveVerdict.judge`, beside the rule's; `graphgen.status` picks."""
    mode = settings.judge.answers
    judge = Judge(settings, quiet=quiet)
    asks: dict[str, JudgeAsk] = {}

    def reference(q: SolveQuestion) -> str | None:
        ref = q.gold if q.gold is not None else q.own_answer
        return ref.strip() if ref and ref.strip() else None

    def rule_same(q: SolveQuestion, p: SolvePath) -> bool:
        if q.gold is not None:
            return bool(p.correct)
        return checker.equivalent(reference(q), p.answer)  # type: ignore[arg-type]

    for q in questions:
        ref = reference(q)
        if ref is None:
            continue
        for p in paths_of.get(q.id, []):
            if p.answer is None or (mode == "fallback" and rule_same(q, p)):
                continue
            asks[p.id] = answer_ask(ref, p.answer, q.question)
    got = judge.run(asks.values(), label="judge answers", journal=out / "judgements.jsonl",
                    state_dir=out / "judge.runs") if asks else {}
    for q in questions:
        v, ref = verdicts[q.id], reference(q)
        paths = paths_of.get(q.id, [])
        if ref is None:
            v.judge = JudgeVerdict(status="unverifiable", model=judge.model, prompt_version=JUDGE_PROMPTS["answer_match"],
                                   mode=mode, reason="no gold answer and no answer of its own to compare with")
            continue
        accepted: list[SolvePath] = []
        for p in paths:
            j = got.get(judge.key(asks[p.id])) if p.id in asks else None
            if j is not None:
                p.judge = j.line()
            if p.answer is not None and (j.yes if j is not None else (mode == "fallback" and rule_same(q, p))):
                accepted.append(p)
        asked = sum(1 for p in paths if p.id in asks)
        what = "gold" if q.gold is not None else "row's own answer"
        if q.gold is not None:
            ok = bool(accepted)
            reason = (f"{len(accepted)} path(s) reach the gold {shorten(ref)} by the judge"
                      if ok else f"the judge accepts no path's answer as the gold {shorten(ref)}")
        else:
            votes, total = len(accepted) + 1, len(paths) + 1
            ok = votes / total >= settings.solve.min_agreement
            reason = (f"the judge counts {votes} of {total} votes for the {what} {shorten(ref)}"
                      + ("" if ok else f", below min_agreement {settings.solve.min_agreement}"))
        kept, _ = _minimal_set(accepted, settings.solve.keep) if ok else ([], 0)
        v.judge = JudgeVerdict(status="verified" if ok else "unverified", model=judge.model,
                               prompt_version=JUDGE_PROMPTS["answer_match"], mode=mode, reason=reason,
                               asked=asked, accepted=len(accepted), kept=[p.id for p in kept])
    return judge


def _judge_summary(mode: str, questions: list[SolveQuestion], verdicts: dict[str, SolveVerdict],
                   judge: Judge) -> JudgeSummary:
    from graphgen.status import is_verified

    s = JudgeSummary(mode=mode, questions=len(questions), calls=judge.tally.done)
    for q in questions:
        v = verdicts[q.id]
        s.paths += v.answered
        s.asked += v.judge.asked if v.judge else 0
        rule, by_judge = is_verified(v, "rule"), is_verified(v, "judge")
        s.verified += by_judge
        s.verified_rule_only += rule and not by_judge
        s.verified_judge_only += by_judge and not rule
    return s


def _shortfall(v: SolveVerdict, have: int, keep: int, cap: int) -> int:
    """Difficulty-aware: more paths for a question with fewer than `keep` distinct correct
    ones, in proportion to how rarely it is solved (DART-Math), up to `cap`."""
    distinct = len(v.kept)
    if distinct >= keep or have >= cap:
        return 0
    need = keep - distinct
    rate = v.pass_rate if v.pass_rate > 0 else 1.0 / max(have, 1) / 2
    return min(cap - have, max(1, math.ceil(need / rate)))


# --- the stage -------------------------------------------------------------------------------


def run(settings: Settings, store: GraphStore | None, inputs: SolveInputs) -> SolveReport:
    """One run per output directory: the run holds the lock on its samples.jsonl (as generate
    and variants hold their output's) from before it reads it until it ends, so a second run
    stops with one line (OutputBusyError) instead of paying for every path twice."""
    if inputs.dry_run:
        return _run(settings, store, inputs)
    with lock_output(Path(inputs.out_dir) / "samples.jsonl"):
        return _run(settings, store, inputs)


def _run(settings: Settings, store: GraphStore | None, inputs: SolveInputs) -> SolveReport:
    t0 = time.monotonic()
    opts = settings.solve
    report = SolveReport()
    shard = Shard.parse(inputs.shard)
    solver = _Solver(settings)
    out = Path(inputs.out_dir)
    samples_path, runs_path = out / "samples.jsonl", out / "runs.jsonl"
    failed_llm_path = out / "samples.failed.jsonl"
    questions: list[SolveQuestion] = []
    rejects: list = []
    # the question check's verdict, decided once by `graphgen check` (graphgen.status)
    checks = {c.row_id: c for c in store.checks()} if store is not None and settings.check.skip_failed else {}
    for q in read_questions(inputs, store, opts.answer_field, rejects):
        if checks and failed_check(checks.get(q.id)) is not None:
            report.skipped_failed_check += 1
            continue
        if inputs.limit is not None and len(questions) + report.other_shards >= inputs.limit:
            break
        if shard.owns(q.id):
            questions.append(q)
        else:
            report.other_shards += 1
    report.questions = len(questions)
    done: dict[str, SolvePath] = _read_done(samples_path, SolvePath, "id")
    planned = {q.id: {s: opts.paths for s in solver.styles} for q in questions}

    def pending() -> list[_Unit]:
        units = []
        for q in questions:
            for style, n in planned[q.id].items():
                for i in range(n):
                    u = solver.unit(q, style, i)
                    if u.id not in done:
                        units.append(u)
        return units

    if inputs.dry_run:
        from graphgen.estimate import estimate_calls, run_price

        todo = pending()
        price, pricing = run_price(settings, settings.llm.model)
        est = estimate_calls((u.messages for u in todo), settings.llm.model, price,
                             sum(TYPICAL_COMPLETION_TOKENS[u.style] for u in todo) // max(1, len(todo)), pricing=pricing)
        est["already_done"] = sum(1 for q in questions for s, n in planned[q.id].items()
                                  for i in range(n) if solver.unit(q, s, i).id in done)
        est["questions"] = len(questions)
        if settings.judge.answers != "off":
            # the judge's asks depend on answers not sampled yet: an upper bound, one per path
            paths_total = sum(n for q in questions for n in planned[q.id].values())
            est["judge"] = {"mode": settings.judge.answers, "model": settings.judge.model or settings.llm.model,
                            "calls_at_most": paths_total,
                            "note": "always: one call per answered path; fallback: only paths math-verify rejects "
                                    "or cannot parse (measured: see BENCHMARKS.md)"}
        if opts.difficulty_aware:
            est["note"] = (f"difficulty-aware runs may add up to {opts.max_paths - opts.paths} paths per "
                           "question and style for hard questions (not priced)")
        report.estimate = est
        report.elapsed_s = time.monotonic() - t0
        return report

    out.mkdir(parents=True, exist_ok=True)
    failed_llm_path.write_text("", encoding="utf-8")  # this run's LLM failures (retried next run)
    report.paths_already_done = sum(1 for u in [solver.unit(q, s, i) for q in questions
                                                for s, n in planned[q.id].items() for i in range(n)]
                                    if u.id in done)
    runs: dict[str, ProgramRun] = {r.path_id: r.run for r in _read_done(runs_path, _RunRecord, "path_id").values()}
    checker = AnswerChecker(opts.check_timeout_s, timeouts_path=out / "check_timeouts.jsonl")
    box_holder: dict = {}
    try:
        verdicts: dict[str, SolveVerdict] = {}
        kept: dict[str, list[SolvePath]] = {}
        to_judge = questions
        for round_no in range(1 + (_DIFFICULTY_ROUNDS if opts.difficulty_aware else 0)):
            t = time.monotonic()
            done.update(_sample(solver, settings, pending(), samples_path, failed_llm_path, report, inputs.quiet))
            report.sampling_s += time.monotonic() - t
            by_q: dict[str, list[SolvePath]] = defaultdict(list)
            wanted = {(q.id, s, i) for q in to_judge for s, n in planned[q.id].items() for i in range(n)}
            for p in done.values():
                if (p.question_id, p.style, p.index) in wanted:
                    by_q[p.question_id].append(p)
            t = time.monotonic()
            _execute((p for ps in by_q.values() for p in ps), runs, runs_path, settings, report, box_holder,
                     inputs.quiet)
            report.programs_s += time.monotonic() - t
            t = time.monotonic()
            for ps in by_q.values():
                for p in ps:
                    p.run = runs.get(p.id) if p.style == "code" else None
            more = []
            for q in to_judge:
                v, k = _judge(q, sorted(by_q.get(q.id, []), key=lambda p: (p.style, p.index)), checker,
                              opts.keep, opts.min_agreement)
                verdicts[q.id], kept[q.id] = v, k
                if opts.difficulty_aware and round_no < _DIFFICULTY_ROUNDS:
                    have = sum(planned[q.id].values())
                    extra = _shortfall(v, have, opts.keep, opts.max_paths * len(solver.styles))
                    for style in solver.styles:
                        planned[q.id][style] = min(opts.max_paths,
                                                   planned[q.id][style] + math.ceil(extra / len(solver.styles)))
                    if sum(planned[q.id].values()) > have:
                        more.append(q)
            report.checking_s += time.monotonic() - t
            if not more:
                break
            to_judge = more
    finally:
        if "box" in box_holder:
            box_holder["box"].close()
    report.programs_reused = sum(1 for p in done.values() if p.style == "code" and p.id in runs) - report.programs_run
    report.programs_by_isolation = dict(Counter(runs[p.id].isolation or "unrecorded" for p in done.values()
                                                if p.style == "code" and p.id in runs))

    if settings.judge.answers != "off":
        t = time.monotonic()
        paths_of: dict[str, list[SolvePath]] = defaultdict(list)
        for p in done.values():
            if p.question_id in planned and p.index < planned[p.question_id].get(p.style, 0):
                paths_of[p.question_id].append(p)
        for ps in paths_of.values():
            ps.sort(key=lambda p: (p.style, p.index))
        judge = _judge_answers(settings, questions, verdicts, paths_of, checker, inputs.quiet, out)
        report.add_judge(judge.tally, judge.from_journal)
        report.judge = _judge_summary(settings.judge.answers, questions, verdicts, judge)
        by_id = {p.id: p for ps in paths_of.values() for p in ps}
        for q in questions:  # paths.jsonl holds every path kept by the rule or by the judge
            j = verdicts[q.id].judge
            have = {p.id for p in kept.get(q.id, [])}
            kept[q.id] = kept.get(q.id, []) + [by_id[i] for i in (j.kept if j else []) if i not in have]
        report.checking_s += time.monotonic() - t

    # outputs: atomic rewrites from the record of paid and executed work
    all_kept = [p for q in questions for p in kept.get(q.id, [])]
    write_jsonl(all_kept, out / "paths.jsonl")
    write_jsonl((verdicts[q.id] for q in questions), out / "verdicts.jsonl")
    failures = _failures(questions, done, failed_llm_path, rejects)
    if failures:
        write_jsonl(failures, out / "failures.jsonl")
    else:  # derived from the record above, like paths and verdicts: none now means no file
        (out / "failures.jsonl").unlink(missing_ok=True)
    if not failed_llm_path.stat().st_size:
        failed_llm_path.unlink()  # its content (none this run) is in failures.jsonl
    report.kept = len(all_kept)
    rates = [_pass_rate(q, verdicts[q.id], settings.llm.model) for q in questions]
    if store is not None:
        if not inputs.reference:
            store.add_verdicts(verdicts[q.id] for q in questions)
        store.add_pass_rates(rates)
    scored = [r.pass_rate for r in rates if r.against != "none"]
    report.pass_rate_model, report.reference = settings.llm.model, inputs.reference
    report.mean_pass_rate = round(sum(scored) / len(scored), 6) if scored else None
    _summarise(report, questions, verdicts, done)
    report.outputs = {"paths": str(out / "paths.jsonl"), "verdicts": str(out / "verdicts.jsonl")}
    if failures:
        report.outputs["failures"] = str(out / "failures.jsonl")
    report.elapsed_s = time.monotonic() - t0
    return report


def _pass_rate(q: SolveQuestion, v: SolveVerdict, model: str) -> PassRate:
    """The model's pass rate on one question: paths matching the gold, or without gold the
    row's own answer (its vote group minus its own vote), over the paths sampled. Unlike
    `SolveVerdict.pass_rate` it does not drop to 0 when the vote fails: a reference model that
    finds the row's answer once in 8 paths says the question is hard, not wrong."""
    if q.gold is not None and v.status != "unverifiable":
        against, correct = "gold", v.correct
    elif q.gold is None and q.own_answer:
        against, correct = "own_answer", max(0, v.votes.get(q.own_answer, 1) - 1)
    else:
        against, correct = "none", 0
    return PassRate(question_id=q.id, model=model, question_kind=q.kind, paths=v.paths, correct=correct,
                    pass_rate=round(correct / v.paths, 6) if v.paths else 0.0, against=against)


class SolveFailure(BaseModel):
    """A path (or input row) that produced no usable answer, with why and the raw text."""

    kind: Literal["llm", "no_answer", "program", "input"]
    question_id: str | None = None
    path_id: str | None = None
    style: str | None = None
    reason: str
    raw: str = ""


def _failures(questions: list[SolveQuestion], done: dict[str, SolvePath], failed_llm_path: Path,
              rejects: list) -> list[SolveFailure]:
    out: list[SolveFailure] = []
    for r in rejects:
        out.append(SolveFailure(kind="input", reason=f"{r.file}:{r.line}: {r.reason}", raw=r.raw))
    if failed_llm_path.exists():
        for p in read_jsonl(failed_llm_path, SolvePath, own_output=True):
            out.append(SolveFailure(kind="llm", question_id=p.question_id, path_id=p.id, style=p.style,
                                    reason=p.error or "no valid reply", raw=(p.raw or "")[:4000]))
    ids = {q.id for q in questions}
    for p in done.values():
        if p.question_id not in ids or p.answer is not None:
            continue
        if p.style == "code" and p.run is not None and p.run.reason != "ok":
            out.append(SolveFailure(kind="program", question_id=p.question_id, path_id=p.id, style=p.style,
                                    reason=f"{p.run.reason}: {p.run.detail}", raw=p.text[:4000]))
        elif p.run is not None or p.style == "cot":
            out.append(SolveFailure(kind="no_answer", question_id=p.question_id, path_id=p.id, style=p.style,
                                    reason=p.error or "no final answer found (\\boxed{}, ####, 'the answer is', or printed)",
                                    raw=(p.text if p.style == "cot" else (p.run.stdout if p.run else ""))[:4000]))
    return out


def _summarise(report: SolveReport, questions: list[SolveQuestion], verdicts: dict[str, SolveVerdict],
               done: dict[str, SolvePath]) -> None:
    per: dict[str, SourceSummary] = defaultdict(SourceSummary)
    pass_sum: Counter = Counter()
    majority_right: Counter = Counter()
    src_of = {q.id: q.source or "input" for q in questions}
    for q in questions:
        v, src = verdicts[q.id], src_of[q.id]
        s = per[src]
        s.questions += 1
        s.paths += v.paths
        s.correct += v.correct
        s.kept_histogram[len(v.kept)] = s.kept_histogram.get(len(v.kept), 0) + 1
        if q.gold is not None:
            s.with_gold += 1
            pass_sum[src] += v.pass_rate
            majority_right[src] += bool(v.majority_correct)
        if v.status == "verified":
            s.verified += 1
            if v.verified_by == "gold":
                s.verified_by_gold += 1
            else:
                s.verified_by_vote += 1
        elif v.status == "unverifiable":
            s.unverifiable += 1
            key = v.status_reason[:160]
            s.unverifiable_reasons[key] = s.unverifiable_reasons.get(key, 0) + 1
        else:
            s.unverified += 1
    for p in done.values():
        src = src_of.get(p.question_id)
        if src is None:
            continue
        s = per[src]
        if p.usage and not p.usage.cached:
            s.prompt_tokens += p.usage.prompt_tokens
            s.completion_tokens += p.usage.completion_tokens
            s.cost_usd += p.usage.cost_usd
        if p.style == "code" and p.run is not None and p.run.reason != "ok":
            s.program_failures[p.run.reason] = s.program_failures.get(p.run.reason, 0) + 1
        elif p.answer is None and (p.style == "cot" or p.run is not None):
            s.no_answer += 1
    for src, s in per.items():
        if s.with_gold:
            s.pass_at_1 = round(pass_sum[src] / s.with_gold, 6)
            s.majority_accuracy = round(majority_right[src] / s.with_gold, 6)
    report.per_source = dict(per)


# --- export ------------------------------------------------------------------------------------


