"""Batched storing of a poll's answers on SQLite and PostgreSQL (issue 8)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Engine

from carriers.model import (
    ErrorKind,
    Problem,
    Status,
    TrackingError,
    TrackingEvent,
    TrackingResult,
)
from tests.conftest import at
from tests.fakes import make_order
from tracker.store import ingest, orders_repo, shipments_repo
from tracker.store.tables import shipments, tracking_events

NOW = at("2026-09-12 10:00")
PICKED = TrackingEvent(at("2026-09-11 18:00"), Status.PICKED_UP, "1", "已揽收")
MOVING = TrackingEvent(at("2026-09-12 06:00"), Status.IN_TRANSIT, "0", "到达【杭州转运中心】")
SIGNED = TrackingEvent(at("2026-09-12 08:00"), Status.DELIVERED, "3", "已签收")
LATE = TrackingEvent(at("2026-09-12 09:00"), Status.IN_TRANSIT, "0", "离开【杭州转运中心】")

# one parcel per case the batch must handle, keyed by tracking number
NEW = "YT0000000001"  # first answer: new scans (one repeated), API weight, courier fixed
SEEN = "YT0000000002"  # one scan stored earlier, one new; a parcel-level "lost"
FAILED = "YT0000000003"  # the provider failed
DELIVERED = "YT0000000004"  # delivered before the claim; a late transit scan arrives
BILLED = "YT0000000005"  # a courier bill weight already stored; the API reports another
RACED = "YT0000000006"  # a push marked it delivered after this worker claimed it


def _answer(number: str, status: Status, *events: TrackingEvent, **kw: Any) -> TrackingResult:
    return TrackingResult("yto", number, "fake", status, tuple(events), **kw)


def _stored(engine: Engine) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(select(shipments)).all()
    return {r.tracking_number: r for r in rows}


def _events(engine: Engine, shipment_id: int) -> dict[str, str | None]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(tracking_events.c.text, tracking_events.c.problem).where(
                tracking_events.c.shipment_id == shipment_id
            )
        ).all()
    return {r.text: r.problem for r in rows}


def test_a_mixed_batch_is_stored_with_every_rule_of_single_saves(engine: Engine) -> None:
    """One call stores new and repeated scans, errors, terminal guards and weight precedence."""
    numbers = [NEW, SEEN, FAILED, DELIVERED, BILLED, RACED]
    with engine.begin() as conn:
        orders_repo.upsert_orders(
            conn,
            [
                make_order(f"A{i}", at("2026-09-10 10:00"), tracking_number=n)
                for i, n in enumerate(numbers)
            ],
            NOW - timedelta(days=1),
        )
        claims = shipments_repo.claim_due_shipments(conn, NOW, 10, timedelta(minutes=2), "w1")
    claimed = {c.tracking_number: c for c in claims}
    assert set(claimed) == set(numbers)
    earlier = NOW - timedelta(hours=1)
    with engine.begin() as conn:
        # state written by pushes, which leave the poller's lease alone
        for number, answer in (
            (SEEN, _answer(SEEN, Status.PICKED_UP, PICKED)),
            (DELIVERED, _answer(DELIVERED, Status.DELIVERED, PICKED, SIGNED)),
            (RACED, _answer(RACED, Status.DELIVERED, PICKED, SIGNED)),
        ):
            assert ingest.save_pushed_result(conn, claimed[number].id, answer, earlier)
        shipments_repo.set_weights(conn, [(BILLED, 2.5)], earlier)
    before = _stored(engine)
    assert before[SEEN].claimed_by == "w1"
    excerpt = "<html>" + "x" * 800
    pairs = [
        (
            claimed[NEW],
            _answer(
                NEW,
                Status.IN_TRANSIT,
                PICKED,
                PICKED,
                MOVING,
                weight_kg=1.2,
                courier_corrected="zto",
            ),
        ),
        (
            claimed[SEEN],
            _answer(SEEN, Status.EXCEPTION, PICKED, MOVING, problem=Problem.LOST),
        ),
        (
            claimed[FAILED],
            _answer(
                FAILED,
                Status.UNKNOWN,
                error=TrackingError(ErrorKind.NETWORK, "timed out", True, excerpt),
            ),
        ),
        (
            replace(claimed[DELIVERED], status=Status.DELIVERED),
            _answer(DELIVERED, Status.IN_TRANSIT, PICKED, SIGNED, LATE),
        ),
        (claimed[BILLED], _answer(BILLED, Status.PICKED_UP, PICKED, weight_kg=1.0)),
        (claimed[RACED], _answer(RACED, Status.IN_TRANSIT, PICKED, MOVING)),
    ]
    with engine.begin() as conn:
        outcomes = ingest.save_results(conn, pairs, NOW)

    assert [o.shipment_id for o in outcomes] == [c.id for c, _ in pairs]
    summary = {o.shipment_id: (o.new_events, o.status, o.ok) for o in outcomes}
    assert summary == {
        claimed[NEW].id: (2, Status.IN_TRANSIT, True),
        claimed[SEEN].id: (1, Status.EXCEPTION, True),
        claimed[FAILED].id: (0, Status.PENDING, False),
        claimed[DELIVERED].id: (1, Status.DELIVERED, True),
        claimed[BILLED].id: (1, Status.PICKED_UP, True),
        claimed[RACED].id: (1, Status.IN_TRANSIT, True),
    }
    after = _stored(engine)
    assert all(r.claimed_by is None and r.claimed_until is None for r in after.values())

    new = after[NEW]
    assert (new.status, new.courier, new.weight_kg, new.weight_source) == (
        "in_transit",
        "zto",
        1.2,
        "fake",
    )
    assert (new.first_scan_at, new.last_scan_at, new.delivered_at) == (
        PICKED.time,
        MOVING.time,
        None,
    )
    assert new.poll_count == 1 and new.next_poll_at > NOW and new.error_kind is None
    assert _events(engine, new.id) == {PICKED.text: None, MOVING.text: None}

    assert after[SEEN].status == "exception"
    assert _events(engine, after[SEEN].id) == {PICKED.text: None, MOVING.text: "lost"}

    failed = after[FAILED]
    assert (failed.status, failed.error_kind, failed.error_message) == (
        "pending",
        "network",
        "timed out",
    )
    assert failed.error_excerpt == excerpt[:500]
    assert (failed.consecutive_failures, failed.poll_count, failed.error_at) == (1, 1, NOW)
    assert failed.next_poll_at > NOW and _events(engine, failed.id) == {}

    late = after[DELIVERED]
    assert (late.status, late.delivered_at, late.last_scan_at) == (
        "delivered",
        SIGNED.time,
        LATE.time,
    )
    assert len(_events(engine, late.id)) == 3

    billed = after[BILLED]
    assert (billed.weight_kg, billed.weight_source, billed.status) == (2.5, "bill", "picked_up")

    # the worker read "pending", but the SQL guard sees the pushed "delivered"
    assert after[RACED].status == "delivered"
    assert after[RACED].delivered_at == SIGNED.time


def test_an_empty_batch_changes_nothing(engine: Engine) -> None:
    """Storing no answers runs no statement and returns no outcomes."""
    with engine.begin() as conn:
        assert ingest.save_results(conn, [], NOW) == []


def test_only_unseen_scans_are_inserted_and_a_late_backdated_scan_is_kept(engine: Engine) -> None:
    """A repeated history inserts nothing; a scan older than the newest stored one still lands."""
    with engine.begin() as conn:
        orders_repo.upsert_orders(
            conn,
            [make_order("B1", at("2026-09-10 10:00"), tracking_number=NEW)],
            NOW - timedelta(days=1),
        )
        (claim,) = shipments_repo.claim_due_shipments(conn, NOW, 10, timedelta(minutes=2), "w1")
    nowhere = replace(MOVING, location=replace(MOVING.location, province=None, city=None))
    backdated = TrackingEvent(at("2026-09-11 20:00"), Status.IN_TRANSIT, "0", "【广州市】已发出")
    answers = [
        _answer(NEW, Status.DELIVERED, PICKED, nowhere, SIGNED),
        _answer(NEW, Status.DELIVERED, PICKED, nowhere, SIGNED),
        _answer(NEW, Status.DELIVERED, PICKED, backdated, nowhere, SIGNED),
    ]
    counts = []
    for answer in answers:
        with engine.begin() as conn:
            (outcome,) = ingest.save_results(conn, [(claim, answer)], NOW)
        counts.append(outcome.new_events)
    assert counts == [3, 0, 1]
    with engine.connect() as conn:
        rows = conn.execute(
            select(tracking_events.c.text, tracking_events.c.province, tracking_events.c.time)
            .where(tracking_events.c.shipment_id == claim.id)
            .order_by(tracking_events.c.time)
        ).all()
    assert [r.text for r in rows] == [PICKED.text, backdated.text, MOVING.text, SIGNED.text]
    assert rows[2].province is None and rows[1].time == backdated.time
