"""Retention on a real database: old scans of closed orders, old closed orders, orphan buyers."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from carriers.model import Status
from tests.conftest import at
from tests.fakes import ScriptedSource, make_order
from tracker.bootstrap import App
from tracker.domain.model import Order
from tracker.notify.base import DryRunAlertSender, DryRunChannel
from tracker.service.cycle import run_cycle
from tracker.service.housekeeping import run_housekeeping
from tracker.settings import DatabaseConfig, Settings
from tracker.store import orders_repo
from tracker.store.tables import buyers, orders, shipments, tracking_events

HANGZHOU = {"province": "浙江省", "city": "杭州市"}


def _delivered(source: ScriptedSource, number: str, shipped: datetime, days: int) -> None:
    source.scan(
        number, shipped, Status.PICKED_UP, "【广州市】已揽收", province="广东省", city="广州市"
    )
    later = shipped.replace(day=shipped.day + days)
    source.scan(number, later, Status.DELIVERED, "【杭州市】已签收", **HANGZHOU)


def _import_and_poll(app: App, now_ref: list[datetime], when: datetime, *order: Order) -> None:
    now_ref[0] = when
    with app.uow() as uow:
        orders_repo.upsert_orders(uow.conn, list(order), when)
        uow.commit()
    assert asyncio.run(run_cycle(app)).ok


def _count(engine: Engine, table, *where) -> int:  # type: ignore[no-untyped-def]
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def test_retention_keeps_live_data_and_drops_what_is_old_and_closed(engine: Engine) -> None:
    """Closed orders past orders_days go whole; newer closed ones lose old scans; live stay."""
    source = ScriptedSource()
    now_ref = [at("2025-01-01 10:00")]
    app = App(
        settings=Settings(database=DatabaseConfig(url=str(engine.url))),
        clock=lambda: now_ref[0],
        engine_override=engine,
        sources_override=[(source, frozenset({"*"}))],
        channels_override={"sms": DryRunChannel()},
        alert_senders_override={"ops": DryRunAlertSender("ops")},
    )
    _delivered(source, "YTOLD", at("2025-01-02 09:00"), 2)
    _delivered(source, "YTOPT", at("2025-01-02 09:00"), 2)
    _delivered(source, "YTNEW", at("2026-01-02 09:00"), 2)
    source.scan(
        "YTLIVE", at("2025-11-02 09:00"), Status.IN_TRANSIT, "到达【杭州转运中心】", **HANGZHOU
    )
    old = make_order(
        "OLD",
        at("2025-01-01 10:00"),
        tracking_number="YTOLD",
        shipped_at=at("2025-01-02 09:00"),
        phone="13800000001",
    )
    opted_out = make_order(
        "OPT",
        at("2025-01-01 10:00"),
        tracking_number="YTOPT",
        shipped_at=at("2025-01-02 09:00"),
        phone="13800000002",
        opt_out=True,
    )
    _import_and_poll(app, now_ref, at("2025-01-05 10:00"), old, opted_out)
    live = make_order(
        "LIVE",
        at("2025-11-01 10:00"),
        tracking_number="YTLIVE",
        shipped_at=at("2025-11-02 08:00"),
        phone="13800000003",
    )
    _import_and_poll(app, now_ref, at("2025-11-02 10:00"), live)
    recent = make_order(
        "NEW",
        at("2026-01-01 10:00"),
        tracking_number="YTNEW",
        shipped_at=at("2026-01-02 09:00"),
        phone="13800000004",
    )
    _import_and_poll(app, now_ref, at("2026-01-05 10:00"), recent)
    assert _count(engine, orders, orders.c.active.is_(False)) == 3

    result = run_housekeeping(engine, at("2026-04-10 03:30"), events_days=90, orders_days=365)

    assert result.orders_deleted == 2 and result.buyers_deleted == 1 and not result.interrupted
    with engine.connect() as conn:
        remaining = {
            row.order_id: row.active
            for row in conn.execute(select(orders.c.order_id, orders.c.active))
        }
        assert remaining == {"LIVE": True, "NEW": False}
        scans = dict(
            engine.connect()
            .execute(
                select(shipments.c.tracking_number, func.count(tracking_events.c.id))
                .select_from(shipments.outerjoin(tracking_events))
                .group_by(shipments.c.tracking_number)
            )
            .all()
        )
        assert scans == {"YTLIVE": 1, "YTNEW": 0}
        assert result.events_deleted == 6  # two scans of each of the three closed orders
        phones = set(conn.execute(select(buyers.c.phone)).scalars())
        assert phones == {"13800000002", "13800000003", "13800000004"}  # the opt-out survives
    again = run_housekeeping(engine, at("2026-04-10 03:30"), events_days=90, orders_days=365)
    assert (again.events_deleted, again.orders_deleted, again.buyers_deleted) == (0, 0, 0)


def test_retention_stops_between_batches_when_asked(engine: Engine) -> None:
    """A stop request interrupts before the next batch and reports it."""
    result = run_housekeeping(
        engine, at("2026-04-10 03:30"), events_days=1, orders_days=1, should_stop=lambda: True
    )
    assert result.interrupted and result.summary().endswith("(interrupted)")
