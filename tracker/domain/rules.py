"""Detection rules (DESIGN §5): pure functions of an order's facts, the policy and ``now``.

No I/O and no clock: ``now`` is always passed in (timezone-aware; shown in the shop's
timezone). :func:`detect` returns at most one :class:`Detection` per kind per order:
when several parcels of an order fire the same kind, the most severe one (the oldest
among equals) is reported and the others are listed in ``evidence["other_shipments"]``.

**Triggers** (thresholds from :class:`~tracker.domain.policy.Thresholds`, per courier
and lane; "clock" = the working clock that pauses on rest days, see
:mod:`tracker.domain.policy`):

* ``not_shipped``: paid, no shipment after ``ship_by`` (imported, else the stretched
  dispatch window); or a parcel with no scan (pending label events do not count)
  ``pickup_hours`` after ``shipped_at`` (after ``ship_by`` without ``shipped_at``).
* ``stalled``: no new scan for ``stalled_hours`` while picked up / in transit / unknown,
  ``stalled_last_mile_hours`` while out for delivery or at a station/locker.
* ``overdue``: not delivered by the order's ``deliver_by`` when given (it is the
  promise), else by ``shipped_at`` (or the first scan) + the stretched lane allowance.
* ``lost``: a LOST problem no later problem-free scan contradicts; or no scan for
  ``lost_days`` after the last one (not for parcels going back to the sender).
* ``wrong_region``: a MIS_SORTED/OUT_OF_AREA problem or a courier that does not serve the
  destination (both until delivered or sent back); the newest delivery-stage scan with
  a known city in another city (also after delivery); the newest located scan outside
  the destination province after one inside it (return legs ignored; on a lane within
  one province "inside" means the destination city).
* ``weight_mismatch``: the parcels' courier weights sum to less than the ordered weight
  by more than max(0.3 kg, 15 %); needs every weight.
* ``delivery_failed``: status delivery_failed, or the newest problem is ADDRESS_PROBLEM
  or UNREACHABLE, until delivered.
* ``returned``: status returning/returned or a REFUSED problem, until re-delivered.
* ``carrier_exception``: a DAMAGED problem (always, even after delivery), or a carrier
  problem on the newest scan / status exception or on_hold that no other kind explains.

**Delivered** parcels never fire not_shipped, stalled, overdue, lost, delivery_failed or
returned; a late delivery is not retroactively overdue (an open overdue ticket
resolves with 已签收; the lateness stays in its history). A delivery scan wins over any
later scan, so a parcel never regresses from delivered.

**Precedence per parcel**, so an agent gets one clear ticket: lost > overdue > stalled
(a silent parcel is lost, not also late and stalled; a late one is not also stalled,
its evidence carries ``hours_since_last_scan``); returned > delivery_failed;
not_shipped (no pickup scan) excludes overdue, stalled and lost; every kind above >
carrier_exception, except damage.

**Severity**: not_shipped medium, high a day past the deadline; stalled medium, high
past twice the threshold; overdue high; lost critical when the provider reports it, high
when inferred from silence; wrong_region medium, high when delivered in another city;
weight_mismatch medium; delivery_failed medium, high from the second failed attempt;
returned high; carrier_exception medium, high for damage.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from types import MappingProxyType

from tracker.domain import playbook as pb
from tracker.domain.model import Detection, ExceptionKind, OrderFacts
from tracker.domain.playbook import Resolution
from tracker.domain.policy import Policy
from tracker.domain.rules_context import Check, Hit, ParcelRule
from tracker.domain.rules_problems import (
    carrier_exception,
    delivery_failed,
    returned,
    weight_mismatch_order,
    wrong_region,
)
from tracker.domain.rules_schedule import next_check
from tracker.domain.rules_timing import lost, not_picked_up, not_shipped_order, overdue, stalled

__all__ = [
    "detect",
    "detect_and_schedule",
    "detect_carrier_exception",
    "detect_delivery_failed",
    "detect_lost",
    "detect_not_shipped",
    "detect_overdue",
    "detect_returned",
    "detect_stalled",
    "detect_weight_mismatch",
    "detect_wrong_region",
    "next_check_at",
    "resolution_reason",
]

K = ExceptionKind

# Per-parcel rules by kind; weight_mismatch is order-level only, not_shipped is both.
PARCEL_RULES: Mapping[ExceptionKind, ParcelRule] = MappingProxyType(
    {
        K.NOT_SHIPPED: not_picked_up,
        K.STALLED: stalled,
        K.OVERDUE: overdue,
        K.LOST: lost,
        K.WRONG_REGION: wrong_region,
        K.DELIVERY_FAILED: delivery_failed,
        K.RETURNED: returned,
        K.CARRIER_EXCEPTION: carrier_exception,
    }
)

_ORDER_RULES: dict[ExceptionKind, Callable[[Check], Hit | None]] = {
    K.NOT_SHIPPED: not_shipped_order,
    K.WEIGHT_MISMATCH: weight_mismatch_order,
}


# iterating the enum class runs Python code per member; a tuple is read per order
_KINDS: tuple[ExceptionKind, ...] = tuple(ExceptionKind)
_PARCEL_KINDS = frozenset(PARCEL_RULES)


def _check(order: OrderFacts, policy: Policy, now: datetime) -> Check:
    """A fresh evaluation context for one order."""
    return Check(order, policy, now, PARCEL_RULES)


def _detection(check: Check, kind: ExceptionKind) -> Detection | None:
    """The one detection of ``kind`` for the order: the most severe, then oldest, hit."""
    hits: list[Hit] = []
    order_rule = _ORDER_RULES.get(kind)
    if order_rule is not None and (hit := order_rule(check)) is not None:
        hits.append(hit)
    if kind in _PARCEL_KINDS:
        hit_of = check.hit
        for parcel in check.parcels:
            if (hit := hit_of(kind, parcel)) is not None:
                hits.append(hit)
    if not hits:
        return None
    return _chosen(kind, hits)


def _chosen(kind: ExceptionKind, hits: list[Hit]) -> Detection:
    """The detection for ``kind`` from its hits (at least one): most severe, then oldest."""
    best = min(hits, key=_hit_order) if len(hits) > 1 else hits[0]
    evidence = dict(best.evidence)
    others = [h for h in hits if h is not best and h.parcel is not None]
    if others:
        evidence["other_shipments"] = [
            {
                "tracking_number": h.parcel.shipment.tracking_number,
                "courier": h.parcel.shipment.courier,
                "severity": h.severity.value,
                "trigger": h.evidence.get("trigger"),
            }
            for h in others
            if h.parcel is not None
        ]
    shipment = best.parcel.shipment if best.parcel is not None else None
    return Detection(
        kind=kind,
        severity=best.severity,
        evidence=evidence,
        suggested_action=best.action,
        tracking_number=shipment.tracking_number if shipment else None,
        courier=shipment.courier if shipment else None,
        notify_buyer=pb.NOTIFY_BUYER[kind],
        reason=best.reason,
        next_step=best.next_step,
    )


def _hit_order(hit: Hit) -> tuple[int, datetime]:
    """Sort key choosing among hits of one kind: most severe first, then the oldest."""
    return -hit.severity.rank, hit.since


# (kind, order-level rule, parcel rule) in enum order, read once per order by _detect_all
_RULE_TABLE: tuple[
    tuple[ExceptionKind, Callable[[Check], Hit | None] | None, ParcelRule | None], ...
] = tuple((kind, _ORDER_RULES.get(kind), PARCEL_RULES.get(kind)) for kind in _KINDS)


def _detect_all(check: Check) -> list[Detection]:
    """Every kind's detection for the order, as ``_detection`` per kind would give them.

    One loop over a table instead of a call per kind: most orders fire nothing, so the
    per-kind bookkeeping around the rules was a good part of their cost.
    """
    found: list[Detection] = []
    parcels = check.parcels
    for kind, order_rule, parcel_rule in _RULE_TABLE:
        hits: list[Hit] | None = None
        if order_rule is not None and (hit := order_rule(check)) is not None:
            hits = [hit]
        if parcel_rule is not None:
            for parcel in parcels:
                memo = parcel.memo  # shared with Check.hit: precedence checks filled some
                if kind in memo:
                    hit = memo[kind]
                else:
                    hit = memo[kind] = parcel_rule(check, parcel)
                if hit is not None:
                    if hits is None:
                        hits = [hit]
                    else:
                        hits.append(hit)
        if hits is not None:
            found.append(_chosen(kind, hits))
    return found


def detect(order: OrderFacts, policy: Policy, now: datetime) -> list[Detection]:
    """Every kind firing for ``order`` at ``now``, at most one detection per kind."""
    return _detect_all(_check(order, policy, now))


def detect_and_schedule(
    order: OrderFacts, policy: Policy, now: datetime
) -> tuple[list[Detection], datetime | None]:
    """:func:`detect` and :func:`next_check_at` from one evaluation of the order."""
    check = _check(order, policy, now)
    found = _detect_all(check)
    return found, next_check(check)


def next_check_at(order: OrderFacts, policy: Policy, now: datetime) -> datetime | None:
    """The first moment after ``now`` at which :func:`detect` may answer differently.

    For the same facts and policy; ``None`` when only new facts can change the answer.
    """
    return next_check(_check(order, policy, now))


def detect_not_shipped(order: OrderFacts, policy: Policy, now: datetime) -> Detection | None:
    """Paid and not shipped by ``ship_by``, or a waybill never picked up."""
    return _detection(_check(order, policy, now), K.NOT_SHIPPED)


def detect_stalled(order: OrderFacts, policy: Policy, now: datetime) -> Detection | None:
    """A moving parcel with no new scan for 48 h (24 h in the last mile)."""
    return _detection(_check(order, policy, now), K.STALLED)


def detect_overdue(order: OrderFacts, policy: Policy, now: datetime) -> Detection | None:
    """A parcel not delivered by ``deliver_by`` or the stretched lane allowance."""
    return _detection(_check(order, policy, now), K.OVERDUE)


def detect_lost(order: OrderFacts, policy: Policy, now: datetime) -> Detection | None:
    """A parcel reported lost, or silent for 7 days."""
    return _detection(_check(order, policy, now), K.LOST)


def detect_wrong_region(order: OrderFacts, policy: Policy, now: datetime) -> Detection | None:
    """A parcel mis-sorted, out of the courier's area, or scanned outside its destination."""
    return _detection(_check(order, policy, now), K.WRONG_REGION)


def detect_weight_mismatch(order: OrderFacts, policy: Policy, now: datetime) -> Detection | None:
    """Courier weight below the ordered weight by more than max(0.3 kg, 15 %)."""
    return _detection(_check(order, policy, now), K.WEIGHT_MISMATCH)


def detect_delivery_failed(order: OrderFacts, policy: Policy, now: datetime) -> Detection | None:
    """A failed delivery attempt, bad address or unreachable buyer, not yet delivered."""
    return _detection(_check(order, policy, now), K.DELIVERY_FAILED)


def detect_returned(order: OrderFacts, policy: Policy, now: datetime) -> Detection | None:
    """A parcel refused, returning or returned to the sender."""
    return _detection(_check(order, policy, now), K.RETURNED)


def detect_carrier_exception(order: OrderFacts, policy: Policy, now: datetime) -> Detection | None:
    """A damaged parcel, or a provider problem parcel no more specific kind explains."""
    return _detection(_check(order, policy, now), K.CARRIER_EXCEPTION)


# Kinds that take a parcel over from each kind (precedence above), most specific first.
_SUCCESSORS: dict[ExceptionKind, tuple[ExceptionKind, ...]] = {
    K.STALLED: (K.LOST, K.RETURNED, K.OVERDUE, K.DELIVERY_FAILED, K.CARRIER_EXCEPTION),
    K.OVERDUE: (K.LOST, K.RETURNED),
    K.LOST: (K.RETURNED,),
    K.DELIVERY_FAILED: (K.RETURNED,),
    K.CARRIER_EXCEPTION: (
        K.LOST,
        K.RETURNED,
        K.DELIVERY_FAILED,
        K.WRONG_REGION,
        K.OVERDUE,
        K.STALLED,
    ),
}

_STILL_TRUE_AFTER_DELIVERY = frozenset({K.WRONG_REGION, K.WEIGHT_MISMATCH})

_FALLBACK: dict[ExceptionKind, str] = {
    K.STALLED: Resolution.MOVING_AGAIN,
    K.OVERDUE: Resolution.DEADLINE_MOVED,
    K.LOST: Resolution.MOVING_AGAIN,
    K.WRONG_REGION: Resolution.BACK_ON_ROUTE,
    K.WEIGHT_MISMATCH: Resolution.WEIGHT_MATCHES,
    K.DELIVERY_FAILED: Resolution.DELIVERY_RESUMED,
    K.RETURNED: Resolution.DELIVERY_RESUMED,
    K.CARRIER_EXCEPTION: Resolution.EXCEPTION_CLEARED,
}


def resolution_reason(kind: ExceptionKind, order: OrderFacts, policy: Policy, now: datetime) -> str:
    """Why an open ticket of ``kind`` no longer applies, in Chinese (for auto-resolving).

    In order: a more specific kind took over (已转为疑似丢件处理 ...); every parcel is
    delivered (已签收); else the kind's own phrase (已发货并揽收, 物流已恢复更新 ...).
    Meant for when :func:`detect` no longer reports ``kind``; if it still does, the
    phrase says the condition still holds.
    """
    check = _check(order, policy, now)
    if _detection(check, kind) is not None:
        return Resolution.STILL_APPLIES
    for successor in _SUCCESSORS.get(kind, ()):
        if _detection(check, successor) is not None:
            return pb.superseded_by(successor)
    parcels = check.parcels
    if parcels and all(p.delivered for p in parcels):
        if kind is K.WRONG_REGION:
            return Resolution.DELIVERED_IN_DESTINATION
        if kind not in _STILL_TRUE_AFTER_DELIVERY:
            return Resolution.DELIVERED
    if kind is K.NOT_SHIPPED:
        if parcels and all(p.scans for p in parcels):
            return Resolution.SHIPPED_AND_PICKED_UP
        return Resolution.SHIPPED if parcels else Resolution.DEADLINE_MOVED
    return _FALLBACK.get(kind, Resolution.NO_LONGER_APPLIES)
