"""The action list as CSV for spreadsheets: UTF-8 with a BOM so Excel shows Chinese right."""

from __future__ import annotations

import csv
import io
from typing import Any

from tracker.report.model import DailyReport

__all__ = ["CSV_COLUMNS", "render_csv"]

#: the columns, in order (one row per open ticket of the action list)
CSV_COLUMNS = (
    "ticket_id",
    "order_id",
    "kind",
    "kind_label",
    "severity",
    "status",
    "courier",
    "courier_name",
    "tracking_number",
    "destination",
    "opened_at",
    "open_hours",
    "last_scan_time",
    "last_scan_place",
    "last_scan_text",
    "evidence",
    "suggested_action",
)
_BOM = "\ufeff"
# A cell starting with one of these is run as a formula by spreadsheet programs; courier
# scan texts come from outside, so such cells are defused with a leading apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def render_csv(report: DailyReport, *, bom: bool = True) -> str:
    """One header row then one row per action, oldest-urgent first; CRLF line ends."""
    buffer = io.StringIO()
    if bom:
        buffer.write(_BOM)
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for action in report.actions:
        writer.writerow([_safe(getattr(action, column)) for column in CSV_COLUMNS])
    return buffer.getvalue()
