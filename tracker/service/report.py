"""Compatibility shim: the daily report moved to :mod:`tracker.report`.

Kept so existing imports keep working; new code should import from ``tracker.report``.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy.engine import Connection

from tracker.domain.policy import Policy
from tracker.report import DailyReport, parse_report_date, render_report
from tracker.report import build_daily_report as _build
from tracker.settings import Settings

__all__ = ["DailyReport", "build_daily_report", "parse_report_date", "render_report"]


def build_daily_report(
    conn: Connection, day: date, now: datetime, settings: Settings
) -> DailyReport:
    """The report of ``day`` as of ``now`` under the policy configured in ``settings``."""
    policy = Policy.from_mapping(settings.policy, timezone=settings.tz)
    return _build(conn, day=day, now=now, settings=settings, policy=policy)
