"""``update_row`` on SQLite and PostgreSQL: one row changed, values converted like the ORM's."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.engine import Engine

from tests.conftest import at
from tests.integration.test_dispatch import NOW, seed_outbox
from tracker.store.rowupdate import update_row
from tracker.store.tables import notices
from tracker.store.uow import UnitOfWork


def test_update_row_sets_only_the_given_row_and_columns(engine: Engine) -> None:
    """Only the named row changes, only in the named columns; datetimes keep their instant."""
    seed_outbox(engine, 2, NOW)
    when = at("2026-09-15 08:30")
    with UnitOfWork(engine) as uow:
        first, second = uow.conn.execute(select(notices.c.id).order_by(notices.c.id)).scalars()
        before = uow.conn.execute(select(notices).where(notices.c.id == second)).one()
        update_row(uow.conn, notices, first, {"scheduled_for": when, "reason": "held: test"})
        update_row(uow.conn, notices, first, {"attempts": 2, "claimed_by": None})
        uow.commit()
        changed = uow.conn.execute(select(notices).where(notices.c.id == first)).one()
        untouched = uow.conn.execute(select(notices).where(notices.c.id == second)).one()
    assert changed.scheduled_for == when
    assert changed.reason == "held: test"
    assert changed.attempts == 2
    assert changed.claimed_by is None
    assert changed.status == "queued"
    assert untouched == before
