"""Sample the database for the gauges in /metrics (open tickets, outbox depth and lag)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Table, and_, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement

from tracker import metrics
from tracker.domain.model import ExceptionKind
from tracker.store.tables import alerts, notices, tickets

__all__ = ["refresh_gauges"]


def refresh_gauges(conn: Connection, now: datetime) -> None:
    """Read open tickets per kind and each outbox's due, held and oldest-due rows."""
    counts = {
        str(kind): int(n)
        for kind, n in conn.execute(
            select(tickets.c.kind, func.count())
            .where(tickets.c.status != "resolved")
            .group_by(tickets.c.kind)
        )
    }
    metrics.set_open_tickets(counts, [k.value for k in ExceptionKind])
    _outbox(conn, "notices", notices, notices.c.scheduled_for, now)
    _outbox(conn, "alerts", alerts, alerts.c.next_attempt_at, now)


def _outbox(
    conn: Connection, name: str, table: Table, due_at: ColumnElement[datetime], now: datetime
) -> None:
    queued = table.c.status == "queued"
    due = int(
        conn.execute(
            select(func.count()).select_from(table).where(and_(queued, due_at <= now))
        ).scalar_one()
    )
    held = int(
        conn.execute(
            select(func.count()).select_from(table).where(and_(queued, due_at > now))
        ).scalar_one()
    )
    oldest = conn.execute(select(func.min(due_at)).where(and_(queued, due_at <= now))).scalar()
    age = (now - oldest).total_seconds() if oldest is not None else 0.0
    metrics.set_outbox(name, due=due, held=held, oldest_age_s=age)
