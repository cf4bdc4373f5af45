"""Promotions and public holidays near the report day: why parcels may be slow right now."""

from __future__ import annotations

from datetime import date, timedelta

import chinese_calendar

from tracker.domain.policy import Policy
from tracker.report.model import Disruption

__all__ = ["LOOKAHEAD_DAYS", "disruptions_near"]

#: upcoming windows this many days after the report day are listed too, to plan ahead
LOOKAHEAD_DAYS = 14
_HOLIDAY_NAMES = {h.value: getattr(h, "chinese", h.value) for h in chinese_calendar.Holiday}


def _holiday_name(day: date) -> str | None:
    try:
        resting, name = chinese_calendar.get_holiday_detail(day)
    except NotImplementedError:  # a year the calendar has no data for
        return None
    return _HOLIDAY_NAMES.get(name, name) if resting and name else None


def _holidays(first: date, last: date, active: tuple[date, date]) -> list[Disruption]:
    found: list[Disruption] = []
    day = first
    block: tuple[str, date] | None = None
    while day <= last + timedelta(days=1):
        name = _holiday_name(day) if day <= last else None
        if block and name != block[0]:
            begin, end = block[1], day - timedelta(days=1)
            found.append(
                Disruption(
                    block[0],
                    "holiday",
                    begin.isoformat(),
                    end.isoformat(),
                    begin <= active[1] and active[0] <= end,
                )
            )
            block = None
        if name and block is None:
            block = (name, day)
        day += timedelta(days=1)
    return found


def disruptions_near(
    policy: Policy, period_first: date, window_first: date, report_day: date
) -> list[Disruption]:
    """Promotions and holiday blocks overlapping the period or the next two weeks.

    ``active`` marks those overlapping the report window's days (``window_first`` to the
    report day).
    """
    last = report_day + timedelta(days=LOOKAHEAD_DAYS)
    active = (window_first, report_day)
    found: list[Disruption] = []
    for promotion in policy.promotions:
        for year in (period_first.year - 1, period_first.year, last.year):
            span = promotion.window(year)
            if span is None or span[1] < period_first or last < span[0]:
                continue
            item = Disruption(
                promotion.name,
                "promotion",
                span[0].isoformat(),
                span[1].isoformat(),
                span[0] <= active[1] and active[0] <= span[1],
                promotion.extra_dispatch_hours,
                promotion.extra_transit_days,
            )
            if item not in found:
                found.append(item)
    found.extend(_holidays(period_first, last, active))
    return sorted(found, key=lambda d: (d.first_day, d.name))
