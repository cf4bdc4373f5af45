"""Aliyun SMS (dysms) ``SendSms`` over its signed RPC API (signature v1, HMAC-SHA1), no SDK.

Aliyun sends only pre-approved templates: ``template_code`` (or one per kind in
``template_codes``) names the approved template and ``template_params`` maps each of its
``${variables}`` to a notice variable (``order_id``, ``courier``, ``tracking_number``,
``buyer_name``, ``shop``, ``kind``, ``content`` = the rendered text without the 【shop】 sign).
The notice's idempotency key travels as ``OutId`` so delivery receipts can be matched.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from urllib.parse import quote

import httpx
from pydantic import Field

from tracker.notify.base import OutgoingNotice, SendResult
from tracker.notify.httpsend import HttpTarget, classify_status, clip, excerpt, post
from tracker.notify.provider_config import ProviderOptions
from tracker.notify.ratelimit import RateLimiter

__all__ = [
    "AliyunSms",
    "AliyunSmsOptions",
    "classify_aliyun_code",
    "percent_encode",
    "rpc_signature",
]

_API_VERSION = "2017-05-25"

# Codes that clear by themselves (rate limits, platform trouble, balance topped up later).
_RETRYABLE = {
    "isv.BUSINESS_LIMIT_CONTROL": 60.0,  # per-number minute/hour/day flow control
    "isv.DAY_LIMIT_CONTROL": 3600.0,
    "isv.OUT_OF_SERVICE": 600.0,  # account suspended for arrears
    "isv.AMOUNT_NOT_ENOUGH": 600.0,
    "isp.SYSTEM_ERROR": 5.0,
    "isp.GATEWAY_ERROR": 5.0,
    "Throttling": 5.0,
    "Throttling.User": 5.0,
    "Throttling.Api": 5.0,
    "ServiceUnavailable": 5.0,
    "InternalError": 5.0,
    "SignatureNonceUsed": 0.0,  # a fresh nonce on the next attempt
    "InvalidTimeStamp.Expired": 60.0,  # clock skew; may clear once NTP catches up
}
# Codes that will never succeed for this notice: bad number, template, signature or account.
_PERMANENT = frozenset(
    {
        "isv.MOBILE_NUMBER_ILLEGAL",
        "isv.MOBILE_COUNT_OVER_LIMIT",
        "isv.TEMPLATE_MISSING_PARAMETERS",
        "isv.TEMPLATE_PARAMS_ILLEGAL",
        "isv.SMS_TEMPLATE_ILLEGAL",
        "isv.SMS_SIGNATURE_ILLEGAL",
        "isv.SMS_SIGN_ILLEGAL",
        "isv.INVALID_PARAMETERS",
        "isv.INVALID_JSON_PARAM",
        "isv.BLACK_KEY_CONTROL_LIMIT",
        "isv.PARAM_LENGTH_LIMIT",
        "isv.PARAM_NOT_SUPPORT_URL",
        "isv.ACCOUNT_NOT_EXISTS",
        "isv.ACCOUNT_ABNORMAL",
        "isv.DENY_IP_RANGE",
        "isv.SMS_CONTENT_ILLEGAL",
        "isv.EXTEND_CODE_ERROR",
        "isv.DOMESTIC_NUMBER_NOT_SUPPORTED",
        "isp.RAM_PERMISSION_DENY",
        "InvalidAccessKeyId.NotFound",
        "InvalidAccessKeyId.Inactive",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingParameter",
    }
)


class AliyunSmsOptions(ProviderOptions):
    """``[notify.sms]`` with ``provider = "aliyun"``."""

    access_key_id: str
    access_key_secret: str
    sign_name: str
    template_code: str | None = None
    template_codes: dict[str, str] = Field(default_factory=dict)
    template_params: dict[str, str] = Field(default_factory=lambda: {"content": "content"})
    endpoint: str = "https://dysmsapi.aliyuncs.com/"
    region_id: str = "cn-hangzhou"


def percent_encode(value: str) -> str:
    """Aliyun POP encoding: RFC 3986, UTF-8, space as %20, ``*`` as %2A, ``~`` kept."""
    return quote(value.encode("utf-8"), safe="-_.~")


def rpc_signature(params: Mapping[str, str], secret: str, method: str = "POST") -> str:
    """Signature v1: base64 HMAC-SHA1 of ``METHOD&%2F&encoded(sorted query)``, key ``secret&``."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}"
        for k, v in sorted(params.items())
        if k != "Signature"
    )
    to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), to_sign.encode("utf-8"), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def classify_aliyun_code(code: str, message: str, provider: str = "aliyun") -> SendResult:
    """Map an Aliyun ``Code`` to permanent or retryable (unknown ``isp.*`` codes retry)."""
    reason = f"aliyun {code}: {message}".rstrip(": ")
    if code in _RETRYABLE:
        return SendResult(
            False, provider, retryable=True, reason=reason, retry_after_s=_RETRYABLE[code] or None
        )
    retryable = code not in _PERMANENT and code.startswith(("isp.", "Throttling"))
    return SendResult(False, provider, retryable=retryable, reason=reason)


class AliyunSms:
    """Sends buyer notices through Aliyun SMS ``SendSms``."""

    def __init__(
        self,
        options: AliyunSmsOptions,
        target: HttpTarget | None = None,
        clock: Callable[[], datetime] | None = None,
        nonce: Callable[[], str] | None = None,
    ) -> None:
        if not options.template_code and not options.template_codes:
            raise ValueError("template_code: required (or template_codes per kind)")
        self.name = "aliyun"
        self.options = options
        self.target = target or HttpTarget(
            allow_private_networks=options.allow_private_networks, timeout_s=options.timeout_s
        )
        self._clock = clock or (lambda: datetime.now(UTC))
        self._nonce = nonce or (lambda: str(uuid.uuid4()))
        self._limiter = RateLimiter(options.requests_per_s or 20.0)

    def request_params(self, notice: OutgoingNotice) -> dict[str, str] | SendResult:
        """The signed ``SendSms`` parameters for ``notice`` (or why it cannot be sent)."""
        opts = self.options
        kind = notice.variables.get("kind", "")
        template = opts.template_codes.get(kind) or opts.template_code
        if not template:
            return SendResult(False, self.name, reason=f"no Aliyun template_code for {kind!r}")
        try:
            values = {name: notice.variables[var] for name, var in opts.template_params.items()}
        except KeyError as exc:
            return SendResult(False, self.name, reason=f"template_params: no variable {exc}")
        params = {
            "AccessKeyId": opts.access_key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "OutId": notice.idempotency_key,
            "PhoneNumbers": notice.recipient,
            "RegionId": opts.region_id,
            "SignName": opts.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": self._nonce(),
            "SignatureVersion": "1.0",
            "TemplateCode": template,
            "TemplateParam": json.dumps(values, ensure_ascii=False, separators=(",", ":")),
            "Timestamp": self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": _API_VERSION,
        }
        params["Signature"] = rpc_signature(params, opts.access_key_secret)
        return params

    async def send(self, notice: OutgoingNotice) -> SendResult:
        """Send one notice; ``Code == "OK"`` is accepted with ``BizId`` as the message id."""
        params = self.request_params(notice)
        if isinstance(params, SendResult):
            return params
        body = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in params.items())
        headers = {
            "content-type": "application/x-www-form-urlencoded",
            "accept": "application/json",
        }
        await self._limiter.wait()
        answer = await post(self.target, self.name, self.options.endpoint, body.encode(), headers)
        if isinstance(answer, SendResult):
            return answer
        return self.interpret(answer)

    def interpret(self, response: httpx.Response) -> SendResult:
        """Read ``Code``/``Message``/``BizId`` from the JSON answer (errors come as 4xx too)."""
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict) or "Code" not in data:
            result = classify_status(response, self.name)
            if result.ok:  # 2xx without a Code: not an answer we understand
                return SendResult(
                    False,
                    self.name,
                    retryable=True,
                    status_code=response.status_code,
                    reason=f"unexpected answer: {excerpt(response)}",
                )
            return result
        code = str(data["Code"])
        if code == "OK":
            return SendResult(
                True, self.name, message_id=data.get("BizId"), status_code=response.status_code
            )
        result = classify_aliyun_code(code, clip(str(data.get("Message", ""))), self.name)
        return SendResult(
            result.ok,
            result.provider,
            retryable=result.retryable,
            reason=result.reason,
            status_code=response.status_code,
            retry_after_s=result.retry_after_s,
        )
