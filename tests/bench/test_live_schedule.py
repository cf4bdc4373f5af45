"""The live set's stored detection schedule is what the tracker itself would have stored."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import Engine

from tests.bench.datagen import load_poll_set
from tests.bench.live_set import PREVIOUS_PASS, load_live_set
from tests.bench.scenario import CHINA_TZ, Shares
from tracker.domain.policy import Policy
from tracker.domain.rules import next_check_at
from tracker.store import orders_repo
from tracker.store.tables import orders

START = datetime.fromisoformat("2026-10-20T14:00:00+08:00")


def test_live_set_next_checks_match_the_trackers_own_schedule(engine: Engine) -> None:
    """Every stored next_check_at equals next_check_at(facts as loaded, policy, start - 1 h)."""
    url = engine.url.render_as_string(hide_password=False)
    load_live_set(url, 400, START, tickets=False)
    policy = Policy.from_mapping({}, timezone=CHINA_TZ)
    with engine.connect() as conn:
        stored = {r.id: r.next_check_at for r in conn.execute(select(orders))}
        contexts = orders_repo.load_order_contexts(conn, stored)
    assert len(contexts) == 400
    previous = START - PREVIOUS_PASS
    for ctx in contexts:
        assert stored[ctx.pk] == next_check_at(ctx.facts, policy, previous), ctx.facts.order_id
    later = [at for at in stored.values() if at is not None]
    # a real mix: some due within the hour, most later, none before the previous pass
    due = [at for at in later if at <= START]
    assert 0 < len(due) < len(later) / 2
    assert min(later) > previous


def test_poll_set_orders_are_due_since_payment(engine: Engine) -> None:
    """Imported orders are due for detection at once, as upsert_orders leaves them."""
    url = engine.url.render_as_string(hide_password=False)
    load_poll_set(url, 30, START, Shares(0.05, 0.02, 0.03))
    with engine.connect() as conn:
        rows = conn.execute(select(orders.c.paid_at, orders.c.next_check_at)).all()
    assert len(rows) == 30
    assert all(r.next_check_at == r.paid_at < START - timedelta(hours=1) for r in rows)
