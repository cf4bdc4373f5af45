"""The detection schedule: the verdict cannot change before ``next_check_at`` says so."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

import pytest

from carriers.model import Problem, Status, TrackingEvent
from tests.unit.rules_builders import (
    GUANGZHOU,
    HANGZHOU,
    LHASA,
    PAID,
    SHENZHEN,
    SHIPPED,
    at,
    hours,
    order,
    parcel,
    picked_up,
    scan,
)
from tracker.domain.model import Address, OrderFacts, ShipmentFacts
from tracker.domain.policy import Override, Policy, Thresholds
from tracker.domain.rules import detect, detect_and_schedule, next_check_at
from tracker.domain.rules_schedule import (
    CLOCK_EVIDENCE_KEYS,
    schedule_fingerprint,
    stable_evidence,
)

TICK = timedelta(microseconds=1)
POLICY = Policy()


def verdict(facts: OrderFacts, policy: Policy, now: datetime) -> list[tuple[object, ...]]:
    """Everything a ticket stores from detect(), minus the figures that follow the clock."""
    return [
        (
            d.kind,
            d.severity,
            d.tracking_number,
            d.courier,
            d.suggested_action,
            d.reason,
            json.dumps(stable_evidence(d.evidence), sort_keys=True, ensure_ascii=False),
        )
        for d in detect(facts, policy, now)
    ]


# --- the deadlines of each kind -------------------------------------------------------


def test_unshipped_order_is_due_just_after_ship_by_then_a_day_later() -> None:
    """No parcel: next look just after paid + 48 h (fires), then at +72 h (turns high)."""
    unshipped = order()
    assert next_check_at(unshipped, POLICY, PAID) == PAID + hours(48) + TICK
    assert next_check_at(unshipped, POLICY, PAID + hours(50)) == PAID + hours(72)
    assert next_check_at(unshipped, POLICY, PAID + hours(72)) is None


def test_moving_parcel_is_due_at_its_stall_then_deadline_then_high_stall() -> None:
    """A silent parcel in transit: stalled at +48 h, then overdue (deliver_by), then high."""
    last = SHIPPED + hours(10)
    deliver_by = last + hours(70)
    facts = order(parcel(picked_up(SHIPPED + hours(2)), scan(last)), deliver_by=deliver_by)
    assert next_check_at(facts, POLICY, last + hours(1)) == last + hours(48) + TICK
    assert next_check_at(facts, POLICY, last + hours(48) + TICK) == deliver_by + TICK
    assert next_check_at(facts, POLICY, deliver_by + TICK) == last + hours(96) + TICK
    assert next_check_at(facts, POLICY, last + hours(96) + TICK) == last + timedelta(days=7) + TICK


def test_delivered_parcel_needs_no_further_look() -> None:
    """Nothing time-based fires once delivered: no next check."""
    facts = order(
        parcel(picked_up(SHIPPED + hours(2)), scan(SHIPPED + hours(30), Status.DELIVERED))
    )
    assert next_check_at(facts, POLICY, SHIPPED + hours(31)) is None


def test_reported_lost_parcel_needs_no_further_look() -> None:
    """A standing lost report fires for good and silences stalled and overdue."""
    facts = order(
        parcel(picked_up(SHIPPED + hours(2)), scan(SHIPPED + hours(5), problem=Problem.LOST))
    )
    assert next_check_at(facts, POLICY, SHIPPED + hours(6)) is None


def test_label_without_pickup_is_due_when_pickup_time_runs_out() -> None:
    """A waybill with no scan: due just after shipped + 24 h, then a day later (high)."""
    facts = order(parcel())
    assert next_check_at(facts, POLICY, SHIPPED) == SHIPPED + hours(24) + TICK
    assert next_check_at(facts, POLICY, SHIPPED + hours(25)) == SHIPPED + hours(48)


def test_detect_and_schedule_agree_with_the_separate_functions() -> None:
    """One evaluation gives the same detections and next check as the two calls."""
    facts = order(parcel(picked_up(SHIPPED + hours(2))))
    now = SHIPPED + hours(60)
    found, when = detect_and_schedule(facts, POLICY, now)
    assert found == detect(facts, POLICY, now)
    assert when == next_check_at(facts, POLICY, now)


def test_clock_figures_are_left_out_of_stable_evidence() -> None:
    """hours_since_last_scan, hours_late and checked_at do not count as a change."""
    evidence = {"trigger": "no_new_scan", "hours_since_last_scan": 50.0, "checked_at": "x"}
    assert stable_evidence(evidence) == {"trigger": "no_new_scan"}
    assert {"checked_at", "hours_late", "hours_since_last_scan"} == CLOCK_EVIDENCE_KEYS


def test_fingerprint_changes_with_the_policy_only() -> None:
    """Equal policies share a fingerprint; a threshold, override or coverage changes it."""
    assert schedule_fingerprint(Policy()) == schedule_fingerprint(Policy())
    lower = Policy(defaults=Thresholds(stalled_hours=36))
    assert schedule_fingerprint(lower) != schedule_fingerprint(POLICY)
    override = Policy(overrides=(Override({"lost_days": 5}, courier="yto"),))
    assert schedule_fingerprint(override) != schedule_fingerprint(POLICY)
    covered = Policy(coverage={"sf": frozenset({"西藏自治区", "青海省"})})
    same = Policy(coverage={"sf": frozenset({"青海省", "西藏自治区"})})
    assert schedule_fingerprint(covered) == schedule_fingerprint(same)
    assert schedule_fingerprint(covered) != schedule_fingerprint(POLICY)


# --- the property, by brute force ------------------------------------------------------

_PLACES = (GUANGZHOU, SHENZHEN, HANGZHOU, LHASA, Address("广东省", "广州市", "天河区"))
_STATUSES = (
    Status.PICKED_UP,
    Status.IN_TRANSIT,
    Status.IN_TRANSIT,
    Status.IN_TRANSIT,
    Status.OUT_FOR_DELIVERY,
    Status.READY_FOR_PICKUP,
    Status.DELIVERED,
    Status.DELIVERY_FAILED,
    Status.ON_HOLD,
    Status.RETURNING,
    Status.RETURNED,
    Status.EXCEPTION,
    Status.UNKNOWN,
    Status.PENDING,
)
_PROBLEMS = (None,) * 12 + tuple(Problem)
_POLICIES = (
    Policy(),
    Policy(
        defaults=Thresholds(pause_on_weekends=True, stalled_hours=30, lost_days=4),
        overrides=(Override({"stalled_last_mile_hours": 12}, courier="sf"),),
        coverage={"jt": frozenset({"西藏自治区"})},
    ),
    Policy(defaults=Thresholds(pause_on_holidays=False, other_province_days=2)),
)
# paid just before 国庆 (2026-10-01..07), so the working clock pauses inside the window
_START = at("2026-09-27 09:00")


def _random_parcel(rng: random.Random, paid: datetime, n: int) -> ShipmentFacts:
    shipped = paid + hours(rng.uniform(1, 60)) if rng.random() < 0.85 else None
    clock = (shipped or paid) + hours(rng.uniform(0, 30))
    events: list[TrackingEvent] = []
    for _ in range(rng.choice((0, 0, 1, 2, 3, 4, 6))):
        clock += hours(rng.expovariate(1 / 20))
        place = rng.choice(_PLACES)
        events.append(
            scan(
                clock,
                rng.choice(_STATUSES),
                province=place.province if rng.random() < 0.8 else None,
                city=place.city if rng.random() < 0.7 else None,
                problem=rng.choice(_PROBLEMS),
            )
        )
    status = events[-1].status if events and rng.random() < 0.8 else rng.choice(_STATUSES)
    return parcel(
        *events,
        status=status,
        courier=rng.choice(("yto", "sf", "jt")),
        number=f"YT{n:04d}",
        shipped_at=shipped,
        weight_kg=rng.choice((None, 0.4, 1.0)),
    )


def _random_order(rng: random.Random) -> OrderFacts:
    paid = _START + hours(rng.uniform(-72, 96))
    parcels = tuple(_random_parcel(rng, paid, n) for n in range(rng.choice((0, 1, 1, 1, 2, 3))))
    return order(
        *parcels,
        paid_at=paid,
        origin=rng.choice(_PLACES),
        destination=rng.choice(_PLACES),
        items_weight_kg=rng.choice((None, 1.0)),
        ship_by=paid + hours(rng.uniform(12, 72)) if rng.random() < 0.2 else None,
        deliver_by=paid + hours(rng.uniform(48, 240)) if rng.random() < 0.2 else None,
    )


@pytest.mark.parametrize("seed", range(6))
def test_verdict_never_changes_before_the_next_check(seed: int) -> None:
    """Random orders, clock times every 2 h 23 min for 24 days: no change before next_check_at.

    For every time t on the grid, the verdict (kinds, severities, parcels, actions,
    evidence apart from clock figures) is the same at every later grid time before
    next_check_at(t) and one microsecond before it.
    """
    rng = random.Random(seed)
    policy = _POLICIES[seed % len(_POLICIES)]
    grid = [_START - hours(72) + timedelta(minutes=143 * i) for i in range(240)]
    checked = changes = 0
    for _ in range(10):
        facts = _random_order(rng)
        verdicts = [verdict(facts, policy, t) for t in grid]
        at_due: dict[datetime, bool] = {}
        for i, t in enumerate(grid):
            due = next_check_at(facts, policy, t)
            assert due is None or due > t
            for j in range(i + 1, len(grid)):
                if due is not None and grid[j] >= due:
                    break
                assert verdicts[j] == verdicts[i], (facts, t, grid[j], due)
                checked += 1
            if due is not None and due not in at_due:
                assert verdict(facts, policy, due - TICK) == verdicts[i], (facts, t, due)
                at_due[due] = verdict(facts, policy, due) != verdicts[i]
                changes += at_due[due]
    assert checked > 1000 and changes > 0  # the grid really exercised the schedule
