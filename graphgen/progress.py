"""Live progress for LLM runs: done / failed / cached, rate, ETA, tokens, cost.

On a terminal: a tqdm bar on stderr whose postfix is refreshed at most twice a second (cheap
at thousands of updates per second). Not on a terminal (CI, `2> log`): one plain line every
`interval` seconds and a final line, instead of carriage-return noise. `quiet=True`: nothing.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from graphgen.records import LLMUsage
from graphgen.stage import LLMTally

__all__ = ["Progress", "format_tokens", "format_duration", "say"]


def say(text: str, stream: TextIO | None = None) -> None:
    """A one-line status message from a stage outside any progress bar (e.g. the field map
    extract chose, shown before anything is paid)."""
    print(text, file=stream or sys.stderr, flush=True)


def format_tokens(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1e6:.2f}M"
    if n >= 10_000:
        return f"{n / 1e3:.1f}k"
    return str(n)


def format_duration(s: float) -> str:
    s = int(max(0, s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"


class Progress:
    """Shows an `LLMTally` (the client's, counted there) as it grows: `since` is a copy taken
    when this run began, so a resumed run or a second stage shows only its own work.
    Stages that count for themselves call `update(...)`, which records into the tally.
    `total` is the work this run will do (a resumed run leaves out what is already done),
    so the last line reads N/N (100%) and the ETA is for the work left."""

    def __init__(self, total: int | None, label: str = "llm", *, quiet: bool = False,
                 stream: TextIO | None = None, cost_known: bool = True, interval: float = 10.0,
                 tally: LLMTally | None = None, since: LLMTally | None = None):
        self.total = total
        self.label = label
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.tally = tally if tally is not None else LLMTally(cost_known=cost_known)
        self.since = since if since is not None else self.tally.model_copy()
        self.interval = interval
        self.start = time.monotonic()
        self._next = self.start + 0.5
        self._bar = None
        self._closed = False
        self._shown = 0
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        if not quiet and self._tty:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, file=self.stream, unit="req",
                             dynamic_ncols=True, smoothing=0.1, mininterval=0.25)
        elif not quiet:
            self._next = self.start + interval

    def run_tally(self) -> LLMTally:
        """The work counted since this progress began."""
        return self.tally.minus(self.since)

    @property
    def done(self) -> int:
        return self.tally.done - self.since.done

    def update(self, *, ok: bool, cached: bool = False, tokens: int = 0, cost: float = 0.0, n: int = 1) -> None:
        """Count `n` finished units here (for work not counted by an LLM client), and redraw."""
        if n <= 0:
            return
        # one usage record for the n units: a stage counting 100,000 rows in batches must
        # not build 100,000 pydantic records
        self.tally.record(LLMUsage(prompt_tokens=tokens * n, cost_usd=cost * n, cached=cached), ok)
        if n > 1:
            if ok:
                self.tally.ok += n - 1
            else:
                self.tally.failed += n - 1
            if cached:
                self.tally.cached += n - 1
        self.tick()

    def tick(self) -> None:
        """Redraw if due (the tally has grown)."""
        if self.quiet:
            return
        if self._bar is not None:
            done = self.done
            self._bar.update(done - self._shown)
            self._shown = done
            now = time.monotonic()
            if now >= self._next:
                self._next = now + 0.5
                self._bar.set_postfix_str(self._postfix(), refresh=False)
        else:
            now = time.monotonic()
            if now >= self._next:
                self._next = now + self.interval
                self._line(now)

    def _postfix(self) -> str:
        t = self.run_tally()
        return (f"ok={t.ok} failed={t.failed} cached={t.cached} "
                f"tok={format_tokens(t.tokens)} {t.cost_text()}")

    def _line(self, now: float, final: bool = False) -> None:
        el = now - self.start
        done = self.done
        rate = done / el if el > 0 else 0.0
        if self.total is not None:  # 0: a resumed run with nothing left to do is 100% done
            pct = f"{done}/{self.total} ({100.0 * done / self.total if self.total else 100.0:.1f}%)"
            eta = "" if final or rate <= 0 else f" ETA {format_duration((self.total - done) / rate)}"
        else:
            pct, eta = str(done), ""
        print(f"{self.label}: {pct} {self._postfix()} {rate:.1f}/s elapsed {format_duration(el)}{eta}",
              file=self.stream, flush=True)

    def note(self, text: str) -> None:
        """A one-line status message (e.g. batches submitted / in progress / done)."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.write(f"{self.label}: {text}", file=self.stream)
        else:
            print(f"{self.label}: {text}", file=self.stream, flush=True)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.update(self.done - self._shown)
            self._bar.set_postfix_str(self._postfix(), refresh=False)
            self._bar.close()
        else:
            self._line(time.monotonic(), final=True)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
