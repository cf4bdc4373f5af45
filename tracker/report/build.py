"""Assemble the daily report from the aggregate queries (the only place that calls them)."""

from __future__ import annotations

import time as clock
from collections.abc import Callable, Iterable, MutableMapping
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import text
from sqlalchemy.engine import Connection

from carriers.registry import courier_name
from tracker.domain.masking import mask_phones_in_text
from tracker.domain.model import ExceptionKind
from tracker.domain.playbook import KIND_LABELS
from tracker.domain.policy import Policy
from tracker.report import queries as q
from tracker.report import rollup
from tracker.report.allowance import AllowancePlan, allowance_plan
from tracker.report.disruptions import disruptions_near
from tracker.report.evidence import summarize_evidence
from tracker.report.model import (
    ActionItem,
    AgeBucket,
    CarrierScore,
    DailyReport,
    Headline,
    OldTicket,
    RegionRow,
    ReportMeta,
    ReportWindow,
    SourceFreshness,
    Trends,
    daily_window,
)
from tracker.report.scorecard import (
    CohortCounts,
    GroupCounts,
    RollupMismatch,
    RollupView,
    cohort_counts,
)
from tracker.settings import Settings

__all__ = [
    "STALE_AFTER",
    "build_daily_report",
    "kind_label",
    "parse_report_date",
    "report_window",
]

_log = structlog.get_logger("tracker.report")
#: PostgreSQL sort memory for the report's transaction (see _tune_session)
REPORT_WORK_MEM = "64MB"
#: a source with no successful poll for this long is flagged in the freshness table
STALE_AFTER = timedelta(hours=6)
_KINDS = [k.value for k in ExceptionKind]
#: (kind, severity, age bucket, count) of the open tickets
OpenRow = tuple[str, str, int, int]
T = TypeVar("T")


def kind_label(kind: str) -> str:
    """The Chinese name of an exception kind (the code itself when unknown)."""
    try:
        return KIND_LABELS[ExceptionKind(kind)]
    except ValueError:
        return kind


def parse_report_date(value: str | None, now: datetime, tz: ZoneInfo) -> date:
    """``--date`` as a date; the default is today in the shop's timezone."""
    if value is None:
        return now.astimezone(tz).date()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"not a date (YYYY-MM-DD): {value!r}") from None


def report_window(day: date, now: datetime, settings: Settings) -> ReportWindow:
    """The window of the report of ``day`` under ``[report] at``."""
    hour, minute = (int(p) for p in settings.report.at.split(":"))
    return daily_window(day, now, settings.tz, time(hour, minute))


def _timed(timings: MutableMapping[str, float] | None, name: str, run: Callable[[], T]) -> T:
    started = clock.perf_counter()
    try:
        return run()
    finally:
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + clock.perf_counter() - started


def _iso(value: datetime | None, tz: ZoneInfo) -> str | None:
    return value.astimezone(tz).isoformat() if value is not None else None


def _hours(span: timedelta) -> float:
    return round(span.total_seconds() / 3600, 1)


def _tune_session(conn: Connection) -> None:
    """PostgreSQL settings for this report's transaction only (``SET LOCAL``).

    JIT compilation costs more than it saves on these sub-second aggregates (hundreds of
    milliseconds per statement at a million tickets), and the sorts behind the transit
    percentiles spill to disk under the default 4 MB ``work_mem``.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SET LOCAL jit = off"))
        conn.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))


def build_daily_report(
    conn: Connection,
    *,
    day: date,
    now: datetime,
    settings: Settings,
    policy: Policy,
    timings: MutableMapping[str, float] | None = None,
) -> DailyReport:
    """The report of ``day`` as of ``now``; ``timings`` collects seconds per query group."""
    window = report_window(day, now, settings)
    tz = settings.tz
    _tune_session(conn)
    end = window.end
    meta = ReportMeta(
        kind="daily",
        date=day.isoformat(),
        timezone=settings.timezone,
        window_start=_iso(window.start, tz) or "",
        window_end=_iso(end, tz) or "",
        generated_at=_iso(now, tz) or "",
        period_start=_iso(window.period_start, tz) or "",
        period_end=_iso(window.period_end, tz) or "",
        shop=settings.shop.name,
    )
    hourly = rollup.hours_usable(conn, window)
    open_rows = _timed(timings, "open", lambda: q.open_ticket_counts(conn, end))
    headline = _timed(timings, "headline", lambda: _headline(conn, window, open_rows, hourly))
    actions = _timed(
        timings, "actions", lambda: _actions(conn, end, tz, settings.report.max_actions)
    )
    trends = _timed(timings, "trends", lambda: _trends(conn, window, open_rows, hourly))
    plan = _timed(timings, "allowance", lambda: allowance_plan(policy, window.day_edges))
    view = _timed(timings, "rollup_check", lambda: rollup.check(conn, window, policy, plan))
    cohort = _timed(timings, "scorecard", lambda: _cohort(conn, window, policy, plan, view))
    couriers, lanes = _scorecard(cohort)
    regions = _regions(cohort)
    freshness = _timed(timings, "freshness", lambda: _freshness(conn, settings, now, tz))
    disruptions = disruptions_near(policy, window.days[0], window.start.astimezone(tz).date(), day)
    return DailyReport(
        meta=meta,
        headline=headline,
        actions=actions,
        actions_total=headline.open_total,
        trends=trends,
        couriers=couriers,
        lanes=lanes,
        regions=regions,
        disruptions=disruptions,
        freshness=freshness,
    )


def _cohort(
    conn: Connection,
    window: ReportWindow,
    policy: Policy,
    plan: AllowancePlan,
    view: RollupView | None,
) -> CohortCounts:
    """The scorecard counts from the rollups when they hold, else from every parcel.

    A refresh that commits while the report is built moves the rollups on: look again
    once. Counts that come out impossible would be a bug; they are logged and never shown.
    """
    for attempt in range(2):
        if view is None:
            break
        try:
            return cohort_counts(conn, window, plan, view)
        except RollupMismatch as exc:
            _log.warning("report_rollup_mismatch", error=str(exc), attempt=attempt)
            view = rollup.check(conn, window, policy, plan)
    return cohort_counts(conn, window, plan)


def _headline(
    conn: Connection, window: ReportWindow, open_rows: list[OpenRow], hourly: bool
) -> Headline:
    tz, end = window.tz, window.end
    headline = Headline()
    for kind, severity, _bucket, count in open_rows:
        counts = headline.open_by_kind.setdefault(kind, {})
        counts[severity] = counts.get(severity, 0) + count
        headline.open_total += count
    headline.open_by_kind = dict(sorted(headline.open_by_kind.items(), key=_kind_order))
    for r in q.oldest_open_rows(conn, end):
        headline.oldest_open.append(
            OldTicket(
                ticket_id=r.id,
                order_id=r.order_id,
                kind=r.kind,
                severity=r.severity,
                courier=r.courier,
                tracking_number=r.tracking_number,
                opened_at=_iso(r.opened_at, tz) or "",
                open_hours=_hours(end - r.opened_at),
            )
        )
    activity = q.activity_counts(conn, window, hourly=hourly)
    headline.opened = activity.opened
    headline.resolved = activity.resolved
    headline.auto_resolved = activity.auto_resolved
    headline.resolved_by_agent = activity.resolved_by_agent
    headline.escalated = activity.escalated
    headline.acknowledged = activity.acknowledged
    headline.notices_sent = activity.notices_sent
    headline.buyers_notified = activity.buyers_notified
    headline.notices_failed = activity.notices_failed
    headline.notices_waiting = activity.notices_waiting
    headline.alerts_dead = activity.alerts_dead
    headline.alerts_retrying = activity.alerts_retrying
    return headline


def _kind_order(item: tuple[str, Any]) -> tuple[int, str]:
    kind = item[0]
    return (_KINDS.index(kind) if kind in _KINDS else len(_KINDS), kind)


def _place(*parts: str | None) -> str | None:
    names = [p for p in parts if p]
    if len(names) >= 2 and names[0] == names[1]:
        names.pop(1)  # a municipality is its own city
    return "".join(names) or None


def _actions(conn: Connection, end: datetime, tz: ZoneInfo, limit: int) -> list[ActionItem]:
    items = []
    for r in q.action_rows(conn, end, limit):
        items.append(
            ActionItem(
                ticket_id=r.id,
                order_id=r.order_id,
                kind=r.kind,
                kind_label=kind_label(r.kind),
                severity=r.severity,
                status=r.status,
                courier=r.courier,
                courier_name=courier_name(r.courier) if r.courier else None,
                tracking_number=r.tracking_number,
                destination=_place(r.dest_province, r.dest_city) or "",
                opened_at=_iso(r.opened_at, tz) or "",
                open_hours=_hours(end - r.opened_at),
                last_scan_time=_iso(r.scan_time, tz),
                last_scan_place=_place(r.scan_province, r.scan_city, r.scan_district),
                last_scan_text=mask_phones_in_text(r.scan_text) if r.scan_text else None,
                evidence=summarize_evidence(r.kind, r.evidence),
                suggested_action=mask_phones_in_text(r.suggested_action),
            )
        )
    return items


def _trends(
    conn: Connection, window: ReportWindow, open_rows: list[OpenRow], hourly: bool
) -> Trends:
    n = len(window.day_edges) - 1
    trends = Trends(days=[d.isoformat() for d in window.days], resolved=[0] * n)
    by_kind: dict[str, list[int]] = {}
    for day, kind, count in q.period_ticket_counts(conn, window, hourly=hourly):
        by_kind.setdefault(kind, [0] * n)[day] += count
    trends.opened_by_kind = dict(sorted(by_kind.items(), key=_kind_order))
    for day, count in q.resolved_per_day(conn, window, hourly=hourly):
        trends.resolved[day] += count
    buckets = [AgeBucket(label, low, high) for label, low, high in q.AGE_BUCKETS]
    for kind, _severity, index, count in open_rows:
        bucket = buckets[index]
        bucket.total += count
        bucket.by_kind[kind] = bucket.by_kind.get(kind, 0) + count
    trends.open_age = buckets
    return trends


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _score(courier: str, lane: str | None, groups: Iterable[GroupCounts]) -> CarrierScore:
    score = CarrierScore(courier=courier, courier_name=courier_name(courier), lane=lane)
    for g in groups:
        score.shipments += g.shipments
        score.delivered += g.delivered
        score.on_time += g.on_time
        score.late += g.late
        score.exceptional += g.exceptional
        for kind, count in g.exceptions.items():
            score.exceptions[kind] = score.exceptions.get(kind, 0) + count
    score.exceptions = dict(sorted(score.exceptions.items(), key=_kind_order))
    score.undecided = score.shipments - score.on_time - score.late
    score.on_time_rate = _rate(score.on_time, score.on_time + score.late)
    score.exception_total = sum(score.exceptions.values())
    score.exception_rate = _rate(score.exceptional, score.shipments)
    score.exception_rates = {
        kind: _rate(count, score.shipments) or 0.0 for kind, count in score.exceptions.items()
    }
    score.lost = score.exceptions.get("lost", 0)
    return score


def _scorecard(cohort: CohortCounts) -> tuple[list[CarrierScore], list[CarrierScore]]:
    by_courier: dict[str, list[GroupCounts]] = {}
    by_lane: dict[tuple[str, str], list[GroupCounts]] = {}
    for (courier, lane, _province), group in cohort.groups.items():
        by_courier.setdefault(courier, []).append(group)
        by_lane.setdefault((courier, lane), []).append(group)
    couriers = []
    for courier, groups in by_courier.items():
        score = _score(courier, None, groups)
        score.median_transit_days, score.p90_transit_days = cohort.percentiles(courier, None)
        couriers.append(score)
    lanes = []
    for (courier, lane), groups in by_lane.items():
        score = _score(courier, lane, groups)
        score.median_transit_days, score.p90_transit_days = cohort.percentiles(courier, lane)
        lanes.append(score)
    couriers.sort(key=lambda s: (-s.shipments, s.courier))
    lanes.sort(key=lambda s: (s.courier, -s.shipments, s.lane or ""))
    return couriers, lanes


def _regions(cohort: CohortCounts) -> list[RegionRow]:
    rows: dict[str, RegionRow] = {}
    for (_courier, _lane, province), group in cohort.groups.items():
        row = rows.setdefault(province, RegionRow(province))
        row.shipments += group.shipments
        row.exceptional += group.exceptional
        row.open_now += group.open_tickets
        for kind, count in group.exceptions.items():
            row.by_kind[kind] = row.by_kind.get(kind, 0) + count
    for row in rows.values():
        row.by_kind = dict(sorted(row.by_kind.items(), key=_kind_order))
        row.exceptions = sum(row.by_kind.values())
        row.exception_rate = _rate(row.exceptional, row.shipments)
    return sorted(rows.values(), key=lambda r: (-r.exceptional, -r.open_now, r.province))


def _freshness(
    conn: Connection, settings: Settings, now: datetime, tz: ZoneInfo
) -> list[SourceFreshness]:
    sources = [name for name, cfg in settings.carriers.items() if cfg.enabled]
    result = []
    for source, last, failing in q.source_freshness_rows(conn, sources, now):
        age = _hours(now - last) if last is not None else None
        result.append(
            SourceFreshness(
                source=source,
                last_success_at=_iso(last, tz),
                hours_since=age,
                failing_shipments=failing,
                stale=last is None or now - last > STALE_AFTER,
            )
        )
    return result
