"""Kuaidi100 subscription (``POST {base_url}/poll``): request form and answer, pure.

A subscription asks Kuaidi100 to push every change of one parcel to ``callbackurl``
(answered by :func:`carriers.kuaidi100.sign.callback_ack`); pushes are signed with
``salt``. The form is ``schema=json`` and ``param`` = ``{"company", "number", "key",
"parameters": {"callbackurl", "salt", "resultv2", "phone", "from", "to"}}``; the key travels
inside ``param`` (this call has no ``sign``). Answer ``{"result", "returnCode", "message"}``:
200 accepted, 501 already subscribed (fine), 600/601 not a valid subscriber or key expired,
700-702 bad data / refused company / company not recognised, 500 server error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from carriers.kuaidi100.codes import com_code
from carriers.kuaidi100.sign import RESULT_V2
from carriers.model import ErrorKind, TrackingError
from carriers.payload import decode_body, load_object

__all__ = ["Subscription", "parse_subscribe", "subscribe_form"]

_EXCERPT = 300
_OK = frozenset({"200", "501"})
_CODES: dict[str, tuple[ErrorKind, bool]] = {
    "500": (ErrorKind.PROVIDER, True),
    "600": (ErrorKind.AUTH, False),
    "601": (ErrorKind.AUTH, False),
    "700": (ErrorKind.INVALID_NUMBER, False),
    "701": (ErrorKind.UNSUPPORTED_COURIER, False),
    "702": (ErrorKind.UNSUPPORTED_COURIER, False),
}


@dataclass(frozen=True, slots=True)
class Subscription:
    """The outcome of subscribing one number: accepted (or already was), or an error."""

    tracking_number: str
    ok: bool
    message: str = ""
    error: TrackingError | None = None


def subscribe_form(
    key: str,
    courier_code: str,
    number: str,
    callback_url: str,
    salt: str,
    *,
    phone: str | None = None,
    from_place: str | None = None,
    to_place: str | None = None,
) -> dict[str, str]:
    """The form fields of a subscription; :class:`ValueError` for an unknown courier."""
    com = com_code(courier_code)
    if com is None:
        raise ValueError(f"no Kuaidi100 company code for courier {courier_code!r}")
    parameters: dict[str, str] = {"callbackurl": callback_url, "salt": salt, "resultv2": RESULT_V2}
    digits = "".join(ch for ch in phone or "" if ch.isdigit())
    if digits:
        parameters["phone"] = digits
    if from_place:
        parameters["from"] = from_place
    if to_place:
        parameters["to"] = to_place
    param = {"company": com, "number": number.strip(), "key": key, "parameters": parameters}
    return {"schema": "json", "param": json.dumps(param, ensure_ascii=False, separators=(",", ":"))}


def parse_subscribe(
    body: bytes | str, *, tracking_number: str, http_status: int | None = None
) -> Subscription:
    """The outcome of one subscription request from its answer body."""
    text = decode_body(body)
    data, _ = load_object(text)
    if data is None:
        kind = ErrorKind.AUTH if http_status in (401, 403) else ErrorKind.BAD_RESPONSE
        why = f"HTTP {http_status}: " if http_status else ""
        error = TrackingError(kind, f"{why}answer is not JSON", True, text[:_EXCERPT])
        return Subscription(tracking_number, False, error=error)
    code = str(data.get("returnCode") or "").strip()
    message = str(data.get("message") or "").strip()
    if code in _OK or (not code and data.get("result") in (True, "true")):
        return Subscription(tracking_number, True, message)
    kind, retryable = _CODES.get(code, (ErrorKind.PROVIDER, False))
    error = TrackingError(
        kind, f"Kuaidi100 subscribe returnCode {code or '?'}: {message}", retryable, text[:_EXCERPT]
    )
    return Subscription(tracking_number, False, message, error)
