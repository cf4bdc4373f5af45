"""Dispatch use case: send due buyer notices and agent alerts from the outbox, safely.

Rows are claimed with a lease (``FOR UPDATE SKIP LOCKED`` on PostgreSQL), sent with their
idempotency key, and the outcome committed row by row. A process killed mid-send leaves its
claims to expire; the rows then go out again with the same key, so the provider can drop
the repeat: at-least-once to the provider, exactly-once in effect. A batch stops at half the
lease (slow, rate-limited providers) and hands back what it has not sent, so no row is
ever sent by two workers because a lease ran out under it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import and_, bindparam, func, select, update
from sqlalchemy.engine import Connection, Engine

from carriers.registry import courier_name
from tracker.domain.masking import mask_phone, mask_phones_in_text
from tracker.notify.base import AlertSender, BuyerChannel, OutgoingNotice, SendResult
from tracker.notify.quiet import QuietHours
from tracker.service.dispatch_alerts import ALERT_SCHEDULE_S, deliver_alert_batch
from tracker.settings import AlertGroupingConfig
from tracker.store.rowupdate import update_row
from tracker.store.sql import claim_rows, requeue
from tracker.store.tables import buyers, notices, orders, tickets
from tracker.store.uow import UnitOfWork

__all__ = ["DispatchStats", "Dispatcher", "notice_variables", "retry_delay", "retry_notice"]

_log = structlog.get_logger("tracker.dispatch")
_SIGN = re.compile(r"^【[^】]*】")

_SENT_SINCE = (
    select(notices.c.buyer_id, func.count())
    .where(
        and_(
            notices.c.buyer_id.in_(bindparam("p_buyers", expanding=True)),
            notices.c.status == "sent",
            notices.c.sent_at >= bindparam("p_since", type_=notices.c.sent_at.type),
        )
    )
    .group_by(notices.c.buyer_id)
)


def retry_delay(attempts: int) -> timedelta:
    """How long to wait before attempt ``attempts + 1`` (Standard Webhooks schedule)."""
    return timedelta(seconds=ALERT_SCHEDULE_S[min(attempts, len(ALERT_SCHEDULE_S) - 1)])


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
    alerts_grouped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)


def notice_variables(row: Any, shop: str) -> dict[str, str]:
    """What a provider template may use for a notice row joined with its order and ticket."""
    body = str(row.body)
    return {
        "order_id": str(row.order_id),
        "courier": courier_name(row.courier) if row.courier else "",
        "tracking_number": str(row.tracking_number or ""),
        "buyer_name": str(row.buyer_name or ""),
        "shop": shop,
        "kind": str(row.kind),
        "text": body,
        "content": _SIGN.sub("", body, count=1),
    }


def retry_notice(conn: Connection, notice_id: int, now: datetime) -> str:
    """Queue a failed notice again with fresh attempts; returns what happened."""
    return requeue(
        conn,
        notices,
        notice_id,
        noun="notice",
        from_status="failed",
        due_column="scheduled_for",
        now=now,
    )


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
    grouping: AlertGroupingConfig | None = None
    shop_name: str = "本店"

    async def run_once(self, now: datetime, max_batches: int = 1000) -> DispatchStats:
        """Send every notice and alert due at ``now``."""
        stats = DispatchStats()
        for _ in range(max_batches):
            if not await self._notice_batch(now, stats):
                break
        for _ in range(max_batches):
            with UnitOfWork(self.engine) as uow:
                more = await deliver_alert_batch(
                    uow,
                    senders=self.alert_senders,
                    now=now,
                    tz=self.tz,
                    worker=self.worker_id,
                    limit=self.batch_size,
                    lease=self.lease,
                    grouping=self.grouping,
                    stats=stats,
                )
            if not more:
                break
        return stats

    async def _notice_batch(self, now: datetime, stats: DispatchStats) -> bool:
        with UnitOfWork(self.engine) as uow:
            started = time.monotonic()
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
                    buyers.c.name.label("buyer_name"),
                    tickets.c.status.label("ticket_status"),
                    tickets.c.kind,
                    tickets.c.courier,
                    tickets.c.tracking_number,
                )
                .join(orders, orders.c.id == notices.c.order_pk)
                .join(buyers, buyers.c.id == notices.c.buyer_id)
                .join(tickets, tickets.c.id == notices.c.ticket_id)
                .where(notices.c.id.in_(ids))
                .order_by(notices.c.scheduled_for, notices.c.id)
            ).all()
            sent_today = self._sent_today(uow, sorted({r.buyer_id for r in rows}), now)
            for index, row in enumerate(rows):
                if time.monotonic() - started > self.lease.total_seconds() / 2:
                    self._release(uow, [r.id for r in rows[index:]])
                    uow.commit()
                    break
                await self._handle_notice(uow, row, now, stats, sent_today)
                uow.commit()
        return True

    def _release(self, uow: UnitOfWork, ids: list[int]) -> None:
        uow.conn.execute(
            update(notices)
            .where(and_(notices.c.id.in_(ids), notices.c.claimed_by == self.worker_id))
            .values(claimed_until=None, claimed_by=None)
        )

    async def _handle_notice(
        self,
        uow: UnitOfWork,
        row: Any,
        now: datetime,
        stats: DispatchStats,
        sent_today: dict[int, int],
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
        if sent_today.get(row.buyer_id, 0) >= self.max_per_buyer_per_day:
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
            variables=notice_variables(row, self.shop_name),
        )
        uow.release()  # never hold a transaction (SQLite's write lock) across the send
        try:
            result = await channel.send(outgoing)
        except Exception as exc:  # a channel bug must not lose the notice
            _log.exception("channel_crashed", channel=channel.name, notice_id=row.id)
            result = SendResult(ok=False, provider=channel.name, retryable=True, reason=repr(exc))
        self._record(uow, row, result, now, stats)
        if result.ok:
            sent_today[row.buyer_id] = sent_today.get(row.buyer_id, 0) + 1

    def _record(
        self, uow: UnitOfWork, row: Any, result: SendResult, now: datetime, stats: DispatchStats
    ) -> None:
        attempts = row.attempts + 1
        recipient = mask_phone(row.recipient) if row.channel == "sms" else row.recipient
        log = _log.bind(
            notice_id=row.id, order_id=row.order_id, recipient=recipient, attempts=attempts
        )
        reason = mask_phones_in_text(result.reason) if result.reason else None
        values: dict[str, Any] = {
            "attempts": attempts,
            "claimed_until": None,
            "claimed_by": None,
            "provider": result.provider,
        }
        if result.ok:
            values.update(
                status="sent",
                sent_at=now,
                provider_message_id=result.message_id,
                reason="dry-run: recorded, not sent" if result.provider == "dry-run" else None,
            )
            stats.sent += 1
            log.info("notice_sent", provider=result.provider, message_id=result.message_id)
        elif result.retryable and attempts < self.max_attempts:
            delay = max(retry_delay(attempts), timedelta(seconds=result.retry_after_s or 0))
            values.update(scheduled_for=now + delay, reason=f"retrying: {reason}")
            stats.retried += 1
            log.warning("notice_retry", reason=reason, retry_in_s=delay.total_seconds())
        else:
            why = reason or "rejected"
            if result.retryable:
                why = f"gave up after {attempts} attempts: {why}"
            values.update(status="failed", reason=why)
            stats.failed += 1
            stats.reasons[why] = stats.reasons.get(why, 0) + 1
            log.error("notice_failed", reason=why)
        update_row(uow.conn, notices, row.id, values)

    def _finish(
        self, uow: UnitOfWork, notice_id: int, status: str, reason: str, stats: DispatchStats
    ) -> None:
        update_row(
            uow.conn,
            notices,
            notice_id,
            {"status": status, "reason": reason, "claimed_until": None, "claimed_by": None},
        )
        if status == "suppressed":
            stats.suppressed += 1
        else:
            stats.failed += 1
        stats.reasons[reason] = stats.reasons.get(reason, 0) + 1

    def _defer(
        self, uow: UnitOfWork, notice_id: int, when: datetime, reason: str, stats: DispatchStats
    ) -> None:
        update_row(
            uow.conn,
            notices,
            notice_id,
            {
                "scheduled_for": when,
                "reason": f"held: {reason}",
                "claimed_until": None,
                "claimed_by": None,
            },
        )
        stats.deferred += 1
        stats.reasons[reason] = stats.reasons.get(reason, 0) + 1

    def _sent_today(self, uow: UnitOfWork, buyer_ids: list[int], now: datetime) -> dict[int, int]:
        """Notices sent to each buyer since local midnight, read once per batch.

        The batch counts its own sends on top; sends by another worker during the batch are
        seen from its next batch on (checking per notice would not close that race either:
        a count and a send are never atomic together).
        """
        local = now.astimezone(self.tz)
        start = datetime.combine(local.date(), datetime.min.time(), tzinfo=self.tz)
        rows = uow.conn.execute(_SENT_SINCE, {"p_buyers": buyer_ids, "p_since": start})
        return {buyer_id: int(count) for buyer_id, count in rows}

    def _next_local_morning(self, now: datetime) -> datetime:
        local = now.astimezone(self.tz)
        end = self.quiet.end or datetime.min.time()
        return datetime.combine(local.date() + timedelta(days=1), end, tzinfo=self.tz)
