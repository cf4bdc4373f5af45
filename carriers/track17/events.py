"""17TRACK scan events -> :class:`~carriers.model.TrackingEvent`: times and places, pure.

Times: events carry ``time_iso`` (local time with offset) and ``time_utc``; when both are
null the time is read from ``time_raw`` (17TRACK documents that a ``Delivered_Other``
event may only have it there). A ``time_raw`` without a timezone is given the offset of
the nearest event from the same carrier that has one; failing that, +08:00 for Chinese
addresses and UTC otherwise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from carriers.geo import CHINA, canonical_city, canonical_province, parse_location
from carriers.model import Location, TrackingEvent
from carriers.payload import as_dict, as_list, as_text, iso_time
from carriers.track17 import codes

__all__ = ["provider_events"]

_CST = timezone(timedelta(hours=8))
_CN_CODES = frozenset({"CN"})


def _location(address: dict[str, Any], text: str | None) -> Location:
    country = (as_text(address.get("country")) or "").upper() or None
    state = as_text(address.get("state"))
    city = as_text(address.get("city"))
    if country in _CN_CODES:
        province = codes.CN_SUBDIVISIONS.get((state or "").upper()) or canonical_province(state)
        # a pinyin city ("SHENZHEN") is dropped rather than compared against 深圳市
        return Location(CHINA, province, canonical_city(city, province), None)
    if country is None and state is None and city is None:
        if text and any("\u4e00" <= ch <= "\u9fff" for ch in text):
            return parse_location(text)
        return Location()
    return Location(country, state, city, None)


def _event_time(raw: dict[str, Any]) -> datetime | None:
    """The event time; naive when only an offset-less ``time_raw`` is given."""
    for key in ("time_iso", "time_utc"):
        found = iso_time(raw.get(key))
        if found is not None:
            return found
    time_raw = as_dict(raw.get("time_raw"))
    date = as_text(time_raw.get("date"))
    if date is None:
        return None
    clock = as_text(time_raw.get("time")) or "00:00:00"
    return iso_time(f"{date}T{clock}{as_text(time_raw.get('timezone')) or ''}")


def _resolve_naive(
    times: list[datetime | None], countries: list[str | None]
) -> list[datetime | None]:
    """Give each naive time the offset of the nearest aware one (see module docstring)."""
    aware = [i for i, t in enumerate(times) if t is not None and t.tzinfo is not None]
    out: list[datetime | None] = []
    for i, t in enumerate(times):
        if t is None or t.tzinfo is not None:
            out.append(t)
        elif aware:
            nearest = times[min(aware, key=lambda j: abs(j - i))]
            out.append(t.replace(tzinfo=nearest.tzinfo if nearest else UTC))
        else:
            out.append(t.replace(tzinfo=_CST if countries[i] in _CN_CODES else UTC))
    return out


def provider_events(provider: dict[str, Any]) -> tuple[list[TrackingEvent], int]:
    """One carrier's events, oldest first, and how many had no usable time."""
    raws = [as_dict(e) for e in reversed(as_list(provider.get("events")))]  # API lists newest first
    times = [_event_time(raw) for raw in raws]
    countries = [(as_text(as_dict(r.get("address")).get("country")) or "").upper() for r in raws]
    resolved = _resolve_naive(times, [c or None for c in countries])
    events: list[TrackingEvent] = []
    skipped = 0
    for raw, when in zip(raws, resolved, strict=True):
        if when is None:
            skipped += 1
            continue
        sub = as_text(raw.get("sub_status"))
        stage = as_text(raw.get("stage"))
        status, problem = codes.status_for(stage, sub) if sub else codes.stage_status(stage)
        text = as_text(raw.get("description")) or ""
        location = _location(as_dict(raw.get("address")), as_text(raw.get("location")))
        events.append(TrackingEvent(when, status, sub or stage or "", text, location, problem))
    return events, skipped
