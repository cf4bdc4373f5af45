"""Store behaviour on SQLite and PostgreSQL: schema, upserts, de-duplication, claims."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from carriers.model import Location, Problem, Status, TrackingEvent, TrackingResult
from tests.conftest import at
from tests.fakes import make_order
from tracker.domain.model import ShipmentRecord
from tracker.store import ingest, orders_repo, shipments_repo
from tracker.store.tables import metadata, order_items, orders, shipments, tracking_events

NOW = at("2026-09-11 10:00")


def test_migrations_match_the_table_definitions(engine: Engine) -> None:
    """Alembic's head schema equals tables.py on this backend (no drift)."""
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
    assert diff == []


def test_reimport_updates_order_and_keeps_parcels(engine: Engine) -> None:
    """Upserting an order again replaces its items but never drops a stored parcel."""
    first = make_order("A1", at("2026-09-10 10:00"), tracking_number="YT0000000001")
    with engine.begin() as conn:
        assert orders_repo.upsert_orders(conn, [first], NOW) == (1, 0)
    second = replace(
        first,
        shipments=(ShipmentRecord("zto", "ZT0000000002", None),),
        items=first.items * 2,
    )
    with engine.begin() as conn:
        assert orders_repo.upsert_orders(conn, [second], NOW) == (0, 1)
        assert conn.execute(select(func.count()).select_from(orders)).scalar_one() == 1
        assert conn.execute(select(func.count()).select_from(order_items)).scalar_one() == 2
        numbers = set(conn.execute(select(shipments.c.tracking_number)).scalars())
    assert numbers == {"YT0000000001", "ZT0000000002"}


def _claim(engine: Engine, worker: str, now=NOW, limit: int = 10):
    with engine.begin() as conn:
        return shipments_repo.claim_due_shipments(conn, now, limit, timedelta(minutes=2), worker)


def test_claims_never_overlap_and_expire(engine: Engine) -> None:
    """Two workers never lease the same parcel; an expired lease is claimable again."""
    batch = [
        make_order(f"A{i}", at("2026-09-10 10:00"), tracking_number=f"YT00000000{i:02d}")
        for i in range(6)
    ]
    with engine.begin() as conn:
        orders_repo.upsert_orders(conn, batch, NOW)
    first = _claim(engine, "w1", limit=4)
    second = _claim(engine, "w2", limit=4)
    assert len(first) == 4 and len(second) == 2
    assert not {c.id for c in first} & {c.id for c in second}
    assert _claim(engine, "w3") == []
    later = _claim(engine, "w3", now=NOW + timedelta(minutes=3))
    assert len(later) == 6


def test_duplicate_scans_are_stored_once_and_delivered_never_regresses(engine: Engine) -> None:
    """Saving the same history twice adds no rows; a late transit scan keeps 'delivered'."""
    with engine.begin() as conn:
        orders_repo.upsert_orders(
            conn, [make_order("A1", at("2026-09-10 10:00"), tracking_number="YT0000000001")], NOW
        )
    scans = (
        TrackingEvent(
            at("2026-09-11 18:00"), Status.PICKED_UP, "1", "已揽收", Location(province="广东省")
        ),
        TrackingEvent(
            at("2026-09-13 10:00"), Status.DELIVERED, "3", "已签收", Location(province="浙江省")
        ),
    )
    result = TrackingResult("yto", "YT0000000001", "fake", Status.DELIVERED, scans)
    claimed = _claim(engine, "w1")[0]
    with engine.begin() as conn:
        assert ingest.save_result(conn, claimed, result, NOW).new_events == 2
    late = TrackingEvent(at("2026-09-13 12:00"), Status.IN_TRANSIT, "0", "到达【杭州转运中心】")
    again = TrackingResult("yto", "YT0000000001", "fake", Status.IN_TRANSIT, (*scans, late))
    claimed = replace(claimed, status=Status.DELIVERED)
    with engine.begin() as conn:
        outcome = ingest.save_result(conn, claimed, again, NOW)
        assert outcome.new_events == 1
        assert outcome.status is Status.DELIVERED
        assert conn.execute(select(func.count()).select_from(tracking_events)).scalar_one() == 3
        assert conn.execute(select(shipments.c.status)).scalar_one() == "delivered"


def test_parcel_level_provider_problem_lands_on_the_newest_scan(engine: Engine) -> None:
    """A problem the provider gives only for the whole parcel is kept on its newest scan."""
    with engine.begin() as conn:
        orders_repo.upsert_orders(
            conn, [make_order("A1", at("2026-09-10 10:00"), tracking_number="YT0000000001")], NOW
        )
    scans = (
        TrackingEvent(at("2026-09-11 18:00"), Status.PICKED_UP, "1", "已揽收"),
        TrackingEvent(at("2026-09-12 09:00"), Status.IN_TRANSIT, "0", "到达【杭州转运中心】"),
    )
    plain = TrackingResult("yto", "YT0000000001", "fake", Status.IN_TRANSIT, scans)
    with engine.begin() as conn:
        ingest.save_result(conn, _claim(engine, "w1")[0], plain, NOW)
    lost = replace(plain, status=Status.EXCEPTION, problem=Problem.LOST)
    with engine.begin() as conn:
        ingest.save_result(conn, _claim(engine, "w1", now=NOW + timedelta(hours=9))[0], lost, NOW)
        problems = dict(
            conn.execute(select(tracking_events.c.raw_code, tracking_events.c.problem)).all()
        )
    assert problems == {"1": None, "0": "lost"}
