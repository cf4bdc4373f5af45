"""Rendering rows for the terminal: aligned tables (CJK-aware), JSON and CSV."""

from __future__ import annotations

import csv
import io
import json
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = ["render", "text_width", "truncate"]


def text_width(text: str) -> int:
    """Display width in a terminal: wide (CJK) characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def truncate(text: str, width: int) -> str:
    """Cut ``text`` to at most ``width`` columns, marking the cut with an ellipsis."""
    if text_width(text) <= width:
        return text
    out, used = [], 0
    for ch in text:
        w = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + "…"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def render(
    rows: Iterable[dict[str, Any]],
    fmt: str,
    columns: Sequence[str],
    *,
    max_width: int = 40,
) -> str:
    """Rows as ``table`` (only ``columns``), ``json`` (a list of every field) or ``csv``."""
    if fmt == "json":
        return json.dumps(list(rows), ensure_ascii=False, indent=2)
    if fmt == "csv":
        buffer = io.StringIO()
        writer: Any = None
        for row in rows:
            if writer is None:
                writer = csv.DictWriter(buffer, fieldnames=list(row), lineterminator="\n")
                writer.writeheader()
            writer.writerow({k: _cell(v) for k, v in row.items()})
        if writer is None:
            csv.writer(buffer, lineterminator="\n").writerow(columns)
        return buffer.getvalue().rstrip("\n")
    cells = [[truncate(_cell(r.get(c)), max_width) for c in columns] for r in rows]
    if not cells:
        return "(none)"
    widths = [
        max(text_width(c), *(text_width(row[i]) for row in cells)) for i, c in enumerate(columns)
    ]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v + " " * (w - text_width(v)) for v, w in zip(values, widths, strict=True)
        ).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])
