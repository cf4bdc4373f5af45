"""One short Chinese line summing up a ticket's evidence, for the action list.

The evidence JSON (see tracker/domain/rules_*.py) is written for machines and audits;
ops staff scanning a list need the one or two facts that made the rule fire. Unknown
triggers fall back to the trigger name, so a new rule never breaks the report. Phone
numbers in courier texts are masked here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from tracker.domain.masking import mask_phones_in_text

__all__ = ["summarize_evidence"]

_MAX_TEXT = 60


def _hours(value: Any) -> str:
    try:
        hours = float(value)
    except (TypeError, ValueError):
        return "?"
    if hours >= 48:
        return f"{hours / 24:.1f} 天"
    return f"{hours:.0f} 小时"


def _time(value: Any) -> str:
    text = str(value or "")
    return text[5:16].replace("T", " ") if len(text) >= 16 else text


def _when_where(scan: Any) -> str:
    """Time and place of a scan (its text is already in the action list's last-scan column)."""
    if not isinstance(scan, Mapping):
        return ""
    return " ".join(p for p in (_time(scan.get("time")), str(scan.get("place") or "")) if p)


def _scan(scan: Any) -> str:
    if not isinstance(scan, Mapping):
        return ""
    text = str(scan.get("text") or "")
    if len(text) > _MAX_TEXT:
        text = text[: _MAX_TEXT - 1] + "…"
    place = scan.get("place") or ""
    return " ".join(p for p in (_time(scan.get("time")), str(place), f"「{text}」") if p)


def _not_shipped(e: Mapping[str, Any]) -> str:
    return f"超过应发货时间 {_time(e.get('ship_by'))} 已 {_hours(e.get('hours_late'))}"


def _no_pickup(e: Mapping[str, Any]) -> str:
    return f"打单后未揽收，超过揽收时限 {_hours(e.get('hours_late'))}"


def _reported_lost(e: Mapping[str, Any]) -> str:
    return f"快递报丢失（{_when_where(e.get('lost_scan'))}）"


def _silent(e: Mapping[str, Any]) -> str:
    limit = (e.get("thresholds") or {}).get("lost_days")
    return f"{_hours(e.get('hours_since_last_scan'))}无扫描（阈值 {limit} 天）"


def _stalled(e: Mapping[str, Any]) -> str:
    thresholds = e.get("thresholds") or {}
    limit = next(iter(thresholds.values()), None)
    return f"{_hours(e.get('hours_since_last_scan'))}无新扫描（阈值 {limit} 小时）"


def _overdue(e: Mapping[str, Any]) -> str:
    text = f"超过应送达时间 {_time(e.get('deliver_by'))} 已 {_hours(e.get('hours_late'))}"
    window = e.get("transit_window") or {}
    if window.get("promotion"):
        text += f"（已含{window['promotion']}延长）"
    return text


def _wrong_region(e: Mapping[str, Any]) -> str:
    parts = []
    if e.get("uncovered_area"):
        parts.append(f"{e['uncovered_area']} 不在该快递派送范围")
    if e.get("delivery_scan"):
        parts.append(f"派送扫描在外地：{_scan(e['delivery_scan'])}")
    if e.get("outside_scan"):
        parts.append(f"进入目的省后又出省：{_scan(e['outside_scan'])}")
    if e.get("problem_scan"):
        parts.append(f"错分：{_scan(e['problem_scan'])}")
    return "；".join(parts) or "错分或超区"


def _weight(e: Mapping[str, Any]) -> str:
    return (
        f"快递称重 {e.get('courier_weight_kg')} kg，订单应重 {e.get('ordered_kg')} kg，"
        f"少 {e.get('missing_kg')} kg（容差 {e.get('tolerance_kg')} kg）"
    )


def _failed(e: Mapping[str, Any]) -> str:
    return (
        f"派送失败 {e.get('failed_attempts', 1)} 次（最近 {_when_where(e.get('latest_failure'))}）"
    )


def _returned(e: Mapping[str, Any]) -> str:
    scan = e.get("refused_scan") or e.get("return_scan")
    label = {"refused": "买家拒收", "returning": "退回中", "returned": "已退回"}.get(
        str(e.get("trigger")), "退回"
    )
    return f"{label}（{_when_where(scan)}）" if scan else label


def _problem(e: Mapping[str, Any]) -> str:
    kind = _PROBLEMS.get(str(e.get("problem") or e.get("trigger")), "问题件")
    return f"{kind}（{_when_where(e.get('problem_scan'))}）"


_PROBLEMS = {
    "damaged": "快递报破损",
    "held": "快件被扣留",
    "intercepted": "快件被拦截",
    "customs": "海关查验",
    "delayed": "快递报延误",
    "no_progress": "快递报无进展",
    "locker_overdue": "驿站/柜机超期未取",
    "exception": "快递异常件",
    "on_hold": "快件滞留",
}

_BY_TRIGGER: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "no_shipment": _not_shipped,
    "no_pickup_scan": _no_pickup,
    "provider_reported_lost": _reported_lost,
    "no_scan": _silent,
    "no_new_scan": _stalled,
    "not_delivered_in_time": _overdue,
    "courier_weight_below_order": _weight,
}
_BY_KIND: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "wrong_region": _wrong_region,
    "delivery_failed": _failed,
    "returned": _returned,
    "carrier_exception": _problem,
}


def summarize_evidence(kind: str, evidence: Any) -> str:
    """The facts that made the rule fire, in one masked line (never raises)."""
    if not isinstance(evidence, Mapping):
        return ""
    trigger = str(evidence.get("trigger") or "")
    summarize = _BY_TRIGGER.get(trigger) or _BY_KIND.get(kind)
    try:
        text = summarize(evidence) if summarize else trigger
    except (TypeError, ValueError, AttributeError, KeyError):
        text = trigger
    return mask_phones_in_text(text.strip())
