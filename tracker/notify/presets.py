"""Alert presets: the same alert as a readable card for WeCom, DingTalk, Feishu and Slack.

``standard`` sends the alert JSON itself, signed per Standard Webhooks. The chat presets
render a short Chinese card (title plus key facts) in each robot's message format and sign
the way each robot asks: DingTalk (timestamp + secret, HMAC-SHA256, in the query string),
Feishu (timestamp + secret as the HMAC key, in the body). Robots answer HTTP 200 with an
error code in the body; ``interpret`` turns those codes into retryable or permanent results.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote_plus

import httpx

from carriers.registry import courier_name
from tracker.notify.base import SendResult
from tracker.notify.httpsend import classify_status, excerpt

__all__ = [
    "EVENT_LABELS",
    "KIND_LABELS",
    "Preset",
    "PresetRequest",
    "alert_card",
    "dingtalk_sign",
    "feishu_sign",
    "interpret",
    "render",
]

Preset = Literal["standard", "wecom", "dingtalk", "feishu", "slack"]

KIND_LABELS = {
    "not_shipped": "超时未发货",
    "stalled": "物流停滞",
    "overdue": "超时未送达",
    "lost": "疑似丢件",
    "wrong_region": "错分/超区",
    "weight_mismatch": "重量不符（疑似少发）",
    "delivery_failed": "派送失败",
    "returned": "拒收/退回",
    "carrier_exception": "快递问题件",
}
EVENT_LABELS = {
    "ticket.opened": "新工单",
    "ticket.escalated": "工单升级",
    "ticket.resolved": "已解决",
    "ticket.burst": "区域性异常",
}
_SEVERITY_LABELS = {"low": "低", "medium": "中", "high": "高", "critical": "紧急"}
_BURST_LIST_LIMIT = 20

# Robot error codes that mean "slow down / try again later"; other non-zero codes are permanent.
_RETRYABLE_CODES = {
    "wecom": {-1, 45009, 45033},
    "dingtalk": {-1, 130101, 130102},
    "feishu": {9499, 11232, 11233},
}


@dataclass(frozen=True, slots=True)
class PresetRequest:
    """What to POST: the final URL (DingTalk signs in the query), body and headers."""

    url: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True, slots=True)
class Card:
    """A readable alert: a title, a colour hint and lines of ``label: value``."""

    title: str
    lines: list[tuple[str, str]]
    items: list[str]
    tone: Literal["red", "orange", "green"]


def _ticket_lines(data: dict[str, Any]) -> list[tuple[str, str]]:
    lines = [("订单", str(data.get("order_id") or "-"))]
    if data.get("severity"):
        lines.append(("级别", _SEVERITY_LABELS.get(data["severity"], str(data["severity"]))))
    if data.get("courier") or data.get("tracking_number"):
        courier = courier_name(data["courier"]) if data.get("courier") else ""
        lines.append(("快递", f"{courier} {data.get('tracking_number') or ''}".strip()))
    dest = data.get("destination") or {}
    if dest.get("province") or dest.get("city"):
        lines.append(("目的地", f"{dest.get('province') or ''} {dest.get('city') or ''}".strip()))
    buyer = data.get("buyer") or {}
    if buyer:  # the phone is masked before it is queued
        lines.append(("买家", f"{buyer.get('name') or ''} {buyer.get('phone') or ''}".strip()))
    if data.get("suggested_action"):
        lines.append(("建议处理", str(data["suggested_action"])))
    if data.get("resolution"):
        lines.append(("解决原因", str(data["resolution"])))
    if data.get("id") is not None:
        lines.append(("工单", f"#{data['id']} {data.get('opened_at') or ''}".strip()))
    return lines


def alert_card(payload: dict[str, Any]) -> Card:
    """The readable form of an alert payload (single ticket or a regional burst)."""
    event = str(payload.get("type", ""))
    data: dict[str, Any] = payload.get("data") or {}
    label = EVENT_LABELS.get(event, event)
    if event == "ticket.burst":
        region = data.get("region") or {}
        where = f"{region.get('province') or ''}{region.get('city') or ''}" or "同一地区"
        name = data.get("courier_name") or courier_name(str(data.get("courier", "")))
        kinds = "、".join(
            f"{KIND_LABELS.get(k, k)} {n}" for k, n in (data.get("kinds") or {}).items()
        )
        tickets: list[dict[str, Any]] = data.get("tickets") or []
        items = [
            f"{t.get('order_id')}（{KIND_LABELS.get(t.get('kind', ''), t.get('kind'))}，"
            f"{t.get('tracking_number') or '无运单'}）"
            for t in tickets[:_BURST_LIST_LIMIT]
        ]
        if len(tickets) > _BURST_LIST_LIMIT:
            items.append(f"…另有 {len(tickets) - _BURST_LIST_LIMIT} 单")
        lines = [
            ("快递", name),
            ("地区", where),
            ("单数", str(data.get("count", len(tickets)))),
            ("类型", kinds or "-"),
            ("时间", f"{data.get('first_opened_at', '')} ~ {data.get('last_opened_at', '')}"),
        ]
        return Card(f"物流异常 · {label}：{name} {where} {len(tickets)} 单", lines, items, "red")
    kind = KIND_LABELS.get(str(data.get("kind", "")), str(data.get("kind", "")))
    tone: Literal["red", "orange", "green"] = "orange"
    if event == "ticket.resolved":
        tone = "green"
    elif event == "ticket.escalated" or data.get("severity") in ("high", "critical"):
        tone = "red"
    return Card(f"物流异常 · {label}：{kind}", _ticket_lines(data), [], tone)


def _markdown(card: Card, *, bold: str = "**", bullet: str = "- ") -> str:
    rows = [f"{bullet}{bold}{k}{bold}：{v}" for k, v in card.lines]
    rows += [f"{bullet}{item}" for item in card.items]
    return "\n".join(rows)


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk's robot signature: base64 HMAC-SHA256 of "timestamp LF secret", keyed by it."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode("utf-8"), to_sign, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu's robot signature: base64 HMAC-SHA256 of nothing, keyed by "timestamp LF secret"."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode("ascii")


def _json(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def render(
    preset: Preset, payload: dict[str, Any], *, url: str, secret: str | None, now: datetime
) -> PresetRequest:
    """The request that delivers ``payload`` to a ``preset`` endpoint (unsigned for standard)."""
    headers = {"content-type": "application/json; charset=utf-8", "user-agent": "tracker-alerts"}
    if preset == "standard":
        return PresetRequest(url, _json(payload), headers)
    card = alert_card(payload)
    if preset == "wecom":
        text = f"**{card.title}**\n" + _markdown(card, bullet="> ")
        body: dict[str, Any] = {"msgtype": "markdown", "markdown": {"content": text}}
        return PresetRequest(url, _json(body), headers)
    if preset == "dingtalk":
        text = f"### {card.title}\n\n" + _markdown(card)
        body = {"msgtype": "markdown", "markdown": {"title": card.title, "text": text}}
        if secret:
            stamp = int(now.astimezone(UTC).timestamp() * 1000)
            sign = quote_plus(dingtalk_sign(secret, stamp))
            url = f"{url}{'&' if '?' in url else '?'}timestamp={stamp}&sign={sign}"
        return PresetRequest(url, _json(body), headers)
    if preset == "feishu":
        body = {
            "msg_type": "interactive",
            "card": {
                "config": {"wide_screen_mode": True},
                "header": {
                    "title": {"tag": "plain_text", "content": card.title},
                    "template": card.tone,
                },
                "elements": [
                    {"tag": "div", "text": {"tag": "lark_md", "content": _markdown(card)}}
                ],
            },
        }
        if secret:
            stamp = int(now.astimezone(UTC).timestamp())
            body = {"timestamp": str(stamp), "sign": feishu_sign(secret, stamp), **body}
        return PresetRequest(url, _json(body), headers)
    if preset == "slack":
        body = {
            "text": card.title,
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": card.title[:150]}},
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": _markdown(card, bold="*", bullet="• ")},
                },
            ],
        }
        return PresetRequest(url, _json(body), headers)
    raise ValueError(f"unknown preset {preset!r}")


def interpret(preset: Preset, response: httpx.Response, provider: str) -> SendResult:
    """Classify an endpoint's answer, reading the robot's error code from a 200 body."""
    result = classify_status(response, provider)
    if not result.ok or preset not in _RETRYABLE_CODES:
        return result
    try:
        answer = response.json()
    except ValueError:
        return result
    if not isinstance(answer, dict):
        return result
    code = answer.get("errcode", answer.get("code", answer.get("StatusCode", 0)))
    if code in (0, None):
        return result
    message = answer.get("errmsg") or answer.get("msg") or answer.get("StatusMessage") or ""
    retryable = code in _RETRYABLE_CODES[preset]
    return SendResult(
        False,
        provider,
        status_code=response.status_code,
        retryable=retryable,
        reason=f"{preset} error {code}: {message or excerpt(response)}",
        retry_after_s=60.0 if retryable else None,
    )
