"""The daily report's aggregate queries (everything but the carrier scorecard).

Rules every query here keeps, so the report stays fast with millions of rows:

* only counts, group-bys and bounded ``LIMIT`` lists come back to Python, never a row
  per ticket, shipment or notice;
* every query is bounded by an index (migration 0002 lists them): open tickets by the
  partial index ``ix_tickets_open_opened_at`` plus ``ix_tickets_resolved_at`` for those
  resolved after the window; the period by ``ix_tickets_opened_at``; the ticket log by
  ``(at, action, ticket_id)``; notices by ``(status, sent_at)`` / ``(status,
  scheduled_for)``; sources by ``(source, last_polled_at)``;
* the open tickets are read once (:func:`open_ticket_counts`) for the headline matrix
  and the age chart, without touching ``orders``; those resolved after the window's end
  come from ``ix_tickets_resolved_open_before`` alone (migration 0004);
* tickets opened and resolved per day (and in the window) come from the hourly rollup
  ``report_ticket_hours`` when it is built (``hourly``), hours it has not folded yet from
  ``tickets`` (see :mod:`tracker.report.rollup`).

"Open" means open at the end of the window: opened before it and not resolved by then,
so a report for a past day counts what was open that morning.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import Integer, and_, case, func, literal, select, union_all
from sqlalchemy.engine import Connection, Row

from tracker.report.model import URGENT_KINDS, ReportWindow
from tracker.report.rollup import dirty_hours
from tracker.report.sqlfuncs import const, day_of, epoch_seconds, from_epoch
from tracker.store.tables import (
    alerts,
    notices,
    orders,
    report_ticket_hours,
    shipments,
    ticket_log,
    tickets,
    tracking_events,
)

__all__ = [
    "AGE_BUCKETS",
    "ActivityCounts",
    "action_rows",
    "activity_counts",
    "oldest_open_rows",
    "open_ticket_counts",
    "period_ticket_counts",
    "resolved_per_day",
    "source_freshness_rows",
]

#: open-ticket age buckets: (label, from hours, to hours or None)
AGE_BUCKETS: tuple[tuple[str, float, float | None], ...] = (
    ("<1天", 0, 24),
    ("1-2天", 24, 48),
    ("2-3天", 48, 72),
    ("3-7天", 72, 168),
    ("7-14天", 168, 336),
    ("14-30天", 336, 720),
    ("≥30天", 720, None),
)


# in the SQL text, as the partial indexes over open and resolved tickets state it
_RESOLVED = const("resolved")


def _open_arms(end: datetime, *columns: Any) -> Any:
    """Tickets open at ``end`` as a UNION ALL of two disjoint, index-friendly arms.

    Still open now (the partial index ``ix_tickets_open_opened_at``), or resolved only
    after ``end`` (``ix_tickets_resolved_at``; usually a handful). An ``OR`` of the two
    would force a bitmap scan over both and defeat the ordered partial index.
    """
    still_open = select(*columns).where(tickets.c.status != _RESOLVED, tickets.c.opened_at < end)
    resolved_later = select(*columns).where(
        tickets.c.status == _RESOLVED, tickets.c.resolved_at >= end, tickets.c.opened_at < end
    )
    return still_open.union_all(resolved_later).subquery("open_tickets")


def _oldest_open(end: datetime, limit: int, kinds: Any = None, tier: int = 0) -> list[Any]:
    """Candidates for the ``limit`` oldest tickets (of ``kinds``) open at ``end``.

    Still-open tickets come from an ordered walk of the partial index that stops after
    ``limit`` rows, so nothing sorts every open ticket; tickets resolved only after
    ``end`` (a handful for this morning's report) are all taken and sorted by the caller.
    """
    still_open = select(tickets.c.id, literal(tier).label("tier"), tickets.c.opened_at).where(
        tickets.c.status != _RESOLVED, tickets.c.opened_at < end
    )
    resolved_later = select(tickets.c.id, literal(tier).label("tier"), tickets.c.opened_at).where(
        tickets.c.status == _RESOLVED, tickets.c.resolved_at >= end, tickets.c.opened_at < end
    )
    if kinds is not None:
        still_open = still_open.where(kinds)
        resolved_later = resolved_later.where(kinds)
    walked = still_open.order_by(tickets.c.opened_at, tickets.c.id).limit(limit).subquery()
    return [select(walked), resolved_later]


def open_ticket_counts(conn: Connection, end: datetime) -> list[tuple[str, str, int, int]]:
    """(kind, severity, age bucket, count) of tickets open at ``end``.

    One pass over the open tickets (no join) feeds the headline matrix and the age chart.
    """
    whens = [
        (tickets.c.opened_at > end - timedelta(hours=upper), literal(i))
        for i, (_, _, upper) in enumerate(AGE_BUCKETS)
        if upper is not None
    ]
    bucket = case(*whens, else_=literal(len(AGE_BUCKETS) - 1)).label("bucket")
    open_set = _open_arms(end, tickets.c.kind, tickets.c.severity, bucket)
    rows = conn.execute(
        select(open_set.c.kind, open_set.c.severity, open_set.c.bucket, func.count()).group_by(
            open_set.c.kind, open_set.c.severity, open_set.c.bucket
        )
    )
    return [(r[0], r[1], int(r[2]), int(r[3])) for r in rows]


def oldest_open_rows(
    conn: Connection, end: datetime, limit: int = 5
) -> Sequence[Row[*tuple[Any, ...]]]:
    """The ``limit`` longest-open tickets at ``end``."""
    first, *rest = _oldest_open(end, limit)
    oldest = first.union_all(*rest).subquery("oldest")
    top = select(oldest.c.id).order_by(oldest.c.opened_at, oldest.c.id).limit(limit).subquery()
    return conn.execute(
        select(
            tickets.c.id,
            orders.c.order_id,
            tickets.c.kind,
            tickets.c.severity,
            tickets.c.courier,
            tickets.c.tracking_number,
            tickets.c.opened_at,
        )
        .select_from(top)
        .join(tickets, tickets.c.id == top.c.id)
        .join(orders, orders.c.id == tickets.c.order_pk)
        .order_by(tickets.c.opened_at, tickets.c.id)
    ).all()


@dataclass(frozen=True, slots=True)
class ActivityCounts:
    """What happened in the window, counted in one round trip."""

    opened: int
    resolved: int
    auto_resolved: int
    resolved_by_agent: int
    escalated: int
    acknowledged: int
    notices_sent: int
    buyers_notified: int
    notices_failed: int
    notices_waiting: int
    alerts_dead: int
    alerts_retrying: int


_LOGGED_ACTIONS = ("auto_resolved", "resolved", "escalated", "acknowledged")


def _count(table: Any, *where: Any, what: Any = None) -> Any:
    return (
        select(what if what is not None else func.count())
        .select_from(table)
        .where(*where)
        .scalar_subquery()
    )


def _whole_hour(moment: datetime) -> bool:
    return moment.timestamp() % 3600 == 0


def _journaled_tickets(journaled: Any, stamp: Any, first: int, last: int, *columns: Any) -> Any:
    """Tickets whose ``stamp`` falls in a journaled hour within ``[first, last)``.

    The hours are bounded, not the tickets: a range on ``stamp`` too would let SQLite walk
    the whole period's index range instead of one hour's per journaled hour.
    """
    return (
        select(*columns)
        .select_from(
            tickets.join(
                journaled,
                and_(
                    stamp >= from_epoch(journaled.c.hour * 3600),
                    stamp < from_epoch((journaled.c.hour + 1) * 3600),
                ),
            )
        )
        .where(journaled.c.hour >= first, journaled.c.hour < last)
    )


def _hour_total(start: datetime, end: datetime, stamp: Any, measure: str) -> Any:
    """Tickets whose ``stamp`` is in ``[start, end)`` (whole hours), from the hourly rollup.

    Hours still journaled are counted from ``tickets`` instead.
    """
    journaled = dirty_hours()
    first, last = int(start.timestamp()) // 3600, int(end.timestamp()) // 3600
    rolled = select(report_ticket_hours.c[measure].label("n")).where(
        report_ticket_hours.c.hour >= first,
        report_ticket_hours.c.hour < last,
        report_ticket_hours.c.hour.not_in(select(journaled.c.hour)),
    )
    fresh = _journaled_tickets(journaled, stamp, first, last, literal(1).label("n"))
    rows = union_all(rolled, fresh).subquery("in_hours")
    return select(func.coalesce(func.sum(rows.c.n), 0)).scalar_subquery()


def activity_counts(
    conn: Connection, window: ReportWindow, *, hourly: bool = False
) -> ActivityCounts:
    """Tickets opened/resolved/escalated/acknowledged, notices and alerts, in the window.

    A failed notice or dead alert counts in the window its last attempt was due in
    (``scheduled_for`` / ``next_attempt_at``); waiting notices and retrying alerts are
    counted as they stand now. Ticket log actions count distinct tickets. ``hourly``:
    tickets opened and resolved come from the hourly rollup when the window starts and
    ends on whole hours.
    """
    start, end = window.start, window.end
    sent = (notices.c.status == const("sent"), notices.c.sent_at >= start, notices.c.sent_at < end)
    if hourly and _whole_hour(start) and _whole_hour(end):
        opened = _hour_total(start, end, tickets.c.opened_at, "opened")
        resolved = _hour_total(start, end, tickets.c.resolved_at, "resolved")
    else:
        opened = _count(tickets, tickets.c.opened_at >= start, tickets.c.opened_at < end)
        resolved = _count(tickets, tickets.c.resolved_at >= start, tickets.c.resolved_at < end)
    row = conn.execute(
        select(
            opened,
            resolved,
            _count(notices, *sent),
            _count(notices, *sent, what=func.count(func.distinct(notices.c.buyer_id))),
            _count(
                notices,
                notices.c.status == "failed",
                notices.c.scheduled_for >= start,
                notices.c.scheduled_for < end,
            ),
            _count(notices, notices.c.status == "queued"),
            _count(
                alerts,
                alerts.c.status == "dead",
                alerts.c.next_attempt_at >= start,
                alerts.c.next_attempt_at < end,
            ),
            _count(alerts, alerts.c.status == const("queued"), alerts.c.attempts > 0),
        )
    ).one()
    logged: dict[str, int] = dict(
        conn.execute(
            select(ticket_log.c.action, func.count(func.distinct(ticket_log.c.ticket_id)))
            .where(
                ticket_log.c.at >= start,
                ticket_log.c.at < end,
                # "opened" is most of the log and counted from tickets above
                ticket_log.c.action.in_(_LOGGED_ACTIONS),
            )
            .group_by(ticket_log.c.action)
        ).all()
    )
    opened, resolved, sent_n, buyers_n, failed, waiting, dead, retrying = (int(v or 0) for v in row)
    return ActivityCounts(
        opened=opened,
        resolved=resolved,
        auto_resolved=int(logged.get("auto_resolved", 0)),
        resolved_by_agent=int(logged.get("resolved", 0)),
        escalated=int(logged.get("escalated", 0)),
        acknowledged=int(logged.get("acknowledged", 0)),
        notices_sent=sent_n,
        buyers_notified=buyers_n,
        notices_failed=failed,
        notices_waiting=waiting,
        alerts_dead=dead,
        alerts_retrying=retrying,
    )


def action_rows(conn: Connection, end: datetime, limit: int) -> Sequence[Row[*tuple[Any, ...]]]:
    """The ``limit`` most urgent open tickets with order, parcel and newest scan.

    Lost first, then overdue, then everything else; oldest first within each. The
    newest scan is looked up only for the tickets that made the list.
    """
    arms: list[Any] = []
    for rank, kind in enumerate(URGENT_KINDS):
        arms += _oldest_open(end, limit, tickets.c.kind == kind, rank)
    arms += _oldest_open(end, limit, tickets.c.kind.not_in(URGENT_KINDS), len(URGENT_KINDS))
    first, *rest = arms
    candidates = first.union_all(*rest).subquery("candidates")
    top = (
        select(candidates)
        .order_by(candidates.c.tier, candidates.c.opened_at, candidates.c.id)
        .limit(limit)
        .cte("top")
    )
    newest_scan = (
        select(tracking_events.c.id)
        .where(tracking_events.c.shipment_id == tickets.c.shipment_id)
        .order_by(tracking_events.c.time.desc(), tracking_events.c.id.desc())
        .limit(1)
        .correlate(tickets)
        .scalar_subquery()
    )
    return conn.execute(
        select(
            tickets.c.id,
            orders.c.order_id,
            orders.c.dest_province,
            orders.c.dest_city,
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
            tracking_events.c.district.label("scan_district"),
        )
        .select_from(top)
        .join(tickets, tickets.c.id == top.c.id)
        .join(orders, orders.c.id == tickets.c.order_pk)
        .outerjoin(tracking_events, tracking_events.c.id == newest_scan)
        .order_by(top.c.tier, top.c.opened_at, top.c.id)
    ).all()


def _hour_day(hour: Any, window: ReportWindow) -> Any:
    """The period day index of an epoch hour (the period's days start on whole hours)."""
    edges = [int(edge.timestamp()) // 3600 for edge in window.day_edges]
    if {b - a for a, b in pairwise(edges)} == {24}:
        return (hour - edges[0]).self_group().op("/", return_type=Integer)(24)
    whens = [(hour < edge, literal(i)) for i, edge in enumerate(edges[1:-1])]
    return case(*whens, else_=literal(len(edges) - 2)) if whens else literal(0)


def _hourly(window: ReportWindow, stamp: Any, measure: str) -> Any:
    """Per (period day, kind): the hourly rollup, hours still journaled read from ``tickets``."""
    first = int(window.period_start.timestamp()) // 3600
    last = int(window.period_end.timestamp()) // 3600
    journaled = dirty_hours()
    rolled = select(
        _hour_day(report_ticket_hours.c.hour, window).label("day"),
        report_ticket_hours.c.kind,
        report_ticket_hours.c[measure].label("n"),
    ).where(
        report_ticket_hours.c.hour >= first,
        report_ticket_hours.c.hour < last,
        report_ticket_hours.c.hour.not_in(select(journaled.c.hour)),
    )
    fresh = _journaled_tickets(
        journaled,
        stamp,
        first,
        last,
        _hour_day(journaled.c.hour, window).label("day"),
        tickets.c.kind,
        literal(1),
    )
    rows = union_all(rolled, fresh).subquery("hourly")
    return rows


def period_ticket_counts(
    conn: Connection, window: ReportWindow, *, hourly: bool = False
) -> list[tuple[int, str, int]]:
    """(day index, kind, count) of tickets opened in the period.

    ``hourly``: from the per-hour rollup (see :func:`tracker.report.rollup.hours_usable`).
    """
    if hourly:
        rows = _hourly(window, tickets.c.opened_at, "opened")
        found = conn.execute(
            select(rows.c.day, rows.c.kind, func.sum(rows.c.n))
            .group_by(rows.c.day, rows.c.kind)
            .having(func.sum(rows.c.n) > 0)
        )
        return [(int(r[0]), r[1], int(r[2])) for r in found]
    day = day_of(tickets.c.opened_at, epoch_seconds(tickets.c.opened_at), window.day_edges).label(
        "day"
    )
    rows = conn.execute(
        select(day, tickets.c.kind, func.count())
        .where(
            tickets.c.opened_at >= window.period_start,
            tickets.c.opened_at < window.period_end,
        )
        .group_by(day, tickets.c.kind)
    )
    return [(int(r[0]), r[1], int(r[2])) for r in rows]


def resolved_per_day(
    conn: Connection, window: ReportWindow, *, hourly: bool = False
) -> list[tuple[int, int]]:
    """(day index, count) of tickets resolved in the period (``hourly``: from the rollup)."""
    if hourly:
        rows = _hourly(window, tickets.c.resolved_at, "resolved")
        found = conn.execute(
            select(rows.c.day, func.sum(rows.c.n))
            .group_by(rows.c.day)
            .having(func.sum(rows.c.n) > 0)
        )
        return [(int(r[0]), int(r[1])) for r in found]
    day = day_of(
        tickets.c.resolved_at, epoch_seconds(tickets.c.resolved_at), window.day_edges
    ).label("day")
    rows = conn.execute(
        select(day, func.count())
        .where(
            tickets.c.resolved_at >= window.period_start,
            tickets.c.resolved_at < window.period_end,
        )
        .group_by(day)
    )
    return [(int(r[0]), int(r[1])) for r in rows]


def source_freshness_rows(
    conn: Connection, sources: Iterable[str], until: datetime
) -> list[tuple[str, datetime | None, int]]:
    """(source, newest successful poll up to ``until``, parcels currently failing)."""
    names = list(dict.fromkeys(sources))
    if not names:
        return []
    columns: list[Any] = []
    for name in names:
        columns.append(
            select(func.max(shipments.c.last_polled_at))
            .where(
                shipments.c.source == name,
                shipments.c.error_kind.is_(None),
                shipments.c.last_polled_at <= until,
            )
            .scalar_subquery()
        )
        columns.append(
            select(func.count())
            .select_from(shipments)
            .where(shipments.c.source == name, shipments.c.error_kind.is_not(None))
            .scalar_subquery()
        )
    row = conn.execute(select(*columns)).one()
    return [(name, row[2 * i], int(row[2 * i + 1] or 0)) for i, name in enumerate(names)]
