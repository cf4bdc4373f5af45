"""The shortcuts detection takes per row build exactly what the plain constructors build."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from carriers.model import Location, Problem, Status, TrackingEvent
from tracker.domain import rules
from tracker.domain.model import Address, ExceptionKind, OrderFacts, ShipmentFacts, frozen_builder
from tracker.domain.policy import Allowance, Policy, paused_deadline
from tracker.domain.rules_context import Parcel
from tracker.domain.rules_timing import standing_lost_report
from tracker.store import orders_repo, sql
from tracker.store.uow import make_engine

SHANGHAI = ZoneInfo("Asia/Shanghai")
_ORDER = OrderFacts(
    "T1",
    datetime(2026, 9, 19, 2, 0, tzinfo=UTC),
    Address("广东省", "广州市"),
    Address("浙江省", "杭州市", "西湖区", "文三路 1 号"),
    None,
)


def test_builder_makes_an_equal_frozen_object() -> None:
    """Same fields, equality and hash as the constructor; the object stays frozen."""
    build = frozen_builder(Address)
    made = build("浙江省", "杭州市", "西湖区", "文三路 1 号")
    plain = Address("浙江省", "杭州市", "西湖区", "文三路 1 号")
    assert made == plain
    assert hash(made) == hash(plain)
    assert type(made) is Address
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.city = "宁波市"  # type: ignore[misc]


def test_builder_takes_every_field_positionally_defaults_included() -> None:
    """Fields with defaults must be passed too: a missing one fails loudly."""
    build = frozen_builder(ShipmentFacts)
    at = datetime(2026, 11, 1, tzinfo=UTC)
    made = build("YTO", "YT1", Status.IN_TRANSIT, at, (), None, False)
    assert made == ShipmentFacts("YTO", "YT1", Status.IN_TRANSIT, at)
    with pytest.raises(TypeError):
        build("YTO", "YT1", Status.IN_TRANSIT, at)


def test_paused_deadline_matches_a_plainly_built_allowance() -> None:
    """The allowance built by the fast path equals the one the constructor gives."""
    start = datetime(2026, 9, 30, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai before 国庆
    made = paused_deadline(start, timedelta(hours=48), Policy(), Policy().defaults)
    plain = Allowance(made.start, made.deadline, timedelta(hours=48), paused_days=made.paused_days)
    assert made == plain
    assert made.start.tzinfo is SHANGHAI and made.paused_days


def test_postgresql_array_literals_read_back_exactly() -> None:
    """bigint[], boolean[] and timestamptz[] literals as the store sends them."""
    at = datetime(2026, 11, 26, 18, 0, 0, 1, tzinfo=SHANGHAI)
    assert sql.pg_int_array([3, 1, 20]) == "{3,1,20}"
    assert sql.pg_bool_array([True, False]) == "{t,f}"
    assert sql.pg_time_array([at, None]) == '{"2026-11-26T18:00:00.000001+08:00",NULL}'


def test_reader_turns_session_utc_zones_into_utc() -> None:
    """Times in psycopg's Etc/UTC session zone come back as datetime.UTC, the same instant."""
    value = datetime(2026, 11, 26, 10, 0, tzinfo=ZoneInfo("Etc/UTC"))
    got = orders_repo._utc(value)
    assert got.tzinfo is UTC and got == value
    shanghai = orders_repo._utc(datetime(2026, 11, 26, 18, 0, tzinfo=SHANGHAI))
    assert shanghai.tzinfo is UTC and shanghai.hour == 10


def _random_events(rng: random.Random) -> tuple[TrackingEvent, ...]:
    """Scans in time order with labels (pending), deliveries and problems (lost often)."""
    clock = datetime(2026, 9, 20, 8, 0, tzinfo=UTC)
    problems = (None, None, None, Problem.LOST, Problem.LOST, *Problem)
    events = []
    for _ in range(rng.choice((0, 1, 2, 3, 5, 8))):
        clock += timedelta(hours=rng.uniform(1, 30))
        events.append(
            TrackingEvent(
                clock, rng.choice(tuple(Status)), "c", "t", Location(), rng.choice(problems)
            )
        )
    return tuple(events)


@pytest.mark.parametrize("seed", range(4))
def test_parcel_facts_read_in_one_pass_match_their_definitions(seed: int) -> None:
    """Scans, newest problem, standing lost report and status as the plain definitions say."""
    rng = random.Random(seed)
    # the scans that prove a parcel reported lost was found (the rule as first written)
    found_again = {
        Status.PICKED_UP,
        Status.IN_TRANSIT,
        Status.OUT_FOR_DELIVERY,
        Status.READY_FOR_PICKUP,
        Status.DELIVERED,
        Status.RETURNING,
        Status.RETURNED,
    }
    for n in range(300):
        events = _random_events(rng)
        status = rng.choice(tuple(Status))
        shipment = ShipmentFacts("yto", f"YT{n}", status, None, events)
        got = Parcel(shipment, _ORDER, Policy())
        scans = tuple(e for e in events if e.status is not Status.PENDING)
        assert got.scans == scans and type(got.scans) is tuple
        assert got.newest_problem is next((e for e in reversed(events) if e.problem), None)
        lost = [i for i, e in enumerate(events) if e.problem is Problem.LOST]
        expected_lost = None
        if lost and not any(
            e.problem is None and e.status in found_again for e in events[lost[-1] + 1 :]
        ):
            expected_lost = events[lost[-1]]
        assert got.lost_report is expected_lost
        assert standing_lost_report(got) is expected_lost
        delivered = status is Status.DELIVERED or any(e.status is Status.DELIVERED for e in scans)
        assert got.delivered is delivered
        if not delivered and status in (Status.UNKNOWN, Status.PENDING) and scans:
            assert got.status is scans[-1].status
        elif not delivered:
            assert got.status is status


@pytest.mark.parametrize("seed", range(3))
def test_detect_all_kinds_at_once_matches_each_kind_alone(seed: int) -> None:
    """One pass over the rule table gives each kind's own detection, in kind order."""
    rng = random.Random(seed)
    now = datetime(2026, 9, 28, 4, 0, tzinfo=UTC)
    for n in range(200):
        parcels = tuple(
            ShipmentFacts(
                rng.choice(("yto", "sf")),
                f"YT{n}-{k}",
                rng.choice(tuple(Status)),
                now - timedelta(hours=rng.uniform(10, 300)),
                _random_events(rng),
                rng.choice((None, 0.2, 1.0)),
            )
            for k in range(rng.choice((0, 1, 1, 2)))
        )
        facts = dataclasses.replace(_ORDER, shipments=parcels, items_weight_kg=1.0)
        policy = Policy()
        together = rules.detect(facts, policy, now)
        alone = [
            d
            for kind in ExceptionKind
            if (d := rules._detection(rules._check(facts, policy, now), kind)) is not None
        ]
        assert together == alone


def test_driver_rows_run_inside_the_connections_transaction() -> None:
    """Plain tuples from the driver, read in a transaction SQLAlchemy then commits or ends."""
    engine = make_engine("sqlite://")
    with engine.connect() as conn:
        assert not conn.in_transaction()
        rows = sql.driver_rows(conn, "SELECT ?, 'a' UNION ALL SELECT 2, 'b'", (1,))
        assert rows == [(1, "a"), (2, "b")]
        assert all(type(r) is tuple for r in rows)
        assert conn.in_transaction()
        conn.rollback()
    engine.dispose()
