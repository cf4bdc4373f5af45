"""Kuaidi100 request building and signatures: pure functions, no I/O.

* Query (``POST https://poll.kuaidi100.com/poll/query.do``, form-encoded): fields
  ``customer``, ``param`` (a JSON string) and ``sign`` = upper-case hex
  ``MD5(param + key + customer)`` over the exact ``param`` string that is sent.
* Push callback: form fields ``param`` (JSON) and ``sign`` = upper-case hex
  ``MD5(param + salt)``, ``salt`` being the value given when subscribing. The receiver
  must answer ``{"result": true, "returnCode": "200", "message": "成功"}`` within 20 s,
  or Kuaidi100 retries.
"""

from __future__ import annotations

import hashlib
import hmac
from json.encoder import encode_basestring

from carriers.kuaidi100.codes import com_code

__all__ = [
    "RESULT_V2",
    "callback_ack",
    "md5_upper",
    "query_form",
    "query_param",
    "verify_callback_sign",
]

#: ``resultv2=4``: 行政区域解析, 高级物流状态 (statusCode) and routeInfo. ``8`` adds an
#: arrival forecast but then needs a full ``to`` address; we do not need it.
RESULT_V2 = "4"

# The param is written as json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
# writes a dict of these keys in this order: each string through encode_basestring (the
# function that encoder quotes with), joined by the fixed keys. The encoder walks the dict
# in Python-facing C at several µs per request; the text is the same, byte for byte.
_TAIL = f',"resultv2":"{RESULT_V2}","show":"0","order":"desc"}}'
# '{"com":"yuantong","num":' per company code: the same for every parcel of a courier
_HEADS: dict[str, str] = {}


def md5_upper(text: str) -> str:
    """Upper-case hex MD5 of ``text`` encoded as UTF-8 (Kuaidi100's "32位大写")."""
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def _phone_digits(phone: str) -> str:
    """What Kuaidi100 wants for ``phone``: digits only; a virtual ``138...-1234`` gives ``1234``."""
    tail = phone.rsplit("-", 1)[-1] if "-" in phone else phone
    if tail.isdigit():  # the usual plain number: every character is kept anyway
        return tail
    return "".join(ch for ch in tail if ch.isdigit())


def query_param(
    courier_code: str,
    number: str,
    phone: str | None = None,
    from_city: str | None = None,
    to_city: str | None = None,
) -> str:
    """The ``param`` JSON string for one lookup (compact, UTF-8 characters kept).

    ``courier_code`` is a canonical code (``"yto"``); :class:`ValueError` when Kuaidi100
    has no code for it (callers check :func:`carriers.kuaidi100.codes.com_code` first).
    """
    head = _HEADS.get(courier_code)
    if head is None:
        com = com_code(courier_code)
        if com is None:
            raise ValueError(f"no Kuaidi100 company code for courier {courier_code!r}")
        head = _HEADS[courier_code] = f'{{"com":{encode_basestring(com)},"num":'
    param = head + encode_basestring(number.strip())
    if phone and (digits := _phone_digits(phone)):
        param += ',"phone":' + encode_basestring(digits)
    if from_city:
        param += ',"from":' + encode_basestring(from_city)
    if to_city:
        param += ',"to":' + encode_basestring(to_city)
    return param + _TAIL


def query_form(
    customer: str,
    key: str,
    courier_code: str,
    number: str,
    phone: str | None = None,
    from_city: str | None = None,
    to_city: str | None = None,
) -> dict[str, str]:
    """The form fields of a ``poll/query.do`` request, signed with ``key``."""
    param = query_param(courier_code, number, phone, from_city, to_city)
    return {"customer": customer, "sign": md5_upper(param + key + customer), "param": param}


def verify_callback_sign(param: str, salt: str, sign: str) -> bool:
    """True when ``sign`` is ``MD5(param + salt)`` (case-insensitive hex, constant-time)."""
    expected = md5_upper(param + salt)
    return hmac.compare_digest(expected.encode("ascii"), sign.strip().upper().encode("utf-8"))


def callback_ack(success: bool = True, message: str | None = None) -> dict[str, object]:
    """The JSON body answering a push; anything but success makes Kuaidi100 retry it later."""
    if success:
        return {"result": True, "returnCode": "200", "message": message or "成功"}
    return {"result": False, "returnCode": "500", "message": message or "失败"}
