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
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from graphgen.config import Settings
from graphgen.records import QuestionCheckReply
from graphgen.prompts import load_prompt
from graphgen.stage import LLMTally

__all__ = ["JudgeTask", "JudgeMode", "JudgeReply", "JudgeAsk", "Judgement", "Judge", "PROMPTS", "per_thousand"]

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

    def key(self, ask: JudgeAsk) -> str:
        return ask.key_for(self.model)

    def _llm(self):
        # the run's endpoint, cache and limits; the judge's own model, a short budget, and
        # temperature 0 (a judgement should not change between two asks)
        return self.settings.llm.model_copy(update={
            "model": self.model, "temperature": 0.0, "max_tokens": self.settings.judge.max_tokens})

    def run(self, asks: Iterable[JudgeAsk], *, label: str = "judge",
            on_judgement: Callable[[Judgement], None] | None = None) -> dict[str, Judgement]:
        """Judgements of `asks` by key (each distinct key asked once; earlier ones reused).
        `on_judgement` sees each new one as it arrives (a stage journals it, so a killed run
        keeps what it paid for even without the response cache)."""
        from graphgen.llm import LLMClient
        from graphgen.runner import LLMJob, run_jobs

        wanted: dict[str, JudgeAsk] = {}
        for ask in asks:
            wanted.setdefault(self.key(ask), ask)
        todo = [(k, a) for k, a in wanted.items() if k not in self._done]
        if todo:
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
                if on_judgement is not None:
                    on_judgement(j)

            jobs = (LLMJob(key=k, messages=a.messages(), output=a.output(), payload=a) for k, a in todo)
            tally = run_jobs(LLMClient(self._llm()), jobs, sink, total=len(todo), label=label, quiet=self.quiet)
            self.tally.add(tally)
        return {k: self._done[k] for k in wanted if k in self._done}

    def estimate(self, asks: Sequence[JudgeAsk]) -> dict:
        """What judging `asks` would cost (a dry run: no call)."""
        from graphgen.estimate import estimate_calls

        distinct = {self.key(a): a for a in asks}
        est = estimate_calls((a.messages() for a in distinct.values()), self.model,
                             self.settings.llm.price_for(self.model),
                             60 if any(a.task == "question_check" for a in distinct.values()) else 30)
        est.pop("first_prompt", None)
        return est


def per_thousand(calls: int, rows: int) -> float:
    """Judge calls per 1,000 rows (what BENCHMARKS.md reports per gate and policy)."""
    return 1000.0 * calls / rows if rows else 0.0
