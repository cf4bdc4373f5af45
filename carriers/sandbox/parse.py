"""The sandbox's pure core: a story pinned to a clock becomes raw scans, then a result.

:func:`timeline` pins a :class:`~carriers.sandbox.stories.Story` to an anchor time and
keeps the scans that have happened by ``now``; :func:`to_result` maps raw codes through
:mod:`carriers.sandbox.codes` and reads each scan's place from its text with
:func:`carriers.geo.parse_location`, as a real adapter would.

Timing: each step waits its hours plus 0-25 deterministic minutes. With an explicit
anchor (the query's ``shipped_at`` or the ``epoch`` option), courier-round scans (揽收,
派件, 签收, 存放驿站) are moved into working hours (Beijing time). Without an anchor, the
story is placed so that "now" falls at the scenario's characteristic moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from carriers import geo
from carriers.model import (
    Problem,
    Status,
    TrackingEvent,
    TrackingQuery,
    TrackingResult,
    latest_status,
)
from carriers.sandbox import codes
from carriers.sandbox.scenarios import stable_int
from carriers.sandbox.stories import Story

__all__ = ["BEIJING", "RawScan", "timeline", "to_result"]

#: the sandbox prints times in Beijing time, as Chinese couriers do
BEIJING = timezone(timedelta(hours=8))


@dataclass(frozen=True, slots=True)
class RawScan:
    """A scan as the sandbox "provider" reports it: local time, raw code, raw text."""

    time: datetime
    code: str
    text: str


def _working_hours(t: datetime, code: str, minutes: int) -> datetime:
    """``t`` if the courier works then (Beijing time), else the next 08:00 plus ``minutes``.

    Couriers set out 08:00-20:00; other round scans (揽收, 签收, 驿站) run until 22:00.
    """
    local = t.astimezone(BEIJING)
    if 8 <= local.hour < (20 if code == "OUT_DELIVERY" else 22):
        return t
    day = local.date() if local.hour < 8 else local.date() + timedelta(days=1)
    start = datetime(day.year, day.month, day.day, 8, tzinfo=BEIJING)
    return start + timedelta(minutes=minutes)


def timeline(story: Story, number: str, anchor: datetime | None, now: datetime) -> list[RawScan]:
    """The story's scans pinned to ``anchor`` (see the module docstring), those <= ``now``."""
    jitter = [stable_int("jitter", number, str(i)) % 1500 for i in range(len(story.steps))]
    offsets: list[float] = []
    total = 0.0
    for step, extra_s in zip(story.steps, jitter, strict=True):
        total += step.gap_h * 3600 + extra_s
        offsets.append(total)
    align = anchor is not None
    if anchor is None:
        before = offsets[story.now_after] if story.now_after >= 0 else 0.0
        anchor = now - timedelta(seconds=before + story.tail_h * 3600)
    elif anchor.tzinfo is None:
        anchor = anchor.replace(tzinfo=BEIJING)
    anchor = anchor.replace(microsecond=0)
    scans: list[RawScan] = []
    when, previous = anchor, 0.0
    for step, offset, extra_s in zip(story.steps, offsets, jitter, strict=True):
        when += timedelta(seconds=round(offset - previous))
        previous = offset
        if align and step.daytime:
            when = _working_hours(when, step.code, extra_s // 60)
        if when > now:
            break
        scans.append(RawScan(when.astimezone(BEIJING), step.code, step.text))
    return scans


def to_result(
    query: TrackingQuery, source: str, scenario: str, scans: list[RawScan], weight_kg: float | None
) -> TrackingResult:
    """The common result: events oldest first; weight once picked up; latest problem kept."""
    events = []
    for scan in scans:
        status, problem = codes.describe(scan.code)
        events.append(
            TrackingEvent(
                time=scan.time,
                status=status,
                raw_code=scan.code,
                text=scan.text,
                location=geo.parse_location(scan.text),
                problem=problem,
            )
        )
    status = latest_status(Status.PENDING, events)
    problems: list[Problem] = [e.problem for e in events if e.problem is not None]
    return TrackingResult(
        courier=query.courier,
        tracking_number=query.tracking_number,
        source=source,
        status=status,
        events=tuple(events),
        weight_kg=weight_kg if events else None,
        finished=status in (Status.DELIVERED, Status.RETURNED),
        problem=problems[-1] if problems else None,
        extra={"scenario": scenario},
    )
