"""A provider's rate budget: requests per second (token bucket) plus a daily quota.

One budget per source name is shared by every job in the process (see
:mod:`carriers.transport.guard`). The arithmetic runs under a thread lock and keeps no
asyncio objects, so the same budget works across event loops and threads: a caller asks
for a slot, gets back how long to wait (or a refusal), and sleeps on its own loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from carriers.chinatime import CHINA_TZ

__all__ = ["CHINA_TZ", "Denial", "DenialReason", "RateBudget"]

# Quotas of the Chinese providers reset at midnight Beijing time, hence CHINA_TZ by default.


class DenialReason(StrEnum):
    """Why a budget refused a request."""

    RATE = "rate"
    PAUSED = "paused"
    QUOTA = "quota"


@dataclass(frozen=True, slots=True)
class Denial:
    """A refused request: why, and how many seconds until it could go."""

    reason: DenialReason
    retry_after_s: float


class RateBudget:
    """Generic cell rate algorithm (a token bucket) with a pause switch and a daily quota.

    ``rate_per_s`` requests per second on average, bursts of up to ``burst`` at once.
    :meth:`pause` holds every request back (a 429 with ``Retry-After`` applies to the
    whole account, not just the request that got it).
    """

    def __init__(
        self,
        rate_per_s: float,
        *,
        burst: int = 1,
        daily_quota: int | None = None,
        quota_tz: ZoneInfo = CHINA_TZ,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._monotonic = monotonic
        self._tat = 0.0  # theoretical arrival time of the next request (GCRA)
        self._paused_until = 0.0
        self._day: date | None = None
        self._used = 0
        self.configure(rate_per_s, burst=burst, daily_quota=daily_quota, quota_tz=quota_tz)

    def configure(
        self,
        rate_per_s: float,
        *,
        burst: int = 1,
        daily_quota: int | None = None,
        quota_tz: ZoneInfo = CHINA_TZ,
    ) -> None:
        """Change the limits in place, keeping what has been used so far."""
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        if daily_quota is not None and daily_quota < 1:
            raise ValueError("daily_quota must be positive")
        with self._lock:
            self.rate_per_s = rate_per_s
            self.burst = burst
            self.daily_quota = daily_quota
            self.quota_tz = quota_tz
            self._interval = 1.0 / rate_per_s
            self._tolerance = (burst - 1) * self._interval  # how far ahead a burst may run

    @property
    def used_today(self) -> int:
        """Requests counted against today's quota so far."""
        return self._used

    def reserve(self, wall: datetime, max_wait_s: float) -> float | Denial:
        """Take a slot: seconds to wait before sending, or a :class:`Denial`.

        ``wall`` is the current aware time (it decides the quota day). A slot further away
        than ``max_wait_s`` is refused without being taken, so callers never queue for long.
        """
        with self._lock:
            now = self._monotonic()
            if self.daily_quota is not None:
                day = wall.astimezone(self.quota_tz).date()
                if day != self._day:
                    self._day, self._used = day, 0
                if self._used >= self.daily_quota:
                    return Denial(DenialReason.QUOTA, self._until_midnight(wall))
            paused_until = self._paused_until
            if paused_until - now > max_wait_s:
                return Denial(DenialReason.PAUSED, paused_until - now)
            tat = self._tat
            start = max(now, tat - self._tolerance, paused_until)
            wait = start - now
            if wait > max_wait_s:
                return Denial(DenialReason.RATE, wait)
            self._tat = max(tat, start) + self._interval
            self._used += 1
            return wait

    def paused_for(self) -> float:
        """Seconds the budget is still paused for (0 when it is not)."""
        with self._lock:
            return max(0.0, self._paused_until - self._monotonic())

    def pause(self, seconds: float) -> None:
        """Hold every request back for ``seconds`` from now (never shortens a pause)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._monotonic() + max(0.0, seconds))

    def _until_midnight(self, wall: datetime) -> float:
        local = wall.astimezone(self.quota_tz)
        midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time())
        return max(1.0, (midnight.replace(tzinfo=self.quota_tz) - local).total_seconds())
