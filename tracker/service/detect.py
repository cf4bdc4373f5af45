"""Detection use case: run the rules over orders and reconcile tickets and the outbox."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.engine import Connection

from tracker.domain import rules
from tracker.domain.masking import mask_phone
from tracker.domain.model import Detection, ExceptionKind, Severity
from tracker.domain.policy import Policy
from tracker.notify.quiet import QuietHours
from tracker.notify.templates import NoticeTemplates
from tracker.service.queries import ticket_by_id
from tracker.service.views import iso
from tracker.store import orders_repo, tickets_repo
from tracker.store.orders_repo import OrderContext
from tracker.store.tickets_repo import OpenTicket
from tracker.store.uow import UnitOfWork

__all__ = ["AlertEndpoint", "DetectStats", "Detector"]

_log = structlog.get_logger("tracker.detect")


@dataclass(frozen=True, slots=True)
class AlertEndpoint:
    """Where agent alerts for some kinds go (``*`` = all kinds)."""

    name: str
    kinds: frozenset[str] = frozenset({"*"})

    def wants(self, kind: str) -> bool:
        """True when this endpoint subscribes to tickets of ``kind``."""
        return "*" in self.kinds or kind in self.kinds


@dataclass(slots=True)
class DetectStats:
    """Counts from one detection pass."""

    orders: int = 0
    opened: int = 0
    updated: int = 0
    escalated: int = 0
    resolved: int = 0
    notices: int = 0
    alerts: int = 0
    opened_by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, other: DetectStats) -> None:
        """Accumulate another pass's counts into this one."""
        for name in ("orders", "opened", "updated", "escalated", "resolved", "notices", "alerts"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for kind, n in other.opened_by_kind.items():
            self.opened_by_kind[kind] = self.opened_by_kind.get(kind, 0) + n


@dataclass(frozen=True, slots=True)
class Detector:
    """Runs the pure rules and writes tickets, notices and alerts in the same transaction."""

    policy: Policy
    tz: ZoneInfo
    templates: NoticeTemplates
    quiet: QuietHours
    endpoints: tuple[AlertEndpoint, ...]
    shop_name: str = "本店"
    chat_enabled: bool = False

    def run(self, uow: UnitOfWork, order_pks: Iterable[int], now: datetime) -> DetectStats:
        """Detect for these orders and commit; the caller chooses the batch."""
        pks = sorted(set(order_pks))
        stats = DetectStats(orders=len(pks))
        if not pks:
            return stats
        contexts = orders_repo.load_order_contexts(uow.conn, pks)
        open_by_order = tickets_repo.open_tickets_by_order(uow.conn, pks)
        for ctx in contexts:
            detections = rules.detect(ctx.facts, self.policy, now)
            self._reconcile(uow.conn, ctx, detections, open_by_order.get(ctx.pk, {}), now, stats)
        orders_repo.refresh_active_flags(uow.conn, pks, now)
        uow.commit()
        return stats

    def run_all_active(self, uow: UnitOfWork, now: datetime, batch: int = 500) -> DetectStats:
        """The periodic pass for time-based rules, over active orders in batches."""
        total = DetectStats()
        for pks in list(orders_repo.iter_active_order_pks(uow.conn, batch)):
            total.add(self.run(uow, pks, now))
        return total

    def _reconcile(
        self,
        conn: Connection,
        ctx: OrderContext,
        detections: list[Detection],
        open_tickets: dict[str, OpenTicket],
        now: datetime,
        stats: DetectStats,
    ) -> None:
        seen: set[str] = set()
        for det in detections:
            kind = det.kind.value
            seen.add(kind)
            current = open_tickets.get(kind)
            if current is None:
                self._open(conn, ctx, det, now, stats)
            elif current.status != "resolved":
                self._refresh(conn, ctx, det, current, now, stats)
            # else: an agent closed it by hand and the condition never cleared; stay quiet
        for kind, ticket in open_tickets.items():
            if kind in seen:
                continue
            if ticket.status == "resolved":
                tickets_repo.unblock_reopen(conn, ticket.id)
                continue
            reason = rules.resolution_reason(ExceptionKind(kind), ctx.facts, self.policy, now)
            if tickets_repo.resolve_ticket(conn, ticket.id, now, reason):
                tickets_repo.log_ticket(conn, ticket.id, now, "auto_resolved", note=reason)
                self._alert(conn, ctx, ticket.id, "ticket.resolved", kind, now, stats, reason)
                stats.resolved += 1

    def _open(
        self, conn: Connection, ctx: OrderContext, det: Detection, now: datetime, stats: DetectStats
    ) -> None:
        kind = det.kind.value
        ticket_id = tickets_repo.insert_open_ticket(
            conn,
            {
                "order_pk": ctx.pk,
                "shipment_id": ctx.shipment_ids.get(det.tracking_number or ""),
                "courier": det.courier,
                "tracking_number": det.tracking_number,
                "kind": kind,
                "severity": det.severity.value,
                "status": "open",
                "opened_at": now,
                "updated_at": now,
                "evidence": det.evidence,
                "suggested_action": det.suggested_action,
                "detections": 1,
            },
        )
        if ticket_id is None:  # another worker opened it a moment ago
            return
        stats.opened += 1
        stats.opened_by_kind[kind] = stats.opened_by_kind.get(kind, 0) + 1
        tickets_repo.log_ticket(conn, ticket_id, now, "opened", severity=det.severity.value)
        _log.info(
            "ticket_opened",
            ticket_id=ticket_id,
            order_id=ctx.facts.order_id,
            kind=kind,
            severity=det.severity.value,
            tracking_number=det.tracking_number,
        )
        if det.notify_buyer:
            self._queue_notice(conn, ctx, det, ticket_id, now, stats)
        self._alert(conn, ctx, ticket_id, "ticket.opened", kind, now, stats)

    def _refresh(
        self,
        conn: Connection,
        ctx: OrderContext,
        det: Detection,
        current: OpenTicket,
        now: datetime,
        stats: DetectStats,
    ) -> None:
        values: dict[str, Any] = {
            "evidence": det.evidence,
            "updated_at": now,
            "suggested_action": det.suggested_action,
            "courier": det.courier,
            "tracking_number": det.tracking_number,
            "shipment_id": ctx.shipment_ids.get(det.tracking_number or ""),
        }
        escalated = det.severity.rank > Severity(current.severity).rank
        if escalated:
            values["severity"] = det.severity.value
        tickets_repo.update_ticket(conn, current.id, values)
        stats.updated += 1
        if escalated:
            tickets_repo.log_ticket(conn, current.id, now, "escalated", severity=det.severity.value)
            self._alert(conn, ctx, current.id, "ticket.escalated", det.kind.value, now, stats)
            stats.escalated += 1

    def _queue_notice(
        self,
        conn: Connection,
        ctx: OrderContext,
        det: Detection,
        ticket_id: int,
        now: datetime,
        stats: DetectStats,
    ) -> None:
        channel, recipient = "sms", ctx.buyer.phone
        if self.chat_enabled and ctx.buyer.chat_id:
            channel, recipient = "chat", ctx.buyer.chat_id
        rendered = self.templates.render_detection(
            det, shop=self.shop_name, order_id=ctx.facts.order_id, buyer_name=ctx.buyer.name
        )
        suppressed = ctx.buyer.opt_out
        tickets_repo.add_notice(
            conn,
            {
                "ticket_id": ticket_id,
                "order_pk": ctx.pk,
                "buyer_id": ctx.buyer.id,
                "channel": channel,
                "recipient": recipient,
                "template": rendered.template,
                "body": rendered.body,
                "idempotency_key": f"notice-{ticket_id}-{rendered.template}",
                "status": "suppressed" if suppressed else "queued",
                "reason": "buyer opted out" if suppressed else None,
                "scheduled_for": self.quiet.next_allowed(now),
                "attempts": 0,
                "created_at": now,
            },
        )
        stats.notices += 1

    def _alert(
        self,
        conn: Connection,
        ctx: OrderContext,
        ticket_id: int,
        event_type: str,
        kind: str,
        now: datetime,
        stats: DetectStats,
        resolution: str | None = None,
    ) -> None:
        targets = [e for e in self.endpoints if e.wants(kind)]
        if not targets:
            return
        data = self._alert_data(conn, ctx, ticket_id, resolution)
        payload = {"type": event_type, "timestamp": iso(now, self.tz), "data": data}
        # one alert per ticket, event and moment: a retry of the same transaction repeats the key
        stamp = int(now.timestamp())
        stats.alerts += tickets_repo.add_alert(
            conn,
            [
                {
                    "ticket_id": ticket_id,
                    "event_type": event_type,
                    "endpoint": e.name,
                    "payload": payload,
                    "idempotency_key": f"alert-{ticket_id}-{event_type}-{stamp}-{e.name}",
                    "status": "queued",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for e in targets
            ],
        )

    def _alert_data(
        self, conn: Connection, ctx: OrderContext, ticket_id: int, resolution: str | None
    ) -> dict[str, Any]:

        ticket = ticket_by_id(conn, ticket_id, self.tz)
        ticket["buyer"] = {"name": ctx.buyer.name, "phone": mask_phone(ctx.buyer.phone)}
        ticket["destination"] = {
            "province": ctx.facts.destination.province,
            "city": ctx.facts.destination.city,
        }
        if resolution:
            ticket["resolution"] = resolution
        return ticket
