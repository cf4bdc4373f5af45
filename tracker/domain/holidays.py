"""The shop's working-time clock: public holidays, weekends and promotion windows.

**Rest days.** A rest day is a whole calendar day, in the shop's timezone, on which
allowance clocks stop. It is

* a statutory public holiday as ``chinese_calendar`` lists it (春节, 国庆 ..., including
  the Saturdays and Sundays inside a holiday block), when holidays pause the clock;
* a Saturday or Sunday that is not a 调休 make-up workday, when weekends pause it.

A 调休 make-up workday (e.g. Sunday 2026-09-20 before National Day) is never a rest day.
``chinese_calendar`` only knows the years it ships data for and raises
``NotImplementedError`` outside them; for those years holidays are unknown and only
weekends can pause the clock.

**Working clock.** :func:`add_working_time` runs a clock from a start instant and lets it
tick only outside rest days: an allowance of 48 h starting at 23:00 on the day before a
rest day uses 1 h that day, skips the rest day(s) whole and uses the other 47 h after.

**Promotion windows** (618, 双11, 双12, 年货节) are inclusive ranges of calendar days
described by :class:`Promotion`; 年货节 is anchored on 春节 (the first day of the lunar
year, from a fixed table, :func:`spring_festival`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache

import chinese_calendar

__all__ = [
    "DEFAULT_PROMOTIONS",
    "DayRef",
    "Promotion",
    "WorkingTime",
    "add_working_time",
    "is_makeup_workday",
    "is_rest_day",
    "is_statutory_holiday",
    "spring_festival",
    "working_end",
]

_ONE_DAY = timedelta(days=1)
# A guard against a calendar in which no day is ever a working day.
_MAX_DAYS_WALKED = 3660

# 春节 (正月初一) per Gregorian year; astronomical facts, so a fixed table is exact.
_SPRING_FESTIVAL = {
    2004: (1, 22), 2005: (2, 9), 2006: (1, 29), 2007: (2, 18), 2008: (2, 7),
    2009: (1, 26), 2010: (2, 14), 2011: (2, 3), 2012: (1, 23), 2013: (2, 10),
    2014: (1, 31), 2015: (2, 19), 2016: (2, 8), 2017: (1, 28), 2018: (2, 16),
    2019: (2, 5), 2020: (1, 25), 2021: (2, 12), 2022: (2, 1), 2023: (1, 22),
    2024: (2, 10), 2025: (1, 29), 2026: (2, 17), 2027: (2, 6), 2028: (1, 26),
    2029: (2, 13), 2030: (2, 3), 2031: (1, 23), 2032: (2, 11), 2033: (1, 31),
    2034: (2, 19), 2035: (2, 8), 2036: (1, 28), 2037: (2, 15), 2038: (2, 4),
    2039: (1, 24), 2040: (2, 12),
}  # fmt: skip


def spring_festival(year: int) -> date | None:
    """The date of 春节 (正月初一) in ``year``, or ``None`` outside 2004-2040."""
    found = _SPRING_FESTIVAL.get(year)
    return date(year, *found) if found else None


@lru_cache(maxsize=8192)
def _holiday_detail(day: date) -> tuple[bool, bool]:
    """(statutory holiday, make-up workday) for ``day``; both False where data is missing."""
    try:
        resting, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:
        return False, False
    if name is None:
        return False, False
    return bool(resting), not resting


def is_statutory_holiday(day: date) -> bool:
    """True on a public holiday listed by ``chinese_calendar``; False where it has no data."""
    return _holiday_detail(day)[0]


def is_makeup_workday(day: date) -> bool:
    """True on a 调休 make-up workday (a weekend day people work to bridge a holiday)."""
    return _holiday_detail(day)[1]


def is_rest_day(day: date, *, holidays: bool, weekends: bool) -> bool:
    """True when allowance clocks stop on ``day`` (see the module docstring)."""
    holiday, makeup = _holiday_detail(day)
    if holidays and holiday:
        return True
    return weekends and day.weekday() >= 5 and not makeup


@lru_cache(maxsize=8192)
def _next_rest_day(day: date, holidays: bool, weekends: bool) -> date | None:
    """The first rest day on or after ``day`` within a year, else ``None``."""
    for offset in range(366):
        candidate = day + timedelta(days=offset)
        if is_rest_day(candidate, holidays=holidays, weekends=weekends):
            return candidate
    return None


@dataclass(frozen=True, slots=True)
class WorkingTime:
    """Where a working clock stopped, and the rest days it skipped on the way."""

    end: datetime
    paused_days: tuple[date, ...] = ()


def add_working_time(
    start: datetime, amount: timedelta, tz: tzinfo, *, holidays: bool, weekends: bool
) -> WorkingTime:
    """``start`` plus ``amount`` of working time: the clock stops for whole rest days.

    A clock starting inside a rest day starts at the following working day's midnight.
    The result is in ``tz``; arithmetic is done in UTC so DST zones stay exact.
    """
    end, paused = working_end(start, start.astimezone(tz), amount, tz, holidays, weekends)
    return WorkingTime(end, paused)


_NO_PAUSE: tuple[date, ...] = ()
_ZERO = timedelta(0)


def working_end(
    start: datetime,
    local_start: datetime,
    amount: timedelta,
    tz: tzinfo,
    holidays: bool,
    weekends: bool,
) -> tuple[datetime, tuple[date, ...]]:
    """:func:`add_working_time` as (end, paused days), given ``start`` already in ``tz``.

    For callers that need the local start themselves (allowances): one conversion, and no
    result object built only to be unpacked, on a path taken several times per parcel.
    """
    cursor = start.astimezone(UTC)
    plain_end = (cursor + amount).astimezone(tz)
    if amount <= _ZERO or not (holidays or weekends):
        return plain_end, _NO_PAUSE
    # the common case: no rest day between start and the plain end, nothing to walk
    next_rest = _next_rest_day(local_start.date(), holidays, weekends)
    if next_rest is None or next_rest > plain_end.date():
        return plain_end, _NO_PAUSE
    remaining = amount
    paused: list[date] = []
    for _ in range(_MAX_DAYS_WALKED):
        day = cursor.astimezone(tz).date()
        next_midnight = datetime.combine(day + _ONE_DAY, time(), tzinfo=tz).astimezone(UTC)
        if is_rest_day(day, holidays=holidays, weekends=weekends):
            paused.append(day)
        else:
            left_today = next_midnight - cursor
            if remaining <= left_today:
                return (cursor + remaining).astimezone(tz), tuple(paused)
            remaining -= left_today
        cursor = next_midnight
    raise ValueError("the calendar has no working day in ten years")


_MONTH_DAY = re.compile(r"^(\d{1,2})-(\d{1,2})$")
_FULL_DATE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_FESTIVAL = re.compile(r"^(?:spring_festival|春节)\s*(?:([+-])\s*(\d{1,3}))?$")


@dataclass(frozen=True, slots=True)
class DayRef:
    """A day a promotion starts or ends on: every year, one given year, or relative to 春节.

    Text forms (:meth:`parse`): ``"11-01"`` (every year), ``"2026-11-01"`` (that date
    only), ``"spring_festival-21"`` or ``"春节-21"`` (21 days before 春节 each year).
    """

    month: int = 1
    day: int = 1
    year: int | None = None
    days_from_spring_festival: int | None = None

    @classmethod
    def parse(cls, text: str) -> DayRef:
        """Read one of the text forms; ``ValueError`` says which forms are accepted."""
        cleaned = text.strip()
        if match := _FESTIVAL.match(cleaned):
            sign, days = match.groups()
            offset = int(days or 0) * (-1 if sign == "-" else 1)
            return cls(days_from_spring_festival=offset)
        if match := _FULL_DATE.match(cleaned):
            year, month, day = (int(g) for g in match.groups())
            ref = cls(month=month, day=day, year=year)
        elif match := _MONTH_DAY.match(cleaned):
            month, day = (int(g) for g in match.groups())
            ref = cls(month=month, day=day)
        else:
            raise ValueError(f"expected MM-DD, YYYY-MM-DD or spring_festival±N, got {text!r}")
        try:
            date(ref.year or 2024, ref.month, ref.day)  # 2024 is a leap year: 02-29 is valid
        except ValueError:
            raise ValueError(f"no such day: {text!r}") from None
        return ref

    def on(self, year: int) -> date | None:
        """The day this refers to in ``year``'s cycle, or ``None`` when it has none."""
        if self.days_from_spring_festival is not None:
            festival = spring_festival(year)
            return festival + timedelta(days=self.days_from_spring_festival) if festival else None
        if self.year is not None:
            return date(self.year, self.month, self.day) if self.year == year else None
        if self.month == 2 and self.day == 29:
            try:
                return date(year, 2, 29)
            except ValueError:
                return date(year, 2, 28)
        return date(year, self.month, self.day)

    def __str__(self) -> str:
        if self.days_from_spring_festival is not None:
            return f"spring_festival{self.days_from_spring_festival:+d}"
        if self.year is not None:
            return f"{self.year:04d}-{self.month:02d}-{self.day:02d}"
        return f"{self.month:02d}-{self.day:02d}"


@dataclass(frozen=True, slots=True)
class Promotion:
    """A sales event (both days inclusive, shop time) that slows dispatch and delivery."""

    name: str
    start: DayRef
    end: DayRef
    extra_dispatch_hours: float = 0.0
    extra_transit_days: float = 0.0

    @classmethod
    def of(
        cls, name: str, start: str, end: str, dispatch_hours: float, transit_days: float
    ) -> Promotion:
        """Build one from the text forms of :class:`DayRef`."""
        return cls(name, DayRef.parse(start), DayRef.parse(end), dispatch_hours, transit_days)

    def window(self, year: int) -> tuple[date, date] | None:
        """First and last day of the event in ``year``'s cycle (the end may fall in the next)."""
        first = self.start.on(year)
        if first is None:
            return None
        last = self.end.on(year)
        if last is not None and last < first and self.end.year is None:
            last = self.end.on(year + 1)  # a window across New Year (e.g. 12-20 .. 01-05)
        if last is None or last < first:
            return None
        return first, last

    def overlaps(self, first: date, last: date) -> bool:
        """True when any day from ``first`` to ``last`` (inclusive) falls inside the event."""
        for year in range(first.year - 1, last.year + 2):
            window = self.window(year)
            if window is not None and window[0] <= last and first <= window[1]:
                return True
        return False


#: 618, 双11, 双12 and 年货节 (the three weeks before 春节), with their default extras.
DEFAULT_PROMOTIONS: tuple[Promotion, ...] = (
    Promotion.of("618", "06-01", "06-20", dispatch_hours=24, transit_days=1),
    Promotion.of("双11", "11-01", "11-13", dispatch_hours=48, transit_days=2),
    Promotion.of("双12", "12-10", "12-14", dispatch_hours=24, transit_days=1),
    Promotion.of("年货节", "spring_festival-21", "spring_festival-1", 24, transit_days=2),
)
