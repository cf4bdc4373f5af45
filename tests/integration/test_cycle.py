"""The whole loop on a real database: import, poll, detect, tickets, outbox, dispatch."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from carriers.model import ErrorKind, Status, TrackingError
from tests.conftest import at
from tests.fakes import ScriptedSource, make_order
from tracker.bootstrap import App
from tracker.notify.base import DryRunAlertSender, DryRunChannel
from tracker.service import agents
from tracker.service.cycle import run_cycle
from tracker.service.queries import iter_notices, iter_tickets
from tracker.settings import DatabaseConfig, Settings
from tracker.store import orders_repo
from tracker.store.tables import alerts, notices, orders, shipments, tickets, tracking_events

PAID = at("2026-09-10 10:00")
SHIPPED = at("2026-09-11 09:00")


def _app(engine: Engine, source: ScriptedSource, now_ref: list) -> App:
    settings = Settings(database=DatabaseConfig(url=str(engine.url)))
    return App(
        settings=settings,
        clock=lambda: now_ref[0],
        engine_override=engine,
        sources_override=[(source, frozenset({"*"}))],
        channels_override={"sms": DryRunChannel()},
        alert_senders_override={"ops": DryRunAlertSender("ops")},
    )


def _stalled_source() -> ScriptedSource:
    source = ScriptedSource()
    source.scan(
        "YT7000000001",
        at("2026-09-11 18:00"),
        Status.PICKED_UP,
        "【广州市】已揽收",
        province="广东省",
        city="广州市",
    )
    source.scan(
        "YT7000000001",
        at("2026-09-12 02:00"),
        Status.IN_TRANSIT,
        "快件已到达【广州转运中心】",
        province="广东省",
        city="广州市",
    )
    return source


def _stalled_setup(engine: Engine, **order: Any) -> tuple[App, ScriptedSource, list]:
    """An app whose one order's parcel went silent after two scans; the clock is settable."""
    source = _stalled_source()
    now = [at("2026-09-11 10:00")]
    app = _app(engine, source, now)
    parcel = make_order(
        "A1001",
        PAID,
        tracking_number="YT7000000001",
        shipped_at=SHIPPED,
        **order,
    )
    _import(app, parcel)
    return app, source, now


def _import(app: App, *orders) -> None:
    with app.uow() as uow:
        orders_repo.upsert_orders(uow.conn, list(orders), app.clock())
        uow.commit()


def _count(engine: Engine, table, *where) -> int:
    with engine.connect() as conn:
        query = select(func.count()).select_from(table)
        for w in where:
            query = query.where(w)
        return int(conn.execute(query).scalar_one())


def test_stalled_parcel_opens_one_ticket_with_notice_and_alert(engine: Engine) -> None:
    """A parcel silent for over 48 h opens one stalled ticket, one notice and one alert."""
    app, _, now = _stalled_setup(engine)

    now[0] = at("2026-09-14 10:00")
    result = asyncio.run(run_cycle(app))
    assert result.ok, result.failures
    assert result.poll.claimed == 1 and result.poll.new_events == 2
    with engine.connect() as conn:
        rows = [t for t, _ in iter_tickets(conn, app.settings.tz)]
    assert [t["kind"] for t in rows] == ["stalled"]
    ticket = rows[0]
    assert ticket["order_id"] == "A1001" and ticket["tracking_number"] == "YT7000000001"
    assert ticket["evidence"] and ticket["suggested_action"]
    assert ticket["opened_at"].endswith("+08:00")
    assert _count(engine, notices) == 1
    assert _count(engine, alerts, alerts.c.event_type == "ticket.opened") == 1
    with engine.connect() as conn:
        notice = next(iter_notices(conn, app.settings.tz))[0]
    assert notice["status"] == "sent" and notice["recipient"] == "138****8000"


def test_redetection_never_duplicates_and_waits_for_the_next_deadline(engine: Engine) -> None:
    """Later cycles keep one ticket and one notice and leave it alone until a deadline passes.

    Stalled since 09-14 02:00 (48 h after the last scan); the next deadline is the lane's
    delivery allowance (shipped 09-11 09:00 + 4 days), when overdue takes over.
    """
    app, _, now = _stalled_setup(engine)
    for hour in (10, 14, 18):
        now[0] = at(f"2026-09-14 {hour}:00")
        asyncio.run(run_cycle(app))
    assert _count(engine, tickets, tickets.c.kind == "stalled") == 1
    assert _count(engine, notices) == 1
    assert _count(engine, tracking_events) == 2
    with engine.connect() as conn:
        assert conn.execute(select(tickets.c.detections)).scalar_one() == 1  # not rewritten
        due = conn.execute(select(orders.c.next_check_at)).scalar_one()
    assert due == at("2026-09-15 09:00") + timedelta(microseconds=1)

    now[0] = at("2026-09-15 08:59")
    assert asyncio.run(run_cycle(app)).detect.orders == 0
    now[0] = at("2026-09-15 09:01")
    result = asyncio.run(run_cycle(app))
    assert (result.detect.orders, result.detect.opened, result.detect.resolved) == (1, 1, 1)
    with engine.connect() as conn:
        rows = conn.execute(select(tickets.c.kind, tickets.c.status).order_by(tickets.c.id)).all()
    assert [tuple(r) for r in rows] == [("stalled", "resolved"), ("overdue", "open")]


def test_delivery_auto_resolves_with_reason_and_alert(engine: Engine) -> None:
    """Once the parcel is delivered the stalled ticket resolves by itself, saying why."""
    app, source, now = _stalled_setup(engine)
    now[0] = at("2026-09-14 10:00")
    asyncio.run(run_cycle(app))
    source.scan(
        "YT7000000001",
        at("2026-09-14 15:00"),
        Status.DELIVERED,
        "【杭州市】已签收，本人签收",
        province="浙江省",
        city="杭州市",
    )
    with engine.begin() as conn:  # the parcel is due again only later; make it due now
        conn.execute(shipments.update().values(next_poll_at=at("2026-09-14 15:30")))
    now[0] = at("2026-09-14 16:00")
    asyncio.run(run_cycle(app))
    with engine.connect() as conn:
        row = conn.execute(select(tickets.c.status, tickets.c.resolution)).one()
        status = conn.execute(select(shipments.c.status, shipments.c.next_poll_at)).one()
    assert row.status == "resolved" and row.resolution
    assert status.status == "delivered" and status.next_poll_at is None
    assert _count(engine, alerts, alerts.c.event_type == "ticket.resolved") == 1


def test_manual_resolve_is_not_reopened_while_condition_holds(engine: Engine) -> None:
    """An agent's resolution holds: the same condition does not reopen or re-notify."""
    app, _, now = _stalled_setup(engine)
    now[0] = at("2026-09-14 10:00")
    asyncio.run(run_cycle(app))
    with app.uow() as uow:
        ticket_id = uow.conn.execute(select(tickets.c.id)).scalar_one()
        assert (
            agents.resolve(uow, ticket_id, now[0], "called YTO, parcel found", "agent-1")
            == "resolved"
        )
    now[0] = at("2026-09-14 12:00")
    asyncio.run(run_cycle(app))
    assert _count(engine, tickets, tickets.c.kind == "stalled") == 1
    assert _count(engine, notices) == 1


def test_quiet_hours_hold_notice_until_morning(engine: Engine) -> None:
    """A ticket opened at 23:00 queues its notice for 08:00 and nothing is sent at night."""
    app, _, now = _stalled_setup(engine)
    now[0] = at("2026-09-14 23:00")
    asyncio.run(run_cycle(app))
    with engine.connect() as conn:
        notice = conn.execute(select(notices.c.status, notices.c.scheduled_for)).one()
    assert notice.status == "queued"
    assert notice.scheduled_for == at("2026-09-15 08:00")
    now[0] = at("2026-09-15 08:01")
    result = asyncio.run(run_cycle(app))
    assert result.dispatch.sent == 1


def test_opted_out_buyer_gets_no_notice(engine: Engine) -> None:
    """An opted-out buyer's notice is recorded as suppressed, never sent."""
    app, _, now = _stalled_setup(engine, opt_out=True)
    now[0] = at("2026-09-14 10:00")
    result = asyncio.run(run_cycle(app))
    assert result.dispatch.sent == 0
    with engine.connect() as conn:
        assert conn.execute(select(notices.c.status, notices.c.reason)).one() == (
            "suppressed",
            "buyer opted out",
        )


def test_per_buyer_daily_cap_defers_the_fourth_notice(engine: Engine) -> None:
    """A buyer gets at most three notices a day; the fourth waits for tomorrow morning."""
    source = ScriptedSource()
    now = [at("2026-09-10 10:00")]
    app = _app(engine, source, now)
    _import(app, *(make_order(f"B{i}", PAID) for i in range(4)))  # same buyer, never shipped
    now[0] = at("2026-09-13 10:00")
    result = asyncio.run(run_cycle(app))
    assert result.detect.opened == 4
    assert result.dispatch.sent == 3 and result.dispatch.deferred == 1
    with engine.connect() as conn:
        held = conn.execute(
            select(notices.c.scheduled_for).where(notices.c.status == "queued")
        ).scalar_one()
    assert held == at("2026-09-14 08:00")


def test_provider_error_is_recorded_and_retried_later(engine: Engine) -> None:
    """A failing lookup is stored on the parcel with a back-off; the run still succeeds."""
    source = ScriptedSource()
    source.errors["YT7000000001"] = TrackingError(
        ErrorKind.BAD_RESPONSE, "HTML error page", retryable=True, raw_excerpt="<html>502</html>"
    )
    now = [at("2026-09-11 10:00")]
    app = _app(engine, source, now)
    _import(app, make_order("A1001", PAID, tracking_number="YT7000000001", shipped_at=SHIPPED))
    result = asyncio.run(run_cycle(app))
    assert result.ok and result.poll.failed == 1
    with engine.connect() as conn:
        row = conn.execute(select(shipments)).one()
    assert row.error_kind == "bad_response" and row.error_excerpt == "<html>502</html>"
    assert row.next_poll_at - now[0] == timedelta(minutes=5)
    assert row.claimed_until is None
