"""Small builders for orders, parcels and scans used by the rules and policy tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from carriers.model import Location, Problem, Status, TrackingEvent
from tracker.domain.model import Address, OrderFacts, ShipmentFacts

TZ = ZoneInfo("Asia/Shanghai")
GUANGZHOU = Address("广东省", "广州市")
SHENZHEN = Address("广东省", "深圳市")
HANGZHOU = Address("浙江省", "杭州市", "西湖区", "文三路 1 号")
LHASA = Address("西藏自治区", "拉萨市", "城关区", "北京中路 1 号")

# A quiet week: no public holiday, no promotion window (Mon 2026-09-07 .. Fri 09-18).
PAID = datetime(2026, 9, 7, 10, 0, tzinfo=TZ)
SHIPPED = PAID + timedelta(hours=20)


def at(text: str) -> datetime:
    """``"2026-09-08 10:00"`` as an aware datetime in the shop's timezone."""
    return datetime.fromisoformat(text).replace(tzinfo=TZ)


def hours(amount: float) -> timedelta:
    """A duration in hours."""
    return timedelta(hours=amount)


def scan(
    time: datetime,
    status: Status = Status.IN_TRANSIT,
    *,
    province: str | None = None,
    city: str | None = None,
    problem: Problem | None = None,
    text: str = "快件已到达中转中心",
) -> TrackingEvent:
    """One scan, optionally with a place and a provider problem."""
    return TrackingEvent(
        time=time,
        status=status,
        raw_code=status.value,
        text=text,
        location=Location(country="中国", province=province, city=city),
        problem=problem,
    )


def parcel(
    *events: TrackingEvent,
    status: Status | None = None,
    courier: str = "yto",
    number: str = "YT0001",
    shipped_at: datetime | None = SHIPPED,
    weight_kg: float | None = None,
) -> ShipmentFacts:
    """A parcel; its status defaults to the newest scan's (pending without scans)."""
    if status is None:
        status = events[-1].status if events else Status.PENDING
    return ShipmentFacts(
        courier=courier,
        tracking_number=number,
        status=status,
        shipped_at=shipped_at,
        events=tuple(events),
        weight_kg=weight_kg,
    )


def order(
    *shipments: ShipmentFacts,
    paid_at: datetime = PAID,
    origin: Address = GUANGZHOU,
    destination: Address = HANGZHOU,
    items_weight_kg: float | None = None,
    ship_by: datetime | None = None,
    deliver_by: datetime | None = None,
) -> OrderFacts:
    """An order from Guangzhou to Hangzhou paid at :data:`PAID` unless told otherwise."""
    return OrderFacts(
        order_id="A1001",
        paid_at=paid_at,
        origin=origin,
        destination=destination,
        items_weight_kg=items_weight_kg,
        shipments=shipments,
        ship_by=ship_by,
        deliver_by=deliver_by,
    )


def picked_up(time: datetime) -> TrackingEvent:
    """The pickup scan in Guangzhou."""
    return scan(time, Status.PICKED_UP, province="广东省", city="广州市", text="快件已揽收")
