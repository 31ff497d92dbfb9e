"""The stage contract: one shape for every pipeline stage.

Every stage (extract, sample, pairs, generate, solve, variants, filter, canonicalize,
report, ...) is a module (or package) of the library with one entry point:

    def run(settings: Settings, store: GraphStore | None, inputs: <Stage>Inputs) -> <Stage>Report

- `settings` carries every option. A stage's options are one pydantic section of `Settings`
  (`settings.solve`, `settings.filter`, ...), so one `graphgen.toml` describes a whole run;
  environment and CLI flags override it (see `graphgen.config.load_settings`).
- `store` is the workspace's graph store (SQLite or Neo4j), or None for stages that work on
  files alone. Stores only store: a stage computes, then asks the store to persist.
- `inputs` is a pydantic model naming what this run reads and writes (paths, ids, limits of
  this invocation). Records flow as typed pydantic models; files are read and written
  through `graphgen.jsonl` at the edges.
- The return value is a `StageReport` subclass: counts, the one LLM tally (`llm`), wall time,
  and whatever the stage wants to say. `report.lines()` is what the CLI prints; the report
  is also written as JSON when the user asks (`--report FILE` / `--json`).

Stages never import click, never print (progress goes through `graphgen.progress`), and
never call `openai` directly (LLM work goes through `graphgen.llm` and `graphgen.runner`).
The CLI maps flags to settings, builds `inputs`, calls `run`, and prints `report.lines()`.
"""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LLMTally(BaseModel):
    """The one tally of LLM work: requests ok / failed / served from cache, tokens, cost.

    Every token paid is counted, success or not; cached replies count their tokens as saved.
    """

    model_config = ConfigDict(validate_assignment=False)

    ok: int = 0
    failed: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    saved_tokens: int = 0
    cost_usd: float = 0.0
    cost_known: bool = True

    @property
    def done(self) -> int:
        return self.ok + self.failed

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def cost_text(self) -> str:
        return f"${self.cost_usd:.4f}" if self.cost_known else "cost unknown"

    def record(self, usage: Any, ok: bool) -> None:
        """Count one finished job (`usage`: its `graphgen.records.LLMUsage`, summed over all
        of its attempts). The one place LLM work is counted."""
        if ok:
            self.ok += 1
        else:
            self.failed += 1
        if usage.cached:
            self.cached += 1
            self.saved_tokens += usage.prompt_tokens + usage.completion_tokens
        else:
            self.prompt_tokens += usage.prompt_tokens
            self.completion_tokens += usage.completion_tokens
            self.cost_usd += usage.cost_usd

    def minus(self, earlier: LLMTally) -> LLMTally:
        """The work counted since `earlier` (a copy of this tally taken then)."""
        out = self.model_copy()
        for name in ("ok", "failed", "cached", "prompt_tokens", "completion_tokens", "saved_tokens"):
            setattr(out, name, getattr(self, name) - getattr(earlier, name))
        out.cost_usd = self.cost_usd - earlier.cost_usd
        return out

    def add(self, other: LLMTally) -> LLMTally:
        """Fold another tally into this one (e.g. per-block tallies of a distributed run)."""
        for name in ("ok", "failed", "cached", "prompt_tokens", "completion_tokens", "saved_tokens"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.cost_usd += other.cost_usd
        self.cost_known = self.cost_known and other.cost_known
        return self

    def line(self) -> str:
        return (f"{self.done} LLM calls: {self.ok} ok, {self.failed} failed, {self.cached} cached; "
                f"tokens {self.prompt_tokens:,} in / {self.completion_tokens:,} out, "
                f"{self.saved_tokens:,} saved by cache; {self.cost_text()}")


def new_run_id() -> str:
    """When and which process: recorded on the failure rows a run appends, so the runs that
    share one failures file stay apart."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + f"-{os.getpid()}"


class StageError(Exception):
    """A problem the user can fix (no graph yet, no seeds, bad input): the message is one
    line saying what is wrong and what to do; the CLI prints it without a traceback."""


class StageReport(BaseModel):
    """Base of every stage's report. Subclasses add their own counts as fields."""

    stage: str
    llm: LLMTally = Field(default_factory=LLMTally)
    judge_llm: LLMTally | None = Field(None, description="the model judge's share of `llm` (counted in `llm` too); "
                                       "None when the stage asked no judge")
    judge_journalled: int = Field(0, description="judgements read from a journal: paid by an earlier run, not this one")
    elapsed_s: float = 0.0
    notes: list[str] = Field(default_factory=list, description="one-line remarks for the user")
    warnings: list[str] = Field(default_factory=list, description="one-line warnings (the CLI prints them to stderr)")

    def add_judge(self, tally: LLMTally, journalled: int = 0) -> None:
        """Count a model judge's work (graphgen.judge): in `llm`, the stage's whole tally, and
        apart in `judge_llm`, so the report can say what the judge cost without counting it twice."""
        self.llm.add(tally)
        self.judge_llm = (self.judge_llm or LLMTally()).add(tally)
        self.judge_journalled += journalled

    def lines(self) -> list[str]:
        """What the CLI prints; subclasses extend it with their own counts."""
        out = [f"{self.stage}: {self.elapsed_s:.1f}s"]
        if self.llm.done or self.llm.cached:
            out.append(self.llm.line())
        out.extend(self.notes)
        return out

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
