"""Agent alert delivery from the outbox: bursts, disabled endpoints, retries, dead letters."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import and_, or_, select, update
from sqlalchemy.engine import Connection

from tracker.notify.base import AlertSender, OutgoingAlert, SendResult
from tracker.notify.grouping import PendingAlert, plan_bursts
from tracker.settings import AlertGroupingConfig
from tracker.store import runtime_repo
from tracker.store.rowupdate import update_row
from tracker.store.sql import claim_rows, requeue
from tracker.store.tables import alerts
from tracker.store.uow import UnitOfWork

__all__ = [
    "ALERT_SCHEDULE_S",
    "AlertStats",
    "deliver_alert_batch",
    "disabled_endpoints",
    "endpoint_state_key",
    "retry_alert",
    "set_endpoint_enabled",
]

_log = structlog.get_logger("tracker.dispatch")

# Standard Webhooks' schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
ALERT_SCHEDULE_S = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)


class AlertStats(Protocol):
    """The counters alert delivery updates."""

    alerts_sent: int
    alerts_failed: int
    alerts_retried: int
    alerts_grouped: int


def endpoint_state_key(endpoint: str) -> str:
    """The ``runtime_state`` key holding an endpoint's enabled/disabled state."""
    return f"alert-endpoint:{endpoint}"


def disabled_endpoints(conn: Connection, names: list[str]) -> dict[str, str]:
    """Endpoints switched off (after a 410), with the reason."""
    found: dict[str, str] = {}
    for name in names:
        state = runtime_repo.read_state(conn, endpoint_state_key(name))
        if state and state[0].get("disabled"):
            found[name] = str(state[0].get("reason") or "disabled")
    return found


def set_endpoint_enabled(
    conn: Connection, endpoint: str, enabled: bool, now: datetime, reason: str | None = None
) -> None:
    """Switch an endpoint off (a 410 Gone) or back on (``tracker alerts enable``)."""
    value = {"disabled": not enabled, "reason": reason, "at": now.isoformat()}
    runtime_repo.write_state(conn, endpoint_state_key(endpoint), value, now)


def retry_alert(conn: Connection, alert_id: int, now: datetime) -> str:
    """Queue a dead alert again with fresh attempts; returns what happened."""
    return requeue(
        conn,
        alerts,
        alert_id,
        noun="alert",
        from_status="dead",
        due_column="next_attempt_at",
        now=now,
    )


def _retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=ALERT_SCHEDULE_S[min(attempts, len(ALERT_SCHEDULE_S) - 1)])


async def deliver_alert_batch(
    uow: UnitOfWork,
    *,
    senders: Mapping[str, AlertSender],
    now: datetime,
    tz: ZoneInfo,
    worker: str,
    limit: int,
    lease: timedelta,
    grouping: AlertGroupingConfig | None,
    stats: AlertStats,
) -> bool:
    """Claim and deliver one batch of due alerts; False when nothing was due."""
    due = and_(alerts.c.status == "queued", alerts.c.next_attempt_at <= now)
    if grouping is not None and grouping.enabled and grouping.hold_s:
        # a fresh ticket.opened alert waits a little for others of its burst to arrive
        held = now - timedelta(seconds=grouping.hold_s)
        due = and_(
            due,
            or_(
                alerts.c.event_type != "ticket.opened",
                alerts.c.attempts > 0,
                alerts.c.created_at <= held,
            ),
        )
    started = time.monotonic()
    ids = claim_rows(
        uow.conn,
        alerts,
        due,
        alerts.c.next_attempt_at,
        limit=limit,
        now=now,
        lease=lease,
        worker=worker,
    )
    uow.commit()
    if not ids:
        return False
    rows = {r.id: r for r in uow.conn.execute(select(alerts).where(alerts.c.id.in_(ids))).all()}
    payloads: dict[int, dict[str, Any]] = {i: r.payload for i, r in rows.items()}
    if grouping is not None:
        fresh = [
            PendingAlert(r.id, r.endpoint, r.event_type, r.payload, r.created_at)
            for r in rows.values()
            if r.attempts == 0
        ]
        for burst in plan_bursts(fresh, grouping, now, tz):
            # the plan is stored before sending: after a crash the same burst is re-sent
            uow.conn.execute(
                update(alerts)
                .where(alerts.c.id == burst.lead_id)
                .values(payload=burst.payload, event_type="ticket.burst")
            )
            uow.conn.execute(
                update(alerts)
                .where(alerts.c.id.in_(burst.member_ids))
                .values(
                    status="grouped",
                    reason=f"sent within alert {burst.lead_id}",
                    claimed_until=None,
                    claimed_by=None,
                )
            )
            uow.commit()
            payloads[burst.lead_id] = burst.payload
            for member in burst.member_ids:
                payloads.pop(member, None)
            stats.alerts_grouped += len(burst.member_ids)
    disabled = disabled_endpoints(uow.conn, sorted({r.endpoint for r in rows.values()}))
    pending = sorted(payloads)
    for index, alert_id in enumerate(pending):
        if time.monotonic() - started > lease.total_seconds() / 2:
            _release(uow.conn, pending[index:], worker)
            uow.commit()
            break
        row = rows[alert_id]
        await _deliver(uow, row, payloads[alert_id], senders, disabled, now, stats)
        uow.commit()
    return True


def _release(conn: Connection, ids: list[int], worker: str) -> None:
    conn.execute(
        update(alerts)
        .where(and_(alerts.c.id.in_(ids), alerts.c.claimed_by == worker))
        .values(claimed_until=None, claimed_by=None)
    )


async def _deliver(
    uow: UnitOfWork,
    row: Any,
    payload: dict[str, Any],
    senders: Mapping[str, AlertSender],
    disabled: dict[str, str],
    now: datetime,
    stats: AlertStats,
) -> None:
    sender = senders.get(row.endpoint)
    attempts = row.attempts + 1
    if row.endpoint in disabled:
        result = SendResult(
            False,
            row.endpoint,
            reason=f"endpoint disabled ({disabled[row.endpoint]}); "
            f"`tracker alerts enable {row.endpoint}` then `tracker alerts retry {row.id}`",
        )
        attempts = row.attempts
    elif sender is None:
        result = SendResult(False, row.endpoint, reason="endpoint no longer configured")
    else:
        alert = OutgoingAlert(row.id, row.endpoint, payload, row.idempotency_key)
        uow.release()  # never hold a transaction (SQLite's write lock) across the send
        try:
            result = await sender.send(alert)
        except Exception as exc:  # an endpoint bug must not lose the alert
            _log.exception("alert_sender_crashed", endpoint=row.endpoint, alert_id=row.id)
            result = SendResult(False, row.endpoint, retryable=True, reason=repr(exc))
    values: dict[str, Any] = {
        "attempts": attempts,
        "claimed_until": None,
        "claimed_by": None,
        "response_status": result.status_code,
    }
    log = _log.bind(endpoint=row.endpoint, alert_id=row.id, attempts=attempts)
    if result.ok:
        values.update(status="sent", sent_at=now, reason=None)
        stats.alerts_sent += 1
        log.info("alert_sent", status_code=result.status_code)
    elif result.retryable and attempts < len(ALERT_SCHEDULE_S):
        delay = max(_retry_delay(attempts), timedelta(seconds=result.retry_after_s or 0))
        values.update(next_attempt_at=now + delay, reason=f"retrying: {result.reason}")
        stats.alerts_retried += 1
        log.warning("alert_retry", reason=result.reason, retry_in_s=delay.total_seconds())
    else:
        why = result.reason or "rejected"
        if result.retryable:
            why = f"gave up after {attempts} attempts: {why}"
        values.update(status="dead", reason=why)
        stats.alerts_failed += 1
        log.error("alert_dead", reason=why)
    if result.disable_endpoint:
        set_endpoint_enabled(uow.conn, row.endpoint, False, now, reason=result.reason)
        disabled[row.endpoint] = result.reason or "410 Gone"
        log.error("alert_endpoint_disabled", reason=result.reason)
    update_row(uow.conn, alerts, row.id, values)
