"""Stored reports: one row per kind and date holding every rendered form and its delivery.

The unique ``(kind, report_date)`` row doubles as the delivery claim: whoever inserts it
(or takes over a failed or abandoned one) sends the report, so replicas sharing one
PostgreSQL database never send the same morning's report twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from tracker.report.render import RenderedReport
from tracker.store.tables import reports

__all__ = [
    "DELIVERY_LEASE",
    "Claim",
    "claim_delivery",
    "get_report",
    "list_reports",
    "purge_reports",
    "record_delivery",
    "save_report",
]

#: a report left "delivering" this long by a process that died may be sent again
DELIVERY_LEASE = timedelta(minutes=15)
_RETRYABLE = ("stored", "failed")


def _values(rendered: RenderedReport, now: datetime) -> dict[str, Any]:
    meta = rendered.report.meta
    return {
        "kind": meta.kind,
        "report_date": date.fromisoformat(meta.date),
        "generated_at": datetime.fromisoformat(meta.generated_at),
        "window_start": datetime.fromisoformat(meta.window_start),
        "window_end": datetime.fromisoformat(meta.window_end),
        "timezone": meta.timezone,
        "summary": rendered.report.summary(),
        "content_json": rendered.json,
        "content_html": rendered.html,
        "content_csv": rendered.csv,
        "updated_at": now,
    }


def save_report(
    conn: Connection, rendered: RenderedReport, now: datetime, *, status: str | None = None
) -> int:
    """Insert or replace the report of its kind and date; returns its id.

    Without ``status`` a new row is ``stored`` and an existing row keeps its delivery
    status and record (only the contents are refreshed).
    """
    module: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    values = {
        **_values(rendered, now),
        "status": status or "stored",
        "delivery": None,
        "delivered_at": None,
    }
    stmt = module.insert(reports).values(**values)
    fixed = {"kind", "report_date"} | (set() if status else {"status", "delivery", "delivered_at"})
    stmt = stmt.on_conflict_do_update(
        index_elements=["kind", "report_date"],
        set_={k: stmt.excluded[k] for k in values if k not in fixed},
    )
    return int(conn.execute(stmt.returning(reports.c.id)).scalar_one())


@dataclass(frozen=True, slots=True)
class Claim:
    """Whether this process should deliver the stored report ``report_id``, and if not why."""

    report_id: int
    deliver: bool
    reason: str | None = None


def claim_delivery(
    conn: Connection, rendered: RenderedReport, now: datetime, *, force: bool = False
) -> Claim:
    """Store the report and claim its delivery, unless it was (being) delivered already.

    A report already delivered, partly delivered or being delivered (within
    :data:`DELIVERY_LEASE`) is left alone unless ``force``; a stored-only or failed one
    is taken over. Call inside a transaction and commit before sending.
    """
    meta = rendered.report.meta
    query = select(reports.c.id, reports.c.status, reports.c.updated_at).where(
        reports.c.kind == meta.kind, reports.c.report_date == date.fromisoformat(meta.date)
    )
    if conn.dialect.name == "postgresql":
        # the row lock (or the unique key, for a first insert) serialises replicas
        query = query.with_for_update()
    existing = conn.execute(query).first()
    if existing is None:
        module: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
        values = {**_values(rendered, now), "status": "delivering"}
        inserted = conn.execute(
            module.insert(reports)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["kind", "report_date"])
            .returning(reports.c.id)
        ).scalar()
        if inserted is not None:
            return Claim(int(inserted), True)
        # another replica inserted it a moment ago; judge its row like any other
        existing = conn.execute(query).one()
    if not force:
        abandoned = existing.status == "delivering" and existing.updated_at < now - DELIVERY_LEASE
        if existing.status not in _RETRYABLE and not abandoned:
            return Claim(existing.id, False, f"already {existing.status}")
    return Claim(save_report(conn, rendered, now, status="delivering"), True)


def record_delivery(
    conn: Connection,
    report_id: int,
    status: str,
    delivery: dict[str, Any],
    now: datetime,
) -> None:
    """Note how delivery went: ``delivered``, ``partial``, ``failed`` or ``stored``."""
    conn.execute(
        update(reports)
        .where(reports.c.id == report_id)
        .values(
            status=status,
            delivery=delivery,
            delivered_at=now if status in ("delivered", "partial") else None,
            updated_at=now,
        )
    )


def list_reports(conn: Connection, limit: int = 30) -> Sequence[Row[*tuple[Any, ...]]]:
    """The newest stored reports, without their (large) contents."""
    return conn.execute(
        select(
            reports.c.id,
            reports.c.kind,
            reports.c.report_date,
            reports.c.generated_at,
            reports.c.window_start,
            reports.c.window_end,
            reports.c.timezone,
            reports.c.status,
            reports.c.summary,
            reports.c.delivery,
            reports.c.delivered_at,
        )
        .order_by(reports.c.report_date.desc(), reports.c.id.desc())
        .limit(limit)
    ).all()


def get_report(conn: Connection, report_id: int) -> Row[Any] | None:
    """One stored report with its contents, or ``None``."""
    return conn.execute(select(reports).where(reports.c.id == report_id)).first()


def purge_reports(conn: Connection, before: date, kind: str = "daily") -> int:
    """Delete reports of ``kind`` dated before ``before``; returns how many went."""
    result = conn.execute(
        delete(reports).where(reports.c.kind == kind, reports.c.report_date < before)
    )
    return int(result.rowcount or 0)
