"""The daily exception report: aggregate queries in, HTML / CSV / JSON out."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Connection

from carriers.registry import courier_name
from tracker.domain.masking import mask_phones_in_text
from tracker.domain.model import ExceptionKind
from tracker.service.views import iso
from tracker.settings import Settings
from tracker.store.tables import alerts, notices, orders, shipments, tickets, tracking_events

__all__ = ["DailyReport", "build_daily_report", "parse_report_date", "render_report"]

KIND_LABELS = {
    "not_shipped": "未按时发货",
    "stalled": "物流停滞",
    "overdue": "超时未达",
    "lost": "疑似丢件",
    "wrong_region": "错分/超区",
    "weight_mismatch": "重量不符(疑少发)",
    "delivery_failed": "派送失败",
    "returned": "退回/拒收",
    "carrier_exception": "快递异常件",
}
# Lost and overdue parcels first: the buyer is already waiting longest there.
_URGENCY = [
    "lost",
    "overdue",
    "returned",
    "not_shipped",
    "stalled",
    "delivery_failed",
    "wrong_region",
    "weight_mismatch",
    "carrier_exception",
]
_ACTION_LIMIT = 500


@dataclass
class DailyReport:
    """Everything the report shows, computed by aggregate queries."""

    date: str
    timezone: str
    window_start: str
    window_end: str
    generated_at: str
    open_by_kind: dict[str, dict[str, int]] = field(default_factory=dict)
    opened_in_window: int = 0
    resolved_in_window: int = 0
    open_total: int = 0
    notices_sent: int = 0
    notices_failed: int = 0
    alerts_undelivered: int = 0
    last_poll_by_source: dict[str, str | None] = field(default_factory=dict)
    actions: list[dict[str, Any]] = field(default_factory=list)


def parse_report_date(value: str | None, now: datetime, tz: ZoneInfo) -> date:
    """``--date`` as a date; default is today in the shop's timezone."""
    if value is None:
        return now.astimezone(tz).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD): {value!r}") from None


def build_daily_report(
    conn: Connection, day: date, now: datetime, settings: Settings
) -> DailyReport:
    """The report for the 24 h ending at ``day`` 08:00 shop time (or at ``now`` if earlier)."""
    tz = settings.tz
    # the report "of" a day covers the 24 h before 08:00 that day; never a window in the future
    end = min(datetime.combine(day, time(8, 0), tzinfo=tz), now)
    start = end - timedelta(days=1)
    report = DailyReport(
        date=day.isoformat(),
        timezone=settings.timezone,
        window_start=iso(start, tz) or "",
        window_end=iso(end, tz) or "",
        generated_at=iso(now, tz) or "",
    )
    unresolved = tickets.c.status != "resolved"
    for kind, severity, count in conn.execute(
        select(tickets.c.kind, tickets.c.severity, func.count())
        .where(unresolved)
        .group_by(tickets.c.kind, tickets.c.severity)
    ):
        report.open_by_kind.setdefault(kind, {})[severity] = count
        report.open_total += count
    report.opened_in_window = _count(
        conn, tickets, and_(tickets.c.opened_at >= start, tickets.c.opened_at < end)
    )
    report.resolved_in_window = _count(
        conn, tickets, and_(tickets.c.resolved_at >= start, tickets.c.resolved_at < end)
    )
    report.notices_sent = _count(
        conn,
        notices,
        and_(notices.c.status == "sent", notices.c.sent_at >= start, notices.c.sent_at < end),
    )
    report.notices_failed = _count(
        conn, notices, and_(notices.c.status == "failed", notices.c.created_at < end)
    )
    report.alerts_undelivered = _count(conn, alerts, alerts.c.status.in_(["queued", "dead"]))
    for source, last in conn.execute(
        select(shipments.c.source, func.max(shipments.c.last_polled_at))
        .where(shipments.c.source.is_not(None), shipments.c.error_kind.is_(None))
        .group_by(shipments.c.source)
    ):
        report.last_poll_by_source[source] = iso(last, tz)
    report.actions = _actions(conn, now, tz)
    return report


def _count(conn: Connection, table: Any, where: Any) -> int:
    return int(conn.execute(select(func.count()).select_from(table).where(where)).scalar_one())


def _actions(conn: Connection, now: datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    urgency = case(
        {kind: rank for rank, kind in enumerate(_URGENCY)}, value=tickets.c.kind, else_=99
    )
    last_event = (
        select(tracking_events.c.id)
        .where(tracking_events.c.shipment_id == tickets.c.shipment_id)
        .order_by(tracking_events.c.time.desc(), tracking_events.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rows = conn.execute(
        select(
            tickets.c.id,
            orders.c.order_id,
            tickets.c.kind,
            tickets.c.severity,
            tickets.c.status,
            tickets.c.courier,
            tickets.c.tracking_number,
            tickets.c.opened_at,
            tickets.c.evidence,
            tickets.c.suggested_action,
            tracking_events.c.time.label("scan_time"),
            tracking_events.c.text.label("scan_text"),
            tracking_events.c.province.label("scan_province"),
            tracking_events.c.city.label("scan_city"),
        )
        .join(orders, orders.c.id == tickets.c.order_pk)
        .outerjoin(tracking_events, tracking_events.c.id == last_event)
        .where(tickets.c.status != "resolved")
        .order_by(urgency, tickets.c.opened_at, tickets.c.id)
        .limit(_ACTION_LIMIT)
    )
    return [
        {
            "ticket_id": r.id,
            "order_id": r.order_id,
            "kind": r.kind,
            "kind_label": KIND_LABELS.get(r.kind, r.kind),
            "severity": r.severity,
            "status": r.status,
            "courier": courier_name(r.courier) if r.courier else None,
            "tracking_number": r.tracking_number,
            "open_hours": round((now - r.opened_at).total_seconds() / 3600, 1),
            "last_scan_time": iso(r.scan_time, tz),
            "last_scan_place": " ".join(p for p in (r.scan_province, r.scan_city) if p) or None,
            "last_scan_text": mask_phones_in_text(r.scan_text) if r.scan_text else None,
            "suggested_action": r.suggested_action,
        }
        for r in rows
    ]


_env = Environment(
    loader=PackageLoader("tracker", "templates"), autoescape=select_autoescape(["html"])
)


def render_report(report: DailyReport, fmt: str) -> str:
    """The report as ``html`` (one self-contained file), ``csv`` (the action list) or ``json``."""
    if fmt == "json":
        return json.dumps(asdict(report), ensure_ascii=False, indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        columns = [
            "ticket_id",
            "order_id",
            "kind",
            "kind_label",
            "severity",
            "status",
            "courier",
            "tracking_number",
            "open_hours",
            "last_scan_time",
            "last_scan_place",
            "last_scan_text",
            "suggested_action",
        ]
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for action in report.actions:
            writer.writerow(action)
        return buffer.getvalue()
    kinds = [k.value for k in ExceptionKind]
    return _env.get_template("daily_report.html.j2").render(
        report=report,
        kinds=kinds,
        labels=KIND_LABELS,
        severities=["critical", "high", "medium", "low"],
    )
