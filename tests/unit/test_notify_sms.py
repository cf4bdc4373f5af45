"""SMS and chat providers: request shape, idempotency key, and error classification."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import httpx
import pytest

from tracker.errors import ConfigError
from tracker.notify.base import OutgoingNotice
from tracker.notify.factory import build_channel
from tracker.notify.httpsend import HttpTarget
from tracker.notify.sms_aliyun import AliyunSms, AliyunSmsOptions, rpc_signature
from tracker.notify.sms_http import HttpGatewayChannel, HttpGatewayOptions
from tracker.notify.sms_tencent import TencentSms, TencentSmsOptions
from tracker.settings import ChannelConfig

NOW = datetime(2026, 9, 14, 2, 0, tzinfo=UTC)
NOTICE = OutgoingNotice(
    notice_id=12,
    order_id="A1001",
    channel="sms",
    recipient="13800138000",
    body="【测试店】张三您好，您的订单A1001（圆通速递 YT7000000001）在运输途中已超过48小时没更新。",
    idempotency_key="notice-3-stalled",
    variables={
        "order_id": "A1001",
        "courier": "圆通速递",
        "tracking_number": "YT7000000001",
        "buyer_name": "张三",
        "shop": "测试店",
        "kind": "stalled",
        "content": "张三您好，您的订单A1001（圆通速递 YT7000000001）超过48小时没有更新。",
        "text": "【测试店】张三您好…",
    },
)


def target(handler) -> HttpTarget:
    """A target whose requests go to ``handler`` (public DNS answer, no network)."""

    async def resolve(host: str, port: int) -> list[str]:
        return ["93.184.216.34"]

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return HttpTarget(resolver=resolve, client=client)


def aliyun(handler, **extra) -> AliyunSms:
    """An Aliyun channel with test credentials."""
    options = AliyunSmsOptions(
        provider="aliyun",
        access_key_id="testId",
        access_key_secret="testSecret",
        sign_name="测试店",
        template_code="SMS_1",
        template_params={"order": "order_id", "content": "content"},
        **extra,
    )
    return AliyunSms(options, target(handler), clock=lambda: NOW, nonce=lambda: "nonce-1")


async def test_aliyun_posts_a_correctly_signed_sendsms() -> None:
    """The form body carries the notice, OutId = idempotency key, and a valid signature."""
    seen: list[dict[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(parse_qsl(request.content.decode())))
        return httpx.Response(200, json={"Code": "OK", "BizId": "900619746936498440^0"})

    result = await aliyun(handler).send(NOTICE)
    assert result.ok and result.message_id == "900619746936498440^0"
    (params,) = seen
    assert params["PhoneNumbers"] == "13800138000" and params["OutId"] == "notice-3-stalled"
    assert params["TemplateCode"] == "SMS_1" and params["SignName"] == "测试店"
    assert json.loads(params["TemplateParam"]) == {
        "order": "A1001",
        "content": NOTICE.variables["content"],
    }
    assert params["Timestamp"] == "2026-09-14T02:00:00Z"
    assert params["Signature"] == rpc_signature(params, "testSecret", "POST")


@pytest.mark.parametrize(
    ("code", "status", "retryable"),
    [
        ("isv.BUSINESS_LIMIT_CONTROL", 200, True),
        ("isv.MOBILE_NUMBER_ILLEGAL", 200, False),
        ("isv.SMS_TEMPLATE_ILLEGAL", 200, False),
        ("isv.AMOUNT_NOT_ENOUGH", 200, True),
        ("SignatureDoesNotMatch", 400, False),
        ("Throttling.User", 400, True),
        ("isp.SOMETHING_NEW", 500, True),
        ("isv.SOMETHING_NEW", 400, False),
    ],
)
async def test_aliyun_error_codes_map_to_retryable_or_permanent(
    code: str, status: int, retryable: bool
) -> None:
    """Rate limits and platform errors retry; bad numbers, templates and keys do not."""
    result = await aliyun(
        lambda r: httpx.Response(status, json={"Code": code, "Message": "手机号13800138000有误"})
    ).send(NOTICE)
    assert not result.ok and result.retryable is retryable
    assert code in (result.reason or "") and "13800138000" not in (result.reason or "")
    if code == "isv.BUSINESS_LIMIT_CONTROL":
        assert result.retry_after_s == 60.0


async def test_aliyun_per_kind_template_and_missing_variable() -> None:
    """template_codes picks a kind's template; a mapping to an unknown variable is permanent."""
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(dict(parse_qsl(request.content.decode()))["TemplateCode"])
        return httpx.Response(200, json={"Code": "OK", "BizId": "1"})

    assert (await aliyun(handler, template_codes={"stalled": "SMS_9"}).send(NOTICE)).ok
    assert seen == ["SMS_9"]
    bad = aliyun(handler)
    bad.options = bad.options.model_copy(update={"template_params": {"x": "nope"}})
    result = await bad.send(NOTICE)
    assert not result.ok and not result.retryable and "nope" in (result.reason or "")


async def test_aliyun_network_trouble_is_retryable() -> None:
    """A connection error is retried."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    result = await aliyun(handler).send(NOTICE)
    assert not result.ok and result.retryable and "ConnectError" in (result.reason or "")


def tencent(handler) -> TencentSms:
    """A Tencent channel with test credentials."""
    options = TencentSmsOptions(
        provider="tencent",
        secret_id="AKIDtest",
        secret_key="key",
        sdk_app_id="1400000000",
        sign_name="测试店",
        template_id="100",
        template_params=["order_id", "tracking_number"],
    )
    return TencentSms(options, target(handler), clock=lambda: NOW)


async def test_tencent_posts_sendsms_with_tc3_headers() -> None:
    """E.164 number, template params in order, SessionContext = key, TC3 Authorization."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        status = {"SerialNo": "5000:1045710669157053657849499619", "Code": "Ok", "Message": "ok"}
        return httpx.Response(200, json={"Response": {"SendStatusSet": [status]}})

    result = await tencent(handler).send(NOTICE)
    assert result.ok and result.message_id == "5000:1045710669157053657849499619"
    (request,) = seen
    body = json.loads(request.content)
    assert body["PhoneNumberSet"] == ["+8613800138000"]
    assert body["TemplateParamSet"] == ["A1001", "YT7000000001"]
    assert body["SessionContext"] == "notice-3-stalled" and body["SmsSdkAppId"] == "1400000000"
    assert request.headers["x-tc-action"] == "SendSms"
    assert request.headers["x-tc-timestamp"] == str(int(NOW.timestamp()))
    assert request.headers["authorization"].startswith(
        "TC3-HMAC-SHA256 Credential=AKIDtest/2026-09-14/sms/tc3_request, "
        "SignedHeaders=content-type;host, Signature="
    )
    assert request.headers["host"] == "sms.tencentcloudapi.com"


@pytest.mark.parametrize(
    ("answer", "retryable"),
    [
        ({"SendStatusSet": [{"Code": "LimitExceeded.PhoneNumberThirtySecondLimit"}]}, True),
        ({"SendStatusSet": [{"Code": "InvalidParameterValue.IncorrectPhoneNumber"}]}, False),
        ({"Error": {"Code": "AuthFailure.SignatureFailure", "Message": "bad"}}, False),
        ({"Error": {"Code": "RequestLimitExceeded", "Message": "slow down"}}, True),
        ({"Error": {"Code": "InternalError.Unknown", "Message": "oops"}}, True),
    ],
)
async def test_tencent_errors_map_to_retryable_or_permanent(answer: dict, retryable: bool) -> None:
    """Frequency limits and internal errors retry; bad numbers and auth failures do not."""
    result = await tencent(lambda r: httpx.Response(200, json={"Response": answer})).send(NOTICE)
    assert not result.ok and result.retryable is retryable


async def test_http_gateway_sends_idempotency_key_and_default_body() -> None:
    """Default body {phone, text, order_id, notice_id}; Idempotency-Key = notice key."""
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"data": {"id": "gw-77"}})

    options = HttpGatewayOptions(
        provider="http",
        url="https://sms.example.com/send",
        headers={"Authorization": "Bearer t"},
        message_id_field="data.id",
    )
    result = await HttpGatewayChannel("http", options, target(handler)).send(NOTICE)
    assert result.ok and result.message_id == "gw-77"
    (request,) = seen
    assert request.headers["idempotency-key"] == "notice-3-stalled"
    assert request.headers["authorization"] == "Bearer t"
    assert json.loads(request.content) == {
        "phone": "13800138000",
        "text": NOTICE.body,
        "order_id": "A1001",
        "notice_id": 12,
    }


async def test_http_gateway_body_template_and_status_classes() -> None:
    """A body template renders notice variables; 429 retries (Retry-After), 400 does not."""
    answers = iter([httpx.Response(429, headers={"retry-after": "30"}), httpx.Response(400)])
    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return next(answers)

    options = HttpGatewayOptions(
        provider="http",
        url="https://sms.example.com/send",
        body={"to": ["{{ phone }}"], "msg": "{{ text }}", "ref": "{{ idempotency_key }}"},
    )
    channel = HttpGatewayChannel("http", options, target(handler))
    first = await channel.send(NOTICE)
    assert not first.ok and first.retryable and first.retry_after_s == 30.0
    second = await channel.send(NOTICE)
    assert not second.ok and not second.retryable
    assert bodies[0] == {"to": ["13800138000"], "msg": NOTICE.body, "ref": "notice-3-stalled"}


def test_bad_provider_options_name_the_key() -> None:
    """Missing or unknown keys and unknown body variables are config errors naming the key."""
    with pytest.raises(ConfigError, match=r"notify\.sms\.sign_name: required by provider 'aliyun'"):
        build_channel(
            "sms",
            ChannelConfig(
                provider="aliyun", access_key_id="a", access_key_secret="b", template_code="c"
            ),
        )
    with pytest.raises(ConfigError, match=r"notify\.sms\.tempalte_code: unknown key"):
        build_channel(
            "sms",
            ChannelConfig(
                provider="aliyun",
                access_key_id="a",
                access_key_secret="b",
                sign_name="s",
                tempalte_code="x",
            ),
        )
    with pytest.raises(ConfigError, match=r"notify\.sms\.body\.msg: unknown variable\(s\) txt"):
        build_channel(
            "sms", ChannelConfig(provider="http", url="https://x", body={"msg": "{{ txt }}"})
        )
    with pytest.raises(ConfigError, match=r"notify\.chat\.provider: unknown provider 'aliyun'"):
        build_channel("chat", ChannelConfig(provider="aliyun"))


async def test_chat_webhook_signs_when_a_secret_is_set() -> None:
    """The chat webhook sends chat_id and Standard Webhooks headers that verify."""
    from standardwebhooks.webhooks import Webhook

    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    channel = build_channel(
        "chat", ChannelConfig(provider="webhook", url="https://im.example.com/x", secret=secret)
    )
    channel.target = target(handler)  # type: ignore[attr-defined]
    chat_notice = OutgoingNotice(12, "A1001", "chat", "wx-openid-1", "你好", "notice-3-stalled")
    assert (await channel.send(chat_notice)).ok
    (request,) = seen
    assert json.loads(request.content)["chat_id"] == "wx-openid-1"
    verified = Webhook(secret).verify(request.content.decode(), dict(request.headers))
    assert verified["text"] == "你好"
