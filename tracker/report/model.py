"""What the daily report holds: plain, JSON-ready dataclasses filled by aggregate queries.

Times are ISO 8601 strings with the shop's offset, so the JSON form is the model itself
(:meth:`DailyReport.to_dict`). The window arithmetic lives here too: a report *of* day D
covers the 24 h before ``[report] at`` (08:00) on D; "the last 30 days" (trends, carrier
scorecard, regions) are the 30 whole local days before D.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

__all__ = [
    "SCHEMA_VERSION",
    "SEVERITIES",
    "URGENT_KINDS",
    "ActionItem",
    "AgeBucket",
    "CarrierScore",
    "DailyReport",
    "Disruption",
    "Headline",
    "OldTicket",
    "RegionRow",
    "ReportMeta",
    "ReportWindow",
    "SourceFreshness",
    "Trends",
    "daily_window",
]

#: bumped when a field of the JSON form changes meaning or disappears
SCHEMA_VERSION = 1
SEVERITIES = ("critical", "high", "medium", "low")
#: the action list shows these kinds first, in this order, then everything else by age
URGENT_KINDS = ("lost", "overdue")


@dataclass(frozen=True, slots=True)
class ReportWindow:
    """The instants a daily report covers, all aware datetimes."""

    day: date
    tz: ZoneInfo
    start: datetime
    end: datetime
    #: local midnights bounding each of the trend days: ``len(days) + 1`` instants
    day_edges: tuple[datetime, ...]

    @property
    def days(self) -> tuple[date, ...]:
        """The trend days, oldest first."""
        return tuple(edge.astimezone(self.tz).date() for edge in self.day_edges[:-1])

    @property
    def period_start(self) -> datetime:
        """Start of the 30-day period (first trend day's midnight)."""
        return self.day_edges[0]

    @property
    def period_end(self) -> datetime:
        """End of the 30-day period (midnight starting the report day)."""
        return self.day_edges[-1]


def daily_window(
    day: date, now: datetime, tz: ZoneInfo, at: time = time(8, 0), period_days: int = 30
) -> ReportWindow:
    """The window of the report of ``day``: never reaching past ``now``."""
    end = min(datetime.combine(day, at, tzinfo=tz), now.astimezone(tz))
    start = end - timedelta(days=1)
    edges = tuple(
        datetime.combine(day - timedelta(days=period_days - i), time(), tzinfo=tz)
        for i in range(period_days + 1)
    )
    return ReportWindow(day, tz, start, end, edges)


@dataclass(slots=True)
class ReportMeta:
    """What the report covers and when it was made."""

    kind: str
    date: str
    timezone: str
    window_start: str
    window_end: str
    generated_at: str
    period_start: str
    period_end: str
    shop: str
    schema_version: int = SCHEMA_VERSION


@dataclass(slots=True)
class OldTicket:
    """One of the oldest open tickets."""

    ticket_id: int
    order_id: str
    kind: str
    severity: str
    courier: str | None
    tracking_number: str | None
    opened_at: str
    open_hours: float


@dataclass(slots=True)
class Headline:
    """The numbers at the top: open tickets, the last day's activity, outbox trouble."""

    open_total: int = 0
    open_by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    opened: int = 0
    resolved: int = 0
    auto_resolved: int = 0
    resolved_by_agent: int = 0
    escalated: int = 0
    acknowledged: int = 0
    oldest_open: list[OldTicket] = field(default_factory=list)
    notices_sent: int = 0
    buyers_notified: int = 0
    notices_failed: int = 0
    notices_waiting: int = 0
    alerts_dead: int = 0
    alerts_retrying: int = 0

    @property
    def alerts_undelivered(self) -> int:
        """Alerts given up on in the window plus those still retrying."""
        return self.alerts_dead + self.alerts_retrying


@dataclass(slots=True)
class ActionItem:
    """One open ticket in the action list; texts already masked."""

    ticket_id: int
    order_id: str
    kind: str
    kind_label: str
    severity: str
    status: str
    courier: str | None
    courier_name: str | None
    tracking_number: str | None
    destination: str
    opened_at: str
    open_hours: float
    last_scan_time: str | None
    last_scan_place: str | None
    last_scan_text: str | None
    evidence: str
    suggested_action: str


@dataclass(slots=True)
class AgeBucket:
    """Open tickets whose age falls in ``[min_hours, max_hours)``, by kind."""

    label: str
    min_hours: float
    max_hours: float | None
    total: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Trends:
    """Per-day counts over the 30-day period, and the age profile of open tickets."""

    days: list[str] = field(default_factory=list)
    opened_by_kind: dict[str, list[int]] = field(default_factory=dict)
    resolved: list[int] = field(default_factory=list)
    open_age: list[AgeBucket] = field(default_factory=list)


@dataclass(slots=True)
class CarrierScore:
    """A courier's record over the period (``lane`` None: all lanes together).

    ``exceptions`` counts parcels with a ticket of each kind (a parcel may have several);
    ``exceptional`` counts parcels with any, so ``exception_rate`` never exceeds 1.

    ``on_time_rate`` = on time / (on time + late); a parcel is late once it is past the
    policy's stretched lane allowance undelivered, or was delivered after it. Parcels
    still within their allowance, and parcels refused or returned, are not counted.
    Transit percentiles are nearest-rank over delivered parcels' transit in whole hours
    (rounded down), given in days.
    """

    courier: str
    courier_name: str
    lane: str | None
    shipments: int = 0
    delivered: int = 0
    on_time: int = 0
    late: int = 0
    undecided: int = 0
    on_time_rate: float | None = None
    median_transit_days: float | None = None
    p90_transit_days: float | None = None
    exceptions: dict[str, int] = field(default_factory=dict)
    exception_rates: dict[str, float] = field(default_factory=dict)
    exception_total: int = 0
    #: parcels with at least one ticket, and their share of all parcels
    exceptional: int = 0
    exception_rate: float | None = None
    lost: int = 0


@dataclass(slots=True)
class RegionRow:
    """Parcels of the period by destination province, their tickets, and what is open now.

    ``by_kind`` counts parcels with a ticket of each kind and ``exceptions`` their sum;
    ``exceptional`` counts parcels with any ticket (``exception_rate`` = its share);
    ``open_now`` counts the tickets of those parcels still open at the window's end.
    """

    province: str
    shipments: int = 0
    exceptions: int = 0
    exceptional: int = 0
    exception_rate: float | None = None
    open_now: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class Disruption:
    """A promotion or public holiday that stretches allowances near the report day."""

    name: str
    kind: str  # "promotion" | "holiday"
    first_day: str
    last_day: str
    active: bool
    extra_dispatch_hours: float = 0.0
    extra_transit_days: float = 0.0


@dataclass(slots=True)
class SourceFreshness:
    """How recent the data from one tracking source is."""

    source: str
    last_success_at: str | None
    hours_since: float | None
    failing_shipments: int
    stale: bool


@dataclass(slots=True)
class DailyReport:
    """Everything the daily report shows."""

    meta: ReportMeta
    headline: Headline
    actions: list[ActionItem]
    actions_total: int
    trends: Trends
    couriers: list[CarrierScore]
    lanes: list[CarrierScore]
    regions: list[RegionRow]
    disruptions: list[Disruption]
    freshness: list[SourceFreshness]

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (see tracker/report/render_json.py for the contract)."""
        data: dict[str, Any] = _plain(self)
        data["headline"]["alerts_undelivered"] = self.headline.alerts_undelivered
        return data

    def summary(self) -> dict[str, Any]:
        """A few key numbers, for listings and the webhook card."""
        h = self.headline
        return {
            "date": self.meta.date,
            "open_total": h.open_total,
            "opened": h.opened,
            "resolved": h.resolved,
            "urgent": sum(sum(h.open_by_kind.get(k, {}).values()) for k in URGENT_KINDS),
            "notices_failed": h.notices_failed,
            "alerts_undelivered": h.alerts_undelivered,
        }


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _plain(value: Any) -> Any:
    """What ``dataclasses.asdict`` gives for the report, without its per-value deep copies.

    The report holds only dataclasses, lists, dicts and scalars, built for one rendering,
    so nothing needs copying; this is several times faster on a 500-row action list.
    """
    kind = type(value)
    names = _FIELD_NAMES.get(kind)
    if names is None and is_dataclass(value) and not isinstance(value, type):
        names = _FIELD_NAMES.setdefault(kind, tuple(f.name for f in fields(value)))
    if names is not None:
        return {name: _plain(getattr(value, name)) for name in names}
    if kind is list or kind is tuple:
        return kind(_plain(item) for item in value)
    if kind is dict:
        return {_plain(k): _plain(v) for k, v in value.items()}
    return value
