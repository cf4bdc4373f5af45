"""Each provider's push protocol: check the signature, parse, and say how to answer.

A protocol is a pure function of the raw body, the headers and the source's config table;
it returns a :class:`Verdict`: the HTTP status, the body to answer with once the results
are stored, the body to answer with if storing fails (so the provider sends again), and
the results to store. A bad signature or a missing secret is refused (401/403) and stores
nothing.

* ``kuaidi100``: form ``param`` (JSON) + ``sign`` = MD5(param + ``salt``), upper-case hex;
  answered ``{"result": true, "returnCode": "200", "message": "成功"}``.
* ``kdniao``: form ``RequestData`` + ``DataSign`` (base64 of md5hex(data + ``api_key``)) +
  ``RequestType`` 101 or 1008; answered ``{"EBusinessID", "UpdateTime", "Success", "Reason"}``.
* ``track17``: JSON body, header ``sign`` = sha256 hex of ``body/api_key``; answered 200.
* ``aftership``: JSON body, header ``aftership-hmac-sha256`` = base64 HMAC-SHA256 with
  ``webhook_secret``; answered 200.
* ``easypost``: JSON Event, header ``x-hmac-signature`` = ``hmac-sha256-hex=`` + HMAC-SHA256
  with ``webhook_secret``; answered 200.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from carriers import aftership, easypost, kdniao, track17
from carriers.kuaidi100.parse import parse_callback
from carriers.kuaidi100.sign import callback_ack, verify_callback_sign
from carriers.model import TrackingResult

__all__ = ["PROTOCOLS", "Protocol", "Verdict", "decode_form"]

#: pushes Kdniao sends: 101 轨迹推送 (query subscriptions), 1008 (物流跟踪 subscriptions)
KDNIAO_PUSH_TYPES = frozenset({"101", "1008"})


@dataclass(frozen=True, slots=True)
class Verdict:
    """How to answer one push, and what to store before answering ``body``."""

    status: int
    body: Any
    failure_body: Any = None
    results: list[TrackingResult] = field(default_factory=list)
    reason: str = ""

    @property
    def accepted(self) -> bool:
        """True when the push passed its checks and its results should be stored."""
        return 200 <= self.status < 300


Protocol = Callable[[bytes, Mapping[str, str], str, Mapping[str, Any], datetime], Verdict]


def decode_form(body: bytes) -> dict[str, str]:
    """An ``x-www-form-urlencoded`` body (UTF-8, else GB18030 escapes); ``{}`` if unreadable."""
    for encoding in ("utf-8", "gb18030"):
        try:
            text = body.decode(encoding)
            return dict(parse_qsl(text, keep_blank_values=True, encoding=encoding, errors="strict"))
        except (UnicodeDecodeError, ValueError):
            continue
    return {}


def _secret(options: Mapping[str, Any], key: str) -> str | None:
    value = options.get(key)
    return str(value) if value not in (None, "") else None


def kuaidi100_push(
    body: bytes, headers: Mapping[str, str], source: str, options: Mapping[str, Any], now: datetime
) -> Verdict:
    """A subscription callback: form ``param`` + ``sign`` = MD5(param + salt)."""
    salt = _secret(options, "salt")
    if salt is None:
        return Verdict(403, callback_ack(False, "salt not configured"), reason="no salt configured")
    form = decode_form(body)
    param, sign = form.get("param", ""), form.get("sign", "")
    if not param or not sign or not verify_callback_sign(param, salt, sign):
        return Verdict(403, callback_ack(False, "签名验证失败"), reason="bad sign")
    result = parse_callback(param, source=source)
    if result.error is not None and not result.tracking_number:
        return Verdict(400, callback_ack(False, "参数错误"), reason=result.error.message)
    return Verdict(200, callback_ack(True), callback_ack(False, "保存失败"), [result])


def kdniao_push(
    body: bytes, headers: Mapping[str, str], source: str, options: Mapping[str, Any], now: datetime
) -> Verdict:
    """A 101/1008 push: form ``RequestData`` + ``DataSign`` with the account's ApiKey."""
    api_key, business_id = _secret(options, "api_key"), _secret(options, "business_id") or ""
    if api_key is None:
        ack = kdniao.push_ack(business_id, now, False, "api_key not configured")
        return Verdict(403, ack, reason="no api_key configured")
    form = decode_form(body)
    data, sign = form.get("RequestData", ""), form.get("DataSign", "")
    if not data or not sign or not kdniao.verify_push_sign(data, sign, api_key):
        return Verdict(
            403, kdniao.push_ack(business_id, now, False, "DataSign 校验失败"), reason="bad sign"
        )
    request_type = form.get("RequestType", "").strip()
    if request_type not in KDNIAO_PUSH_TYPES:
        reason = f"unsupported RequestType {request_type!r}"
        return Verdict(400, kdniao.push_ack(business_id, now, False, reason), reason=reason)
    results = kdniao.parse_push(data, source=source)
    if all(not r.tracking_number for r in results):
        reason = results[0].error.message if results and results[0].error else "no items"
        return Verdict(400, kdniao.push_ack(business_id, now, False, reason), reason=reason)
    return Verdict(
        200,
        kdniao.push_ack(business_id, now, True),
        kdniao.push_ack(business_id, now, False, "保存失败"),
        results,
    )


def _json_webhook(
    header: str, secret_key: str, verify: Callable[[bytes, str, str], bool]
) -> Callable[[bytes, Mapping[str, str], Mapping[str, Any]], Verdict | None]:
    """The signature step of a JSON webhook: ``None`` when it passes, else the refusal."""

    def check(
        body: bytes, headers: Mapping[str, str], options: Mapping[str, Any]
    ) -> Verdict | None:
        secret = _secret(options, secret_key)
        if secret is None:
            return Verdict(
                403, {"error": f"{secret_key} not configured"}, reason=f"no {secret_key}"
            )
        signature = headers.get(header, "")
        if not signature or not verify(body, signature, secret):
            return Verdict(401, {"error": "bad signature"}, reason="bad signature")
        return None

    return check


_check_track17 = _json_webhook("sign", "api_key", track17.verify_webhook_signature)
_check_aftership = _json_webhook(
    "aftership-hmac-sha256", "webhook_secret", aftership.verify_webhook_signature
)
_check_easypost = _json_webhook(
    "x-hmac-signature", "webhook_secret", easypost.verify_webhook_signature
)
_OK = {"ok": True}
_RETRY = {"ok": False}


def track17_push(
    body: bytes, headers: Mapping[str, str], source: str, options: Mapping[str, Any], now: datetime
) -> Verdict:
    """A ``TRACKING_UPDATED`` / ``TRACKING_STOPPED`` webhook signed with the API key."""
    refused = _check_track17(body, headers, options)
    if refused is not None:
        return refused
    push = track17.parse_webhook(body, source=source)
    if push.error is not None:
        return Verdict(400, {"error": push.error.message}, reason=push.error.message)
    results = [push.result] if push.result is not None else []
    return Verdict(200, _OK, _RETRY, results)


def aftership_push(
    body: bytes, headers: Mapping[str, str], source: str, options: Mapping[str, Any], now: datetime
) -> Verdict:
    """A ``tracking_update`` webhook signed with the webhook secret."""
    refused = _check_aftership(body, headers, options)
    if refused is not None:
        return refused
    result = aftership.parse_webhook(body, source=source)
    if result.error is not None and not result.tracking_number:
        return Verdict(400, {"error": result.error.message}, reason=result.error.message)
    return Verdict(200, _OK, _RETRY, [result])


def easypost_push(
    body: bytes, headers: Mapping[str, str], source: str, options: Mapping[str, Any], now: datetime
) -> Verdict:
    """A ``tracker.created`` / ``tracker.updated`` Event signed with the webhook secret."""
    refused = _check_easypost(body, headers, options)
    if refused is not None:
        return refused
    result = easypost.parse_event(body, source=source)
    if result is None:  # an event about something other than a tracker
        return Verdict(200, _OK, _RETRY)
    if result.error is not None and not result.tracking_number:
        return Verdict(400, {"error": result.error.message}, reason=result.error.message)
    return Verdict(200, _OK, _RETRY, [result])


#: provider name -> its push protocol
PROTOCOLS: dict[str, Protocol] = {
    "kuaidi100": kuaidi100_push,
    "kdniao": kdniao_push,
    "track17": track17_push,
    "aftership": aftership_push,
    "easypost": easypost_push,
}
