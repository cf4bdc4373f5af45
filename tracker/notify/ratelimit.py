"""A small async rate limiter: at most ``rate`` calls per second, spaced evenly."""

from __future__ import annotations

import asyncio
import time

__all__ = ["RateLimiter"]


class RateLimiter:
    """Spaces calls ``1/rate`` seconds apart within this process (``None`` = unlimited)."""

    def __init__(self, rate_per_s: float | None) -> None:
        self.interval = 1.0 / rate_per_s if rate_per_s else 0.0
        self._next = 0.0
        self._lock: asyncio.Lock | None = None

    async def wait(self) -> None:
        """Return once the next call is allowed."""
        if not self.interval:
            return
        # the lock is made lazily: a limiter may outlive one event loop (``run --once`` twice)
        if self._lock is None:
            self._lock = asyncio.Lock()
        try:
            async with self._lock:
                await self._sleep_turn()
        except RuntimeError:  # lock bound to an earlier loop
            self._lock = asyncio.Lock()
            async with self._lock:
                await self._sleep_turn()

    async def _sleep_turn(self) -> None:
        now = time.monotonic()
        delay = self._next - now
        if delay > 0:
            await asyncio.sleep(delay)
            now = time.monotonic()
        self._next = max(now, self._next) + self.interval
