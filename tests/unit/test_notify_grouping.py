"""Regional bursts: same courier and region within the window become one alert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from tracker.notify.grouping import PendingAlert, plan_bursts
from tracker.settings import AlertGroupingConfig

T0 = datetime(2026, 9, 14, 2, 0, tzinfo=UTC)
TZ = ZoneInfo("Asia/Shanghai")


def alert(
    i: int,
    *,
    minutes: float = 0,
    courier: str = "yto",
    province: str = "浙江省",
    city: str = "杭州市",
    endpoint: str = "ops",
    event: str = "ticket.opened",
) -> PendingAlert:
    """A queued ticket.opened alert for order A{i}."""
    data = {
        "id": i,
        "order_id": f"A{i}",
        "kind": "stalled",
        "courier": courier,
        "tracking_number": f"YT{i}",
        "opened_at": (T0 + timedelta(minutes=minutes)).astimezone(TZ).isoformat(),
        "destination": {"province": province, "city": city},
    }
    return PendingAlert(
        i, endpoint, event, {"type": event, "data": data}, T0 + timedelta(minutes=minutes)
    )


def test_three_tickets_same_courier_and_province_become_one_burst() -> None:
    """Three stalled YTO parcels to 浙江 within 5 minutes: one burst led by the first."""
    rows = [alert(1), alert(2, minutes=1, city="宁波市"), alert(3, minutes=4)]
    (burst,) = plan_bursts(rows, AlertGroupingConfig(), T0, TZ)
    assert burst.lead_id == 1 and burst.member_ids == (2, 3)
    data = burst.payload["data"]
    assert burst.payload["type"] == "ticket.burst"
    assert data["courier_name"] == "圆通速递" and data["region"] == {"province": "浙江省"}
    assert data["count"] == 3 and data["kinds"] == {"stalled": 3}
    assert [t["order_id"] for t in data["tickets"]] == ["A1", "A2", "A3"]


def test_below_the_minimum_or_outside_the_window_stays_single() -> None:
    """Two tickets, or three spread over more than the window, are not grouped."""
    config = AlertGroupingConfig()
    assert plan_bursts([alert(1), alert(2)], config, T0, TZ) == []
    spread = [alert(1), alert(2, minutes=3), alert(3, minutes=9)]
    assert plan_bursts(spread, config, T0, TZ) == []


def test_other_couriers_regions_endpoints_and_events_are_kept_apart() -> None:
    """Only same endpoint, courier and region ticket.opened alerts group."""
    rows = [
        alert(1),
        alert(2, courier="zto"),
        alert(3, province="江苏省"),
        alert(4, endpoint="slack"),
        alert(5, event="ticket.resolved"),
    ]
    assert plan_bursts(rows, AlertGroupingConfig(min_tickets=2), T0, TZ) == []


def test_city_level_and_disabled_grouping() -> None:
    """Grouping by city splits by city; a disabled grouping never groups."""
    rows = [alert(1), alert(2, city="宁波市"), alert(3), alert(4)]
    (burst,) = plan_bursts(rows, AlertGroupingConfig(region="city"), T0, TZ)
    assert burst.payload["data"]["region"] == {"province": "浙江省", "city": "杭州市"}
    assert (burst.lead_id, burst.member_ids) == (1, (3, 4))
    assert plan_bursts(rows, AlertGroupingConfig(enabled=False), T0, TZ) == []
