"""Detection use case: run the rules over orders and reconcile tickets and the outbox."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy.engine import Connection

from tracker.domain import rules
from tracker.domain.masking import mask_phone
from tracker.domain.model import Detection, ExceptionKind, Severity
from tracker.domain.policy import Policy
from tracker.domain.rules_schedule import schedule_fingerprint, stable_evidence
from tracker.notify.quiet import QuietHours
from tracker.notify.templates import NoticeTemplates
from tracker.service.views import iso, ticket_json
from tracker.store import orders_repo, runtime_repo, tickets_repo
from tracker.store.orders_repo import OrderContext
from tracker.store.tickets_repo import OpenTicket
from tracker.store.uow import UnitOfWork

__all__ = ["AlertEndpoint", "DetectStats", "Detector"]

_log = structlog.get_logger("tracker.detect")

#: runtime_state key holding the policy fingerprint the stored schedules were computed with
SCHEDULE_STATE_KEY = "detect:schedule"
# an order whose facts make the rules raise is looked at again this much later, not every pass
_RETRY_BROKEN = timedelta(hours=1)
# a stored severity's rank without building the enum member per refreshed ticket
_RANK: dict[str, int] = {s.value: s.rank for s in Severity}


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
    unchanged: int = 0
    escalated: int = 0
    resolved: int = 0
    notices: int = 0
    alerts: int = 0
    failed: int = 0
    opened_by_kind: dict[str, int] = field(default_factory=dict)

    def add(self, other: DetectStats) -> None:
        """Accumulate another pass's counts into this one."""
        # spelled out: this runs once per order with a ticket, a getattr loop cost more
        self.orders += other.orders
        self.opened += other.opened
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.escalated += other.escalated
        self.resolved += other.resolved
        self.notices += other.notices
        self.alerts += other.alerts
        self.failed += other.failed
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
        """Detect for these orders, store when each is next due, and commit.

        The caller chooses the batch. The orders' rows stay locked until the commit, so a
        concurrent detection of the same order waits and then reads what this one wrote.
        """
        pks = sorted(set(order_pks))
        stats = DetectStats(orders=len(pks))
        if not pks:
            return stats
        conn = uow.conn
        contexts = orders_repo.load_order_contexts(conn, pks, lock=True)
        open_by_order = tickets_repo.open_tickets_by_order(conn, pks)
        schedules: list[tuple[int, bool, datetime | None]] = []
        plan = _Plan()
        policy = self.policy
        detect_and_schedule = rules.detect_and_schedule
        still_active = orders_repo.still_active
        no_tickets: dict[str, OpenTicket] = {}
        for ctx in contexts:
            tickets = open_by_order.get(ctx.pk, no_tickets)
            # decided per order and merged once complete: a bug or odd facts in one order
            # must not stop (or half-write) detection for the rest of the batch
            mine = counts = None
            try:
                detections, next_check = detect_and_schedule(ctx.facts, policy, now)
                if detections or tickets:
                    mine, counts = _Plan(), DetectStats()
                    self._reconcile(mine, ctx, detections, tickets, now, counts)
            except Exception:
                _log.exception("detect_failed", order_id=ctx.facts.order_id, order_pk=ctx.pk)
                schedules.append((ctx.pk, True, now + _RETRY_BROKEN))
                stats.failed += 1
                continue
            if mine is None or counts is None:
                # most touched orders: nothing to reconcile, only the schedule to store
                schedules.append((ctx.pk, still_active(ctx, False), next_check))
                continue
            plan.merge(mine)
            stats.add(counts)
            # a detected kind leaves a ticket open unless an agent closed it (blocked)
            has_open = any(
                (t := tickets.get(d.kind.value)) is None or t.status != "resolved"
                for d in detections
            )
            schedules.append((ctx.pk, still_active(ctx, has_open), next_check))
        self._apply(conn, plan, now, stats)
        orders_repo.store_schedules(conn, schedules, now)
        uow.commit()
        return stats

    def run_due(
        self,
        uow: UnitOfWork,
        now: datetime,
        batch: int = 500,
        *,
        should_stop: Callable[[], bool] | None = None,
        on_batch: Callable[[DetectStats], None] | None = None,
        helper: UnitOfWork | None = None,
    ) -> DetectStats:
        """The periodic pass: every active order whose next check has come, in batches.

        Time-based rules are the pass's only business (new scans, imports and weight bills
        run detection or make the order due themselves), so an order is looked at when
        :func:`~tracker.domain.rules.next_check_at` said it could change. After a policy
        change every active order is due once (:meth:`reschedule_on_policy_change`).

        With a ``helper`` unit of work (another connection), every other batch is detected
        on a thread of its own through it while this thread does the next, so the rules of
        one batch run while the server writes the other's tickets (worth it where the
        database is a server). Batches hold disjoint orders, so they lock disjoint rows.
        """
        total = DetectStats()
        self.reschedule_on_policy_change(uow, now)

        def add(stats: DetectStats) -> None:
            total.add(stats)
            if on_batch is not None:
                on_batch(stats)

        # leaving the block waits for the helper's batch, also when this thread failed
        with ExitStack() as stack:
            offload: Callable[[list[int], datetime], Future[DetectStats]] | None = None
            if helper is not None:
                pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="detect-pass")
                side, other = stack.enter_context(pool), helper

                def on_helper(pks: list[int], at: datetime) -> Future[DetectStats]:
                    return side.submit(self.run, other, pks, at)

                offload = on_helper
            aside: Future[DetectStats] | None = None
            for pks in orders_repo.iter_due_order_pks(uow.conn, now, batch):
                if should_stop is not None and should_stop():
                    break
                if offload is not None and aside is None:
                    aside = offload(pks, now)
                    continue
                add(self.run(uow, pks, now))
                if aside is not None:
                    add(aside.result())
                    aside = None
            if aside is not None:
                add(aside.result())
        uow.commit()
        return total

    def reschedule_on_policy_change(self, uow: UnitOfWork, now: datetime) -> bool:
        """Make every active order due once when the policy differs from the stored schedules'.

        Returns True when it did. The first pass on a database records the fingerprint
        only: schedules are stored by detection itself, and migration 0003 made every
        order active before it due.
        """
        fingerprint = schedule_fingerprint(self.policy)
        stored = runtime_repo.read_state(uow.conn, SCHEDULE_STATE_KEY)
        if stored is not None and stored[0].get("fingerprint") == fingerprint:
            uow.commit()
            return False
        changed = stored is not None
        if changed:
            count = orders_repo.make_active_orders_due(uow.conn, now)
            _log.info("detect_policy_changed", orders_due=count, fingerprint=fingerprint)
        runtime_repo.write_state(uow.conn, SCHEDULE_STATE_KEY, {"fingerprint": fingerprint}, now)
        uow.commit()
        return changed

    def _reconcile(
        self,
        plan: _Plan,
        ctx: OrderContext,
        detections: list[Detection],
        open_tickets: dict[str, OpenTicket],
        now: datetime,
        stats: DetectStats,
    ) -> None:
        """Decide what the order's tickets need; :meth:`_apply` writes it for the batch."""
        seen: set[str] = set()
        for det in detections:
            kind = det.kind.value
            seen.add(kind)
            current = open_tickets.get(kind)
            if current is None:
                plan.opens.append((ctx, det))
            elif current.status != "resolved":
                self._refresh(plan, ctx, det, current, now, stats)
            # else: an agent closed it by hand and the condition never cleared; stay quiet
        for kind, ticket in open_tickets.items():
            if kind in seen:
                continue
            if ticket.status == "resolved":
                plan.unblocks.append(ticket.id)
                continue
            reason = rules.resolution_reason(ExceptionKind(kind), ctx.facts, self.policy, now)
            plan.resolves.setdefault(reason, []).append((ctx, ticket))

    def _refresh(
        self,
        plan: _Plan,
        ctx: OrderContext,
        det: Detection,
        current: OpenTicket,
        now: datetime,
        stats: DetectStats,
    ) -> None:
        values: dict[str, Any] = {
            "id": current.id,
            "evidence": det.evidence,
            "updated_at": now,
            "suggested_action": det.suggested_action,
            "courier": det.courier,
            "tracking_number": det.tracking_number,
            "shipment_id": ctx.shipment_ids.get(det.tracking_number or ""),
            "severity": current.severity,
        }
        escalated = det.severity.rank > _RANK[current.severity]
        if not escalated and not _changed(current, values):
            stats.unchanged += 1
            return
        if escalated:
            values["severity"] = det.severity.value
        plan.updates.append(values)
        stats.updated += 1
        if escalated:
            plan.log(current.id, "escalated", severity=det.severity.value)
            view = _TicketView(
                id=current.id,
                order_id=ctx.facts.order_id,
                courier=det.courier,
                tracking_number=det.tracking_number,
                kind=det.kind.value,
                severity=det.severity.value,
                status=current.status,
                opened_at=current.opened_at,
                updated_at=now,
                evidence=det.evidence,
                suggested_action=det.suggested_action,
            )
            self._alert(plan, ctx, view, "ticket.escalated")
            stats.escalated += 1

    def _apply(self, conn: Connection, plan: _Plan, now: datetime, stats: DetectStats) -> None:
        """Write a batch's decisions: a handful of statements, whatever the batch size."""
        self._open_all(conn, plan, now, stats)
        tickets_repo.update_tickets(conn, plan.updates)
        for reason, items in plan.resolves.items():
            closed = set(tickets_repo.resolve_tickets(conn, [t.id for _, t in items], now, reason))
            for ctx, ticket in items:
                if ticket.id not in closed:
                    continue  # an agent resolved it a moment ago
                stats.resolved += 1
                plan.log(ticket.id, "auto_resolved", note=reason)
                view = _TicketView(
                    id=ticket.id,
                    order_id=ctx.facts.order_id,
                    courier=ticket.courier,
                    tracking_number=ticket.tracking_number,
                    kind=ticket.kind,
                    severity=ticket.severity,
                    status="resolved",
                    opened_at=ticket.opened_at,
                    updated_at=now,
                    evidence=ticket.evidence,
                    suggested_action=ticket.suggested_action,
                )
                self._alert(plan, ctx, view, "ticket.resolved", reason)
        tickets_repo.unblock_reopens(conn, plan.unblocks)
        tickets_repo.log_tickets(conn, [{**row, "at": now} for row in plan.logs])
        stats.notices += tickets_repo.add_notices(conn, plan.notices)
        stats.alerts += tickets_repo.add_alerts(conn, plan.alerts)

    def _open_all(self, conn: Connection, plan: _Plan, now: datetime, stats: DetectStats) -> None:
        rows = [
            {
                "order_pk": ctx.pk,
                "shipment_id": ctx.shipment_ids.get(det.tracking_number or ""),
                "courier": det.courier,
                "tracking_number": det.tracking_number,
                "kind": det.kind.value,
                "severity": det.severity.value,
                "evidence": det.evidence,
                "suggested_action": det.suggested_action,
            }
            for ctx, det in plan.opens
        ]
        ids = tickets_repo.insert_open_tickets(conn, rows, now)
        for ctx, det in plan.opens:
            kind = det.kind.value
            ticket_id = ids.get((ctx.pk, kind))
            if ticket_id is None:  # another worker opened it a moment ago
                continue
            stats.opened += 1
            stats.opened_by_kind[kind] = stats.opened_by_kind.get(kind, 0) + 1
            plan.log(ticket_id, "opened", severity=det.severity.value)
            _log.info(
                "ticket_opened",
                ticket_id=ticket_id,
                order_id=ctx.facts.order_id,
                kind=kind,
                severity=det.severity.value,
                tracking_number=det.tracking_number,
            )
            if det.notify_buyer:
                plan.notices.append(self._notice(ctx, det, ticket_id, now))
            view = _TicketView(
                id=ticket_id,
                order_id=ctx.facts.order_id,
                courier=det.courier,
                tracking_number=det.tracking_number,
                kind=kind,
                severity=det.severity.value,
                status="open",
                opened_at=now,
                updated_at=now,
                evidence=det.evidence,
                suggested_action=det.suggested_action,
            )
            self._alert(plan, ctx, view, "ticket.opened")

    def _notice(
        self, ctx: OrderContext, det: Detection, ticket_id: int, now: datetime
    ) -> dict[str, Any]:
        channel, recipient = "sms", ctx.buyer.phone
        if self.chat_enabled and ctx.buyer.chat_id:
            channel, recipient = "chat", ctx.buyer.chat_id
        rendered = self.templates.render_detection(
            det, shop=self.shop_name, order_id=ctx.facts.order_id, buyer_name=ctx.buyer.name
        )
        suppressed = ctx.buyer.opt_out
        return {
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
        }

    def _alert(
        self,
        plan: _Plan,
        ctx: OrderContext,
        view: _TicketView,
        event_type: str,
        resolution: str | None = None,
    ) -> None:
        """Queue the alert rows for every endpoint that wants tickets of this kind."""
        targets = [e for e in self.endpoints if e.wants(view.kind)]
        if not targets:
            return
        now = view.updated_at
        data = ticket_json(view, self.tz)
        data["buyer"] = {"name": ctx.buyer.name, "phone": mask_phone(ctx.buyer.phone)}
        data["destination"] = {
            "province": ctx.facts.destination.province,
            "city": ctx.facts.destination.city,
        }
        if resolution:
            data["resolution"] = resolution
        payload = {"type": event_type, "timestamp": iso(now, self.tz), "data": data}
        # one alert per ticket, event and moment: a retry of the same transaction repeats the key
        stamp = int(now.timestamp())
        plan.alerts.extend(
            {
                "ticket_id": view.id,
                "event_type": event_type,
                "endpoint": e.name,
                "payload": payload,
                "idempotency_key": f"alert-{view.id}-{event_type}-{stamp}-{e.name}",
                "status": "queued",
                "attempts": 0,
                "next_attempt_at": now,
                "created_at": now,
            }
            for e in targets
        )


@dataclass(frozen=True, slots=True)
class _TicketView:
    """A ticket as it stands after this batch's writes, for alert payloads (``ticket_json``)."""

    id: int
    order_id: str
    courier: str | None
    tracking_number: str | None
    kind: str
    severity: str
    status: str
    opened_at: datetime
    updated_at: datetime
    evidence: Any
    suggested_action: str | None


@dataclass(slots=True)
class _Plan:
    """One batch's ticket decisions, written together by :meth:`Detector._apply`."""

    opens: list[tuple[OrderContext, Detection]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)
    resolves: dict[str, list[tuple[OrderContext, OpenTicket]]] = field(default_factory=dict)
    unblocks: list[int] = field(default_factory=list)
    logs: list[dict[str, Any]] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[dict[str, Any]] = field(default_factory=list)

    def merge(self, other: _Plan) -> None:
        """Take over another plan's decisions (one order's, once all of them are made)."""
        self.opens += other.opens
        self.updates += other.updates
        for reason, items in other.resolves.items():
            self.resolves.setdefault(reason, []).extend(items)
        self.unblocks += other.unblocks
        self.logs += other.logs
        self.notices += other.notices
        self.alerts += other.alerts

    def log(
        self, ticket_id: int, action: str, *, severity: str | None = None, note: str | None = None
    ) -> None:
        """A ticket history row by the system (its time is set when written)."""
        self.logs.append(
            {
                "ticket_id": ticket_id,
                "action": action,
                "severity": severity,
                "note": note,
                "actor": "system",
            }
        )


def _changed(current: OpenTicket, values: Mapping[str, Any]) -> bool:
    """True when re-detection found something the stored ticket does not say yet.

    Figures that only follow the clock (hours since the last scan, hours late, when
    checked) do not count: rewriting them would touch every open ticket on every look.
    """
    if (
        current.suggested_action != values["suggested_action"]
        or current.courier != values["courier"]
        or current.tracking_number != values["tracking_number"]
        or current.shipment_id != values["shipment_id"]
    ):
        return True
    if not isinstance(current.evidence, dict):
        return True
    return _evidence_text(current.evidence) != _evidence_text(values["evidence"])


def _evidence_text(evidence: Mapping[str, Any]) -> str:
    """Canonical JSON of the evidence without clock figures, as the store would hold it."""
    return _CANONICAL.encode(stable_evidence(evidence))


# json.dumps(..., sort_keys=True, ensure_ascii=False) builds this encoder on every call
_CANONICAL = json.JSONEncoder(sort_keys=True, ensure_ascii=False)
