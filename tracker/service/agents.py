"""Agent actions on tickets: acknowledge and resolve, with a note."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from tracker.errors import NotFoundError
from tracker.store import tickets_repo
from tracker.store.tables import tickets
from tracker.store.uow import UnitOfWork

__all__ = ["acknowledge", "resolve"]


def _status(uow: UnitOfWork, ticket_id: int) -> str:
    status = uow.conn.execute(select(tickets.c.status).where(tickets.c.id == ticket_id)).scalar()
    if status is None:
        raise NotFoundError(f"ticket {ticket_id} does not exist")
    return str(status)


def acknowledge(
    uow: UnitOfWork, ticket_id: int, now: datetime, note: str | None, actor: str
) -> str:
    """Mark an open ticket as being handled; returns the resulting status."""
    status = _status(uow, ticket_id)
    if status == "open":
        values: dict[str, object] = {
            "status": "acknowledged",
            "acknowledged_at": now,
            "updated_at": now,
        }
        if note is not None:
            values["note"] = note
        uow.conn.execute(update(tickets).where(tickets.c.id == ticket_id).values(**values))
        tickets_repo.log_ticket(uow.conn, ticket_id, now, "acknowledged", note=note, actor=actor)
        uow.commit()
        return "acknowledged"
    return status


def resolve(uow: UnitOfWork, ticket_id: int, now: datetime, note: str | None, actor: str) -> str:
    """Close a ticket by hand with the agent's note; returns the resulting status."""
    _status(uow, ticket_id)
    resolution = f"resolved by {actor}" + (f": {note}" if note else "")
    if tickets_repo.resolve_ticket(uow.conn, ticket_id, now, resolution, note, block_reopen=True):
        tickets_repo.log_ticket(uow.conn, ticket_id, now, "resolved", note=note, actor=actor)
        uow.commit()
    return "resolved"
