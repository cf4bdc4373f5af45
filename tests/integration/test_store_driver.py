"""The poller's claim and store as fixed driver-level SQL, on SQLite and PostgreSQL (issue 8)."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from carriers.model import (
    ErrorKind,
    Location,
    Status,
    TrackingError,
    TrackingEvent,
    TrackingResult,
)
from tests.conftest import at
from tests.fakes import make_order
from tracker.store import ingest, orders_repo, shipments_repo
from tracker.store.shipments_repo import ClaimedShipment
from tracker.store.tables import shipments, tracking_events

NOW = at("2026-09-12 10:00")
LEASE = timedelta(minutes=2)


def _orders(engine: Engine, count: int) -> list[ClaimedShipment]:
    """``count`` parcels loaded and claimed by worker w1."""
    with engine.begin() as conn:
        orders_repo.upsert_orders(
            conn,
            [
                make_order(
                    f"D{i}",
                    at("2026-09-10 10:00"),
                    tracking_number=f"YT{i:010d}",
                    shipped_at=at("2026-09-10 18:00") if i % 2 else None,
                    phone=f"1380013{i:04d}",
                )
                for i in range(count)
            ],
            NOW - timedelta(days=1),
        )
        return shipments_repo.claim_due_shipments(conn, NOW, 50, LEASE, "w1")


def _answer(number: str, *events: TrackingEvent, **kw: Any) -> TrackingResult:
    return TrackingResult("yto", number, "fake", Status.IN_TRANSIT, tuple(events), **kw)


def _failure(number: str) -> TrackingResult:
    error = TrackingError(ErrorKind.NETWORK, "timed out", True, "<html>")
    return TrackingResult("yto", number, "fake", Status.UNKNOWN, error=error)


def _scans(count: int) -> list[TrackingEvent]:
    start = at("2026-09-11 00:00")
    return [
        TrackingEvent(start + timedelta(minutes=i), Status.IN_TRANSIT, "0", f"第 {i} 站")
        for i in range(count)
    ]


def test_claims_come_back_in_id_order_with_their_order_and_buyer(engine: Engine) -> None:
    """Each claimed parcel carries its buyer's phone, route and UTC times; leases are taken."""
    claimed = _orders(engine, 4)
    assert [c.id for c in claimed] == sorted(c.id for c in claimed) and len(claimed) == 4
    for i, c in enumerate(claimed):
        assert (c.tracking_number, c.courier, c.status, c.failures) == (
            f"YT{i:010d}",
            "yto",
            Status.PENDING,
            0,
        )
        q = c.query
        assert (q.courier, q.tracking_number, q.phone) == (
            "yto",
            c.tracking_number,
            f"1380013{i:04d}",
        )
        assert q.origin == Location("中国", "广东省", "广州市")
        assert q.destination == Location("中国", "浙江省", "杭州市", "西湖区")
        shipped = at("2026-09-10 18:00") if i % 2 else None
        assert q.shipped_at == shipped
        assert q.shipped_at is None or q.shipped_at.tzinfo is UTC
        assert c.since == (shipped or NOW - timedelta(days=1)) and c.since.tzinfo is UTC
    with engine.connect() as conn:
        leases = conn.execute(select(shipments.c.claimed_by, shipments.c.claimed_until)).all()
    assert leases == [("w1", NOW + LEASE)] * 4
    with engine.begin() as conn:
        assert shipments_repo.claim_due_shipments(conn, NOW, 50, LEASE, "w2") == []


def test_a_batch_of_failures_alone_joins_the_callers_transaction(engine: Engine) -> None:
    """Even as the first statement on a connection, the store commits or rolls back with it."""
    (claim,) = _orders(engine, 1)
    pairs = [(claim, _failure(claim.tracking_number))]
    with engine.connect() as conn:
        (outcome,) = ingest.save_results(conn, pairs, NOW)
        assert not outcome.ok and conn.in_transaction()
        conn.rollback()
    with engine.connect() as conn:
        assert conn.execute(select(shipments.c.poll_count, shipments.c.claimed_by)).one() == (
            0,
            "w1",
        )
    with engine.connect() as conn:
        ingest.save_results(conn, pairs, NOW)
        conn.commit()
    with engine.connect() as conn:
        row = conn.execute(select(shipments)).one()
    assert (row.poll_count, row.consecutive_failures, row.error_kind, row.claimed_by) == (
        1,
        1,
        "network",
        None,
    )
    assert row.error_at == NOW and row.next_poll_at > NOW


def test_a_parcel_given_twice_in_one_batch_is_stored_as_two_saves(engine: Engine) -> None:
    """Answers for one parcel count one poll each and apply in order, as one by one."""
    (claim,) = _orders(engine, 1)
    first, second = _scans(2)
    pairs = [
        (claim, _answer(claim.tracking_number, first, weight_kg=2)),
        (claim, _answer(claim.tracking_number, first, second)),
        (claim, _failure(claim.tracking_number)),
    ]
    with engine.begin() as conn:
        outcomes = ingest.save_results(conn, pairs, NOW)
    assert [o.ok for o in outcomes] == [True, True, False]
    with engine.connect() as conn:
        row = conn.execute(select(shipments)).one()
        stored = conn.execute(select(func.count()).select_from(tracking_events)).scalar()
    assert (row.poll_count, row.weight_kg, row.last_scan_at, row.consecutive_failures) == (
        3,
        2.0,
        second.time,
        1,
    )
    assert stored == 2


def test_more_new_scans_than_one_sqlite_statement_holds_are_counted_exactly(
    engine: Engine,
) -> None:
    """Hundreds of new scans in one batch are all stored and counted; a repeat adds none."""
    claims = _orders(engine, 3)
    scans = _scans(300)
    pairs = [
        (claims[0], _answer(claims[0].tracking_number, *scans[:157])),
        (claims[1], _answer(claims[1].tracking_number, *scans, *scans[:5])),
        (claims[2], _answer(claims[2].tracking_number)),
    ]
    for expected in ([157, 300, 0], [0, 0, 0]):
        with engine.begin() as conn:
            outcomes = ingest.save_results(conn, pairs, NOW)
        assert [o.new_events for o in outcomes] == expected
    with engine.connect() as conn:
        counts: dict[int, int] = dict(
            conn.execute(
                select(tracking_events.c.shipment_id, func.count()).group_by(
                    tracking_events.c.shipment_id
                )
            ).all()
        )
        times = conn.execute(
            select(tracking_events.c.time)
            .where(tracking_events.c.shipment_id == claims[1].id)
            .order_by(tracking_events.c.time)
        ).scalars()
        assert list(times) == [s.time for s in scans]
    assert counts == {claims[0].id: 157, claims[1].id: 300}
