"""JSON views of stored rows: the public output contract (DESIGN §8)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from tracker.domain.masking import mask_phone

__all__ = ["NOTICE_FIELDS", "TICKET_FIELDS", "iso", "notice_json", "ticket_json"]

TICKET_FIELDS = (
    "id",
    "order_id",
    "courier",
    "tracking_number",
    "kind",
    "severity",
    "status",
    "opened_at",
    "updated_at",
    "evidence",
    "suggested_action",
)
NOTICE_FIELDS = (
    "id",
    "order_id",
    "ticket_id",
    "channel",
    "recipient",
    "template",
    "status",
    "scheduled_for",
    "sent_at",
    "reason",
)


def iso(value: datetime | None, tz: ZoneInfo) -> str | None:
    """ISO 8601 with the shop's offset, or None."""
    return value.astimezone(tz).isoformat() if value is not None else None


def ticket_json(row: Any, tz: ZoneInfo) -> dict[str, Any]:
    """A ticket as the contract prints it (fields in contract order)."""
    return {
        "id": row.id,
        "order_id": row.order_id,
        "courier": row.courier,
        "tracking_number": row.tracking_number,
        "kind": row.kind,
        "severity": row.severity,
        "status": row.status,
        "opened_at": iso(row.opened_at, tz),
        "updated_at": iso(row.updated_at, tz),
        "evidence": row.evidence,
        "suggested_action": row.suggested_action,
    }


def notice_json(row: Any, tz: ZoneInfo) -> dict[str, Any]:
    """A buyer notice as the contract prints it, recipient masked."""
    recipient = row.recipient if row.channel != "sms" else mask_phone(row.recipient)
    return {
        "id": row.id,
        "order_id": row.order_id,
        "ticket_id": row.ticket_id,
        "channel": row.channel,
        "recipient": recipient,
        "template": row.template,
        "status": row.status,
        "scheduled_for": iso(row.scheduled_for, tz),
        "sent_at": iso(row.sent_at, tz),
        "reason": row.reason,
    }
