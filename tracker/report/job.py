"""The daily report job: build, store, deliver, prune (what the daemon runs each morning)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog

from tracker import eventloop
from tracker.report.build import build_daily_report, report_window
from tracker.report.delivery import DeliveryOutcome, email_report, post_summary, summary_payload
from tracker.report.render import RenderedReport, render_all
from tracker.report.rollup import refresh_rollups
from tracker.report.store import Claim, claim_delivery, purge_reports, record_delivery

if TYPE_CHECKING:
    from tracker.bootstrap import App

__all__ = [
    "ReportRun",
    "build_rendered",
    "deliver",
    "refresh",
    "run_daily_report",
    "run_daily_report_sync",
]

_log = structlog.get_logger("tracker.report")


@dataclass(frozen=True, slots=True)
class ReportRun:
    """What one run did: the stored report, its final status, each channel's outcome."""

    report_id: int
    date: date
    status: str
    outcomes: tuple[DeliveryOutcome, ...] = ()
    skipped: str | None = None
    purged: int = 0
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True unless a delivery channel failed."""
        return self.status in ("delivered", "stored") or self.skipped is not None


def refresh(app: App, day: date, now: datetime) -> None:
    """Bring the report's rollups up to date for the report of ``day`` (never raises).

    A failure only costs speed: the report then reads what the rollups would have given
    from the base tables.
    """
    window = report_window(day, now, app.settings)
    try:
        result = refresh_rollups(app.engine, app.policy, window, now)
    except Exception:
        _log.exception("report_rollups_refresh_failed")
        return
    _log.info(
        "report_rollups_refreshed",
        action=result.action,
        parcels=result.parcels,
        hours=result.hours,
        seconds=round(result.seconds, 3),
        reason=result.reason or None,
    )


def build_rendered(app: App, day: date, now: datetime) -> RenderedReport:
    """Refresh the rollups, build the report of ``day`` as of ``now``, render every form."""
    refresh(app, day, now)
    with app.uow() as uow:
        report = build_daily_report(
            uow.conn, day=day, now=now, settings=app.settings, policy=app.policy
        )
    return render_all(report)


async def deliver(
    app: App, rendered: RenderedReport, report_id: int, now: datetime
) -> list[DeliveryOutcome]:
    """Send the report through every configured channel (e-mail, webhook summary)."""
    config = app.settings.report
    outcomes: list[DeliveryOutcome] = []
    if config.recipients and config.smtp is not None:
        outcomes.append(await email_report(rendered, config.smtp, config.recipients, now))
    if config.post_to_webhook:
        payload = summary_payload(rendered, report_id, now)
        outcomes.extend(await post_summary(app.alert_senders, payload, report_id))
    return outcomes


def _status(outcomes: list[DeliveryOutcome]) -> str:
    if not outcomes:
        return "stored"
    if all(o.ok for o in outcomes):
        return "delivered"
    return "partial" if any(o.ok for o in outcomes) else "failed"


def _claim(app: App, rendered: RenderedReport, now: datetime, force: bool) -> Claim:
    with app.uow() as uow:
        claim = claim_delivery(uow.conn, rendered, now, force=force)
        uow.commit()
    return claim


def _finish(
    app: App,
    report_id: int,
    status: str,
    outcomes: list[DeliveryOutcome],
    day: date,
    now: datetime,
) -> int:
    keep_from = day - timedelta(days=app.settings.report.retention_days)
    with app.uow() as uow:
        record_delivery(
            uow.conn, report_id, status, {"channels": [o.as_dict() for o in outcomes]}, now
        )
        purged = purge_reports(uow.conn, keep_from)
        uow.commit()
    return purged


async def run_daily_report(
    app: App, now: datetime | None = None, *, day: date | None = None, force: bool = False
) -> ReportRun:
    """Build, store and deliver the report of ``day`` (default: today in shop time).

    Safe to call from several replicas or twice: only the caller that claims the stored
    row sends it (see :mod:`tracker.report.store`); ``force`` sends again regardless.
    Reports older than ``[report] retention_days`` are deleted afterwards. Database work
    runs in a worker thread so the daemon's event loop keeps serving.
    """
    at = now or app.clock()
    report_day = day or at.astimezone(app.settings.tz).date()
    log = _log.bind(job="daily_report", report_date=report_day.isoformat())
    rendered = await asyncio.to_thread(build_rendered, app, report_day, at)
    claim = await asyncio.to_thread(_claim, app, rendered, at, force)
    summary = rendered.report.summary()
    if not claim.deliver:
        log.info("report_skipped", report_id=claim.report_id, reason=claim.reason)
        return ReportRun(
            claim.report_id, report_day, "skipped", skipped=claim.reason, summary=summary
        )
    outcomes = await deliver(app, rendered, claim.report_id, at)
    status = _status(outcomes)
    purged = await asyncio.to_thread(
        _finish, app, claim.report_id, status, outcomes, report_day, at
    )
    log.info(
        "report_done",
        report_id=claim.report_id,
        status=status,
        channels=len(outcomes),
        open_total=summary["open_total"],
        purged=purged,
    )
    return ReportRun(
        claim.report_id, report_day, status, tuple(outcomes), purged=purged, summary=summary
    )


def run_daily_report_sync(
    app: App, now: datetime | None = None, *, day: date | None = None, force: bool = False
) -> ReportRun:
    """:func:`run_daily_report` for callers in a worker thread (no running event loop)."""
    return eventloop.run(run_daily_report(app, now, day=day, force=force))
