"""Plain domain objects: orders as imported, and the facts detection rules read."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from carriers.model import Status, TrackingEvent, frozen_builder

__all__ = [
    "Address",
    "Buyer",
    "Detection",
    "ExceptionKind",
    "Item",
    "Order",
    "OrderFacts",
    "Severity",
    "ShipmentFacts",
    "ShipmentRecord",
    "TicketStatus",
    "frozen_builder",
]


class ExceptionKind(StrEnum):
    """What kind of trouble a ticket is about (DESIGN §5)."""

    NOT_SHIPPED = "not_shipped"
    STALLED = "stalled"
    OVERDUE = "overdue"
    LOST = "lost"
    WRONG_REGION = "wrong_region"
    WEIGHT_MISMATCH = "weight_mismatch"
    DELIVERY_FAILED = "delivery_failed"
    RETURNED = "returned"
    CARRIER_EXCEPTION = "carrier_exception"


class Severity(StrEnum):
    """How urgently an agent should look; ordered low < medium < high < critical."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """Numeric order for comparisons and sorting."""
        return _SEVERITY_RANK[self]


_SEVERITY_RANK = {Severity.LOW: 0, Severity.MEDIUM: 1, Severity.HIGH: 2, Severity.CRITICAL: 3}


class TicketStatus(StrEnum):
    """Lifecycle of an exception ticket."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Buyer:
    """The person who paid; ``phone`` is kept whole in the store and masked when shown."""

    name: str
    phone: str
    chat_id: str | None = None
    opt_out: bool = False


@dataclass(frozen=True, slots=True)
class Address:
    """A Chinese address split into its administrative parts."""

    province: str
    city: str
    district: str | None = None
    address: str | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """One order line."""

    sku: str
    name: str
    qty: int
    unit_weight_kg: float | None = None


@dataclass(frozen=True, slots=True)
class ShipmentRecord:
    """A parcel as the order system reports it."""

    courier: str
    tracking_number: str
    shipped_at: datetime | None = None
    weight_kg: float | None = None


@dataclass(frozen=True, slots=True)
class Order:
    """A paid order as imported (DESIGN §8 order record)."""

    order_id: str
    paid_at: datetime
    buyer: Buyer
    origin: Address
    destination: Address
    items: tuple[Item, ...]
    ship_by: datetime | None = None
    deliver_by: datetime | None = None
    shipments: tuple[ShipmentRecord, ...] = ()

    @property
    def items_weight_kg(self) -> float | None:
        """Total ordered weight, or ``None`` when any line has no unit weight."""
        if any(i.unit_weight_kg is None for i in self.items):
            return None
        return round(sum(i.qty * (i.unit_weight_kg or 0.0) for i in self.items), 3)


@dataclass(frozen=True, slots=True)
class ShipmentFacts:
    """What detection knows about one parcel: stored state plus its events, oldest first."""

    courier: str
    tracking_number: str
    status: Status
    shipped_at: datetime | None
    events: tuple[TrackingEvent, ...] = ()
    weight_kg: float | None = None
    provider_finished: bool = False

    @property
    def first_scan_at(self) -> datetime | None:
        """Time of the oldest scan, if any."""
        return self.events[0].time if self.events else None

    @property
    def last_scan_at(self) -> datetime | None:
        """Time of the newest scan, if any."""
        return self.events[-1].time if self.events else None


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """Everything the rules read about one order."""

    order_id: str
    paid_at: datetime
    origin: Address
    destination: Address
    items_weight_kg: float | None
    shipments: tuple[ShipmentFacts, ...] = ()
    ship_by: datetime | None = None
    deliver_by: datetime | None = None


@dataclass(frozen=True, slots=True)
class Detection:
    """One rule firing for an order: the kind, the shipment concerned, and why."""

    kind: ExceptionKind
    severity: Severity
    evidence: dict[str, Any]
    suggested_action: str
    tracking_number: str | None = None
    courier: str | None = None
    notify_buyer: bool = True
    reason: str = ""
    next_step: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
