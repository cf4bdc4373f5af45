"""Quiet hours: when a buyer notice may go out (pure, clock injected)."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = ["QuietHours"]


class QuietHours:
    """A nightly window such as ``21:00-08:00`` in the shop's timezone; ``""`` means none."""

    def __init__(self, spec: str, tz: ZoneInfo) -> None:
        self.tz = tz
        self.start: time | None = None
        self.end: time | None = None
        if spec:
            start, end = spec.split("-")
            self.start = time.fromisoformat(start)
            self.end = time.fromisoformat(end)

    def is_quiet(self, at: datetime) -> bool:
        """True when ``at`` falls inside the quiet window."""
        if self.start is None or self.end is None or self.start == self.end:
            return False
        local = at.astimezone(self.tz).time()
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def next_allowed(self, at: datetime) -> datetime:
        """``at`` itself outside quiet hours, else the end of the window (e.g. 08:00 next day)."""
        if not self.is_quiet(at) or self.end is None:
            return at
        local = at.astimezone(self.tz)
        candidate = datetime.combine(local.date(), self.end, tzinfo=self.tz)
        if candidate <= local:
            candidate = datetime.combine(local.date() + timedelta(days=1), self.end, tzinfo=self.tz)
        return candidate
