"""A seeded database for the report's golden tests, and the numbers computed without SQL.

The seed is pseudo-random but fixed (``random.Random(7)``): about 90 orders around the
2026 中秋 and 国庆 holidays, with parcels on every lane, tickets of every kind and status,
ticket log entries, buyer notices and agent alerts. :class:`Seed` keeps every row it wrote
as plain Python objects, and the ``expected_*`` functions count them directly (and judge
on-time delivery with the policy per parcel), so the report's aggregate SQL is checked
against an independent implementation.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.engine import Connection

from tracker.domain.model import Address
from tracker.domain.policy import Policy, lane_of, transit_window
from tracker.store.tables import (
    alerts,
    buyers,
    notices,
    orders,
    shipments,
    ticket_log,
    tickets,
    tracking_events,
)

TZ = ZoneInfo("Asia/Shanghai")
#: the report of 2026-10-10 covers 10-09 08:00 .. 10-10 08:00; the period is 09-10 .. 10-09
REPORT_DAY = datetime(2026, 10, 10, tzinfo=TZ).date()
WINDOW_END = datetime(2026, 10, 10, 8, 0, tzinfo=TZ)
WINDOW_START = WINDOW_END - timedelta(days=1)
PERIOD_START = datetime(2026, 9, 10, tzinfo=TZ)
PERIOD_END = datetime(2026, 10, 10, tzinfo=TZ)
NOW = datetime(2026, 10, 10, 9, 30, tzinfo=TZ)
MAX_ACTIONS = 12

POLICY_TABLE: dict[str, Any] = {
    "couriers": {"ems": {"other_province_days": 5, "pause_on_weekends": True}},
    "lanes": [{"destination": "新疆", "courier": "sf", "remote_days": 5}],
    "promotions": [
        {
            "name": "国庆大促",
            "start": "09-28",
            "end": "10-03",
            "extra_dispatch_hours": 24,
            "extra_transit_days": 1,
        }
    ],
}
SOURCES = ("sandbox", "kd100")
ORIGIN = Address("广东省", "广州市")
DESTINATIONS = [
    Address("广东省", "广州市"),
    Address("广东省", "深圳市"),
    Address("浙江省", "杭州市"),
    Address("北京市", "北京市"),
    Address("四川省", "成都市"),
    Address("西藏自治区", "拉萨市"),
    Address("新疆维吾尔自治区", "乌鲁木齐市"),
]
COURIERS = ["yto", "zto", "sf", "ems", "deppon"]
KINDS = [
    "not_shipped",
    "stalled",
    "overdue",
    "lost",
    "wrong_region",
    "weight_mismatch",
    "delivery_failed",
    "returned",
    "carrier_exception",
]
SEVERITIES = ["low", "medium", "high", "critical"]


@dataclass
class Parcel:
    """One seeded shipment."""

    id: int
    order: int
    courier: str
    destination: Address
    shipped_at: datetime | None
    first_scan_at: datetime | None
    delivered_at: datetime | None
    status: str
    source: str | None
    last_polled_at: datetime | None
    error_kind: str | None


@dataclass
class Ticket:
    """One seeded ticket."""

    id: int
    order: int
    shipment: int | None
    kind: str
    severity: str
    status: str
    opened_at: datetime
    resolved_at: datetime | None
    destination: Address


@dataclass
class Seed:
    """Every row written, as plain objects."""

    order_ids: dict[int, str] = field(default_factory=dict)
    destinations: dict[int, Address] = field(default_factory=dict)
    parcels: list[Parcel] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    log: list[tuple[int, str, datetime]] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    last_scan: dict[int, tuple[datetime, str, str | None, str | None]] = field(default_factory=dict)


def _at(rng: random.Random, start: datetime, end: datetime) -> datetime:
    """A random instant in [start, end), whole seconds (never on a boundary by chance)."""
    span = int((end - start).total_seconds())
    return start + timedelta(seconds=rng.randrange(1, span - 1))


def _insert(conn: Connection, table: Any, values: dict[str, Any]) -> int:
    return int(conn.execute(table.insert().values(**values).returning(table.c.id)).scalar_one())


def seed(conn: Connection) -> Seed:
    """Write the seed and return what was written."""
    rng = random.Random(7)
    out = Seed()
    created = datetime(2026, 8, 1, tzinfo=TZ)
    buyer_ids = [
        _insert(
            conn,
            buyers,
            {
                "phone": f"1380013{i:04d}",
                "name": f"买家{i}",
                "opt_out": False,
                "created_at": created,
                "updated_at": created,
            },
        )
        for i in range(12)
    ]
    for n in range(90):
        destination = DESTINATIONS[n % len(DESTINATIONS)]
        courier = COURIERS[n % len(COURIERS)]
        paid = _at(rng, PERIOD_START - timedelta(days=6), WINDOW_END - timedelta(hours=6))
        order_pk = _insert(
            conn,
            orders,
            {
                "order_id": f"G{n:04d}",
                "buyer_id": buyer_ids[n % len(buyer_ids)],
                "paid_at": paid,
                "origin_province": ORIGIN.province,
                "origin_city": ORIGIN.city,
                "dest_province": destination.province,
                "dest_city": destination.city,
                "dest_district": None,
                "dest_address": "测试路 1 号",
                "items_weight_kg": 1.0,
                "active": True,
                "created_at": created,
                "updated_at": created,
            },
        )
        out.order_ids[order_pk] = f"G{n:04d}"
        out.destinations[order_pk] = destination
        parcel = None if n % 11 == 10 else _parcel(conn, rng, out, n, order_pk, courier, paid)
        _tickets(conn, rng, out, order_pk, parcel, destination)
    _outbox(conn, rng, out, buyer_ids)
    return out


def _parcel(
    conn: Connection,
    rng: random.Random,
    out: Seed,
    n: int,
    order_pk: int,
    courier: str,
    paid: datetime,
) -> Parcel:
    shipped: datetime | None = paid + timedelta(hours=rng.uniform(2, 40))
    first_scan = (shipped or paid) + timedelta(hours=rng.uniform(1, 10))
    if n % 13 == 0:
        shipped = None  # no shipped_at: transit starts at the first scan
    start = shipped or first_scan
    roll = rng.random()
    delivered: datetime | None = None
    status = "in_transit"
    if roll < 0.6:
        delivered = start + timedelta(hours=rng.uniform(15, 24 * 9))
        status = "delivered"
        if delivered >= WINDOW_END and rng.random() < 0.5:
            status = "in_transit"  # delivered after the window: not delivered as of then
            delivered = None
    elif roll < 0.7:
        status = "returned"
    source = SOURCES[n % 2]
    error = "not_found" if n % 9 == 4 else None
    polled = _at(rng, WINDOW_END - timedelta(hours=30), NOW)
    shipment_id = _insert(
        conn,
        shipments,
        {
            "order_pk": order_pk,
            "courier": courier,
            "tracking_number": f"T{n:08d}",
            "shipped_at": shipped,
            "status": status,
            "source": source,
            "provider_finished": False,
            "first_scan_at": first_scan,
            "last_scan_at": delivered or first_scan,
            "delivered_at": delivered,
            "last_polled_at": polled,
            "poll_count": 1,
            "consecutive_failures": 0,
            "error_kind": error,
            "created_at": paid,
            "updated_at": paid,
        },
    )
    scans = [(first_scan, f"【广州市】已揽收，快递员电话 1391234{n:04d}", "广东省", "广州市")]
    if n % 3:
        scans.append((first_scan + timedelta(hours=20), "快件到达转运中心", "湖南省", "长沙市"))
    for i, (time, text, province, city) in enumerate(scans):
        conn.execute(
            tracking_events.insert().values(
                shipment_id=shipment_id,
                time=time,
                status="in_transit",
                raw_code="0",
                text=text,
                province=province,
                city=city,
                dedupe_key=f"{shipment_id}-{i}",
                source=source,
                ingested_at=time,
            )
        )
    out.last_scan[shipment_id] = scans[-1]
    parcel = Parcel(
        shipment_id,
        order_pk,
        courier,
        out.destinations[order_pk],
        shipped,
        first_scan,
        delivered,
        status,
        source,
        polled,
        error,
    )
    out.parcels.append(parcel)
    return parcel


def _tickets(
    conn: Connection,
    rng: random.Random,
    out: Seed,
    order_pk: int,
    parcel: Parcel | None,
    destination: Address,
) -> None:
    kinds = ["not_shipped"] if parcel is None else rng.sample(KINDS[1:], rng.choice([0, 1, 1, 2]))
    for kind in kinds:
        opened = _at(rng, PERIOD_START - timedelta(days=5), NOW)
        if rng.random() < 0.25:
            opened = _at(rng, WINDOW_START, WINDOW_END)
        status = rng.choice(["open", "open", "acknowledged", "resolved", "resolved"])
        resolved = None
        if status == "resolved":
            resolved = opened + timedelta(hours=rng.uniform(1, 24 * 6))
            if resolved > NOW:
                resolved, status = None, "open"
        severity = rng.choice(SEVERITIES)
        evidence = {
            "trigger": "no_new_scan",
            "hours_since_last_scan": 50.0,
            "thresholds": {"stalled_hours": 48},
        }
        ticket_id = _insert(
            conn,
            tickets,
            {
                "order_pk": order_pk,
                "shipment_id": parcel.id if parcel else None,
                "courier": parcel.courier if parcel else None,
                "tracking_number": f"T{parcel.id:08d}" if parcel else None,
                "kind": kind,
                "severity": severity,
                "status": status,
                "opened_at": opened,
                "updated_at": opened,
                "resolved_at": resolved,
                "evidence": evidence,
                "suggested_action": "联系快递核实，电话 13912345678",
                "detections": 1,
                "reopen_blocked": False,
            },
        )
        ticket = Ticket(
            ticket_id,
            order_pk,
            parcel.id if parcel else None,
            kind,
            severity,
            status,
            opened,
            resolved,
            destination,
        )
        out.tickets.append(ticket)
        entries = [("opened", opened)]
        if rng.random() < 0.3:
            entries.append(("escalated", opened + timedelta(hours=rng.uniform(1, 30))))
        if status == "acknowledged" or (resolved and rng.random() < 0.5):
            entries.append(("acknowledged", opened + timedelta(hours=rng.uniform(0.5, 20))))
        if resolved is not None:
            entries.append((rng.choice(["auto_resolved", "resolved"]), resolved))
        for action, at in entries:
            conn.execute(
                ticket_log.insert().values(ticket_id=ticket_id, at=at, action=action, actor="t")
            )
            out.log.append((ticket_id, action, at))


def _outbox(conn: Connection, rng: random.Random, out: Seed, buyer_ids: list[int]) -> None:
    for i, ticket in enumerate(out.tickets):
        status = rng.choice(["sent", "sent", "failed", "queued", "suppressed"])
        scheduled = ticket.opened_at + timedelta(minutes=rng.uniform(0, 600))
        row = {
            "ticket_id": ticket.id,
            "order_pk": ticket.order,
            "buyer_id": buyer_ids[i % 5],
            "channel": "sms",
            "recipient": "13800130000",
            "template": ticket.kind,
            "body": "您好",
            "idempotency_key": f"notice-{ticket.id}",
            "status": status,
            "scheduled_for": scheduled,
            "sent_at": scheduled + timedelta(seconds=30) if status == "sent" else None,
            "attempts": 1,
            "created_at": ticket.opened_at,
        }
        conn.execute(notices.insert().values(**row))
        out.notices.append(row)
        alert_status = rng.choice(["sent", "dead", "queued"])
        alert = {
            "ticket_id": ticket.id,
            "event_type": "ticket.opened",
            "endpoint": "ops",
            "payload": {},
            "idempotency_key": f"alert-{ticket.id}",
            "status": alert_status,
            "attempts": rng.choice([0, 1, 3]),
            "next_attempt_at": scheduled,
            "created_at": ticket.opened_at,
        }
        conn.execute(alerts.insert().values(**alert))
        out.alerts.append(alert)


def as_utc(value: datetime | None) -> datetime | None:
    """Aware UTC, for comparisons with rows read back."""
    return value.astimezone(UTC) if value else None


def expected_on_time(parcel: Parcel, policy: Policy) -> str:
    """``on_time``, ``late`` or ``undecided`` for one parcel, by the policy itself."""
    start = parcel.shipped_at or parcel.first_scan_at
    assert start is not None
    deadline = transit_window(ORIGIN, parcel.destination, parcel.courier, start, policy).deadline
    if parcel.delivered_at is not None and parcel.delivered_at < WINDOW_END:
        return "on_time" if parcel.delivered_at <= deadline else "late"
    if parcel.status in ("returning", "returned"):
        return "undecided"
    return "late" if deadline < WINDOW_END else "undecided"


def lane(parcel: Parcel) -> str:
    """The parcel's lane per the policy (not the report's SQL)."""
    return lane_of(ORIGIN, parcel.destination).value


def in_period(parcel: Parcel) -> bool:
    """Whether the parcel's transit started within the 30-day period."""
    start = parcel.shipped_at or parcel.first_scan_at
    return start is not None and PERIOD_START <= start < PERIOD_END


def open_at_end(ticket: Ticket) -> bool:
    """Opened before the window's end and not resolved by then."""
    return ticket.opened_at < WINDOW_END and (
        ticket.resolved_at is None or ticket.resolved_at >= WINDOW_END
    )


def nearest_rank(values: list[float], percent: int) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(values)
    rank = -(-len(ordered) * percent // 100)
    return ordered[max(rank, 1) - 1]
