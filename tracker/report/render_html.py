"""The report as one self-contained HTML file (inline CSS and SVG), and the e-mail body."""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from tracker.domain.model import ExceptionKind
from tracker.report.build import kind_label
from tracker.report.charts import KIND_COLORS, horizontal_bars, stacked_columns
from tracker.report.model import SEVERITIES, DailyReport

__all__ = [
    "LANE_LABELS",
    "SEVERITY_LABELS",
    "render_email_html",
    "render_email_text",
    "render_html",
]

LANE_LABELS = {
    "same_city": "同城",
    "same_province": "省内",
    "other_province": "跨省",
    "remote": "偏远地区",
}
SEVERITY_LABELS = {"critical": "紧急", "high": "高", "medium": "中", "low": "低"}
STATUS_LABELS = {"open": "待处理", "acknowledged": "处理中", "resolved": "已解决"}
#: provinces shown in the region chart (the table lists them all)
REGION_CHART_ROWS = 15
#: action rows in the e-mail body (the CSV attachment has the whole list)
EMAIL_ACTIONS = 20

_env = Environment(
    loader=PackageLoader("tracker.report", "templates"),
    autoescape=select_autoescape(["html", "html.j2"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _short_time(value: str | None) -> str:
    """``2026-09-14T08:00:00+08:00`` -> ``09-14 08:00``."""
    if not value:
        return ""
    return value[5:16].replace("T", " ")


def _duration(hours: float | None) -> str:
    """``50.5`` -> ``2 天 3 小时``."""
    if hours is None:
        return "—"
    whole = round(hours)
    days, rest = divmod(whole, 24)
    if days and rest:
        return f"{days} 天 {rest} 小时"
    return f"{days} 天" if days else f"{rest} 小时"


def _pct(rate: float | None) -> str:
    return "—" if rate is None else f"{rate * 100:.1f}%"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:g}"


def _kinds() -> list[str]:
    return [k.value for k in ExceptionKind]


def _labels() -> dict[str, str]:
    return {k: kind_label(k) for k in _kinds()}


def _context(report: DailyReport) -> dict[str, Any]:
    labels = _labels()
    trends = report.trends
    day_labels = [d[5:] for d in trends.days]
    age_series = {
        kind: [bucket.by_kind.get(kind, 0) for bucket in trends.open_age] for kind in _kinds()
    }
    region_rows = [(r.province, r.by_kind) for r in report.regions if r.exceptions]
    return {
        "r": report,
        "h": report.headline,
        "kinds": _kinds(),
        "labels": labels,
        "colors": KIND_COLORS,
        "severities": SEVERITIES,
        "severity_labels": SEVERITY_LABELS,
        "status_labels": STATUS_LABELS,
        "lane_labels": LANE_LABELS,
        "short_time": _short_time,
        "duration": _duration,
        "pct": _pct,
        "num": _num,
        "urgent": sum(
            sum(report.headline.open_by_kind.get(k, {}).values()) for k in ("lost", "overdue")
        ),
        "trend_chart": stacked_columns(
            day_labels,
            trends.opened_by_kind,
            labels,
            title="近 30 天每日新增工单（按类型）",
            every=5,
        ),
        "age_chart": stacked_columns(
            [b.label for b in trends.open_age],
            age_series,
            labels,
            title="未结工单已开时长分布",
            height=200,
        ),
        "region_chart": horizontal_bars(
            region_rows[:REGION_CHART_ROWS], labels, title="近 30 天各省异常包裹（按类型）"
        ),
        "region_chart_rows": len(region_rows[:REGION_CHART_ROWS]),
        "email_actions": report.actions[:EMAIL_ACTIONS],
    }


def render_html(report: DailyReport) -> str:
    """The full report: one HTML file that opens anywhere, prints to A4, reads on a phone."""
    return _env.get_template("daily_report.html.j2").render(**_context(report))


def render_email_html(report: DailyReport) -> str:
    """A mail-client-safe summary (inline styles, tables, no SVG); the full report is attached."""
    return _env.get_template("email_body.html.j2").render(**_context(report))


def render_email_text(report: DailyReport) -> str:
    """The plain-text alternative of the e-mail body."""
    return _env.get_template("email_body.txt.j2").render(**_context(report))
