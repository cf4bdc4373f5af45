"""Dispatch use case: send due buyer notices and agent alerts from the outbox, safely."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Engine

from tracker.domain.masking import mask_phone
from tracker.notify.base import AlertSender, BuyerChannel, OutgoingAlert, OutgoingNotice, SendResult
from tracker.notify.quiet import QuietHours
from tracker.store.sql import claim_rows
from tracker.store.tables import alerts, buyers, notices, orders, tickets
from tracker.store.uow import UnitOfWork

__all__ = ["DispatchStats", "Dispatcher", "retry_delay"]

_log = structlog.get_logger("tracker.dispatch")

# Standard Webhooks' schedule: immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
_SCHEDULE_S = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)


def retry_delay(attempts: int) -> timedelta:
    """How long to wait before attempt ``attempts + 1`` (Standard Webhooks schedule)."""
    return timedelta(seconds=_SCHEDULE_S[min(attempts, len(_SCHEDULE_S) - 1)])


@dataclass(slots=True)
class DispatchStats:
    """Counts from one dispatch run."""

    sent: int = 0
    failed: int = 0
    retried: int = 0
    suppressed: int = 0
    deferred: int = 0
    alerts_sent: int = 0
    alerts_failed: int = 0
    alerts_retried: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


@dataclass
class Dispatcher:
    """Sends what is due, honouring opt-out, quiet hours and the per-buyer daily cap."""

    engine: Engine
    channels: Mapping[str, BuyerChannel]
    alert_senders: Mapping[str, AlertSender]
    quiet: QuietHours
    tz: ZoneInfo
    worker_id: str
    max_per_buyer_per_day: int = 3
    max_attempts: int = 5
    batch_size: int = 100
    lease: timedelta = timedelta(seconds=60)

    async def run_once(self, now: datetime, max_batches: int = 1000) -> DispatchStats:
        """Send every notice and alert due at ``now``."""
        stats = DispatchStats()
        for _ in range(max_batches):
            if not await self._notice_batch(now, stats):
                break
        for _ in range(max_batches):
            if not await self._alert_batch(now, stats):
                break
        return stats

    async def _notice_batch(self, now: datetime, stats: DispatchStats) -> bool:
        with UnitOfWork(self.engine) as uow:
            ids = claim_rows(
                uow.conn,
                notices,
                and_(notices.c.status == "queued", notices.c.scheduled_for <= now),
                notices.c.scheduled_for,
                limit=self.batch_size,
                now=now,
                lease=self.lease,
                worker=self.worker_id,
            )
            uow.commit()
            if not ids:
                return False
            rows = uow.conn.execute(
                select(
                    notices,
                    orders.c.order_id,
                    buyers.c.opt_out,
                    tickets.c.status.label("ticket_status"),
                )
                .join(orders, orders.c.id == notices.c.order_pk)
                .join(buyers, buyers.c.id == notices.c.buyer_id)
                .join(tickets, tickets.c.id == notices.c.ticket_id)
                .where(notices.c.id.in_(ids))
                .order_by(notices.c.id)
            ).all()
            for row in rows:
                await self._handle_notice(uow, row, now, stats)
                uow.commit()
        return True

    async def _handle_notice(
        self, uow: UnitOfWork, row: Any, now: datetime, stats: DispatchStats
    ) -> None:
        if row.opt_out:
            self._finish(uow, row.id, "suppressed", "buyer opted out", stats)
            return
        if row.ticket_status == "resolved":
            self._finish(uow, row.id, "suppressed", "ticket resolved before sending", stats)
            return
        if self.quiet.is_quiet(now):
            self._defer(uow, row.id, self.quiet.next_allowed(now), "quiet hours", stats)
            return
        if self._sent_today(uow, row.buyer_id, now) >= self.max_per_buyer_per_day:
            tomorrow = self._next_local_morning(now)
            self._defer(uow, row.id, tomorrow, "daily limit per buyer reached", stats)
            return
        channel = self.channels.get(row.channel)
        if channel is None:
            self._finish(uow, row.id, "failed", f"no {row.channel} channel configured", stats)
            return
        outgoing = OutgoingNotice(
            notice_id=row.id,
            order_id=row.order_id,
            channel=row.channel,
            recipient=row.recipient,
            body=row.body,
            idempotency_key=row.idempotency_key,
        )
        try:
            result = await channel.send(outgoing)
        except Exception as exc:  # a channel bug must not lose the notice
            _log.exception("channel_crashed", channel=channel.name, notice_id=row.id)
            result = SendResult(ok=False, provider=channel.name, retryable=True, reason=repr(exc))
        attempts = row.attempts + 1
        log = _log.bind(
            notice_id=row.id, order_id=row.order_id, recipient=mask_phone(row.recipient)
        )
        if result.ok:
            uow.conn.execute(
                update(notices)
                .where(notices.c.id == row.id)
                .values(
                    status="sent",
                    sent_at=now,
                    attempts=attempts,
                    provider=result.provider,
                    provider_message_id=result.message_id,
                    reason="dry-run: recorded, not sent" if result.provider == "dry-run" else None,
                    claimed_until=None,
                    claimed_by=None,
                )
            )
            stats.sent += 1
            log.info("notice_sent", provider=result.provider)
        elif result.retryable and attempts < self.max_attempts:
            uow.conn.execute(
                update(notices)
                .where(notices.c.id == row.id)
                .values(
                    attempts=attempts,
                    scheduled_for=now + retry_delay(attempts),
                    reason=f"retrying: {result.reason}",
                    claimed_until=None,
                    claimed_by=None,
                )
            )
            stats.retried += 1
            log.warning("notice_retry", reason=result.reason, attempts=attempts)
        else:
            why = result.reason or "rejected"
            if result.retryable:
                why = f"gave up after {attempts} attempts: {why}"
            uow.conn.execute(
                update(notices)
                .where(notices.c.id == row.id)
                .values(
                    attempts=attempts,
                    status="failed",
                    reason=why,
                    claimed_until=None,
                    claimed_by=None,
                )
            )
            stats.failed += 1
            log.error("notice_failed", reason=why)

    def _finish(
        self, uow: UnitOfWork, notice_id: int, status: str, reason: str, stats: DispatchStats
    ) -> None:
        uow.conn.execute(
            update(notices)
            .where(notices.c.id == notice_id)
            .values(status=status, reason=reason, claimed_until=None, claimed_by=None)
        )
        if status == "suppressed":
            stats.suppressed += 1
        else:
            stats.failed += 1
        stats.reasons[reason] = stats.reasons.get(reason, 0) + 1

    def _defer(
        self, uow: UnitOfWork, notice_id: int, when: datetime, reason: str, stats: DispatchStats
    ) -> None:
        uow.conn.execute(
            update(notices)
            .where(notices.c.id == notice_id)
            .values(
                scheduled_for=when, reason=f"held: {reason}", claimed_until=None, claimed_by=None
            )
        )
        stats.deferred += 1
        stats.reasons[reason] = stats.reasons.get(reason, 0) + 1

    def _sent_today(self, uow: UnitOfWork, buyer_id: int, now: datetime) -> int:
        local = now.astimezone(self.tz)
        start = datetime.combine(local.date(), datetime.min.time(), tzinfo=self.tz)
        return int(
            uow.conn.execute(
                select(func.count())
                .select_from(notices)
                .where(
                    and_(
                        notices.c.buyer_id == buyer_id,
                        notices.c.status == "sent",
                        notices.c.sent_at >= start,
                    )
                )
            ).scalar_one()
        )

    def _next_local_morning(self, now: datetime) -> datetime:
        local = now.astimezone(self.tz)
        end = self.quiet.end or datetime.min.time()
        return datetime.combine(local.date() + timedelta(days=1), end, tzinfo=self.tz)

    async def _alert_batch(self, now: datetime, stats: DispatchStats) -> bool:
        with UnitOfWork(self.engine) as uow:
            ids = claim_rows(
                uow.conn,
                alerts,
                and_(alerts.c.status == "queued", alerts.c.next_attempt_at <= now),
                alerts.c.next_attempt_at,
                limit=self.batch_size,
                now=now,
                lease=self.lease,
                worker=self.worker_id,
            )
            uow.commit()
            if not ids:
                return False
            rows = uow.conn.execute(
                select(alerts).where(alerts.c.id.in_(ids)).order_by(alerts.c.id)
            ).all()
            for row in rows:
                await self._handle_alert(uow, row, now, stats)
                uow.commit()
        return True

    async def _handle_alert(
        self, uow: UnitOfWork, row: Any, now: datetime, stats: DispatchStats
    ) -> None:
        sender = self.alert_senders.get(row.endpoint)
        attempts = row.attempts + 1
        if sender is None:
            result = SendResult(
                ok=False, provider=row.endpoint, reason="endpoint no longer configured"
            )
        else:
            alert = OutgoingAlert(
                alert_id=row.id,
                endpoint=row.endpoint,
                payload=row.payload,
                idempotency_key=row.idempotency_key,
            )
            try:
                result = await sender.send(alert)
            except Exception as exc:  # an endpoint bug must not lose the alert
                _log.exception("alert_sender_crashed", endpoint=row.endpoint, alert_id=row.id)
                result = SendResult(
                    ok=False, provider=row.endpoint, retryable=True, reason=repr(exc)
                )
        values: dict[str, Any] = {
            "attempts": attempts,
            "claimed_until": None,
            "claimed_by": None,
            "response_status": result.status_code,
        }
        if result.ok:
            values.update(status="sent", sent_at=now, reason=None)
            stats.alerts_sent += 1
        elif result.retryable and attempts < len(_SCHEDULE_S):
            values.update(
                next_attempt_at=now + retry_delay(attempts), reason=f"retrying: {result.reason}"
            )
            stats.alerts_retried += 1
        else:
            values.update(status="dead", reason=result.reason or "rejected")
            stats.alerts_failed += 1
            _log.error("alert_dead", endpoint=row.endpoint, alert_id=row.id, reason=result.reason)
        uow.conn.execute(update(alerts).where(alerts.c.id == row.id).values(**values))
