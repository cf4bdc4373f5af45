"""When detection must look at an order again if nothing about it changes.

:func:`detect <tracker.domain.rules.detect>` depends on ``now`` only through a handful of
deadlines (see :mod:`tracker.domain.rules_timing`): for fixed facts and policy its verdict
(which kinds fire, on which parcel, how severe, with what evidence apart from the clock
figures in :data:`CLOCK_EVIDENCE_KEYS`) is constant between two consecutive deadlines.
:func:`next_check` returns the first moment after ``now`` at which a deadline is crossed,
so a periodic pass only has to look at orders whose moment has come; new scans, imports
and weight bills change the facts and run detection (or make the order due) themselves.

Which deadlines, per parcel (a delivered parcel has none, nothing time-based fires for it):

* not picked up: the pickup clock (fires just after it), and a day later (turns high);
* silent: the lost clock (fires just after it), unless a lost report stands;
* stalled: the stall clock, and twice the threshold (turns high);
* overdue: the delivery deadline (``deliver_by`` or the stretched lane allowance);
* a payment, shipment or scan dated after ``now``: its time (when several parcels fire
  the same kind, a hit with no dated scan counts as starting ``now``, and the oldest hit
  is reported).

Per order without parcels: the ship-by time (not_shipped fires just after it) and a day
later (turns high). Extra deadlines only cost an extra look; a missing one would hide a
ticket, so the property test in ``tests/unit/test_rules_schedule.py`` checks the claim by
brute force over many generated orders and clock times.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from tracker.domain.policy import Policy
from tracker.domain.rules_context import Check
from tracker.domain.rules_timing import (
    LATE_HIGH_AFTER,
    lost_clock,
    order_ship_deadline,
    overdue_deadline,
    pickup_clock,
    stall_clock,
    stall_high_clock,
    standing_lost_report,
)

__all__ = [
    "CLOCK_EVIDENCE_KEYS",
    "SCHEDULE_VERSION",
    "next_check",
    "schedule_fingerprint",
    "stable_evidence",
]

#: Bump when a rule's deadlines change, so stored schedules are recomputed once.
SCHEDULE_VERSION = 1

#: Evidence figures that follow the clock (hours since, hours late, when checked): they
#: change at every look without the verdict changing, so they do not count as a change.
CLOCK_EVIDENCE_KEYS = frozenset({"checked_at", "hours_since_last_scan", "hours_late"})

# A rule fires once ``now`` is strictly after its deadline: the first such moment the store
# can hold (microsecond precision on both backends) is the deadline plus one microsecond.
_TICK = timedelta(microseconds=1)


def next_check(check: Check) -> datetime | None:
    """The first moment after ``check.now`` at which the order's verdict may change, or None.

    ``None`` means no deadline lies ahead: only new facts can change the verdict.
    """
    now = check.now
    # candidate moments in the order they are found; the earliest future one wins (the
    # first of equals, as a running minimum would keep it). A list, not a closure per order.
    moments: list[datetime] = []
    add = moments.append
    order = check.order
    if not order.shipments:
        ship_by = order_ship_deadline(check)
        add(ship_by + _TICK)
        add(ship_by + LATE_HIGH_AFTER)
    if order.paid_at > now:
        add(order.paid_at)
        add(order.paid_at + _TICK)
    for parcel in check.parcels:
        shipped_at = parcel.shipment.shipped_at
        if shipped_at is not None and shipped_at > now:
            add(shipped_at)
            add(shipped_at + _TICK)
        last = parcel.last_event
        if last is not None and last.time > now:
            # a fact dated after now: hits started "now" are ordered against it, both sides
            for event in parcel.events:
                add(event.time)
                add(event.time + _TICK)
        if parcel.delivered:
            continue
        pickup = pickup_clock(check, parcel)
        if pickup is not None:
            add(pickup.deadline + _TICK)
            add(pickup.deadline + LATE_HIGH_AFTER)
        if standing_lost_report(parcel) is not None:
            continue  # lost (critical) for good: stalled and overdue yield to it
        lost = lost_clock(check, parcel)
        if lost is not None:
            add(lost.deadline + _TICK)
        stall = stall_clock(check, parcel)
        if stall is not None:
            stall_at = stall[2].deadline + _TICK
            add(stall_at)
            # twice the threshold from the same scan ends after the stall itself: it can only
            # be the next moment once the stall has begun (spares a working-clock walk)
            if stall_at <= now:
                high = stall_high_clock(check, parcel)
                if high is not None:
                    add(high.deadline + _TICK)
        due = overdue_deadline(check, parcel)
        if due is not None:
            add(due[0] + _TICK)
    best: datetime | None = None
    for moment in moments:
        if moment > now and (best is None or moment < best):
            best = moment
    return best


def stable_evidence(evidence: Mapping[str, Any]) -> dict[str, Any]:
    """``evidence`` without the figures that follow the clock (:data:`CLOCK_EVIDENCE_KEYS`)."""
    return {k: v for k, v in evidence.items() if k not in CLOCK_EVIDENCE_KEYS}


def schedule_fingerprint(policy: Policy) -> str:
    """A short digest of everything stored schedules depend on besides an order's facts.

    Equal policies give equal digests in every process (no ``hash()`` of strings, sets
    sorted); a changed threshold, override, coverage list, promotion, timezone or
    :data:`SCHEDULE_VERSION` gives another.
    """
    parts = {
        "version": SCHEDULE_VERSION,
        "timezone": str(policy.timezone),
        "defaults": asdict(policy.defaults),
        "overrides": [
            [o.courier, o.origin, o.destination, sorted(o.values.items())] for o in policy.overrides
        ],
        "coverage": {k: sorted(v) for k, v in sorted(policy.coverage.items())},
        "promotions": [repr(p) for p in policy.promotions],
    }
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
