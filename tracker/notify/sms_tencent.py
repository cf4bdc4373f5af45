"""Tencent Cloud SMS ``SendSms`` (API 2021-01-11) signed with TC3-HMAC-SHA256, no SDK.

Like Aliyun it sends approved templates only: ``template_id`` (or ``template_ids`` per kind)
and ``template_params``, the notice variables in the template's ``{1}``, ``{2}``... order.
The notice's idempotency key travels as ``SessionContext``, echoed in receipts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from pydantic import Field

from tracker.notify.base import OutgoingNotice, SendResult
from tracker.notify.httpsend import HttpTarget, classify_status, clip, excerpt, post
from tracker.notify.provider_config import ProviderOptions
from tracker.notify.ratelimit import RateLimiter

__all__ = [
    "TencentSms",
    "TencentSmsOptions",
    "classify_tencent_code",
    "tc3_authorization",
    "tc3_signature",
]

_SERVICE = "sms"
_VERSION = "2021-01-11"
_CONTENT_TYPE = "application/json; charset=utf-8"

_RETRYABLE = {
    "LimitExceeded.PhoneNumberThirtySecondLimit": 30.0,
    "LimitExceeded.PhoneNumberOneHourLimit": 3600.0,
    "LimitExceeded.PhoneNumberDailyLimit": 6 * 3600.0,
    "LimitExceeded.PhoneNumberSameContentDailyLimit": 6 * 3600.0,
    "LimitExceeded.DeliveryFrequencyLimit": 60.0,
    "LimitExceeded.AppDailyLimit": 3600.0,
    "LimitExceeded.AppGlobalDailyLimit": 3600.0,
    "LimitExceeded.AppMainlandChinaDailyLimit": 3600.0,
    "RequestLimitExceeded": 5.0,
    "FailedOperation.InsufficientBalanceInSmsPackage": 600.0,
    "InternalError.Timeout": 5.0,
    "InternalError.SendAndRecvFail": 5.0,
    "InternalError.RequestTimeException": 60.0,  # clock skew
}
_PERMANENT = frozenset(
    {
        "InvalidParameterValue.IncorrectPhoneNumber",
        "FailedOperation.PhoneNumberInBlacklist",
        "FailedOperation.PhoneNumberOnBlacklist",
        "FailedOperation.TemplateIncorrectOrUnapproved",
        "FailedOperation.SignatureIncorrectOrUnapproved",
        "FailedOperation.ContainSensitiveWord",
        "InvalidParameterValue.TemplateParameterFormatError",
        "InvalidParameterValue.TemplateParameterLengthLimit",
        "InvalidParameterValue.ProhibitedUseUrlInTemplateParameter",
        "UnsupportedOperation.ContainDomesticAndInternationalPhoneNumber",
    }
)


class TencentSmsOptions(ProviderOptions):
    """``[notify.sms]`` with ``provider = "tencent"``."""

    secret_id: str
    secret_key: str
    sdk_app_id: str
    sign_name: str
    template_id: str | None = None
    template_ids: dict[str, str] = Field(default_factory=dict)
    template_params: list[str] = Field(default_factory=lambda: ["content"])
    region: str = "ap-guangzhou"
    endpoint: str = "https://sms.tencentcloudapi.com"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def tc3_signature(secret_key: str, date: str, service: str, string_to_sign: str) -> str:
    """Hex HMAC-SHA256 of ``string_to_sign`` with the key derived from date and service."""
    secret_date = _hmac(f"TC3{secret_key}".encode(), date)
    secret_service = _hmac(secret_date, service)
    secret_signing = _hmac(secret_service, "tc3_request")
    return hmac.new(secret_signing, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def tc3_authorization(
    *,
    secret_id: str,
    secret_key: str,
    service: str,
    host: str,
    payload: bytes,
    timestamp: int,
    content_type: str = _CONTENT_TYPE,
) -> str:
    """The ``Authorization`` header of a POST with signed headers ``content-type;host``."""
    canonical_request = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{content_type}\nhost:{host}\n",
            "content-type;host",
            hashlib.sha256(payload).hexdigest(),
        ]
    )
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{service}/tc3_request"
    string_to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            str(timestamp),
            scope,
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )
    signature = tc3_signature(secret_key, date, service, string_to_sign)
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )


def classify_tencent_code(code: str, message: str, provider: str = "tencent") -> SendResult:
    """Map a Tencent error code to permanent or retryable (limits and internal errors retry)."""
    reason = f"tencent {code}: {message}".rstrip(": ")
    if code in _RETRYABLE:
        return SendResult(
            False, provider, retryable=True, reason=reason, retry_after_s=_RETRYABLE[code]
        )
    retryable = code not in _PERMANENT and code.startswith(
        ("LimitExceeded.", "InternalError", "RequestLimitExceeded", "ResourceUnavailable")
    )
    return SendResult(False, provider, retryable=retryable, reason=reason)


def _e164(phone: str) -> str:
    return phone if phone.startswith("+") else f"+86{phone}"


class TencentSms:
    """Sends buyer notices through Tencent Cloud SMS ``SendSms``."""

    def __init__(
        self,
        options: TencentSmsOptions,
        target: HttpTarget | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if not options.template_id and not options.template_ids:
            raise ValueError("template_id: required (or template_ids per kind)")
        self.name = "tencent"
        self.options = options
        self.target = target or HttpTarget(
            allow_private_networks=options.allow_private_networks, timeout_s=options.timeout_s
        )
        self._clock = clock or (lambda: datetime.now(UTC))
        self._limiter = RateLimiter(options.requests_per_s or 20.0)

    def request(self, notice: OutgoingNotice) -> tuple[bytes, dict[str, str]] | SendResult:
        """The signed body and headers for ``notice`` (or why it cannot be sent)."""
        opts = self.options
        kind = notice.variables.get("kind", "")
        template = opts.template_ids.get(kind) or opts.template_id
        if not template:
            return SendResult(False, self.name, reason=f"no Tencent template_id for {kind!r}")
        try:
            values = [notice.variables[var] for var in opts.template_params]
        except KeyError as exc:
            return SendResult(False, self.name, reason=f"template_params: no variable {exc}")
        payload = json.dumps(
            {
                "PhoneNumberSet": [_e164(notice.recipient)],
                "SmsSdkAppId": opts.sdk_app_id,
                "SignName": opts.sign_name,
                "TemplateId": template,
                "TemplateParamSet": values,
                "SessionContext": notice.idempotency_key,
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode("utf-8")
        host = httpx.URL(opts.endpoint).host
        timestamp = int(self._clock().timestamp())
        headers = {
            "authorization": tc3_authorization(
                secret_id=opts.secret_id,
                secret_key=opts.secret_key,
                service=_SERVICE,
                host=host,
                payload=payload,
                timestamp=timestamp,
            ),
            "content-type": _CONTENT_TYPE,
            "x-tc-action": "SendSms",
            "x-tc-timestamp": str(timestamp),
            "x-tc-version": _VERSION,
            "x-tc-region": opts.region,
        }
        return payload, headers

    async def send(self, notice: OutgoingNotice) -> SendResult:
        """Send one notice; the per-number status ``Ok`` is accepted with its ``SerialNo``."""
        built = self.request(notice)
        if isinstance(built, SendResult):
            return built
        payload, headers = built
        await self._limiter.wait()
        answer = await post(self.target, self.name, self.options.endpoint, payload, headers)
        if isinstance(answer, SendResult):
            return answer
        return self.interpret(answer)

    def interpret(self, response: httpx.Response) -> SendResult:
        """Read ``Response.Error`` or the first ``SendStatusSet`` entry."""
        try:
            data = response.json().get("Response")
        except (ValueError, AttributeError):
            data = None
        if not isinstance(data, dict):
            result = classify_status(response, self.name)
            if not result.ok:
                return result
            return SendResult(
                False,
                self.name,
                retryable=True,
                status_code=response.status_code,
                reason=f"unexpected answer: {excerpt(response)}",
            )
        error = data.get("Error")
        statuses = data.get("SendStatusSet") or []
        if isinstance(error, dict):
            code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        elif statuses and isinstance(statuses[0], dict):
            status = statuses[0]
            code, message = str(status.get("Code", "")), str(status.get("Message", ""))
            if code == "Ok":
                return SendResult(
                    True,
                    self.name,
                    message_id=status.get("SerialNo"),
                    status_code=response.status_code,
                )
        else:
            return SendResult(
                False,
                self.name,
                retryable=True,
                status_code=response.status_code,
                reason=f"no send status in answer: {excerpt(response)}",
            )
        result = classify_tencent_code(code, clip(message), self.name)
        return SendResult(
            False,
            self.name,
            retryable=result.retryable,
            reason=result.reason,
            status_code=response.status_code,
            retry_after_s=result.retry_after_s,
        )
