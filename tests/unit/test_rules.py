"""Unit tests for the time-based rules: not_shipped, stalled, overdue, lost and precedence."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from carriers.model import Problem, Status
from tests.unit.rules_builders import PAID, at, hours, order, parcel, picked_up, scan
from tracker.domain import playbook as pb
from tracker.domain.model import Detection, ExceptionKind, OrderFacts, Severity
from tracker.domain.policy import Override, Policy
from tracker.domain.rules import (
    detect,
    detect_lost,
    detect_not_shipped,
    detect_overdue,
    detect_stalled,
)

K = ExceptionKind
POLICY = Policy()
MINUTE = timedelta(minutes=1)
FAR = PAID + timedelta(days=60)  # a deliver_by that keeps overdue out of a test's way


def kinds(found: list[Detection]) -> list[ExceptionKind]:
    """The kinds of a detect() result."""
    return [d.kind for d in found]


# --- not_shipped -------------------------------------------------------------------


def test_not_shipped_fires_only_after_paid_plus_48_hours() -> None:
    """No shipment: quiet at paid + 48 h, fires (medium) a minute later."""
    unshipped = order()
    assert detect_not_shipped(unshipped, POLICY, PAID + hours(48)) is None
    found = detect_not_shipped(unshipped, POLICY, PAID + hours(48) + MINUTE)
    assert found is not None
    assert found.severity is Severity.MEDIUM
    assert found.notify_buyer is True
    assert found.tracking_number is None
    assert found.evidence["ship_by"] == "2026-09-09T10:00:00+08:00"
    assert found.evidence["thresholds"] == {"dispatch_hours": 48.0}
    assert found.reason == pb.REASON_NOT_SHIPPED
    assert "小礼品" in found.suggested_action and "退款" in found.suggested_action


def test_not_shipped_turns_high_a_day_past_the_deadline() -> None:
    """24 h past ship-by the ticket is high."""
    unshipped = order()
    late = detect_not_shipped(unshipped, POLICY, PAID + hours(72) - MINUTE)
    later = detect_not_shipped(unshipped, POLICY, PAID + hours(72))
    assert late is not None and late.severity is Severity.MEDIUM
    assert later is not None and later.severity is Severity.HIGH


def test_not_shipped_uses_the_imported_ship_by() -> None:
    """An order's own ship_by replaces the policy window."""
    promised = order(ship_by=PAID + hours(24))
    assert detect_not_shipped(promised, POLICY, PAID + hours(24) - MINUTE) is None
    found = detect_not_shipped(promised, POLICY, PAID + hours(24) + MINUTE)
    assert found is not None and found.evidence["ship_by_source"] == "order"


def test_not_shipped_window_is_stretched_by_national_day() -> None:
    """Paid Sep 30 20:00 the order may ship until Oct 9 20:00."""
    paid = at("2026-09-30 20:00")
    unshipped = order(paid_at=paid)
    assert detect_not_shipped(unshipped, POLICY, at("2026-10-09 20:00")) is None
    found = detect_not_shipped(unshipped, POLICY, at("2026-10-09 20:01"))
    assert found is not None
    assert len(found.evidence["dispatch_window"]["paused_days"]) == 7


def test_waybill_without_pickup_scan_fires_24_hours_after_shipped_at() -> None:
    """A label with no pickup scan: quiet at shipped + 24 h, fires after, names the parcel."""
    shipped_at = PAID + hours(20)
    label_only = order(
        parcel(scan(shipped_at, Status.PENDING, text="已下单"), status=Status.PENDING)
    )
    assert detect_not_shipped(label_only, POLICY, shipped_at + hours(24)) is None
    found = detect_not_shipped(label_only, POLICY, shipped_at + hours(24) + MINUTE)
    assert found is not None
    assert found.evidence["trigger"] == "no_pickup_scan"
    assert found.tracking_number == "YT0001"
    assert found.courier == "yto"
    assert found.suggested_action == pb.ACTION_NOT_PICKED_UP
    assert found.reason == pb.REASON_NOT_PICKED_UP


def test_waybill_without_shipped_at_waits_for_ship_by_plus_pickup_window() -> None:
    """Without shipped_at the pickup clock starts at the order's ship-by time."""
    unknown_time = order(parcel(shipped_at=None))
    assert detect_not_shipped(unknown_time, POLICY, PAID + hours(72)) is None
    assert detect_not_shipped(unknown_time, POLICY, PAID + hours(72) + MINUTE) is not None


def test_picked_up_parcel_is_shipped() -> None:
    """A pickup scan clears not_shipped for good."""
    moving = order(parcel(picked_up(PAID + hours(22))))
    assert detect_not_shipped(moving, POLICY, PAID + hours(47)) is None


def test_not_shipped_parcel_is_not_also_overdue() -> None:
    """A never-scanned parcel is a not_shipped case even after its delivery deadline."""
    stuck = order(parcel(), deliver_by=PAID + hours(30))
    assert kinds(detect(stuck, POLICY, PAID + hours(100))) == [K.NOT_SHIPPED]


# --- stalled -----------------------------------------------------------------------


def stalled_order(status: Status = Status.IN_TRANSIT, courier: str = "yto") -> OrderFacts:
    """Picked up, last scan at paid + 30 h in the given status; delivery promised far away."""
    last = scan(PAID + hours(30), status, province="浙江省", city="杭州市")
    return order(parcel(picked_up(PAID + hours(22)), last, courier=courier), deliver_by=FAR)


def test_stalled_fires_after_48_hours_without_a_scan_in_transit() -> None:
    """In transit: quiet at 48 h since the last scan, medium just after."""
    moving = stalled_order()
    last = PAID + hours(30)
    assert detect_stalled(moving, POLICY, last + hours(48)) is None
    found = detect_stalled(moving, POLICY, last + hours(48) + MINUTE)
    assert found is not None
    assert found.severity is Severity.MEDIUM
    assert found.reason == "在运输途中已超过48小时没有更新"
    assert found.next_step == pb.NEXT_STALLED
    assert found.evidence["hours_since_last_scan"] == pytest.approx(48.02)
    assert found.evidence["last_scan_place"] == "浙江省杭州市"
    assert found.evidence["thresholds"] == {"stalled_hours": 48.0}


def test_stalled_turns_high_past_twice_the_threshold() -> None:
    """96 h without a scan in transit is high."""
    moving = stalled_order()
    last = PAID + hours(30)
    medium = detect_stalled(moving, POLICY, last + hours(96))
    high = detect_stalled(moving, POLICY, last + hours(96) + MINUTE)
    assert medium is not None and medium.severity is Severity.MEDIUM
    assert high is not None and high.severity is Severity.HIGH


@pytest.mark.parametrize("status", [Status.OUT_FOR_DELIVERY, Status.READY_FOR_PICKUP])
def test_stalled_fires_after_24_hours_in_the_last_mile(status: Status) -> None:
    """Out for delivery or at a station: 24 h is the limit."""
    at_door = stalled_order(status)
    last = PAID + hours(30)
    assert detect_stalled(at_door, POLICY, last + hours(24)) is None
    found = detect_stalled(at_door, POLICY, last + hours(24) + MINUTE)
    assert found is not None
    assert found.evidence["thresholds"] == {"stalled_last_mile_hours": 24.0}


def test_parcel_at_a_station_asks_the_buyer_to_collect() -> None:
    """A parcel waiting at a locker gets the collection wording, not the courier-check one."""
    waiting = stalled_order(Status.READY_FOR_PICKUP)
    found = detect_stalled(waiting, POLICY, PAID + hours(60))
    assert found is not None
    assert found.suggested_action == pb.ACTION_AWAITING_COLLECTION
    assert "驿站" in found.reason


def test_stalled_threshold_is_per_courier() -> None:
    """A deppon override of 72 h keeps deppon quiet where yto fires."""
    policy = Policy(overrides=(Override({"stalled_hours": 72.0}, courier="deppon"),))
    now = PAID + hours(30 + 60)
    assert detect_stalled(stalled_order(courier="deppon"), policy, now) is None
    assert detect_stalled(stalled_order(courier="yto"), policy, now) is not None


def test_stall_clock_pauses_over_national_day() -> None:
    """Last scan Sep 30 12:00: not stalled on Oct 5; stalled after Oct 9 12:00."""
    last = scan(at("2026-09-30 12:00"), province="浙江省", city="杭州市")
    resting = order(parcel(picked_up(at("2026-09-30 08:00")), last), deliver_by=FAR + hours(900))
    assert detect_stalled(resting, POLICY, at("2026-10-05 12:00")) is None
    assert detect_stalled(resting, POLICY, at("2026-10-09 12:00")) is None
    assert detect_stalled(resting, POLICY, at("2026-10-09 12:01")) is not None


def test_exception_status_is_not_stalled() -> None:
    """A parcel on hold is a carrier problem, not a stall."""
    held = stalled_order(Status.ON_HOLD)
    assert detect_stalled(held, POLICY, PAID + hours(100)) is None


# --- overdue -----------------------------------------------------------------------


def overdue_order(deliver_by: datetime | None = None) -> OrderFacts:
    """Shipped Sep 8 06:00 from Guangzhou to Hangzhou (4 d), scanned until Sep 11 20:00."""
    shipment = parcel(
        picked_up(at("2026-09-08 08:00")),
        scan(at("2026-09-11 20:00"), province="浙江省", city="杭州市"),
        shipped_at=at("2026-09-08 06:00"),
    )
    return order(shipment, deliver_by=deliver_by)


def test_overdue_fires_after_shipped_plus_lane_allowance() -> None:
    """Other province: quiet at shipped + 4 d, high just after, with the lane in evidence."""
    late = overdue_order()
    assert detect_overdue(late, POLICY, at("2026-09-12 06:00")) is None
    found = detect_overdue(late, POLICY, at("2026-09-12 06:01"))
    assert found is not None
    assert found.severity is Severity.HIGH
    assert found.evidence["lane"] == "other_province"
    assert found.evidence["deliver_by"] == "2026-09-12T06:00:00+08:00"
    assert found.evidence["thresholds"] == {"other_province_days": 4.0}
    assert found.reason == pb.REASON_OVERDUE


def test_overdue_uses_the_orders_deliver_by_when_given() -> None:
    """deliver_by is the promise: it replaces the lane allowance."""
    promised = overdue_order(deliver_by=at("2026-09-10 12:00"))
    assert detect_overdue(promised, POLICY, at("2026-09-10 12:00")) is None
    found = detect_overdue(promised, POLICY, at("2026-09-10 12:01"))
    assert found is not None and found.evidence["deliver_by_source"] == "order"


def test_overdue_allowance_is_stretched_by_national_day() -> None:
    """Shipped Sep 30 10:00: due Oct 11 10:00, not Oct 4."""
    shipment = parcel(
        picked_up(at("2026-09-30 12:00")),
        scan(at("2026-10-10 20:00"), province="浙江省", city="杭州市"),
        shipped_at=at("2026-09-30 10:00"),
    )
    slow = order(shipment)
    assert detect_overdue(slow, POLICY, at("2026-10-11 10:00")) is None
    assert detect_overdue(slow, POLICY, at("2026-10-11 10:01")) is not None


def test_overdue_allowance_gets_the_double_11_extra() -> None:
    """Shipped Nov 5 (双11): due after 6 days, not 4."""
    shipment = parcel(
        picked_up(at("2026-11-05 12:00")),
        scan(at("2026-11-10 20:00"), province="浙江省", city="杭州市"),
        shipped_at=at("2026-11-05 10:00"),
    )
    busy = order(shipment)
    assert detect_overdue(busy, POLICY, at("2026-11-10 10:01")) is None
    assert detect_overdue(busy, POLICY, at("2026-11-11 10:01")) is not None


def test_lane_override_moves_the_overdue_deadline() -> None:
    """A 广东->浙江 override of 6 days keeps the parcel on time on day 5."""
    policy = Policy(
        overrides=(Override({"other_province_days": 6.0}, origin="广东", destination="浙江"),)
    )
    late = overdue_order()
    assert detect_overdue(late, policy, at("2026-09-13 06:00")) is None
    assert detect_overdue(late, policy, at("2026-09-14 06:01")) is not None


def test_late_delivery_is_not_retroactively_overdue() -> None:
    """Delivered after the deadline: no overdue once the delivery scan is in."""
    shipment = parcel(
        picked_up(at("2026-09-08 08:00")),
        scan(at("2026-09-14 09:00"), Status.DELIVERED, province="浙江省", city="杭州市"),
        shipped_at=at("2026-09-08 06:00"),
    )
    assert detect_overdue(order(shipment), POLICY, at("2026-09-15 10:00")) is None


# --- lost and precedence -----------------------------------------------------------


def test_silence_for_7_days_is_lost_and_replaces_stalled_and_overdue() -> None:
    """7 days without a scan: stalled (high) just before, only lost (high) just after."""
    silent = stalled_order()
    last = PAID + hours(30)
    before = detect(silent, POLICY, last + timedelta(days=7))
    assert kinds(before) == [K.STALLED]
    after = detect(silent, POLICY, last + timedelta(days=7) + MINUTE)
    assert kinds(after) == [K.LOST]
    assert after[0].severity is Severity.HIGH
    assert after[0].evidence["thresholds"] == {"lost_days": 7.0}
    assert after[0].reason == "已超过7天没有物流更新，可能已遗失"


def test_provider_reported_lost_is_critical_at_once() -> None:
    """A LOST problem fires lost (critical) without waiting, and no stall or carrier ticket."""
    reported = scan(PAID + hours(40), Status.EXCEPTION, problem=Problem.LOST, text="快件遗失")
    gone = order(parcel(picked_up(PAID + hours(22)), reported))
    found = detect(gone, POLICY, PAID + hours(41))
    assert kinds(found) == [K.LOST]
    assert found[0].severity is Severity.CRITICAL
    assert found[0].reason == pb.REASON_LOST_REPORTED
    assert "补发或退款" in found[0].suggested_action


def test_lost_report_is_withdrawn_by_a_later_normal_scan() -> None:
    """A lost parcel found again (a later problem-free transit scan) is not lost."""
    reported = scan(PAID + hours(40), Status.EXCEPTION, problem=Problem.LOST)
    found_again = scan(PAID + hours(50), province="浙江省", city="杭州市")
    recovered = order(parcel(picked_up(PAID + hours(22)), reported, found_again))
    assert detect_lost(recovered, POLICY, PAID + hours(51)) is None


def test_parcel_going_back_is_not_lost_by_silence() -> None:
    """A returning parcel silent for 8 days is a return, not a loss."""
    going_back = scan(PAID + hours(40), Status.RETURNING, text="退回中")
    back = order(parcel(picked_up(PAID + hours(22)), going_back))
    assert kinds(detect(back, POLICY, PAID + hours(40) + timedelta(days=8))) == [K.RETURNED]


def test_delivered_parcel_never_fires_time_based_kinds() -> None:
    """Delivered long ago and silent since: nothing fires, even a month later."""
    done = scan(PAID + hours(50), Status.DELIVERED, province="浙江省", city="杭州市")
    delivered = order(parcel(picked_up(PAID + hours(22)), done), deliver_by=PAID + hours(30))
    assert detect(delivered, POLICY, PAID + timedelta(days=30)) == []


def test_delivered_never_regresses_on_a_late_scan() -> None:
    """A stray transit scan after delivery (stored status in_transit) keeps it delivered."""
    done = scan(PAID + hours(50), Status.DELIVERED, province="浙江省", city="杭州市")
    stray = scan(PAID + hours(51), Status.IN_TRANSIT, province="浙江省", city="杭州市")
    shipment = parcel(picked_up(PAID + hours(22)), done, stray, status=Status.IN_TRANSIT)
    assert detect(order(shipment), POLICY, PAID + timedelta(days=20)) == []


def test_naive_now_is_refused() -> None:
    """Rules need an aware clock; a naive now is a programming error."""
    with pytest.raises(ValueError, match="timezone-aware"):
        detect(order(), POLICY, PAID.replace(tzinfo=None))
