"""Requests-per-minute and tokens-per-minute limits for a remote judge, as sliding windows.

A hosted API enforces its limits over a rolling minute and answers 429 past them; waiting on
our side before sending keeps the run below them instead of burning retries. A sliding
window (not a token bucket) is what "N per minute" means to the provider: at most ``limit``
units were admitted in any 60 s span.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable


class SlidingWindowLimit:
    """At most ``limit`` units admitted in any ``window_s`` seconds (``limit=0``: unlimited).

    One request larger than the whole limit is admitted alone once the window is empty, so a
    big prompt waits instead of blocking forever.
    """

    def __init__(self, limit: int, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._admitted: deque[tuple[float, float]] = deque()  # (time, units)
        self._total = 0.0
        self._lock = asyncio.Lock()  # FIFO: requests are admitted in the order they asked

    def _expire(self, now: float) -> None:
        while self._admitted and self._admitted[0][0] <= now - self.window_s:
            self._total -= self._admitted.popleft()[1]

    def wait_time(self, units: float) -> float:
        """Seconds until ``units`` could be admitted (0 when now)."""
        if self.limit <= 0:
            return 0.0
        now = self.clock()
        self._expire(now)
        if self._total + units <= self.limit or not self._admitted:
            return 0.0
        # Drop the oldest entries until the rest leaves room; wait until the last one dropped ages out.
        freed, need = 0.0, self._total + units - self.limit
        for at, amount in self._admitted:
            freed += amount
            if freed >= need:
                return max(0.0, at + self.window_s - now)
        return max(0.0, self._admitted[-1][0] + self.window_s - now)

    async def acquire(self, units: float) -> None:
        if self.limit <= 0:
            return
        async with self._lock:
            while (delay := self.wait_time(units)) > 0:
                await asyncio.sleep(delay)
            self._admitted.append((self.clock(), units))
            self._total += units


class JudgeLimits:
    """Concurrency, requests-per-minute and tokens-per-minute, acquired together per request."""

    def __init__(self, max_concurrency: int, requests_per_minute: int, tokens_per_minute: int) -> None:
        self.slots = asyncio.Semaphore(max_concurrency)
        self.requests = SlidingWindowLimit(requests_per_minute)
        self.tokens = SlidingWindowLimit(tokens_per_minute)

    async def admit(self, tokens: float) -> None:
        """Wait for the per-minute windows (call while holding ``slots``)."""
        await self.requests.acquire(1)
        await self.tokens.acquire(tokens)
