"""Signatures checked against the providers' published worked examples."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from standardwebhooks.webhooks import Webhook

from tracker.notify.presets import dingtalk_sign, feishu_sign, render
from tracker.notify.sms_aliyun import percent_encode, rpc_signature
from tracker.notify.sms_tencent import tc3_authorization, tc3_signature
from tracker.notify.webhook import sign_headers, standard_secret_problem

# standard-webhooks/standard-webhooks, libraries/python/tests/test_webhooks.py::test_sign_function
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TIMESTAMP = 1614265330
SW_PAYLOAD = '{"test": 2432232314}'
SW_EXPECTED = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_standard_webhooks_signature_matches_published_vector() -> None:
    """Our headers carry exactly the signature of the Standard Webhooks test vector."""
    at = datetime.fromtimestamp(SW_TIMESTAMP, UTC)
    headers = sign_headers(SW_SECRET, SW_MSG_ID, at, SW_PAYLOAD)
    assert headers == {
        "webhook-id": SW_MSG_ID,
        "webhook-timestamp": str(SW_TIMESTAMP),
        "webhook-signature": SW_EXPECTED,
    }


def test_standard_webhooks_signature_ignores_the_timezone_of_the_clock() -> None:
    """A Shanghai-time clock signs the same instant (the library would misread local times)."""
    from zoneinfo import ZoneInfo

    at = datetime.fromtimestamp(SW_TIMESTAMP, UTC).astimezone(ZoneInfo("Asia/Shanghai"))
    assert sign_headers(SW_SECRET, SW_MSG_ID, at, SW_PAYLOAD)["webhook-signature"] == SW_EXPECTED


def test_signed_headers_verify_with_the_reference_library() -> None:
    """A receiver using the standardwebhooks library accepts what we send now."""
    body = json.dumps({"type": "ticket.opened", "data": {"id": 1}}, ensure_ascii=False)
    headers = sign_headers(SW_SECRET, "alert-1-ticket.opened-0-ops", datetime.now(UTC), body)
    assert Webhook(SW_SECRET).verify(body, headers) == {"type": "ticket.opened", "data": {"id": 1}}


def test_bad_standard_webhooks_secret_is_reported() -> None:
    """A secret that is not base64 is named as such; a good one passes."""
    assert standard_secret_problem("whsec_not base64!!") is not None
    assert standard_secret_problem(SW_SECRET) is None


# Aliyun SMS documentation, "签名机制" worked example for SendSms (AccessKeySecret testSecret).
ALIYUN_SMS_PARAMS = {
    "AccessKeyId": "testId",
    "Action": "SendSms",
    "Format": "XML",
    "OutId": "123",
    "PhoneNumbers": "15300000001",
    "RegionId": "cn-hangzhou",
    "SignName": "阿里云短信测试专用",
    "SignatureMethod": "HMAC-SHA1",
    "SignatureNonce": "45e25e9b-0a6f-4070-8c85-2956eda1b466",
    "SignatureVersion": "1.0",
    "TemplateCode": "SMS_71390007",
    "TemplateParam": '{"customer":"test"}',
    "Timestamp": "2017-07-12T02:42:19Z",
    "Version": "2017-05-25",
}


def test_aliyun_sendsms_signature_matches_documented_example() -> None:
    """The GET example from Aliyun's SMS docs signs to zJDF+Lrzhj/ThnlvIToysFRq6t4=."""
    assert rpc_signature(ALIYUN_SMS_PARAMS, "testSecret", "GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_aliyun_rpc_signature_matches_describe_regions_example() -> None:
    """The RPC signature doc's DescribeRegions example signs to OLeaidS1JvxuMvnyHOwuJ+uX5qY=."""
    params = {
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "Timestamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }
    assert rpc_signature(params, "testsecret", "GET") == "OLeaidS1JvxuMvnyHOwuJ+uX5qY="


def test_aliyun_signature_skips_an_existing_signature_and_post_differs() -> None:
    """A stale Signature parameter is not signed; the method is part of what is signed."""
    stale = {**ALIYUN_SMS_PARAMS, "Signature": "old"}
    assert rpc_signature(stale, "testSecret", "GET") == "zJDF+Lrzhj/ThnlvIToysFRq6t4="
    assert rpc_signature(ALIYUN_SMS_PARAMS, "testSecret", "POST") != "zJDF+Lrzhj/ThnlvIToysFRq6t4="


def test_aliyun_percent_encoding_follows_pop_rules() -> None:
    """Space is %20, * is %2A, ~ is kept, Chinese is UTF-8 percent-encoded."""
    assert percent_encode("a b*~") == "a%20b%2A~"
    assert percent_encode("/=&+") == "%2F%3D%26%2B"
    assert percent_encode("派") == "%E6%B4%BE"


# Tencent Cloud API 3.0 "Signature v3" worked example (CVM DescribeInstances, 2019-02-25).
TC3_KEY = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
TC3_PAYLOAD = (
    b'{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
)
TC3_SIGNATURE = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"


def test_tencent_tc3_signature_matches_documented_string_to_sign() -> None:
    """The documented StringToSign and key derive the documented signature."""
    string_to_sign = (
        "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
        "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
    )
    assert tc3_signature(TC3_KEY, "2019-02-25", "cvm", string_to_sign) == TC3_SIGNATURE


def test_tencent_tc3_authorization_matches_documented_request() -> None:
    """The whole request (payload, host, timestamp) yields the documented Authorization."""
    assert hashlib.sha256(TC3_PAYLOAD).hexdigest() == (
        "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
    )
    auth = tc3_authorization(
        secret_id="AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
        secret_key=TC3_KEY,
        service="cvm",
        host="cvm.tencentcloudapi.com",
        payload=TC3_PAYLOAD,
        timestamp=1551113065,
    )
    assert auth == (
        "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/"
        f"tc3_request, SignedHeaders=content-type;host, Signature={TC3_SIGNATURE}"
    )


def test_dingtalk_signature_is_hmac_of_timestamp_and_secret_in_the_query() -> None:
    """DingTalk: sign = urlencode(base64(HMAC-SHA256(secret, "ts LF secret"))), ts in ms."""
    secret = "SEC0123456789abcdef"
    now = datetime.fromtimestamp(1700000000.123, UTC)
    expected = base64.b64encode(
        hmac.new(secret.encode(), f"1700000000123\n{secret}".encode(), hashlib.sha256).digest()
    ).decode()
    assert dingtalk_sign(secret, 1700000000123) == expected
    request = render(
        "dingtalk",
        {"type": "ticket.opened", "data": {}},
        url="https://oapi.dingtalk.com/robot/send?access_token=abc",
        secret=secret,
        now=now,
    )
    query = parse_qs(urlsplit(request.url).query)
    assert query == {"access_token": ["abc"], "timestamp": ["1700000000123"], "sign": [expected]}


def test_feishu_signature_uses_timestamp_and_secret_as_the_key() -> None:
    """Feishu: sign = base64(HMAC-SHA256(key="ts LF secret", msg="")), ts in seconds, in body."""
    secret = "feishu-secret"
    now = datetime.fromtimestamp(1700000000, UTC)
    expected = base64.b64encode(
        hmac.new(f"1700000000\n{secret}".encode(), b"", hashlib.sha256).digest()
    ).decode()
    assert feishu_sign(secret, 1700000000) == expected
    request = render(
        "feishu", {"type": "ticket.opened", "data": {}}, url="https://x", secret=secret, now=now
    )
    body = json.loads(request.body)
    assert body["timestamp"] == "1700000000" and body["sign"] == expected
