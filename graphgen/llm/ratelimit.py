"""Requests-per-minute and tokens-per-minute limits, plus a shared cool-down after 429s.

Two token buckets refilled continuously (limit / 60 per second) with one second's worth of
burst, so a fresh run does not fire a minute's budget at once (providers enforce limits at
sub-minute granularity). A request whose token estimate exceeds the burst may still go
when the bucket is full: the bucket goes into debt and later requests wait it off. The
estimate (prompt chars / 4 + max_tokens) is corrected with the real usage afterwards.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["RateLimiter", "estimate_tokens"]


def estimate_tokens(messages: list[dict], max_tokens: int | None) -> int:
    chars = 0
    for m in messages:
        c = m.get("content")
        if isinstance(c, str):
            chars += len(c)
        elif isinstance(c, list):
            for part in c:
                if isinstance(part, dict) and isinstance(part.get("text"), str):
                    chars += len(part["text"])
    return chars // 4 + 4 * len(messages) + (max_tokens or 512)


class _Bucket:
    __slots__ = ("rate", "capacity", "level", "stamp")

    def __init__(self, per_minute: int):
        self.rate = per_minute / 60.0
        self.capacity = max(1.0, self.rate)
        self.level = self.capacity
        self.stamp = time.monotonic()

    def refill(self, now: float) -> None:
        self.level = min(self.capacity, self.level + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until `amount` (capped at capacity) is available; 0 if now."""
        need = min(amount, self.capacity)
        if self.level >= need:
            return 0.0
        return (need - self.level) / self.rate


class RateLimiter:
    def __init__(self, rpm: int | None = None, tpm: int | None = None):
        self.rpm = rpm or None
        self.tpm = tpm or None
        self._req = _Bucket(self.rpm) if self.rpm else None
        self._tok = _Bucket(self.tpm) if self.tpm else None
        self._paused_until = 0.0
        self._lock: asyncio.Lock | None = None
        self.waited_s = 0.0

    def pause_until(self, deadline: float) -> None:
        """Hold every new request until `deadline` (time.monotonic()), e.g. after a 429."""
        self._paused_until = max(self._paused_until, deadline)

    async def acquire(self, tokens: int) -> None:
        pause = self._paused_until - time.monotonic()
        if pause > 0:
            self.waited_s += pause
            await asyncio.sleep(pause)
        if not (self._req or self._tok):
            return
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # FIFO: waiters are served in arrival order
            while True:
                now = time.monotonic()
                wait = max(0.0, self._paused_until - now)
                if self._req:
                    self._req.refill(now)
                    wait = max(wait, self._req.wait_for(1))
                if self._tok:
                    self._tok.refill(now)
                    wait = max(wait, self._tok.wait_for(tokens))
                if wait <= 0:
                    if self._req:
                        self._req.level -= 1
                    if self._tok:
                        self._tok.level -= tokens
                    return
                self.waited_s += wait
                await asyncio.sleep(wait)

    def correct(self, estimated: int, actual: int) -> None:
        """Give back (or charge) the difference between estimated and actual tokens."""
        if self._tok and actual >= 0:
            self._tok.level = min(self._tok.capacity, self._tok.level + (estimated - actual))

    def reset_loop(self) -> None:
        self._lock = None
