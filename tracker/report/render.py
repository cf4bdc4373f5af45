"""One entry point for every rendered form of the report."""

from __future__ import annotations

from dataclasses import dataclass

from tracker.report.model import DailyReport
from tracker.report.render_csv import render_csv
from tracker.report.render_html import render_html
from tracker.report.render_json import render_json

__all__ = ["FORMATS", "RenderedReport", "render_all", "render_report"]

FORMATS = ("html", "csv", "json")


def render_report(report: DailyReport, fmt: str) -> str:
    """The report as ``html`` (self-contained), ``csv`` (the action list) or ``json``."""
    if fmt == "html":
        return render_html(report)
    if fmt == "csv":
        return render_csv(report)
    if fmt == "json":
        return render_json(report)
    raise ValueError(f"unknown report format {fmt!r} (choose {', '.join(FORMATS)})")


@dataclass(frozen=True, slots=True)
class RenderedReport:
    """A report together with its three rendered forms (what gets stored and sent)."""

    report: DailyReport
    html: str
    csv: str
    json: str

    def form(self, fmt: str) -> str:
        """One rendered form by name."""
        if fmt not in FORMATS:
            raise ValueError(f"unknown report format {fmt!r} (choose {', '.join(FORMATS)})")
        text: str = getattr(self, fmt)
        return text


def render_all(report: DailyReport) -> RenderedReport:
    """Render every form once."""
    return RenderedReport(report, render_html(report), render_csv(report), render_json(report))
