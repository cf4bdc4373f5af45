"""The event-based kinds (wrong_region, weight, failed delivery, return, carrier problem).

See :mod:`tracker.domain.rules` for the triggers.

Each function answers "does this kind fire for this parcel (or order) right now, and
why" with a :class:`~tracker.domain.rules_context.Hit` or ``None``. Precedence between
kinds is applied here: delivery_failed yields to returned, carrier_exception to every
other kind except for damage.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from carriers.model import Problem, Status, TrackingEvent
from tracker.domain import playbook as pb
from tracker.domain.model import ExceptionKind, Severity
from tracker.domain.rules_context import GOING_BACK, Check, Hit, Parcel, city_of, province_of

__all__ = [
    "carrier_exception",
    "delivery_failed",
    "returned",
    "weight_mismatch_order",
    "wrong_region",
]

K = ExceptionKind

_DELIVERY_STAGE = frozenset(
    {Status.OUT_FOR_DELIVERY, Status.READY_FOR_PICKUP, Status.DELIVERED, Status.DELIVERY_FAILED}
)
_MISROUTED = frozenset({Problem.MIS_SORTED, Problem.OUT_OF_AREA})
_FAILED_ATTEMPT = frozenset({Problem.ADDRESS_PROBLEM, Problem.UNREACHABLE})
_CARRIER_PROBLEMS = frozenset(
    {
        Problem.DAMAGED,
        Problem.HELD,
        Problem.INTERCEPTED,
        Problem.CUSTOMS,
        Problem.NO_PROGRESS,
        Problem.DELAYED,
        Problem.LOCKER_OVERDUE,
        Problem.OTHER,
    }
)


def wrong_region(check: Check, parcel: Parcel) -> Hit | None:
    """Mis-sort/out-of-area code, courier not serving the destination, or a scan elsewhere."""
    triggers: list[str] = []
    evidence: dict[str, Any] = {}
    since: datetime | None = None
    severity = Severity.MEDIUM
    active = not parcel.delivered and parcel.status not in GOING_BACK
    # most parcels carry no problem at all (newest_problem is None): nothing to search
    misrouted = (
        next((e for e in reversed(parcel.events) if e.problem in _MISROUTED), None)
        if parcel.newest_problem is not None
        else None
    )
    if active and misrouted is not None:
        triggers.append(str(misrouted.problem))
        evidence["problem_scan"] = check.event_evidence(misrouted)
        since = misrouted.time
    uncovered = check.policy.uncovered_area(parcel.shipment.courier, check.order.destination)
    if active and uncovered is not None:
        triggers.append("not_covered")
        evidence["uncovered_area"] = uncovered
    elsewhere = _delivery_stage_elsewhere(check, parcel)
    if elsewhere is not None:
        triggers.append("delivery_scan_in_other_city")
        evidence["delivery_scan"] = check.event_evidence(elsewhere)
        since = min(since or elsewhere.time, elsewhere.time)
        if elsewhere.status is Status.DELIVERED:
            severity = Severity.HIGH
    left = _left_destination_province(check, parcel)
    if left is not None:
        triggers.append("left_destination_province")
        evidence["inside_scan"] = check.event_evidence(left[0])
        evidence["outside_scan"] = check.event_evidence(left[1])
        since = min(since or left[1].time, left[1].time)
    if not triggers:
        return None
    only_uncovered = triggers == ["not_covered"]
    return Hit(
        severity,
        {
            "trigger": triggers[0],
            "triggers": triggers,
            **check.parcel_evidence(parcel),
            "destination": {
                "province": check.destination_province or check.order.destination.province,
                "city": check.destination_city or check.order.destination.city,
            },
            **evidence,
        },
        pb.REASON_NOT_COVERED if only_uncovered else pb.REASON_WRONG_REGION,
        pb.NEXT_NOT_COVERED if only_uncovered else pb.NEXT_WRONG_REGION,
        pb.ACTION_NOT_COVERED if only_uncovered else pb.SUGGESTED_ACTIONS[K.WRONG_REGION],
        since or parcel.shipment.shipped_at or check.order.paid_at,
        parcel,
    )


def _delivery_stage_elsewhere(check: Check, parcel: Parcel) -> TrackingEvent | None:
    """The newest delivery-stage scan with a known city, when that city is not the destination."""
    wanted = check.destination_city
    if wanted is None:
        return None
    for event in reversed(parcel.events):
        if event.status in _DELIVERY_STAGE:
            location = event.location
            city = city_of(location.city, province_of(location.province)) if location.city else None
            if city is not None:
                return None if city == wanted else event
    return None


def _left_destination_province(
    check: Check, parcel: Parcel
) -> tuple[TrackingEvent, TrackingEvent] | None:
    """(the first scan inside, the newest located scan outside) when the parcel left again.

    "Inside" is the destination province; on a lane within one province, where the
    parcel starts inside, it is the destination city. Return legs are ignored: going
    back to the sender is not a mis-route. Coming back inside clears the finding.
    """
    wanted = check.destination_province
    if wanted is None:
        return None
    within_province = province_of(check.order.origin.province) == wanted
    if within_province and check.destination_city is None:
        return None
    inside: TrackingEvent | None = None
    newest_outside: TrackingEvent | None = None
    for event in parcel.scans:
        location = event.location
        if event.status in GOING_BACK or not location.province:
            continue
        province = province_of(location.province)
        if province is None:
            continue
        if province == wanted and (
            not within_province or city_of(location.city, province) == check.destination_city
        ):
            inside = inside or event
            newest_outside = None
        elif province != wanted and inside is not None:
            newest_outside = event
    if inside is None or newest_outside is None:
        return None
    return inside, newest_outside


def delivery_failed(check: Check, parcel: Parcel) -> Hit | None:
    """A failed attempt, or the newest problem is a bad address or an unreachable buyer.

    Delivery supersedes it; a return (returned) takes precedence for the same parcel.
    """
    if parcel.delivered:
        return None
    problem = parcel.newest_problem.problem if parcel.newest_problem else None
    if parcel.status is not Status.DELIVERY_FAILED and problem not in _FAILED_ATTEMPT:
        return None
    if check.fires_for(parcel, K.RETURNED):
        return None
    failures = [
        e
        for e in parcel.events
        if e.status is Status.DELIVERY_FAILED or e.problem in _FAILED_ATTEMPT
    ]
    if problem is Problem.ADDRESS_PROBLEM:
        reason = pb.REASON_ADDRESS_PROBLEM
    elif problem is Problem.UNREACHABLE:
        reason = pb.REASON_UNREACHABLE
    else:
        reason = pb.REASON_DELIVERY_FAILED
    evidence = {
        "trigger": problem.value if problem in _FAILED_ATTEMPT and problem else "delivery_failed",
        **check.parcel_evidence(parcel),
        "failed_attempts": len(failures),
        "latest_failure": check.event_evidence(failures[-1] if failures else None),
    }
    return Hit(
        Severity.HIGH if len(failures) >= 2 else Severity.MEDIUM,
        evidence,
        reason,
        pb.NEXT_DELIVERY_FAILED,
        pb.SUGGESTED_ACTIONS[K.DELIVERY_FAILED],
        failures[0].time if failures else check.now,
        parcel,
    )


def returned(check: Check, parcel: Parcel) -> Hit | None:
    """Refused by the buyer, returning or returned to the sender (until re-delivered)."""
    if parcel.delivered:
        return None
    refused = (
        next((e for e in parcel.events if e.problem is Problem.REFUSED), None)
        if parcel.newest_problem is not None
        else None
    )
    if parcel.status not in GOING_BACK and refused is None:
        return None
    if parcel.status is Status.RETURNED:
        trigger, reason = "returned", pb.REASON_RETURNED
    elif refused is not None:
        trigger, reason = "refused", pb.REASON_REFUSED
    else:
        trigger, reason = "returning", pb.REASON_RETURNING
    first_back = next((e for e in parcel.events if e.status in GOING_BACK), None)
    since_event = refused or first_back or parcel.last_event
    evidence = {
        "trigger": trigger,
        **check.parcel_evidence(parcel),
        "refused_scan": check.event_evidence(refused),
        "return_scan": check.event_evidence(first_back),
    }
    return Hit(
        Severity.HIGH,
        evidence,
        reason,
        pb.NEXT_RETURNED,
        pb.SUGGESTED_ACTIONS[K.RETURNED],
        since_event.time if since_event else check.now,
        parcel,
    )


def carrier_exception(check: Check, parcel: Parcel) -> Hit | None:
    """A damage report (always), or a problem parcel no more specific kind explains.

    Damage fires even after delivery (the buyer is owed compensation). Otherwise the
    newest scan must carry a carrier problem, or the status be exception/on_hold, and
    none of lost, returned, delivery_failed, wrong_region, overdue or stalled may fire
    for the same parcel.
    """
    damaged = (
        next((e for e in reversed(parcel.events) if e.problem is Problem.DAMAGED), None)
        if parcel.newest_problem is not None
        else None
    )
    if damaged is not None:
        return _carrier_hit(check, parcel, "damaged", damaged, Severity.HIGH)
    if parcel.delivered:
        return None
    last = parcel.last_event
    event: TrackingEvent | None
    if last is not None and last.problem in _CARRIER_PROBLEMS:
        trigger, event = "problem", last
    elif parcel.status in (Status.EXCEPTION, Status.ON_HOLD):
        trigger, event = parcel.status.value, parcel.newest_problem or last
    else:
        return None
    specific = (K.LOST, K.RETURNED, K.DELIVERY_FAILED, K.WRONG_REGION, K.OVERDUE, K.STALLED)
    if check.fires_for(parcel, *specific):
        return None
    return _carrier_hit(check, parcel, trigger, event, Severity.MEDIUM)


def _carrier_hit(
    check: Check, parcel: Parcel, trigger: str, event: TrackingEvent | None, severity: Severity
) -> Hit:
    """The carrier_exception hit for one triggering scan."""
    damaged = trigger == "damaged"
    return Hit(
        severity,
        {
            "trigger": trigger,
            **check.parcel_evidence(parcel),
            "problem": event.problem.value if event and event.problem else None,
            "problem_scan": check.event_evidence(event),
        },
        pb.REASON_DAMAGED if damaged else pb.REASON_CARRIER_EXCEPTION,
        pb.NEXT_CARRIER_EXCEPTION,
        pb.ACTION_DAMAGED if damaged else pb.SUGGESTED_ACTIONS[K.CARRIER_EXCEPTION],
        event.time if event else check.now,
        parcel,
    )


def weight_mismatch_order(check: Check) -> Hit | None:
    """The couriers' weights sum to less than the ordered weight by more than the tolerance.

    Needs the ordered weight and every parcel's courier weight; tolerance is
    max(``weight_tolerance_kg``, ``weight_tolerance_ratio`` x ordered), from the
    first parcel's thresholds.
    """
    ordered = check.order.items_weight_kg
    parcels = check.parcels
    if not ordered or not parcels:
        return None
    weights = [p.shipment.weight_kg for p in parcels]
    if any(w is None for w in weights):
        return None
    shipped = sum(w for w in weights if w is not None)
    thresholds = parcels[0].thresholds
    tolerance = thresholds.weight_tolerance(ordered)
    missing = round(ordered - shipped, 3)  # grams: 1.0 - 0.7 must not exceed 0.3
    if missing <= round(tolerance, 3):
        return None
    single = parcels[0] if len(parcels) == 1 else None
    evidence: dict[str, Any] = {
        "trigger": "courier_weight_below_order",
        "ordered_kg": ordered,
        "courier_weight_kg": round(shipped, 3),
        "missing_kg": missing,
        "tolerance_kg": round(tolerance, 3),
        "thresholds": {
            "weight_tolerance_kg": thresholds.weight_tolerance_kg,
            "weight_tolerance_ratio": thresholds.weight_tolerance_ratio,
        },
        "shipments": [
            {
                "tracking_number": p.shipment.tracking_number,
                "courier": p.shipment.courier,
                "weight_kg": p.shipment.weight_kg,
            }
            for p in parcels
        ],
        "checked_at": check.iso(check.now),
    }
    if single is not None:
        evidence = {**check.parcel_evidence(single), **evidence}
    return Hit(
        Severity.MEDIUM,
        evidence,
        pb.REASON_WEIGHT_MISMATCH,
        pb.NEXT_WEIGHT_MISMATCH,
        pb.SUGGESTED_ACTIONS[K.WEIGHT_MISMATCH],
        parcels[0].shipment.shipped_at or check.order.paid_at,
        single,
    )
