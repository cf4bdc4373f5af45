"""Kdniao request building, signatures and push answers: pure functions, no I/O.

Every call is ``POST https://api.kdniao.com/Ebusiness/EbusinessOrderHandle.aspx``,
``application/x-www-form-urlencoded;charset=utf-8`` with five fields: ``RequestData``
(JSON), ``EBusinessID``, ``RequestType`` (``8001`` 快递查询 / ``1002`` 即时查询),
``DataSign`` and ``DataType=2``.

``DataSign`` is ``Base64(lower-case hex MD5(RequestData + ApiKey))`` - Base64 of the
32-character hex *string*, not of the 16 raw digest bytes - and is then URL-encoded. The
docs' worked example: ``{'OrderCode':'','ShipperCode':'SF','LogisticCode':'118954907573'}``
with key ``56da2cf8-c8a2-44b2-b6fa-476cd7d1ba17`` signs as
``OWFhM2I5N2ViM2U2MGRkMjc4YzU2NmVlZWI3ZDk0MmE=``.

The URL-encoding of ``RequestData`` and ``DataSign`` is the form encoding itself:
:func:`request_form` returns the *unencoded* values, to be sent with ``httpx``'s
``data=`` (which encodes each value once, ``=`` becoming ``%3D``); :func:`form_body`
shows the exact wire body. Pre-encoding the values would encode them twice.

Pushes (``RequestType`` 101) arrive as the same form; the framework has already decoded it,
so :func:`verify_push_sign` compares ``DataSign`` with the sign of the decoded
``RequestData`` (the docs: pushes need no further URL-decoding).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlencode

from carriers.chinatime import CHINA_TZ
from carriers.kdniao.codes import shipper_code

__all__ = [
    "DATA_TYPE_JSON",
    "REQUEST_TYPE_PUSH",
    "REQUEST_TYPE_QUERY",
    "REQUEST_TYPE_QUERY_STANDARD",
    "data_sign",
    "form_body",
    "push_ack",
    "query_request_data",
    "request_form",
    "verify_push_sign",
]

REQUEST_TYPE_QUERY = "8001"  #: 快递查询 / 即时查询(增值版): StateEx, Location, Action
REQUEST_TYPE_QUERY_STANDARD = "1002"  #: 即时查询 (standard): State and bare traces
REQUEST_TYPE_PUSH = "101"  #: 轨迹推送
DATA_TYPE_JSON = "2"


def data_sign(request_data: str, api_key: str) -> str:
    """``Base64(md5hex(request_data + api_key))``, before URL-encoding."""
    digest = hashlib.md5((request_data + api_key).encode("utf-8")).hexdigest()
    return base64.b64encode(digest.encode("ascii")).decode("ascii")


def query_request_data(
    courier_code: str, number: str, phone: str | None = None, order_code: str = ""
) -> dict[str, str]:
    """The ``RequestData`` object of a query for a canonical courier code.

    SF needs ``CustomerName`` = the last four digits of the sender's or recipient's phone;
    other couriers must not get it. :class:`ValueError` for a courier Kdniao has no code for.
    """
    shipper = shipper_code(courier_code)
    if shipper is None:
        raise ValueError(f"no Kdniao ShipperCode for courier {courier_code!r}")
    data = {"OrderCode": order_code, "ShipperCode": shipper, "LogisticCode": number.strip()}
    digits = "".join(ch for ch in (phone or "") if ch.isdigit())
    if shipper == "SF" and digits:
        data["CustomerName"] = digits[-4:]
    return data


def request_form(
    business_id: str, api_key: str, request_type: str, request_data: Mapping[str, Any]
) -> dict[str, str]:
    """The five form fields of a call, signed; values unencoded (see the module docs)."""
    text = json.dumps(request_data, ensure_ascii=False, separators=(",", ":"))
    return {
        "RequestData": text,
        "EBusinessID": business_id,
        "RequestType": request_type,
        "DataSign": data_sign(text, api_key),
        "DataType": DATA_TYPE_JSON,
    }


def form_body(form: Mapping[str, str]) -> str:
    """The ``application/x-www-form-urlencoded`` body for ``form`` (UTF-8, each value once)."""
    return urlencode(form, encoding="utf-8")


def verify_push_sign(request_data: str, sign: str, api_key: str) -> bool:
    """True when ``sign`` is the ``DataSign`` of ``request_data`` (constant-time).

    A sign that still carries its URL-encoding (``...%3D``) is decoded first.
    """
    received = unquote(sign.strip()) if "%" in sign else sign.strip()
    expected = data_sign(request_data, api_key)
    return hmac.compare_digest(expected.encode("ascii"), received.encode("utf-8"))


def push_ack(
    business_id: str, update_time: datetime, success: bool = True, reason: str = ""
) -> dict[str, object]:
    """The JSON body answering a push; ``update_time`` is shown in China local time."""
    local = update_time.astimezone(CHINA_TZ) if update_time.tzinfo else update_time
    return {
        "EBusinessID": business_id,
        "UpdateTime": local.strftime("%Y-%m-%d %H:%M:%S"),
        "Success": success,
        "Reason": reason,
    }
