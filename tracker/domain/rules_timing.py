"""The time-based kinds: not_shipped, lost, stalled and overdue (see :mod:`tracker.domain.rules`).

Each function answers "does this kind fire for this parcel (or order) right now, and
why" with a :class:`~tracker.domain.rules_context.Hit` or ``None``. Precedence between
kinds is applied here: :func:`stalled` asks whether lost or overdue fire for the same
parcel, :func:`overdue` whether lost does.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from carriers.model import Problem, Status, TrackingEvent
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

__all__ = ["lost", "not_picked_up", "not_shipped_order", "overdue", "stalled"]

K = ExceptionKind

_MOVING = frozenset({Status.PICKED_UP, Status.IN_TRANSIT, Status.UNKNOWN})
_LAST_MILE = frozenset({Status.OUT_FOR_DELIVERY, Status.READY_FOR_PICKUP})
_NOT_YET_SCANNED = frozenset({Status.PENDING, Status.UNKNOWN})
# A later problem-free scan in one of these proves a parcel reported lost was found.
_FOUND = frozenset(
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
_DAY = timedelta(days=1)


def _late_severity(late: timedelta) -> Severity:
    """Medium when just late, high once a full day late."""
    return Severity.HIGH if late >= _DAY else Severity.MEDIUM


def _order_ship_deadline(check: Check) -> tuple[datetime, dict[str, Any]]:
    """The order's ship-by time (as imported, else paid + stretched dispatch window)."""
    order = check.order
    if order.ship_by is not None:
        return order.ship_by, {"ship_by": check.iso(order.ship_by), "ship_by_source": "order"}
    window = dispatch_window(
        order.paid_at,
        check.policy,
        origin=order.origin.province,
        destination=order.destination.province,
    )
    return window.deadline, {
        "ship_by": check.iso(window.deadline),
        "ship_by_source": "policy",
        "dispatch_window": window.evidence(),
    }


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
    if parcel.scans or parcel.status not in _NOT_YET_SCANNED:
        return None
    thresholds = parcel.thresholds
    shipped_at = parcel.shipment.shipped_at
    anchor = shipped_at if shipped_at is not None else _order_ship_deadline(check)[0]
    clock = paused_deadline(
        anchor, timedelta(hours=thresholds.pickup_hours), check.policy, thresholds
    )
    if check.now <= clock.deadline:
        return None
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
    reported = _standing_lost_report(parcel)
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
    last = parcel.last_scan
    if last is None or parcel.status in GOING_BACK:
        return None
    days = parcel.thresholds.lost_days
    clock = paused_deadline(last.time, timedelta(days=days), check.policy, parcel.thresholds)
    if check.now <= clock.deadline:
        return None
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


def _standing_lost_report(parcel: Parcel) -> TrackingEvent | None:
    """The newest LOST event, unless a later problem-free scan shows the parcel moving."""
    events = parcel.events
    for index in range(len(events) - 1, -1, -1):
        if events[index].problem is Problem.LOST:
            later = events[index + 1 :]
            found = any(e.problem is None and e.status in _FOUND for e in later)
            return None if found else events[index]
    return None


def stalled(check: Check, parcel: Parcel) -> Hit | None:
    """No new scan for ``stalled_hours`` in transit (``stalled_last_mile_hours`` at the door).

    Lost and overdue take precedence for the same parcel.
    """
    last = parcel.last_scan
    if last is None:
        return None
    if parcel.status in _MOVING:
        key, hours = "stalled_hours", parcel.thresholds.stalled_hours
    elif parcel.status in _LAST_MILE:
        key, hours = "stalled_last_mile_hours", parcel.thresholds.stalled_last_mile_hours
    else:
        return None
    clock = paused_deadline(last.time, timedelta(hours=hours), check.policy, parcel.thresholds)
    if check.now <= clock.deadline:
        return None
    if check.fires_for(parcel, K.LOST, K.OVERDUE):
        return None
    twice = paused_deadline(last.time, timedelta(hours=2 * hours), check.policy, parcel.thresholds)
    severity = Severity.HIGH if check.now > twice.deadline else Severity.MEDIUM
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
    if parcel.delivered or parcel.status in GOING_BACK or parcel.first_scan is None:
        return None
    order = check.order
    window: Allowance | None = None
    if order.deliver_by is not None:
        deadline = order.deliver_by
    else:
        start = parcel.shipment.shipped_at or parcel.first_scan.time
        window = transit_window(
            order.origin, order.destination, parcel.shipment.courier, start, check.policy
        )
        deadline = window.deadline
    if check.now <= deadline or check.fires_for(parcel, K.LOST):
        return None
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
