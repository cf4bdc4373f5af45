"""The exception policy: DESIGN §5 thresholds, their overrides, coverage and deadlines.

**Overrides.** :meth:`Policy.thresholds_for` starts from :attr:`Policy.defaults` and
applies every matching :class:`Override`, least specific first, so the most specific
wins: a lane condition (origin or destination province) weighs 2, a courier condition
1; ties go to the override declared later.

**The stretching rule** (dispatch and transit allowances):

1. The base allowance (dispatch: ``dispatch_hours`` after payment; transit: the lane's
   days after ``shipped_at``) runs on the working clock of
   :mod:`tracker.domain.holidays`: whole rest days (public holidays when
   ``pause_on_holidays``, non-make-up Saturdays and Sundays when ``pause_on_weekends``)
   do not count.
2. If any promotion window overlaps the calendar days from the start to that first
   deadline (both inclusive, shop time), the largest ``extra_dispatch_hours`` (dispatch)
   or ``extra_transit_days`` (transit) among the overlapping promotions is added to the
   base, and the clock runs again from the start, still pausing on rest days.

The pickup, stall and lost clocks (``pickup_hours``, ``stalled_hours``,
``stalled_last_mile_hours``, ``lost_days``) also pause on rest days, so a parcel
resting over 春节 is not flagged, but get no promotion extra.

**Lanes.** Same city 1 d, same province 2 d; between provinces 7 d when either end is
remote (``carriers.geo.REMOTE_PROVINCES``), else 4 d.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from carriers.geo import canonical_city, canonical_province, is_remote, same_city, same_province
from tracker.domain.holidays import DEFAULT_PROMOTIONS, Promotion, working_end
from tracker.domain.model import Address, frozen_builder

__all__ = [
    "SHOP_TIMEZONE",
    "THRESHOLD_KEYS",
    "Allowance",
    "Lane",
    "Override",
    "Policy",
    "Thresholds",
    "dispatch_window",
    "lane_of",
    "paused_deadline",
    "ship_deadline",
    "transit_allowance",
    "transit_window",
]

SHOP_TIMEZONE = ZoneInfo("Asia/Shanghai")


class Lane(StrEnum):
    """How far a parcel travels, which sets its transit allowance."""

    SAME_CITY = "same_city"
    SAME_PROVINCE = "same_province"
    OTHER_PROVINCE = "other_province"
    REMOTE = "remote"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Every tunable number of DESIGN §5, with its defaults; see the module docstring."""

    dispatch_hours: float = 48.0
    pickup_hours: float = 24.0
    stalled_hours: float = 48.0
    stalled_last_mile_hours: float = 24.0
    lost_days: float = 7.0
    same_city_days: float = 1.0
    same_province_days: float = 2.0
    other_province_days: float = 4.0
    remote_days: float = 7.0
    weight_tolerance_kg: float = 0.3
    weight_tolerance_ratio: float = 0.15
    pause_on_holidays: bool = True
    pause_on_weekends: bool = False

    def transit_days(self, lane: Lane) -> float:
        """The base transit allowance for ``lane``, in days."""
        value: float = getattr(self, _LANE_DAYS[lane])
        return value

    def weight_tolerance(self, ordered_kg: float) -> float:
        """How far below ``ordered_kg`` a courier weight may be: max(kg floor, ratio)."""
        return max(self.weight_tolerance_kg, self.weight_tolerance_ratio * ordered_kg)


# the Thresholds field holding each lane's days (read per parcel: no dict built per call)
_LANE_DAYS: dict[Lane, str] = {lane: f"{lane.value}_days" for lane in Lane}

#: Names of the :class:`Thresholds` fields, i.e. the keys an override may set.
THRESHOLD_KEYS: frozenset[str] = frozenset(f.name for f in fields(Thresholds))


@dataclass(frozen=True, slots=True)
class Override:
    """Threshold values replacing the defaults for a courier, a lane, or both.

    ``origin``/``destination`` are provinces (any common form); ``None`` matches any.
    """

    values: Mapping[str, float | bool]
    courier: str | None = None
    origin: str | None = None
    destination: str | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.values) - THRESHOLD_KEYS)
        if unknown:
            raise ValueError(f"unknown threshold key(s): {', '.join(unknown)}")

    @property
    def specificity(self) -> int:
        """How narrow the override is: 2 per lane condition, 1 for a courier."""
        return (
            2 * (self.origin is not None)
            + 2 * (self.destination is not None)
            + (self.courier is not None)
        )

    def matches(self, courier: str | None, origin: str | None, destination: str | None) -> bool:
        """True when this override applies to the courier and canonical provinces given."""
        return (
            (self.courier is None or self.courier == courier)
            and (self.origin is None or _province(self.origin) == origin)
            and (self.destination is None or _province(self.destination) == destination)
        )


@lru_cache(maxsize=4096)
def _province(name: str | None) -> str | None:
    """The canonical province name, or the name as written when the gazetteer lacks it."""
    return canonical_province(name) or name


@dataclass(frozen=True)
class Policy:
    """Everything the rules are configured with; build it in code or :meth:`from_mapping`."""

    timezone: ZoneInfo = SHOP_TIMEZONE
    defaults: Thresholds = field(default_factory=Thresholds)
    overrides: tuple[Override, ...] = ()
    #: courier code -> canonical province and city names the courier does not deliver to
    coverage: Mapping[str, frozenset[str]] = field(default_factory=dict)
    promotions: tuple[Promotion, ...] = DEFAULT_PROMOTIONS
    _resolved: dict[tuple[str | None, str | None, str | None], Thresholds] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # (first day, last day, extra) -> largest overlapping promotion: hashing the promotions
    # tuple on every parcel (a module-level cache key) cost more than the lookup saved
    _promoted: dict[tuple[date, date, Callable[[Promotion], timedelta]], Promotion | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def thresholds_for(
        self, courier: str | None, origin: str | None, destination: str | None
    ) -> Thresholds:
        """The thresholds for this courier and lane (provinces in any common form)."""
        key = (courier, origin, destination)
        found = self._resolved.get(key)
        if found is None:
            found = self._resolve(courier, _province(origin), _province(destination))
            self._resolved[key] = found
        return found

    def _resolve(
        self, courier: str | None, origin: str | None, destination: str | None
    ) -> Thresholds:
        """Apply the matching overrides to the defaults, least specific first."""
        matching = [o for o in self.overrides if o.matches(courier, origin, destination)]
        result = self.defaults
        for override in sorted(matching, key=lambda o: o.specificity):
            values: dict[str, Any] = dict(override.values)
            result = replace(result, **values)
        return result

    def uncovered_area(self, courier: str | None, address: Address) -> str | None:
        """The province or city of ``address`` that ``courier`` does not serve, if any."""
        excluded = self.coverage.get(courier or "")
        if not excluded:
            return None
        province = _province(address.province)
        if province in excluded:
            return province
        city = canonical_city(address.city, province) or address.city
        return city if city in excluded else None

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        *,
        prefix: str = "policy",
        timezone: ZoneInfo | None = None,
    ) -> Policy:
        """Build a policy from the TOML ``[policy]`` table; ``ValueError`` names the bad key.

        ``timezone`` (e.g. the config's top-level one) applies unless the table sets its own.
        The keys are documented in :mod:`tracker.domain.policy_config`.
        """
        from tracker.domain.policy_config import policy_kwargs  # noqa: PLC0415 - import cycle

        kwargs = policy_kwargs(data, prefix)
        if timezone is not None:
            kwargs.setdefault("timezone", timezone)
        return cls(**kwargs)


@dataclass(frozen=True, slots=True)
class Allowance:
    """A deadline and how it was reached: base allowance, promotion extra, rest days skipped."""

    start: datetime
    deadline: datetime
    base: timedelta
    extra: timedelta = timedelta(0)
    promotion: str | None = None
    paused_days: tuple[date, ...] = ()

    def evidence(self) -> dict[str, Any]:
        """The allowance as JSON-ready facts for a ticket's evidence."""
        return {
            "start": self.start.isoformat(),
            "deadline": self.deadline.isoformat(),
            "base_hours": _hours(self.base),
            "promotion": self.promotion,
            "promotion_extra_hours": _hours(self.extra),
            "paused_days": [d.isoformat() for d in self.paused_days],
        }


# built several times per parcel (every clock): the positional builder skips the frozen guard
_allowance = frozen_builder(Allowance)


def _hours(span: timedelta) -> float:
    """A duration in hours, rounded for display."""
    return round(span.total_seconds() / 3600, 2)


def paused_deadline(
    start: datetime, amount: timedelta, policy: Policy, thresholds: Thresholds
) -> Allowance:
    """``start`` plus ``amount`` on the working clock (rest days pause, no promotion extra)."""
    tz = policy.timezone
    local = start.astimezone(tz)
    end, paused = working_end(
        start, local, amount, tz, thresholds.pause_on_holidays, thresholds.pause_on_weekends
    )
    return _allowance(local, end, amount, _NO_EXTRA, None, paused)


def _stretched(
    start: datetime,
    base: timedelta,
    policy: Policy,
    thresholds: Thresholds,
    extra_of: Callable[[Promotion], timedelta],
) -> Allowance:
    """Apply the stretching rule of the module docstring."""
    first = paused_deadline(start, base, policy, thresholds)
    first_day = first.start.date()
    last_day = first.deadline.date()
    key = (first_day, last_day, extra_of)
    memo = policy._promoted
    if key in memo:
        best = memo[key]
    else:
        if len(memo) >= _PROMOTED_MAX:
            memo.clear()  # bounded like the lru_cache it replaces; days only move forward
        best = memo[key] = _largest_promotion(policy.promotions, first_day, last_day, extra_of)
    if best is None:
        return first
    extra = extra_of(best)
    second = paused_deadline(start, base + extra, policy, thresholds)
    return replace(second, base=base, extra=extra, promotion=best.name)


_PROMOTED_MAX = 8192
_NO_EXTRA = timedelta(0)


def _dispatch_extra(promotion: Promotion) -> timedelta:
    """A promotion's extra dispatch time."""
    return timedelta(hours=promotion.extra_dispatch_hours)


def _transit_extra(promotion: Promotion) -> timedelta:
    """A promotion's extra transit time."""
    return timedelta(days=promotion.extra_transit_days)


def _largest_promotion(
    promotions: tuple[Promotion, ...],
    first_day: date,
    last_day: date,
    extra_of: Callable[[Promotion], timedelta],
) -> Promotion | None:
    """The overlapping promotion with the largest extra (memoised per policy by the caller)."""
    overlapping = [
        p for p in promotions if extra_of(p) > timedelta(0) and p.overlaps(first_day, last_day)
    ]
    return max(overlapping, key=extra_of) if overlapping else None


def dispatch_window(
    paid_at: datetime,
    policy: Policy,
    courier: str | None = None,
    *,
    origin: str | None = None,
    destination: str | None = None,
) -> Allowance:
    """When an order paid at ``paid_at`` must be shipped, with how the window was stretched."""
    thresholds = policy.thresholds_for(courier, origin, destination)
    return _stretched(
        paid_at,
        timedelta(hours=thresholds.dispatch_hours),
        policy,
        thresholds,
        _dispatch_extra,
    )


def ship_deadline(
    paid_at: datetime,
    policy: Policy,
    courier: str | None = None,
    *,
    origin: str | None = None,
    destination: str | None = None,
) -> datetime:
    """``paid_at`` + ``dispatch_hours`` (48 h), stretched by rest days and promotions."""
    return dispatch_window(
        paid_at, policy, courier, origin=origin, destination=destination
    ).deadline


@lru_cache(maxsize=8192)
def _lane(origin_province: str, origin_city: str, province: str, city: str) -> Lane:
    """The lane between two places; cached because orders repeat the same few pairs."""
    if same_province(origin_province, province):
        return Lane.SAME_CITY if same_city(origin_city, city) else Lane.SAME_PROVINCE
    if is_remote(origin_province) or is_remote(province):
        return Lane.REMOTE
    return Lane.OTHER_PROVINCE


def lane_of(origin: Address, destination: Address) -> Lane:
    """Same city, same province, remote (either end) or other province."""
    return _lane(origin.province, origin.city, destination.province, destination.city)


def transit_window(
    origin: Address,
    destination: Address,
    courier: str | None,
    shipped_at: datetime,
    policy: Policy,
    *,
    thresholds: Thresholds | None = None,
) -> Allowance:
    """When a parcel shipped at ``shipped_at`` should be delivered, and how that was stretched.

    ``thresholds``, when the caller already has them, must be
    ``policy.thresholds_for(courier, origin.province, destination.province)``.
    """
    if thresholds is None:
        thresholds = policy.thresholds_for(courier, origin.province, destination.province)
    days = thresholds.transit_days(lane_of(origin, destination))
    return _stretched(
        shipped_at,
        timedelta(days=days),
        policy,
        thresholds,
        _transit_extra,
    )


def transit_allowance(
    origin: Address, destination: Address, courier: str | None, shipped_at: datetime, policy: Policy
) -> timedelta:
    """The lane allowance (1/2/4/7 d) stretched by rest days and promotions, as a duration."""
    window = transit_window(origin, destination, courier, shipped_at, policy)
    return window.deadline - shipped_at
