"""The daily exception report: aggregate queries in; HTML, CSV and JSON out; stored and sent.

Layout: :mod:`~tracker.report.queries` and :mod:`~tracker.report.scorecard` (aggregate
SQL only, over the rollups :mod:`~tracker.report.rollup` keeps exact and fresh),
:mod:`~tracker.report.build` (assembles :mod:`~tracker.report.model`),
``render_*`` (forms), :mod:`~tracker.report.store` (stored reports),
:mod:`~tracker.report.delivery` (e-mail, webhook), :mod:`~tracker.report.job` (the daily
run the daemon schedules) and :mod:`~tracker.report.bench` (the benchmark hook).
"""

from tracker.report.bench import time_daily_report
from tracker.report.build import build_daily_report, parse_report_date, report_window
from tracker.report.job import ReportRun, run_daily_report, run_daily_report_sync
from tracker.report.model import DailyReport
from tracker.report.render import FORMATS, RenderedReport, render_all, render_report

__all__ = [
    "FORMATS",
    "DailyReport",
    "RenderedReport",
    "ReportRun",
    "build_daily_report",
    "parse_report_date",
    "render_all",
    "render_report",
    "report_window",
    "run_daily_report",
    "run_daily_report_sync",
    "time_daily_report",
]
