"""Tickets, their history, and the outbox rows written with them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from tracker.store.sql import insert_ignore
from tracker.store.tables import alerts, notices, ticket_log, tickets

__all__ = [
    "OpenTicket",
    "add_alert",
    "add_notice",
    "insert_open_ticket",
    "log_ticket",
    "open_tickets_by_order",
    "resolve_ticket",
    "unblock_reopen",
    "update_ticket",
]


@dataclass(frozen=True, slots=True)
class OpenTicket:
    """An unresolved ticket, or a resolved one blocking its kind from reopening."""

    id: int
    order_pk: int
    kind: str
    severity: str
    status: str
    opened_at: datetime


def open_tickets_by_order(
    conn: Connection, order_pks: Iterable[int]
) -> dict[int, dict[str, OpenTicket]]:
    """Unresolved (or reopen-blocked) tickets for these orders, keyed by order then kind."""
    pks = list(order_pks)
    found: dict[int, dict[str, OpenTicket]] = defaultdict(dict)
    if not pks:
        return found
    rows = conn.execute(
        select(
            tickets.c.id,
            tickets.c.order_pk,
            tickets.c.kind,
            tickets.c.severity,
            tickets.c.status,
            tickets.c.opened_at,
        )
        .where(
            and_(
                tickets.c.order_pk.in_(pks),
                or_(tickets.c.status != "resolved", tickets.c.reopen_blocked.is_(True)),
            )
        )
        .order_by(tickets.c.id)
    )
    for r in rows:
        if r.kind in found[r.order_pk] and r.status == "resolved":
            continue  # an unresolved ticket of the kind outranks an older blocking one
        found[r.order_pk][r.kind] = OpenTicket(
            r.id, r.order_pk, r.kind, r.severity, r.status, r.opened_at
        )
    return found


def insert_open_ticket(conn: Connection, values: dict[str, Any]) -> int | None:
    """Open a ticket; returns None when another worker opened the same (order, kind) first."""
    module: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        module.insert(tickets)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=["order_pk", "kind"], index_where=text("status != 'resolved'")
        )
        .returning(tickets.c.id)
    )
    ticket_id = conn.execute(stmt).scalar_one_or_none()
    return int(ticket_id) if ticket_id is not None else None


def update_ticket(conn: Connection, ticket_id: int, values: dict[str, Any]) -> None:
    """Refresh an open ticket's evidence, severity or parcel."""
    conn.execute(
        update(tickets)
        .where(tickets.c.id == ticket_id)
        .values(detections=tickets.c.detections + 1, **values)
    )


def resolve_ticket(
    conn: Connection,
    ticket_id: int,
    now: datetime,
    resolution: str,
    note: str | None = None,
    *,
    block_reopen: bool = False,
) -> bool:
    """Close a ticket with the reason; False when it was already resolved."""
    values: dict[str, Any] = {
        "status": "resolved",
        "resolved_at": now,
        "updated_at": now,
        "resolution": resolution,
        "reopen_blocked": block_reopen,
    }
    if note is not None:
        values["note"] = note
    result = conn.execute(
        update(tickets)
        .where(and_(tickets.c.id == ticket_id, tickets.c.status != "resolved"))
        .values(**values)
    )
    return result.rowcount == 1


def unblock_reopen(conn: Connection, ticket_id: int) -> None:
    """The condition cleared once: the kind may open a fresh ticket next time it fires."""
    conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(reopen_blocked=False))


def log_ticket(
    conn: Connection,
    ticket_id: int,
    at: datetime,
    action: str,
    *,
    severity: str | None = None,
    note: str | None = None,
    actor: str = "system",
) -> None:
    """Append to a ticket's history."""
    conn.execute(
        ticket_log.insert().values(
            ticket_id=ticket_id, at=at, action=action, severity=severity, note=note, actor=actor
        )
    )


def add_notice(conn: Connection, values: dict[str, Any]) -> bool:
    """Queue a buyer notice; a repeated idempotency key is ignored. True if queued now."""
    return insert_ignore(conn, notices, [values], ["idempotency_key"]) == 1


def add_alert(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Queue agent alerts; repeated idempotency keys are ignored."""
    return insert_ignore(conn, alerts, list(rows), ["idempotency_key"])
