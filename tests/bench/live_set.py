"""The live data set: a million live parcels, their scans and a ticket history.

See :func:`load_live_set`. Rows are generated lazily and written by
:class:`tests.bench.datagen.Loader` (``COPY`` on PostgreSQL, ``executemany`` on SQLite);
times are whole epoch seconds formatted through a per-hour cache, because tens of millions
of ``datetime`` conversions would dominate the load time.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from carriers.geo import parse_location
from carriers.model import Location, Status, TrackingEvent
from tests.bench.datagen import (
    BUYER_COLS,
    ITEM_COLS,
    ORDER_COLS,
    SHIP_COLS,
    Loader,
    buyer_rows,
    item_row,
    open_loader,
    order_row,
)
from tests.bench.scenario import CHINA_TZ, ORIGINS, PLACES, Fate, RouteStep, number_for, route_for
from tracker.domain.model import Address, OrderFacts, ShipmentFacts
from tracker.domain.policy import Policy
from tracker.domain.rules import next_check_at
from tracker.report.build import report_window
from tracker.report.rollup import refresh_rollups
from tracker.settings import Settings
from tracker.store.uow import make_engine

__all__ = ["LIVE_MIX", "LiveSet", "load_live_set"]

_STATUS = {
    "103": "picked_up",
    "1002": "in_transit",
    "1001": "in_transit",
    "5": "out_for_delivery",
    "301": "delivered",
}
_FAMILY = {"103": "1", "1002": "0", "1001": "0", "5": "5", "301": "3"}

_EVENT_COLS = (
    "id",
    "shipment_id",
    "time",
    "status",
    "raw_code",
    "text",
    "country",
    "province",
    "city",
    "district",
    "dedupe_key",
    "source",
    "ingested_at",
)


#: the live set's parcels: (category, share, status); see :func:`load_live_set`
LIVE_MIX: tuple[tuple[str, float, str], ...] = (
    ("moving", 0.76, "in_transit"),
    ("picked_up", 0.05, "picked_up"),
    ("last_mile", 0.06, "out_for_delivery"),
    ("pending", 0.05, "pending"),
    ("stalled", 0.04, "in_transit"),
    ("lost", 0.01, "in_transit"),
    ("misrouted", 0.03, "in_transit"),
)

# hours since the last scan, per category: (min, max)
_LAST_SCAN_HOURS = {
    "moving": (1, 40),
    "picked_up": (1, 20),
    "last_mile": (1, 30),
    "stalled": (49, 120),
    "lost": (8 * 24, 15 * 24),
    "misrouted": (1, 30),
}
# categories with an open (or acknowledged) ticket, and its kind
_OPEN_KIND = {"stalled": "stalled", "lost": "lost", "misrouted": "wrong_region"}
# the kinds of the resolved tickets every other order had, by weight
_PAST_KINDS = (
    ("stalled", 30), ("overdue", 20), ("not_shipped", 15), ("delivery_failed", 10),
    ("returned", 5), ("weight_mismatch", 5), ("carrier_exception", 5), ("lost", 5),
    ("wrong_region", 5),
)  # fmt: skip
_NOTIFY_KINDS = frozenset(
    {"stalled", "overdue", "not_shipped", "lost", "delivery_failed", "returned"}
)
_HOUR = 3600


@dataclass(frozen=True, slots=True)
class _Scan:
    code: str
    raw_code: str
    status: str
    text: str
    province: str | None
    city: str | None
    district: str | None


class _Routes:
    """Scan routes cached per (origin, destination, fate, variant), with parsed places."""

    def __init__(self) -> None:
        self._cache: dict[tuple[int, int, str, int], list[_Scan]] = {}

    def scans(self, origin: int, dest: int, fate: str, variant: int) -> list[_Scan]:
        """The full route of that kind of parcel (texts as the fake provider writes them)."""
        key = (origin, dest, fate, variant)
        found = self._cache.get(key)
        if found is None:
            steps = route_for(f"R{key}", PLACES[origin], PLACES[dest], None, fate)
            found = [self._scan(step) for step in steps]
            self._cache[key] = found
        return found

    @staticmethod
    def _scan(step: RouteStep) -> _Scan:
        loc = parse_location(step.text)
        raw = f"{_FAMILY[step.code]}/{step.code}"
        return _Scan(
            step.code, raw, _STATUS[step.code], step.text, loc.province, loc.city, loc.district
        )


def _u(pk: int, salt: int) -> float:
    """A fixed pseudo-random number in [0, 1) for (``pk``, ``salt``): cheaper than a Random."""
    return ((pk * 2654435761 + salt * 40503 + 12345) * 2246822519 % 4294967296) / 4294967296


def _pick(x: float, table: Sequence[tuple[str, int]]) -> str:
    total = sum(w for _, w in table)
    x *= total
    for name, weight in table:
        x -= weight
        if x < 0:
            return name
    return table[-1][0]


def _category(pk: int) -> tuple[str, str]:
    u = (pk * 0.6180339887498949) % 1.0  # golden-ratio spread: every share, in every chunk
    for name, share, status in LIVE_MIX:
        u -= share
        if u < 0:
            return name, status
    return LIVE_MIX[0][0], LIVE_MIX[0][2]


def _place_ids(pk: int) -> tuple[int, int]:
    origin = ORIGINS[pk % len(ORIGINS)]
    return PLACES.index(origin), (pk * 7) % len(PLACES)


def _live_scans(routes: _Routes, category: str, pk: int) -> list[_Scan]:
    origin, dest = _place_ids(pk)
    variant = pk % 4
    if category == "pending":
        return []
    if category == "picked_up":
        return routes.scans(origin, dest, Fate.NORMAL, variant)[:1]
    if category == "moving":
        return routes.scans(origin, dest, Fate.NORMAL, variant)[:3]
    if category in ("stalled", "lost"):
        return routes.scans(origin, dest, Fate.STALLED, variant)[:2]
    if category == "misrouted":
        return routes.scans(origin, dest, Fate.MISROUTED, variant)[:5]
    full = routes.scans(origin, dest, Fate.NORMAL, variant)  # last_mile: up to 派件
    return full[:2] + full[-3:-1]


def _shipped(pk: int, category: str, now: int) -> tuple[int, int | None]:
    """(shipped_at, last scan) of live parcel ``pk`` in epoch seconds."""
    if category == "pending":
        return now - int((2 + _u(pk, 1) * 18) * _HOUR), None
    low, high = _LAST_SCAN_HOURS[category]
    last = now - int((low + _u(pk, 2) * (high - low)) * _HOUR)
    return last - int((8 + _u(pk, 3) * 24) * _HOUR), last


@dataclass
class LiveSet:
    """What :func:`load_live_set` wrote."""

    shipments: int
    tickets: int
    categories: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)


def load_live_set(url: str, n: int, now: datetime, *, tickets: bool = True) -> LiveSet:
    """``n`` orders with one live parcel each and their scans; one ticket per order.

    Nothing is due for polling at ``now``; stalled (4 %), lost (1 %) and mis-routed (3 %)
    parcels carry an open or acknowledged ticket, every other order a resolved one from the
    last 60 days, so the daily report has about ``n`` tickets to read.
    """
    lo = open_loader(url)
    routes = _Routes()
    categories: dict[str, int] = {}
    buyers = max(1, n // 3)
    at = int(now.timestamp())
    try:
        lo.write("buyers", BUYER_COLS, buyer_rows(lo, buyers, now - timedelta(days=90)))
        lo.write("orders", ORDER_COLS, _live_orders(lo, routes, n, at, buyers))
        lo.write("order_items", ITEM_COLS, (item_row(pk) for pk in range(1, n + 1)))
        lo.write("shipments", SHIP_COLS, _live_shipments(lo, n, at, categories))
        lo.write("tracking_events", _EVENT_COLS, _live_events(lo, routes, n, at))
        if tickets:
            _write_tickets(lo, n, at, buyers)
        lo.finish()
    except BaseException:
        lo.close()
        raise
    _build_report_rollups(url, now)
    return LiveSet(n, lo.rows_written.get("tickets", 0), categories, dict(lo.rows_written))


def _build_report_rollups(url: str, now: datetime) -> None:
    """The daily report's rollups as the report job leaves them: refreshed for today's report.

    The tracker's own refresh does it (set-based ``INSERT ... SELECT``), with the bench's
    timezone and the default policy and report time, as the bench's tracker config has.
    """
    settings = Settings.model_validate({"timezone": CHINA_TZ.key, "database": {"url": url}})
    policy = Policy.from_mapping(settings.policy, timezone=settings.tz)
    window = report_window(now.astimezone(settings.tz).date(), now, settings)
    engine = make_engine(url)
    try:
        refresh_rollups(engine, policy, window, now)
    finally:
        engine.dispose()


#: the tracker's periodic pass ran this long before the measured one
PREVIOUS_PASS = timedelta(hours=1)


def _live_orders(
    lo: Loader, routes: _Routes, n: int, now: int, buyers: int
) -> Iterator[tuple[Any, ...]]:
    """Order rows, each with the next check the tracker stored at its previous pass.

    ``next_check_at`` comes from the tracker's own pure function on the order's facts (as
    :func:`_live_shipments` and :func:`_live_events` write them) at ``now`` minus
    :data:`PREVIOUS_PASS`: what the database holds after that pass, so the measured pass
    finds due exactly the orders whose moment came within the hour.
    """
    policy = Policy.from_mapping({}, timezone=CHINA_TZ)  # the bench config has no [policy]
    previous = datetime.fromtimestamp(now, UTC) - PREVIOUS_PASS
    for pk in range(1, n + 1):
        category, status = _category(pk)
        shipped, last = _shipped(pk, category, now)
        origin, dest = _place_ids(pk)
        paid = datetime.fromtimestamp(shipped - 6 * _HOUR, UTC)
        facts = _facts(routes, pk, category, status, paid, shipped, last)
        due = next_check_at(facts, policy, previous)
        yield order_row(lo, pk, "L", buyers, paid, PLACES[origin], PLACES[dest], due)


_LOCATIONS: dict[tuple[str | None, str | None, str | None], Location] = {}


def _facts(
    routes: _Routes,
    pk: int,
    category: str,
    status: str,
    paid: datetime,
    shipped: int,
    last: int | None,
) -> OrderFacts:
    """The facts detection reads for live order ``pk``, as the rows below store them."""
    origin, dest = PLACES[_place_ids(pk)[0]], PLACES[_place_ids(pk)[1]]
    events: list[TrackingEvent] = []
    for when, scan in _scan_times(routes, pk, category, shipped, last):
        key = (scan.province, scan.city, scan.district)
        location = _LOCATIONS.get(key)
        if location is None:
            country = "中国" if scan.province else None
            location = _LOCATIONS[key] = Location(country, *key)
        events.append(
            TrackingEvent(
                datetime.fromtimestamp(when, UTC),
                Status(scan.status),
                scan.raw_code,
                scan.text,
                location,
            )
        )
    courier, number = number_for(pk, prefix="L")
    parcel = ShipmentFacts(
        courier, number, Status(status), datetime.fromtimestamp(shipped, UTC), tuple(events)
    )
    district = dest.districts[pk % len(dest.districts)]
    return OrderFacts(
        f"L{pk:09d}",
        paid,
        Address(origin.province, origin.city),
        Address(dest.province, dest.city, district, f"{district}幸福路 {pk % 300 + 1} 号"),
        1.0,
        (parcel,),
    )


def _scan_times(
    routes: _Routes, pk: int, category: str, shipped: int, last: int | None
) -> Iterator[tuple[int, _Scan]]:
    """(epoch second, scan) of live parcel ``pk``'s stored scans, oldest first."""
    if last is None:
        return
    scans = _live_scans(routes, category, pk)
    first = shipped + 2 * _HOUR
    span = (last - first) // max(1, len(scans) - 1)
    for k, scan in enumerate(scans):
        yield (last if k == len(scans) - 1 else first + span * k), scan


def _live_shipments(
    lo: Loader, n: int, now: int, categories: dict[str, int]
) -> Iterator[tuple[Any, ...]]:
    ts = lo.ts_epoch
    for pk in range(1, n + 1):
        category, status = _category(pk)
        categories[category] = categories.get(category, 0) + 1
        courier, number = number_for(pk, prefix="L")
        shipped, last = _shipped(pk, category, now)
        polled = now - 60 * (pk % 120)
        first = None if last is None else shipped + 2 * _HOUR
        yield (
            pk, pk, courier, number, ts(shipped), status, "kuaidi100", lo.flag(False),
            ts(first), ts(last), ts(now + 60 * (30 + pk % 600)), ts(polled), 3, 0,
            ts(shipped), ts(polled),
        )  # fmt: skip


def _live_events(lo: Loader, routes: _Routes, n: int, now: int) -> Iterator[tuple[Any, ...]]:
    ts, china = lo.ts_epoch, _china_iso
    event_id = 0
    for pk in range(1, n + 1):
        category, _ = _category(pk)
        shipped, last = _shipped(pk, category, now)
        ingested = ts(now - 60 * (pk % 120))
        for when, scan in _scan_times(routes, pk, category, shipped, last):
            # the identity the store computes (the parser gives China time)
            ident = f"{china(when)}|{scan.raw_code}|{scan.text}"
            event_id += 1
            yield (
                event_id, pk, ts(when), scan.status, scan.raw_code, scan.text,
                "中国" if scan.province else None, scan.province, scan.city, scan.district,
                hashlib.sha1(ident.encode(), usedforsecurity=False).hexdigest(), "kuaidi100",
                ingested,
            )  # fmt: skip


_CHINA_HOURS: dict[int, str] = {}


def _china_iso(epoch: int) -> str:
    """``datetime.isoformat()`` of an epoch second in China time, cached per hour."""
    hour, rest = divmod(epoch, _HOUR)
    prefix = _CHINA_HOURS.get(hour)
    if prefix is None:
        prefix = datetime.fromtimestamp(hour * _HOUR, CHINA_TZ).strftime("%Y-%m-%dT%H")
        _CHINA_HOURS[hour] = prefix
    minute, second = divmod(rest, 60)
    return f"{prefix}:{minute:02d}:{second:02d}+08:00"


_TICKET_COLS = (
    "id", "order_pk", "shipment_id", "courier", "tracking_number", "kind", "severity",
    "status", "opened_at", "updated_at", "acknowledged_at", "resolved_at", "resolution",
    "evidence", "suggested_action", "detections", "reopen_blocked",
)  # fmt: skip
_LOG_COLS = ("ticket_id", "at", "action", "severity", "note", "actor")
_NOTICE_COLS = (
    "ticket_id", "order_pk", "buyer_id", "channel", "recipient", "template", "body",
    "idempotency_key", "status", "scheduled_for", "sent_at", "attempts", "provider",
    "created_at",
)  # fmt: skip
_ALERT_COLS = (
    "ticket_id", "event_type", "endpoint", "payload", "idempotency_key", "status",
    "attempts", "next_attempt_at", "sent_at", "response_status", "created_at",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Ticket:
    kind: str
    status: str
    severity: str
    opened: int
    acknowledged: int | None
    resolved: int | None


def _ticket(pk: int, now: int) -> _Ticket:
    category, _ = _category(pk)
    kind = _OPEN_KIND.get(category)
    severity = "high" if _u(pk, 4) < 0.4 else "medium"
    if kind is not None:
        opened = now - int((1 + _u(pk, 5) * 47) * _HOUR)
        acked = opened + 1800 if _u(pk, 6) < 0.25 else None
        status = "acknowledged" if acked else "open"
        severity = "critical" if kind == "lost" else severity
        return _Ticket(kind, status, severity, opened, acked, None)
    kind = _pick(_u(pk, 7), _PAST_KINDS)
    opened = now - int((2 + _u(pk, 8) * 60 * 24) * _HOUR)
    resolved = min(now, opened + int((1 + _u(pk, 9) * 96) * _HOUR))
    return _Ticket(kind, "resolved", severity, opened, None, resolved)


def _write_tickets(lo: Loader, n: int, now: int, buyers: int) -> None:
    ts = lo.ts_epoch

    def tickets() -> Iterator[tuple[Any, ...]]:
        for pk in range(1, n + 1):
            t = _ticket(pk, now)
            courier, number = number_for(pk, prefix="L")
            evidence = (
                f'{{"hours_since_last_scan": {50 + pk % 70}, "threshold_hours": 48, '
                f'"last_scan": {{"time": "{_china_iso(t.opened)}", '
                f'"text": "快件已到达【杭州转运中心】"}}}}'
            )
            yield (
                pk, pk, pk, courier, number, t.kind, t.severity, t.status, ts(t.opened),
                ts(t.resolved or t.acknowledged or t.opened), ts(t.acknowledged),
                ts(t.resolved), "已签收" if t.resolved else None, evidence,
                "联系快递核实并告知买家原因", 1, lo.flag(False),
            )  # fmt: skip

    def log() -> Iterator[tuple[Any, ...]]:
        for pk in range(1, n + 1):
            t = _ticket(pk, now)
            yield (pk, ts(t.opened), "opened", t.severity, None, "tracker")
            if t.acknowledged:
                yield (pk, ts(t.acknowledged), "acknowledged", None, "已联系快递", "agent")
            if t.resolved:
                yield (pk, ts(t.resolved), "auto_resolved", None, "已签收", "tracker")

    def notices() -> Iterator[tuple[Any, ...]]:
        for pk in range(2, n + 1, 2):
            t = _ticket(pk, now)
            if t.kind not in _NOTIFY_KINDS:
                continue
            buyer = (pk - 1) % buyers + 1
            yield (
                pk, pk, buyer, "sms", f"13{buyer:09d}", t.kind,
                f"【本店】您的订单 L{pk:09d} 的包裹暂时没有新的物流信息，我们已联系快递核实。",
                f"notice-{pk}-{t.kind}", "sent", ts(t.opened), ts(t.opened + 180), 1,
                "dry-run", ts(t.opened),
            )  # fmt: skip

    def alerts() -> Iterator[tuple[Any, ...]]:
        for pk in range(5, n + 1, 5):
            t = _ticket(pk, now)
            payload = json.dumps({"type": "ticket.opened", "data": {"id": pk, "kind": t.kind}})
            yield (
                pk, "ticket.opened", "ops", payload, f"alert-{pk}-ticket.opened-ops", "sent", 1,
                ts(t.opened), ts(t.opened), 200, ts(t.opened),
            )  # fmt: skip

    lo.write("tickets", _TICKET_COLS, tickets())
    lo.write("ticket_log", _LOG_COLS, log())
    lo.write("notices", _NOTICE_COLS, notices())
    lo.write("alerts", _ALERT_COLS, alerts())
