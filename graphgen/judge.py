"""The model judge: one component behind every rule gate (issue 20).

Rules are exact on what they were written for and wrong on what real text brings (math-verify
misses "x = 3" for 3, spelling rules merge "like" with "unlike", 13-grams miss a reworded
benchmark item). The judge asks a model one yes/no question per pair and records its reason:

    judge = Judge(settings)                         # [judge] and [llm]; --judge-model
    asks = [JudgeAsk(task="answer_match", first="1000", second="$1,000", context="...")]
    got = judge.run(asks)                           # {ask.key: Judgement}
    judge.tally                                     # this judge's LLMTally (calls, tokens, cost)
    judge.estimate(asks)                            # a dry run: calls, tokens, cost; no call

Contract:
- *Tasks* are `same_concept` (canonicalize), `answer_match` (solve, variants),
  `same_problem` (filter's decontamination) and `question_check` (check: is one question
  well-posed, with one answer, and of which answer and problem type; `first` is the question,
  `second` its answer); each has one versioned prompt file
  (`graphgen/prompts/judge_*_vN.txt`) and the reply is structured output (`JudgeReply`,
  schema `schema/judge_reply.json`; `QuestionCheckReply` for `question_check`, whose
  verdict is its `well_posed`) through the one LLM client: cache, rate limits,
  retries, re-asks and cost accounting are the client's.
- *A judgement is a unit keyed by its inputs*: `JudgeAsk.key` hashes task, prompt version,
  judge model and the texts. Asks with the same key are asked once per run, and the
  response cache (keyed by the same messages) makes a rerun or a resumed run pay nothing
  for judgements already made.
- *The judge never overwrites a rule*: callers store its `Judgement` beside the rule's
  verdict (`SolveVerdict.judge`, `FilterReason.judge`, the review file's `judge` column),
  and `graphgen.status.is_verified` picks between them by policy.
- A judgement that failed (no valid reply within the client's budget) has `verdict None`
  and its error; callers treat it as "not confirmed", never as yes.
- The judge model defaults to the run's `[llm] model`; `[judge] model` (`--judge-model`,
  `GRAPHGEN_JUDGE_MODEL`) picks another on the same endpoint.
- *Where the calls run*: through `graphgen.engine.run_llm_jobs` with the run's `[engine]`
  (`--ray`, `--batch`), so every gate's judgements can run on a Ray cluster or through the
  provider's Batch API at the batch price; `state_dir` (default: one directory per label next
  to the workspace) is where those engines keep block logs and batch ids, so a rerun resumes.
- *A journal* (`journal=`, a JSONL file of `Judgement`s) keeps every valid judgement as it
  arrives; `run` reads it first and never asks a journalled key again, so a killed run keeps
  what it paid for even with the response cache off (`from_journal` counts those).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from graphgen.config import Settings
from graphgen.records import QuestionCheckReply
from graphgen.prompts import load_prompt
from graphgen.stage import LLMTally

__all__ = ["JudgeTask", "JudgeMode", "JudgeReply", "JudgeAsk", "Judgement", "Judge", "PROMPTS", "per_thousand",
           "answer_ask"]

JudgeTask = Literal["same_concept", "answer_match", "same_problem", "question_check"]
JudgeMode = Literal["off", "fallback", "always"]

# task -> prompt version (the file stem): bump the version when a prompt changes, so cache
# keys and recorded judgements say which wording decided them
PROMPTS: dict[str, str] = {
    "same_concept": "judge_concept_v1",
    "answer_match": "judge_answer_v1",
    "same_problem": "judge_same_problem_v1",
    "question_check": "judge_question_v1",
}


class JudgeReply(BaseModel):
    """What the judge model returns: the reason first (so a model reasons before it decides)."""

    model_config = ConfigDict(extra="forbid")
    reason: str = Field(description="one short sentence")
    verdict: Literal["yes", "no"]


class JudgeAsk(BaseModel):
    """One question to the judge: are `first` and `second` the same (concept / answer / problem)?"""

    task: JudgeTask
    first: str
    second: str
    context: str = Field("", description="answer_match: the problem; same_concept: the kind (topic / knowledge point)")

    def key_for(self, model: str) -> str:
        raw = "\0".join([self.task, PROMPTS[self.task], model, self.context, self.first, self.second])
        return hashlib.sha256(raw.encode()).hexdigest()[:24]

    def messages(self) -> list[dict[str, str]]:
        prompt = load_prompt(PROMPTS[self.task])
        fields = {"first": self.first, "second": self.second}
        if self.task == "answer_match":
            fields["question"] = self.context
        elif self.task == "same_concept":
            fields["kind"] = self.context or "concept"
        elif self.task == "question_check":
            fields = {"question": self.first, "answer": self.second or "(none given)"}
        return prompt.messages(**fields)

    def output(self) -> type[BaseModel]:
        """The reply model: a question check has more to say than yes or no."""
        return QuestionCheckReply if self.task == "question_check" else JudgeReply


class Judgement(BaseModel):
    """The judge's answer to one ask, as stored beside a rule's verdict."""

    key: str
    task: JudgeTask
    verdict: Literal["yes", "no"] | None = Field(None, description="None: the judge gave no valid reply (see error)")
    reason: str = ""
    model: str = ""
    prompt_version: str = ""
    error: str | None = None
    check: QuestionCheckReply | None = Field(None, description="question_check: the whole reply")

    @property
    def yes(self) -> bool:
        return self.verdict == "yes"

    def line(self) -> str:
        """'yes: both name splitting into equal parts' (what review files and reasons show)."""
        if self.verdict is None:
            return f"no reply ({self.error or 'failed'})"
        return f"{self.verdict}: {self.reason}".strip()


class Judge:
    """Asks the judge model, through the one LLM client, and keeps what it said per key."""

    def __init__(self, settings: Settings, *, quiet: bool = True):
        self.settings = settings
        self.model = settings.judge.model or settings.llm.model
        self.quiet = quiet
        self.tally = LLMTally(cost_known=settings.llm.price_for(self.model) is not None)
        self._done: dict[str, Judgement] = {}
        self._journals: set[Path] = set()
        self.from_journal = 0  # distinct keys answered from a journal (paid by an earlier run)
        self._counted: set[str] = set()

    def key(self, ask: JudgeAsk) -> str:
        return ask.key_for(self.model)

    def _llm(self):
        # the run's endpoint, cache and limits; the judge's own model, a short budget, and
        # temperature 0 (a judgement should not change between two asks)
        return self.settings.llm.model_copy(update={
            "model": self.model, "temperature": 0.0, "max_tokens": self.settings.judge.max_tokens})

    def _read_journal(self, journal: Path) -> None:
        """Valid judgements of an earlier run (a torn last line is skipped), once per file."""
        from graphgen.jsonl import read_jsonl

        journal = Path(journal)
        if journal in self._journals:
            return
        self._journals.add(journal)
        if journal.exists() and journal.stat().st_size:
            for j in read_jsonl(journal, Judgement, own_output=True):
                if j.verdict is not None and j.key not in self._done:
                    self._done[j.key] = j

    def pending(self, asks: Iterable[JudgeAsk], journal: Path | None = None) -> list[JudgeAsk]:
        """The distinct asks neither judged in this process nor in `journal`: what `run` would
        pay for (a dry run's estimate)."""
        if journal is not None:
            self._read_journal(journal)
        distinct = {self.key(a): a for a in asks}
        return [a for k, a in distinct.items() if k not in self._done]

    def run(self, asks: Iterable[JudgeAsk], *, label: str = "judge",
            on_judgement: Callable[[Judgement], None] | None = None,
            journal: Path | None = None, state_dir: Path | None = None) -> dict[str, Judgement]:
        """Judgements of `asks` by key (each distinct key asked once; earlier ones reused).
        `on_judgement` sees each new one as it arrives; `journal` (a JSONL file) is read first
        and gets every new valid judgement appended as it arrives, so a killed run keeps what it
        paid for even without the response cache. The calls run on the run's `[engine]`
        (local, Ray or the Batch API); `state_dir` is where Ray / Batch keep their state."""
        from graphgen.engine import run_llm_jobs, state_dir_for
        from graphgen.jsonl import open_for_append
        from graphgen.llm import LLMClient
        from graphgen.runner import LLMJob

        if journal is not None:
            self._read_journal(journal)
        wanted: dict[str, JudgeAsk] = {}
        for ask in asks:
            wanted.setdefault(self.key(ask), ask)
        journalled = [k for k in wanted if k in self._done and k not in self._counted]
        self.from_journal += len(journalled)
        self._counted.update(journalled)
        todo = [(k, a) for k, a in wanted.items() if k not in self._done]
        if todo:
            fh = open_for_append(Path(journal)) if journal is not None else None
            def sink(job, result) -> None:
                ask: JudgeAsk = job.payload
                value = result.value
                if isinstance(value, QuestionCheckReply):
                    verdict = value.well_posed
                else:
                    verdict = value.verdict if value else None
                self._done[job.key] = j = Judgement(
                    key=job.key, task=ask.task, model=self.model, prompt_version=PROMPTS[ask.task],
                    verdict=verdict, reason=(value.reason.strip() if value else ""),
                    error=None if value else (result.error or "no valid reply"),
                    check=value if isinstance(value, QuestionCheckReply) else None)
                self._counted.add(job.key)
                if fh is not None and j.verdict is not None:  # a failed one is asked again next run
                    fh.write(j.model_dump_json() + "\n")
                    fh.flush()
                if on_judgement is not None:
                    on_judgement(j)

            jobs = (LLMJob(key=k, messages=a.messages(), output=a.output(), payload=a) for k, a in todo)
            engine = self.settings.engine
            if engine.kind != "local" and state_dir is None:
                state_dir = state_dir_for(self.settings, "judge", f"{label}\0{journal or ''}")
            try:
                tally = run_llm_jobs(LLMClient(self._llm()), jobs, sink, total=len(todo), label=label,
                                     quiet=self.quiet, engine=engine, state_dir=state_dir)
            finally:
                if fh is not None:
                    fh.close()
            self.tally.add(tally)
        return {k: self._done[k] for k in wanted if k in self._done}

    def estimate(self, asks: Sequence[JudgeAsk]) -> dict:
        """What judging `asks` would cost (a dry run: no call)."""
        from graphgen.estimate import estimate_calls, run_price

        distinct = {self.key(a): a for a in asks}
        price, pricing = run_price(self.settings, self.model)  # the Batch API's price with --batch
        est = estimate_calls((a.messages() for a in distinct.values()), self.model, price,
                             60 if any(a.task == "question_check" for a in distinct.values()) else 30, pricing=pricing)
        est.pop("first_prompt", None)
        return est


def answer_ask(reference: str, answer: str, question: str) -> JudgeAsk:
    """The answer_match ask every answer gate uses (solve: the gold or the row's own answer
    against a path's; variants: one program's printed answer against another's)."""
    return JudgeAsk(task="answer_match", first=reference, second=answer, context=question)


def per_thousand(calls: int, rows: int) -> float:
    """Judge calls per 1,000 rows (what BENCHMARKS.md reports per gate and policy)."""
    return 1000.0 * calls / rows if rows else 0.0
