"""Small inline SVG charts: no JavaScript, no external files, scale to any width and print.

Every label passes through :func:`xml.sax.saxutils.escape`; each bar segment carries a
``<title>`` so hovering (or a screen reader) gives the exact number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from xml.sax.saxutils import escape

from markupsafe import Markup

__all__ = ["KIND_COLORS", "horizontal_bars", "nice_max", "stacked_columns"]

#: one colour per exception kind, in ExceptionKind order (colour-blind friendly palette)
KIND_COLORS: dict[str, str] = {
    "not_shipped": "#7f7f7f",
    "stalled": "#e69f00",
    "overdue": "#d55e00",
    "lost": "#b2182b",
    "wrong_region": "#cc79a7",
    "weight_mismatch": "#56b4e9",
    "delivery_failed": "#0072b2",
    "returned": "#009e73",
    "carrier_exception": "#8c6d31",
}
_FALLBACK = "#9aa5b1"
_AXIS = "#9aa5b1"
_GRID = "#e4e7eb"
_TEXT = "#3e4c59"


def nice_max(value: float) -> int:
    """A round axis maximum at or above ``value`` (1, 2, 5 x 10^n)."""
    if value <= 0:
        return 1
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _color(kind: str) -> str:
    return KIND_COLORS.get(kind, _FALLBACK)


def stacked_columns(
    categories: Sequence[str],
    series: Mapping[str, Sequence[int]],
    labels: Mapping[str, str],
    *,
    title: str,
    every: int = 1,
    width: int = 600,
    height: int = 230,
) -> Markup:
    """Columns per category, stacked by series (kind); every ``every``-th x label shown."""
    left, right, top, bottom = 34, 8, 10, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    totals = [sum(values[i] for values in series.values()) for i in range(len(categories))]
    top_value = nice_max(max(totals, default=0))
    slot = plot_w / max(len(categories), 1)
    bar_w = max(slot * 0.72, 1.0)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for tick in range(5):
        value = top_value * tick / 4
        y = top + plot_h - plot_h * tick / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
            f'stroke="{_GRID if tick else _AXIS}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{left - 5}" y="{y + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="{_TEXT}">{value:g}</text>'
        )
    for i, category in enumerate(categories):
        x = left + slot * i + (slot - bar_w) / 2
        base = float(top + plot_h)
        for kind, values in series.items():
            count = values[i]
            if count <= 0:
                continue
            h = plot_h * count / top_value
            base -= h
            tip = f"{category} {labels.get(kind, kind)}：{count}"
            parts.append(
                f'<rect x="{x:.1f}" y="{base:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{_color(kind)}"><title>{escape(tip)}</title></rect>'
            )
        if i % every == 0 or i == len(categories) - 1:
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{height - bottom + 17}" '
                f'text-anchor="middle" font-size="12" fill="{_TEXT}">{escape(category)}</text>'
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def horizontal_bars(
    rows: Sequence[tuple[str, Mapping[str, int]]],
    labels: Mapping[str, str],
    *,
    title: str,
    width: int = 600,
    row_h: int = 24,
) -> Markup:
    """One bar per row (e.g. a province), stacked by kind, the total printed at its end."""
    left, right, top = 120, 40, 4
    height = top * 2 + row_h * max(len(rows), 1)
    plot_w = width - left - right
    top_value = nice_max(max((sum(kinds.values()) for _, kinds in rows), default=0))
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i, (name, kinds) in enumerate(rows):
        y = top + row_h * i
        parts.append(
            f'<text x="{left - 6}" y="{y + row_h * 0.68:.1f}" text-anchor="end" '
            f'font-size="13" fill="{_TEXT}">{escape(name)}</text>'
        )
        x = float(left)
        for kind, count in kinds.items():
            if count <= 0:
                continue
            w = plot_w * count / top_value
            tip = f"{name} {labels.get(kind, kind)}：{count}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" '
                f'fill="{_color(kind)}"><title>{escape(tip)}</title></rect>'
            )
            x += w
        parts.append(
            f'<text x="{x + 4:.1f}" y="{y + row_h * 0.68:.1f}" font-size="12" '
            f'fill="{_TEXT}">{sum(kinds.values())}</text>'
        )
    parts.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - top}" stroke="{_AXIS}"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
