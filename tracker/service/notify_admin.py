"""Operator actions on notices, buyers and alert endpoints (the ``tracker`` notify commands)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Connection

from tracker.bootstrap import App
from tracker.domain import rules
from tracker.domain.masking import mask_phone
from tracker.errors import BadInputError, NotFoundError
from tracker.notify.factory import alert_endpoints
from tracker.notify.templates import sms_segments
from tracker.service.dispatch_alerts import disabled_endpoints
from tracker.service.views import iso
from tracker.store import orders_repo
from tracker.store.tables import buyers, notices, orders, tickets

__all__ = ["endpoint_states", "normalize_phone", "preview_order", "set_opt_out"]

_MOBILE = re.compile(r"1[3-9]\d{9}")


def normalize_phone(text: str) -> str:
    """A mainland mobile as 11 digits (``+86``, spaces and dashes accepted)."""
    digits = re.sub(r"[\s-]", "", text)
    for prefix in ("+86", "0086", "86"):
        if digits.startswith(prefix) and len(digits) == len(prefix) + 11:
            digits = digits[len(prefix) :]
    if not _MOBILE.fullmatch(digits):
        raise BadInputError(f"PHONE: {mask_phone(text)} is not a mainland mobile number")
    return digits


def set_opt_out(conn: Connection, phone: str, opted_out: bool, now: datetime) -> str:
    """Opt a buyer out of (or back into) notices; unknown numbers are remembered for later."""
    row = conn.execute(select(buyers.c.id).where(buyers.c.phone == phone)).first()
    values: dict[str, Any] = {
        "opt_out": opted_out,
        "opt_out_at": now if opted_out else None,
        "updated_at": now,
    }
    if row is None:
        # no order yet: keep the wish so the first import finds the buyer opted out
        conn.execute(buyers.insert().values(phone=phone, name="", created_at=now, **values))
        state = "opted out" if opted_out else "opted in"
        return f"buyer {mask_phone(phone)} {state} (no orders yet)"
    conn.execute(update(buyers).where(buyers.c.id == row.id).values(**values))
    queued = conn.execute(
        select(func.count())
        .select_from(notices)
        .where(and_(notices.c.buyer_id == row.id, notices.c.status == "queued"))
    ).scalar_one()
    if opted_out:
        return f"buyer {mask_phone(phone)} opted out; {queued} queued notice(s) will be suppressed"
    return f"buyer {mask_phone(phone)} opted in; {queued} queued notice(s) will be sent"


def _entry(
    kind: str, ticket_id: int | None, template: str | None, text: str | None
) -> dict[str, Any]:
    return {
        "kind": kind,
        "ticket_id": ticket_id,
        "template": template,
        "characters": len(text) if text is not None else 0,
        "segments": sms_segments(text) if text is not None else 0,
        "text": text,
    }


def preview_order(app: App, order_id: str, now: datetime) -> dict[str, Any]:
    """What each ticket of an order would tell the buyer now, and what was already queued."""
    tz = app.settings.tz
    with app.uow() as uow:
        pk = uow.conn.execute(select(orders.c.id).where(orders.c.order_id == order_id)).scalar()
        if pk is None:
            raise NotFoundError(f"order {order_id} does not exist")
        ctx = orders_repo.load_order_contexts(uow.conn, [pk])[0]
        open_tickets = {
            r.kind: r.id
            for r in uow.conn.execute(
                select(tickets.c.id, tickets.c.kind).where(
                    and_(tickets.c.order_pk == pk, tickets.c.status != "resolved")
                )
            )
        }
        stored = uow.conn.execute(
            select(notices).where(notices.c.order_pk == pk).order_by(notices.c.id)
        ).all()
    previews = []
    for det in rules.detect(ctx.facts, app.policy, now):
        kind = det.kind.value
        if not det.notify_buyer:
            entry = _entry(kind, open_tickets.get(kind), None, None)
            entry["buyer_notice"] = False
        else:
            rendered = app.templates.render_detection(
                det,
                shop=app.settings.shop.name,
                order_id=ctx.facts.order_id,
                buyer_name=ctx.buyer.name,
            )
            entry = _entry(kind, open_tickets.get(kind), rendered.template, rendered.body)
            entry["buyer_notice"] = True
        previews.append(entry)
    queued = []
    for n in stored:
        entry = _entry(n.template, n.ticket_id, n.template, n.body)
        entry.update(
            id=n.id,
            channel=n.channel,
            status=n.status,
            scheduled_for=iso(n.scheduled_for, tz),
            sent_at=iso(n.sent_at, tz),
            reason=n.reason,
        )
        del entry["kind"]
        queued.append(entry)
    return {
        "order_id": order_id,
        "at": iso(now, tz),
        "buyer": {"name": ctx.buyer.name, "phone": mask_phone(ctx.buyer.phone)},
        "opt_out": ctx.buyer.opt_out,
        "previews": previews,
        "notices": queued,
    }


def endpoint_states(app: App) -> list[dict[str, Any]]:
    """Every configured alert endpoint with its preset and whether it is disabled."""
    endpoints = alert_endpoints(app.settings.alerts)
    with app.uow() as uow:
        disabled = disabled_endpoints(uow.conn, sorted(endpoints))
    return [
        {
            "endpoint": name,
            "preset": ep.preset,
            "kinds": ",".join(ep.kinds),
            "state": "disabled" if name in disabled else "enabled",
            "reason": disabled.get(name),
        }
        for name, ep in endpoints.items()
    ]
