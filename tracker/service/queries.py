"""Read-side queries for the CLI and alerts: tickets, notices and alert deliveries."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.engine import Connection

from tracker.errors import NotFoundError
from tracker.service.views import iso, notice_json, ticket_json
from tracker.store.tables import alerts, notices, orders, tickets

__all__ = ["iter_alerts", "iter_notices", "iter_tickets", "ticket_by_id"]

_TICKET_COLUMNS = (
    tickets.c.id,
    orders.c.order_id,
    tickets.c.courier,
    tickets.c.tracking_number,
    tickets.c.kind,
    tickets.c.severity,
    tickets.c.status,
    tickets.c.opened_at,
    tickets.c.updated_at,
    tickets.c.resolved_at,
    tickets.c.resolution,
    tickets.c.note,
    tickets.c.evidence,
    tickets.c.suggested_action,
)


def ticket_by_id(conn: Connection, ticket_id: int, tz: ZoneInfo) -> dict[str, Any]:
    """One ticket as contract JSON; raises NotFoundError if there is none."""
    row = conn.execute(
        select(*_TICKET_COLUMNS)
        .join(orders, orders.c.id == tickets.c.order_pk)
        .where(tickets.c.id == ticket_id)
    ).first()
    if row is None:
        raise NotFoundError(f"ticket {ticket_id} does not exist")
    return ticket_json(row, tz)


def iter_tickets(
    conn: Connection, tz: ZoneInfo, *, status: str = "open", kind: str | None = None
) -> Iterator[tuple[dict[str, Any], Any]]:
    """Tickets (``open`` = not resolved, or ``all``), most severe and oldest first."""
    query = select(*_TICKET_COLUMNS).join(orders, orders.c.id == tickets.c.order_pk)
    if status == "open":
        query = query.where(tickets.c.status != "resolved")
    elif status != "all":
        query = query.where(tickets.c.status == status)
    if kind:
        query = query.where(tickets.c.kind == kind)
    query = query.order_by(tickets.c.status != "open", tickets.c.opened_at, tickets.c.id)
    for row in conn.execute(query):
        yield ticket_json(row, tz), row


def iter_notices(conn: Connection, tz: ZoneInfo) -> Iterator[tuple[dict[str, Any], Any]]:
    """Every buyer notice, newest first, recipient masked."""
    query = (
        select(
            notices.c.id,
            orders.c.order_id,
            notices.c.ticket_id,
            notices.c.channel,
            notices.c.recipient,
            notices.c.template,
            notices.c.status,
            notices.c.scheduled_for,
            notices.c.sent_at,
            notices.c.reason,
            notices.c.body,
            notices.c.created_at,
        )
        .join(orders, orders.c.id == notices.c.order_pk)
        .order_by(notices.c.created_at.desc(), notices.c.id.desc())
    )
    for row in conn.execute(query):
        yield notice_json(row, tz), row


def iter_alerts(conn: Connection, tz: ZoneInfo) -> Iterator[dict[str, Any]]:
    """Every agent alert delivery, newest first."""
    query = select(alerts).order_by(alerts.c.created_at.desc(), alerts.c.id.desc())
    for row in conn.execute(query):
        yield {
            "id": row.id,
            "ticket_id": row.ticket_id,
            "type": row.event_type,
            "endpoint": row.endpoint,
            "status": row.status,
            "attempts": row.attempts,
            "created_at": iso(row.created_at, tz),
            "sent_at": iso(row.sent_at, tz),
            "next_attempt_at": iso(row.next_attempt_at, tz) if row.status == "queued" else None,
            "response_status": row.response_status,
            "reason": row.reason,
        }
