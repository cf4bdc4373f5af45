"""Each alert preset renders the same alert in the shape its robot expects."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import httpx
import pytest

from tracker.notify.presets import alert_card, interpret, render

NOW = datetime(2026, 9, 14, 2, 0, tzinfo=UTC)
TICKET = {
    "id": 7,
    "order_id": "A1001",
    "courier": "yto",
    "tracking_number": "YT7000000001",
    "kind": "stalled",
    "severity": "high",
    "status": "open",
    "opened_at": "2026-09-14T10:00:00+08:00",
    "suggested_action": "联系快递核实停滞原因，并告知买家",
    "buyer": {"name": "张三", "phone": "138****8000"},
    "destination": {"province": "浙江省", "city": "杭州市"},
}
ALERT = {"type": "ticket.opened", "timestamp": "2026-09-14T10:00:00+08:00", "data": TICKET}


def _body(preset: str, secret: str | None = None) -> dict:
    request = render(preset, ALERT, url="https://hooks.example.com/x", secret=secret, now=NOW)  # type: ignore[arg-type]
    assert request.headers["content-type"].startswith("application/json")
    return json.loads(request.body)


def test_standard_preset_sends_the_alert_json_itself() -> None:
    """The standard preset's body is the contract payload, unchanged."""
    assert _body("standard") == ALERT


def test_card_text_is_readable_chinese_with_masked_phone() -> None:
    """The card names the event, kind, order, courier and next step; the phone stays masked."""
    card = alert_card(ALERT)
    assert card.title == "物流异常 · 新工单：物流停滞"
    text = dict(card.lines)
    assert text["订单"] == "A1001" and text["快递"] == "圆通速递 YT7000000001"
    assert text["买家"] == "张三 138****8000" and text["目的地"] == "浙江省 杭州市"
    assert card.tone == "red"


def test_wecom_preset_is_a_markdown_message() -> None:
    """WeCom group robot: msgtype markdown with content."""
    body = _body("wecom")
    assert body["msgtype"] == "markdown"
    assert "**物流异常 · 新工单：物流停滞**" in body["markdown"]["content"]
    assert "YT7000000001" in body["markdown"]["content"]


def test_dingtalk_preset_is_markdown_with_title_and_text() -> None:
    """DingTalk robot: msgtype markdown with title and text."""
    body = _body("dingtalk", secret="SECabc")
    assert body["msgtype"] == "markdown"
    assert body["markdown"]["title"] == "物流异常 · 新工单：物流停滞"
    assert body["markdown"]["text"].startswith("### 物流异常")


def test_feishu_preset_is_an_interactive_card() -> None:
    """Feishu robot: msg_type interactive with header title and lark_md elements."""
    body = _body("feishu")
    assert body["msg_type"] == "interactive"
    assert "sign" not in body  # unsigned without a secret
    card = body["card"]
    assert card["header"]["title"] == {
        "tag": "plain_text",
        "content": "物流异常 · 新工单：物流停滞",
    }
    assert card["header"]["template"] == "red"
    assert card["elements"][0]["text"]["tag"] == "lark_md"


def test_slack_preset_has_fallback_text_and_blocks() -> None:
    """Slack incoming webhook: text fallback plus header and section blocks."""
    body = _body("slack")
    assert body["text"] == "物流异常 · 新工单：物流停滞"
    assert [b["type"] for b in body["blocks"]] == ["header", "section"]
    assert "*订单*：A1001" in body["blocks"][1]["text"]["text"]


def test_burst_card_lists_every_ticket() -> None:
    """A regional burst names courier, region and count and lists the orders."""
    burst = {
        "type": "ticket.burst",
        "timestamp": "2026-09-14T10:05:00+08:00",
        "data": {
            "courier": "yto",
            "courier_name": "圆通速递",
            "region": {"province": "浙江省"},
            "count": 3,
            "kinds": {"stalled": 3},
            "first_opened_at": "2026-09-14T10:00:00+08:00",
            "last_opened_at": "2026-09-14T10:02:00+08:00",
            "tickets": [{**TICKET, "order_id": f"A10{i}"} for i in range(3)],
        },
    }
    card = alert_card(burst)
    assert card.title == "物流异常 · 区域性异常：圆通速递 浙江省 3 单"
    assert [i.split("（")[0] for i in card.items] == ["A100", "A101", "A102"]
    assert (
        "A101"
        in json.loads(render("slack", burst, url="u", secret=None, now=NOW).body)["blocks"][1][
            "text"
        ]["text"]
    )


def test_resolved_alert_is_green_and_shows_the_resolution() -> None:
    """ticket.resolved renders green with the resolution."""
    card = alert_card({"type": "ticket.resolved", "data": {**TICKET, "resolution": "已签收"}})
    assert card.tone == "green" and dict(card.lines)["解决原因"] == "已签收"


@pytest.mark.parametrize(
    ("preset", "answer", "ok", "retryable"),
    [
        ("wecom", {"errcode": 0, "errmsg": "ok"}, True, False),
        ("wecom", {"errcode": 45009, "errmsg": "api freq out of limit"}, False, True),
        ("wecom", {"errcode": 93000, "errmsg": "invalid webhook url"}, False, False),
        ("dingtalk", {"errcode": 130101, "errmsg": "send too fast"}, False, True),
        ("dingtalk", {"errcode": 310000, "errmsg": "sign not match"}, False, False),
        ("feishu", {"code": 0, "msg": "success"}, True, False),
        ("feishu", {"StatusCode": 0, "StatusMessage": "success"}, True, False),
        ("feishu", {"code": 19021, "msg": "sign match fail"}, False, False),
        ("feishu", {"code": 9499, "msg": "Too Many Request"}, False, True),
    ],
)
def test_robot_error_codes_in_a_200_are_failures(
    preset: str, answer: dict, ok: bool, retryable: bool
) -> None:
    """A robot's non-zero code in an HTTP 200 body is a failure, retryable only if throttled."""
    result = interpret(preset, httpx.Response(200, json=answer), "ops")  # type: ignore[arg-type]
    assert (result.ok, result.retryable) == (ok, retryable)
    if not ok:
        assert str(answer.get("errcode", answer.get("code"))) in (result.reason or "")
