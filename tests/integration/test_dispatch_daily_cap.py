"""The per-buyer daily cap on SQLite and PostgreSQL: counted across batches and earlier sends."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from tests.integration.test_dispatch import NOW, TZ, ScriptedChannel, dispatcher, seed_outbox
from tracker.notify.base import SendResult
from tracker.store.tables import notices
from tracker.store.uow import UnitOfWork


def _one_buyer(engine: Engine, count: int) -> int:
    """``count`` queued notices, all for the first seeded buyer; returns that buyer's id."""
    seed_outbox(engine, count, NOW)
    with UnitOfWork(engine) as uow:
        buyer = (
            uow.conn.execute(select(notices.c.buyer_id).order_by(notices.c.id)).scalars().first()
        )
        assert buyer is not None
        uow.conn.execute(update(notices).values(buyer_id=buyer))
        uow.commit()
    return buyer


def _statuses(engine: Engine) -> list[tuple[str, str | None, datetime]]:
    """(status, reason, scheduled_for) of every notice, in id order."""
    with engine.connect() as conn:
        rows = conn.execute(
            select(notices.c.status, notices.c.reason, notices.c.scheduled_for).order_by(
                notices.c.id
            )
        ).all()
    return [(r.status, r.reason, r.scheduled_for) for r in rows]


def test_cap_holds_across_batches_and_defers_the_rest_to_the_next_morning(engine: Engine) -> None:
    """Five notices for one buyer, cap 3, batches of 2: three sent, two held until tomorrow."""
    _one_buyer(engine, 5)
    channel = ScriptedChannel(SendResult(True, "aliyun", message_id="m"))
    run = dispatcher(engine, channel, max_per_buyer_per_day=3, batch_size=2)
    stats = asyncio.run(run.run_once(NOW))
    assert stats.sent == 3 and stats.deferred == 2
    assert len(channel.keys) == 3
    morning = datetime.combine(
        NOW.astimezone(TZ).date() + timedelta(days=1), datetime.min.time(), tzinfo=TZ
    )
    held = [s for s in _statuses(engine) if s[0] == "queued"]
    assert [s[1] for s in held] == ["held: daily limit per buyer reached"] * 2
    assert all(s[2] == morning for s in held)


def test_sends_from_an_earlier_run_today_count(engine: Engine) -> None:
    """A notice sent earlier today uses up one of the buyer's three."""
    _one_buyer(engine, 4)
    channel = ScriptedChannel(SendResult(True, "aliyun", message_id="m"))
    first = dispatcher(engine, channel, max_per_buyer_per_day=1, batch_size=1)
    assert asyncio.run(first.run_once(NOW, max_batches=1)).sent == 1
    later = dispatcher(engine, channel, max_per_buyer_per_day=3)
    stats = asyncio.run(later.run_once(NOW + timedelta(minutes=5)))
    assert stats.sent == 2 and stats.deferred == 1
    assert [s[0] for s in _statuses(engine)].count("sent") == 3
