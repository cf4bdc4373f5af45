"""The policy's transit allowance as a small table the scorecard query can join.

On-time delivery is judged against :func:`tracker.domain.policy.transit_window` (lane
days, stretched by rest days and promotions, with per-courier and per-lane overrides),
but never by calling it per parcel. Instead the policy is evaluated once per
*profile* (a distinct lane allowance: days plus how rest days pause the clock) and per
shipping day of the period, and the database joins that table:

* a parcel starting on a working day has deadline ``start + v`` (``w = 1``): on the
  working clock the allowance does not depend on the hour it started;
* a parcel starting on a rest day has the fixed deadline ``v`` (``w = 0``): its clock
  only starts at the next working day's midnight.

Which profile a parcel gets is decided in SQL from its courier, origin and destination
province and lane, over the *cells* of the override space: each override courier and
province, plus "any other", so every parcel falls in exactly one cell.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from itertools import product

from carriers.geo import canonical_province
from tracker.domain.holidays import is_rest_day
from tracker.domain.model import Address
from tracker.domain.policy import Lane, Policy, Thresholds, transit_window

__all__ = ["AllowancePlan", "Cell", "allowance_plan"]

# Addresses that fall in each lane: only the lane matters to the allowance once the
# thresholds are fixed (overrides are resolved per cell beforehand).
_LANE_SAMPLES: dict[Lane, tuple[Address, Address]] = {
    Lane.SAME_CITY: (Address("广东省", "广州市"), Address("广东省", "广州市")),
    Lane.SAME_PROVINCE: (Address("广东省", "广州市"), Address("广东省", "深圳市")),
    Lane.OTHER_PROVINCE: (Address("广东省", "广州市"), Address("浙江省", "杭州市")),
    Lane.REMOTE: (Address("广东省", "广州市"), Address("西藏自治区", "拉萨市")),
}
_NOON = timedelta(hours=12)
# Stands for "a courier or province no override names": matches only unconditional parts.
_OTHER = "\x00other"


@dataclass(frozen=True, slots=True)
class Cell:
    """One region of the override space; ``None`` means "none of the named ones"."""

    courier: str | None
    origin: str | None
    destination: str | None


@dataclass(frozen=True, slots=True)
class AllowancePlan:
    """Profiles per (cell, lane), and each profile's deadline rule per period day."""

    couriers: frozenset[str]
    origins: frozenset[str]
    destinations: frozenset[str]
    #: (cell, lane, profile id)
    cells: tuple[tuple[Cell, Lane, int], ...]
    #: (profile id, day index, w, v): deadline = w * start_epoch + v
    rows: tuple[tuple[int, int, int, float], ...]


def _canonical(name: str) -> str:
    return canonical_province(name) or name


def allowance_plan(policy: Policy, day_edges: Sequence[datetime]) -> AllowancePlan:
    """Evaluate the policy once per profile and period day (see the module docstring)."""
    couriers = frozenset(o.courier for o in policy.overrides if o.courier)
    origins = frozenset(_canonical(o.origin) for o in policy.overrides if o.origin)
    destinations = frozenset(_canonical(o.destination) for o in policy.overrides if o.destination)
    profiles: dict[tuple[float, bool, bool], tuple[int, Thresholds, Lane]] = {}
    cells: list[tuple[Cell, Lane, int]] = []
    for courier, origin, destination in product(
        [*sorted(couriers), None], [*sorted(origins), None], [*sorted(destinations), None]
    ):
        cell = Cell(courier, origin, destination)
        thresholds = policy.thresholds_for(
            courier or _OTHER, origin or _OTHER, destination or _OTHER
        )
        for lane in Lane:
            key = (
                thresholds.transit_days(lane),
                thresholds.pause_on_holidays,
                thresholds.pause_on_weekends,
            )
            if key not in profiles:
                profiles[key] = (len(profiles), thresholds, lane)
            cells.append((cell, lane, profiles[key][0]))
    rows: list[tuple[int, int, int, float]] = []
    for profile_id, thresholds, lane in profiles.values():
        plain = replace(policy, defaults=thresholds, overrides=())
        origin_sample, destination_sample = _LANE_SAMPLES[lane]
        for index, midnight in enumerate(day_edges[:-1]):
            local_day = midnight.astimezone(policy.timezone).date()
            resting = is_rest_day(
                local_day,
                holidays=thresholds.pause_on_holidays,
                weekends=thresholds.pause_on_weekends,
            )
            start = midnight if resting else midnight + _NOON
            window = transit_window(origin_sample, destination_sample, None, start, plain)
            if resting:
                rows.append((profile_id, index, 0, window.deadline.timestamp()))
            else:
                rows.append((profile_id, index, 1, (window.deadline - start).total_seconds()))
    return AllowancePlan(couriers, origins, destinations, tuple(cells), tuple(rows))
