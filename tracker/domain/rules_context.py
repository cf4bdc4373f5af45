"""One evaluation of one order: per-parcel facts computed once, rule results memoised.

Detection runs for thousands of orders a second, so everything a rule reads more than
once (effective status, scans, the newest problem, thresholds, canonical destination)
is computed here once per parcel, and each rule's result per parcel is memoised so
precedence checks ("does lost fire for this parcel?") cost nothing the second time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from carriers.geo import canonical_city, canonical_province
from carriers.model import Location, Problem, Status, TrackingEvent
from tracker.domain.model import ExceptionKind, OrderFacts, Severity, ShipmentFacts
from tracker.domain.policy import Policy, Thresholds

__all__ = [
    "FOUND_AGAIN",
    "GOING_BACK",
    "Check",
    "Hit",
    "Parcel",
    "ParcelRule",
    "city_of",
    "place",
    "province_of",
]

#: Statuses of a parcel on its way back to the sender.
GOING_BACK = frozenset({Status.RETURNING, Status.RETURNED})
_PENDING = Status.PENDING
_DELIVERED = Status.DELIVERED
_LOST = Problem.LOST
#: Statuses of a later problem-free scan that prove a parcel reported lost was found.
FOUND_AGAIN = frozenset(
    {
        Status.PICKED_UP,
        Status.IN_TRANSIT,
        Status.OUT_FOR_DELIVERY,
        Status.READY_FOR_PICKUP,
        Status.DELIVERED,
        Status.RETURNING,
        Status.RETURNED,
    }
)


@lru_cache(maxsize=8192)
def province_of(name: str | None) -> str | None:
    """The canonical province name, else ``None``; cached, scan places repeat a lot."""
    return canonical_province(name)


@lru_cache(maxsize=16384)
def city_of(name: str | None, province: str | None) -> str | None:
    """The canonical prefecture-level city, else ``None`` (unknown or ambiguous)."""
    return canonical_city(name, province)


@dataclass(slots=True)
class Hit:
    """One parcel (or the whole order) matching one kind, before one is chosen per order."""

    severity: Severity
    evidence: dict[str, Any]
    reason: str
    next_step: str
    action: str
    since: datetime  # when the trouble started: among equally severe hits the oldest wins
    parcel: Parcel | None = None


class Parcel:
    """One shipment's facts as the rules read them, computed once."""

    __slots__ = (
        "clocks",
        "delivered",
        "events",
        "first_scan",
        "last_event",
        "last_scan",
        "lost_report",
        "memo",
        "newest_problem",
        "scans",
        "shipment",
        "status",
        "thresholds",
    )

    def __init__(self, shipment: ShipmentFacts, order: OrderFacts, policy: Policy) -> None:
        self.shipment = shipment
        events = self.events = shipment.events
        # one pass over the events instead of a generator per fact (built for every order)
        newest_problem = lost_report = None
        pending = delivery_scan = False
        for event in events:
            status = event.status
            if status is _PENDING:
                pending = True
            elif status is _DELIVERED:
                delivery_scan = True
            problem = event.problem
            if problem:
                newest_problem = event
                if problem is _LOST:
                    lost_report = event
            elif lost_report is not None and problem is None and status in FOUND_AGAIN:
                lost_report = None  # a later problem-free scan shows the parcel moving
        # a pending event is a label being printed, not a scan of the parcel
        if pending or type(events) is not tuple:
            scans = tuple(e for e in events if e.status is not _PENDING)
        else:
            scans = events
        self.scans = scans
        self.first_scan = scans[0] if scans else None
        self.last_scan = scans[-1] if scans else None
        self.last_event = events[-1] if events else None
        self.newest_problem = newest_problem
        #: the newest LOST event, unless a later problem-free scan shows the parcel moving
        self.lost_report: TrackingEvent | None = lost_report
        self.status = _effective_status(shipment, scans, delivery_scan)
        #: True once any delivery is known: a parcel never regresses from delivered (read
        #: by most rules, so stored rather than a property)
        self.delivered = self.status is Status.DELIVERED
        self.thresholds: Thresholds = policy.thresholds_for(
            shipment.courier, order.origin.province, order.destination.province
        )
        self.memo: dict[ExceptionKind, Hit | None] = {}
        # deadlines by name, shared by the rules and the schedule (rules_timing)
        self.clocks: dict[str, Any] = {}


def _effective_status(
    shipment: ShipmentFacts, scans: tuple[TrackingEvent, ...], delivery_scan: bool
) -> Status:
    """The stored status, except that a delivery scan always wins and scans beat a blank.

    ``delivery_scan`` says whether one of ``scans`` is a delivery (the caller looked).
    """
    if shipment.status is Status.DELIVERED or delivery_scan:
        return Status.DELIVERED
    if shipment.status in (Status.UNKNOWN, Status.PENDING) and scans:
        return scans[-1].status
    return shipment.status


ParcelRule = Callable[["Check", Parcel], Hit | None]

# (now, timezone, now in it) of the last check: a batch checks every order at one instant,
# so the conversion (and the awareness test) is done once per batch, not once per order
_LAST_NOW: list[tuple[Any, Any, Any]] = [(None, None, None)]


class Check:
    """One evaluation of one order at one instant ``now`` (shop timezone)."""

    def __init__(
        self,
        order: OrderFacts,
        policy: Policy,
        now: datetime,
        parcel_rules: Mapping[ExceptionKind, ParcelRule],
    ) -> None:
        self.order = order
        self.policy = policy
        tz = policy.timezone
        seen, seen_tz, local = _LAST_NOW[0]
        if now is not seen or tz is not seen_tz:
            if now.tzinfo is None or now.utcoffset() is None:
                raise ValueError(f"now must be timezone-aware: {now!r}")
            local = now.astimezone(tz)
            _LAST_NOW[0] = (now, tz, local)
        self.now: datetime = local
        self.parcels = tuple(Parcel(s, order, policy) for s in order.shipments)
        self.destination_province = province_of(order.destination.province)
        self.destination_city = city_of(order.destination.city, self.destination_province)
        self._parcel_rules = parcel_rules
        # order-level deadlines by name, shared by the rules and the schedule (rules_timing)
        self.clocks: dict[str, Any] = {}

    def hit(self, kind: ExceptionKind, parcel: Parcel) -> Hit | None:
        """Whether ``kind`` fires for ``parcel``, evaluated at most once per check."""
        memo = parcel.memo
        if kind in memo:
            return memo[kind]
        found = memo[kind] = self._parcel_rules[kind](self, parcel)
        return found

    def fires_for(self, parcel: Parcel, *kinds: ExceptionKind) -> ExceptionKind | None:
        """The first of ``kinds`` that fires for ``parcel``, if any."""
        for kind in kinds:
            if self.hit(kind, parcel) is not None:
                return kind
        return None

    def iso(self, moment: datetime | None) -> str | None:
        """``moment`` as ISO 8601 with the shop's offset."""
        return moment.astimezone(self.policy.timezone).isoformat() if moment else None

    def hours_since(self, moment: datetime) -> float:
        """Hours from ``moment`` to now, rounded for display."""
        return round((self.now - moment).total_seconds() / 3600, 2)

    def event_evidence(self, event: TrackingEvent | None) -> dict[str, Any] | None:
        """One scan as JSON-ready facts."""
        if event is None:
            return None
        return {
            "time": self.iso(event.time),
            "status": event.status.value,
            "raw_code": event.raw_code,
            "text": event.text,
            "place": place(event.location),
            "problem": event.problem.value if event.problem else None,
        }

    def parcel_evidence(self, parcel: Parcel) -> dict[str, Any]:
        """The facts every shipment-level ticket carries."""
        shipment = parcel.shipment
        last = parcel.last_scan
        return {
            "tracking_number": shipment.tracking_number,
            "courier": shipment.courier,
            "status": parcel.status.value,
            "shipped_at": self.iso(shipment.shipped_at),
            "first_scan_at": self.iso(parcel.first_scan.time) if parcel.first_scan else None,
            "last_scan_at": self.iso(last.time) if last else None,
            "last_scan_text": last.text if last else None,
            "last_scan_place": place(last.location) if last else None,
            "checked_at": self.iso(self.now),
        }


def place(location: Location) -> str | None:
    """``浙江省杭州市西湖区``; ``None`` when nothing is known."""
    parts = [location.province, location.city, location.district]
    if parts[1] is not None and parts[1] == parts[0]:
        parts[1] = None  # a municipality is its own city: 北京市, not 北京市北京市
    text = "".join(p for p in parts if p)
    return text or location.country or None
