"""The time-based kinds: not_shipped, lost, stalled and overdue (see :mod:`tracker.domain.rules`).

Each function answers "does this kind fire for this parcel (or order) right now, and
why" with a :class:`~tracker.domain.rules_context.Hit` or ``None``. Precedence between
kinds is applied here: :func:`stalled` asks whether lost or overdue fire for the same
parcel, :func:`overdue` whether lost does.

Every deadline a rule compares ``now`` with comes from one of the ``*_clock`` /
``*_deadline`` helpers below (memoised per check), which
:mod:`tracker.domain.rules_schedule` reads too: a threshold added to a rule without a
helper would be invisible to the schedule, and the periodic pass would miss it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from carriers.model import Status, TrackingEvent
from tracker.domain import playbook as pb
from tracker.domain.model import ExceptionKind, Severity
from tracker.domain.policy import (
    Allowance,
    dispatch_window,
    lane_of,
    paused_deadline,
    transit_window,
)
from tracker.domain.rules_context import GOING_BACK, Check, Hit, Parcel

__all__ = [
    "LATE_HIGH_AFTER",
    "lost",
    "lost_clock",
    "not_picked_up",
    "not_shipped_order",
    "order_ship_deadline",
    "overdue",
    "overdue_deadline",
    "pickup_clock",
    "stall_clock",
    "stall_high_clock",
    "stalled",
    "standing_lost_report",
]

K = ExceptionKind

_MOVING = frozenset({Status.PICKED_UP, Status.IN_TRANSIT, Status.UNKNOWN})
_LAST_MILE = frozenset({Status.OUT_FOR_DELIVERY, Status.READY_FOR_PICKUP})
_NOT_YET_SCANNED = frozenset({Status.PENDING, Status.UNKNOWN})
#: how late a not-shipped / not-picked-up case turns high (at exactly this lateness)
LATE_HIGH_AFTER = timedelta(days=1)
_MISSING = object()


# thresholds as durations, built once per distinct value: every parcel's clocks need them
_HOURS: dict[float, timedelta] = {}
_DAYS: dict[float, timedelta] = {}


def _hours(value: float) -> timedelta:
    """``timedelta(hours=value)``, shared."""
    found = _HOURS.get(value)
    if found is None:
        found = _HOURS[value] = timedelta(hours=value)
    return found


def _days(value: float) -> timedelta:
    """``timedelta(days=value)``, shared."""
    found = _DAYS.get(value)
    if found is None:
        found = _DAYS[value] = timedelta(days=value)
    return found


def _late_severity(late: timedelta) -> Severity:
    """Medium when just late, high once a full day late."""
    return Severity.HIGH if late >= LATE_HIGH_AFTER else Severity.MEDIUM


def _order_window(check: Check) -> tuple[datetime, Allowance | None]:
    """The order's ship-by time and, when the policy set it, the stretched dispatch window."""
    found = check.clocks.get("ship_by", _MISSING)
    if found is _MISSING:
        order = check.order
        if order.ship_by is not None:
            found = (order.ship_by, None)
        else:
            window = dispatch_window(
                order.paid_at,
                check.policy,
                origin=order.origin.province,
                destination=order.destination.province,
            )
            found = (window.deadline, window)
        check.clocks["ship_by"] = found
    return found  # type: ignore[no-any-return]


def order_ship_deadline(check: Check) -> datetime:
    """The order's ship-by time (as imported, else paid + stretched dispatch window)."""
    return _order_window(check)[0]


def _order_ship_deadline(check: Check) -> tuple[datetime, dict[str, Any]]:
    """The order's ship-by time with its evidence."""
    deadline, window = _order_window(check)
    if window is None:
        return deadline, {"ship_by": check.iso(deadline), "ship_by_source": "order"}
    return deadline, {
        "ship_by": check.iso(deadline),
        "ship_by_source": "policy",
        "dispatch_window": window.evidence(),
    }


def pickup_clock(check: Check, parcel: Parcel) -> Allowance | None:
    """When a never-scanned parcel's pickup time runs out; ``None`` once it has a scan.

    The clock starts at ``shipped_at``, else at the order's ship-by time.
    """
    if parcel.scans or parcel.status not in _NOT_YET_SCANNED:
        return None
    found = parcel.clocks.get("pickup", _MISSING)
    if found is _MISSING:
        thresholds = parcel.thresholds
        shipped_at = parcel.shipment.shipped_at
        anchor = shipped_at if shipped_at is not None else order_ship_deadline(check)
        found = paused_deadline(anchor, _hours(thresholds.pickup_hours), check.policy, thresholds)
        parcel.clocks["pickup"] = found
    return found  # type: ignore[no-any-return]


def lost_clock(check: Check, parcel: Parcel) -> Allowance | None:
    """When silence makes a parcel lost: ``lost_days`` after its last scan on the working clock.

    ``None`` for parcels delivered, never scanned or going back to the sender.
    """
    last = parcel.last_scan
    if parcel.delivered or last is None or parcel.status in GOING_BACK:
        return None
    found = parcel.clocks.get("lost", _MISSING)
    if found is _MISSING:
        days = parcel.thresholds.lost_days
        found = paused_deadline(last.time, _days(days), check.policy, parcel.thresholds)
        parcel.clocks["lost"] = found
    return found  # type: ignore[no-any-return]


def stall_clock(check: Check, parcel: Parcel) -> tuple[str, float, Allowance] | None:
    """(threshold key, hours, deadline) of the stall clock, for moving or last-mile parcels."""
    last = parcel.last_scan
    if last is None:
        return None
    if parcel.status in _MOVING:
        key, hours = "stalled_hours", parcel.thresholds.stalled_hours
    elif parcel.status in _LAST_MILE:
        key, hours = "stalled_last_mile_hours", parcel.thresholds.stalled_last_mile_hours
    else:
        return None
    found = parcel.clocks.get("stall", _MISSING)
    if found is _MISSING:
        found = paused_deadline(last.time, _hours(hours), check.policy, parcel.thresholds)
        parcel.clocks["stall"] = found
    return key, hours, found


def stall_high_clock(check: Check, parcel: Parcel) -> Allowance | None:
    """When a stall turns high: twice its threshold after the last scan."""
    stall = stall_clock(check, parcel)
    if stall is None or parcel.last_scan is None:
        return None
    found = parcel.clocks.get("stall_high", _MISSING)
    if found is _MISSING:
        found = paused_deadline(
            parcel.last_scan.time,
            _hours(2 * stall[1]),
            check.policy,
            parcel.thresholds,
        )
        parcel.clocks["stall_high"] = found
    return found  # type: ignore[no-any-return]


def overdue_deadline(check: Check, parcel: Parcel) -> tuple[datetime, Allowance | None] | None:
    """The delivery deadline (the order's ``deliver_by``, else the stretched lane allowance).

    ``None`` for parcels delivered, going back or never scanned (not_shipped's business).
    """
    if parcel.delivered or parcel.status in GOING_BACK or parcel.first_scan is None:
        return None
    found = parcel.clocks.get("deliver_by", _MISSING)
    if found is _MISSING:
        order = check.order
        if order.deliver_by is not None:
            found = (order.deliver_by, None)
        else:
            start = parcel.shipment.shipped_at or parcel.first_scan.time
            window = transit_window(
                order.origin,
                order.destination,
                parcel.shipment.courier,
                start,
                check.policy,
                thresholds=parcel.thresholds,  # the same lookup, done once per parcel
            )
            found = (window.deadline, window)
        parcel.clocks["deliver_by"] = found
    return found  # type: ignore[no-any-return]


def not_shipped_order(check: Check) -> Hit | None:
    """Paid, no shipment at all, and the ship-by time has passed."""
    if check.order.shipments:
        return None
    deadline, facts = _order_ship_deadline(check)
    if check.now <= deadline:
        return None
    thresholds = check.policy.thresholds_for(
        None, check.order.origin.province, check.order.destination.province
    )
    evidence = {
        "trigger": "no_shipment",
        "order_id": check.order.order_id,
        "paid_at": check.iso(check.order.paid_at),
        **facts,
        "hours_late": check.hours_since(deadline),
        "thresholds": {"dispatch_hours": thresholds.dispatch_hours},
        "checked_at": check.iso(check.now),
    }
    return Hit(
        _late_severity(check.now - deadline),
        evidence,
        pb.REASON_NOT_SHIPPED,
        pb.NEXT_NOT_SHIPPED,
        pb.SUGGESTED_ACTIONS[K.NOT_SHIPPED],
        deadline,
    )


def not_picked_up(check: Check, parcel: Parcel) -> Hit | None:
    """A waybill with no pickup scan ``pickup_hours`` after ``shipped_at``.

    Without ``shipped_at`` the pickup clock starts at the order's ship-by time.
    """
    clock = pickup_clock(check, parcel)
    if clock is None or check.now <= clock.deadline:
        return None
    thresholds = parcel.thresholds
    evidence = {
        "trigger": "no_pickup_scan",
        **check.parcel_evidence(parcel),
        "pickup_deadline": check.iso(clock.deadline),
        "hours_late": check.hours_since(clock.deadline),
        "paused_days": [d.isoformat() for d in clock.paused_days],
        "thresholds": {"pickup_hours": thresholds.pickup_hours},
    }
    return Hit(
        _late_severity(check.now - clock.deadline),
        evidence,
        pb.REASON_NOT_PICKED_UP,
        pb.NEXT_NOT_SHIPPED,
        pb.ACTION_NOT_PICKED_UP,
        clock.deadline,
        parcel,
    )


def lost(check: Check, parcel: Parcel) -> Hit | None:
    """The provider says lost (and no later scan found it), or no scan for ``lost_days``."""
    if parcel.delivered:
        return None
    reported = standing_lost_report(parcel)
    if reported is not None:
        evidence = {
            "trigger": "provider_reported_lost",
            **check.parcel_evidence(parcel),
            "lost_scan": check.event_evidence(reported),
        }
        return Hit(
            Severity.CRITICAL,
            evidence,
            pb.REASON_LOST_REPORTED,
            pb.NEXT_LOST,
            pb.SUGGESTED_ACTIONS[K.LOST],
            reported.time,
            parcel,
        )
    clock = lost_clock(check, parcel)
    last = parcel.last_scan
    if clock is None or last is None or check.now <= clock.deadline:
        return None
    days = parcel.thresholds.lost_days
    evidence = {
        "trigger": "no_scan",
        **check.parcel_evidence(parcel),
        "hours_since_last_scan": check.hours_since(last.time),
        "lost_deadline": check.iso(clock.deadline),
        "paused_days": [d.isoformat() for d in clock.paused_days],
        "thresholds": {"lost_days": days},
    }
    return Hit(
        Severity.HIGH,
        evidence,
        pb.reason_lost_silent(days),
        pb.NEXT_LOST,
        pb.SUGGESTED_ACTIONS[K.LOST],
        last.time,
        parcel,
    )


def standing_lost_report(parcel: Parcel) -> TrackingEvent | None:
    """The newest LOST event, unless a later problem-free scan shows the parcel moving.

    Found while the parcel's events were read once (:class:`~.rules_context.Parcel`).
    """
    return parcel.lost_report


def stalled(check: Check, parcel: Parcel) -> Hit | None:
    """No new scan for ``stalled_hours`` in transit (``stalled_last_mile_hours`` at the door).

    Lost and overdue take precedence for the same parcel.
    """
    stall = stall_clock(check, parcel)
    last = parcel.last_scan
    if stall is None or last is None:
        return None
    key, hours, clock = stall
    if check.now <= clock.deadline:
        return None
    if check.fires_for(parcel, K.LOST, K.OVERDUE):
        return None
    twice = stall_high_clock(check, parcel)
    severity = Severity.HIGH if twice and check.now > twice.deadline else Severity.MEDIUM
    evidence = {
        "trigger": "no_new_scan",
        **check.parcel_evidence(parcel),
        "hours_since_last_scan": check.hours_since(last.time),
        "stalled_deadline": check.iso(clock.deadline),
        "paused_days": [d.isoformat() for d in clock.paused_days],
        "thresholds": {key: hours},
    }
    if parcel.status is Status.READY_FOR_PICKUP:
        reason, next_step = pb.reason_awaiting_collection(hours), pb.NEXT_AWAITING_COLLECTION
        action = pb.ACTION_AWAITING_COLLECTION
    else:
        reason = (
            pb.reason_stalled_out_for_delivery(hours)
            if parcel.status is Status.OUT_FOR_DELIVERY
            else pb.reason_stalled_in_transit(hours)
        )
        next_step, action = pb.NEXT_STALLED, pb.SUGGESTED_ACTIONS[K.STALLED]
    return Hit(severity, evidence, reason, next_step, action, last.time, parcel)


def overdue(check: Check, parcel: Parcel) -> Hit | None:
    """Not delivered by the order's ``deliver_by``, else by shipped + stretched lane allowance.

    A delivered parcel is never overdue, even if it arrived late; parcels going back,
    never scanned (not_shipped) or lost are left to those kinds.
    """
    due = overdue_deadline(check, parcel)
    if due is None:
        return None
    deadline, window = due
    if check.now <= deadline or check.fires_for(parcel, K.LOST):
        return None
    order = check.order
    thresholds = parcel.thresholds
    evidence: dict[str, Any] = {
        "trigger": "not_delivered_in_time",
        **check.parcel_evidence(parcel),
        "deliver_by": check.iso(deadline),
        "deliver_by_source": "order" if window is None else "policy",
        "hours_late": check.hours_since(deadline),
    }
    if parcel.last_scan is not None:
        evidence["hours_since_last_scan"] = check.hours_since(parcel.last_scan.time)
    if window is not None:
        lane = lane_of(order.origin, order.destination)
        evidence["lane"] = lane.value
        evidence["transit_window"] = window.evidence()
        evidence["thresholds"] = {f"{lane.value}_days": thresholds.transit_days(lane)}
    return Hit(
        Severity.HIGH,
        evidence,
        pb.REASON_OVERDUE,
        pb.NEXT_OVERDUE,
        pb.SUGGESTED_ACTIONS[K.OVERDUE],
        deadline,
        parcel,
    )
