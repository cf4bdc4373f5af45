"""Form POSTs built straight into an ``httpx.Request``, as ``build_request(data=...)`` builds them.

Chinese providers take one ``application/x-www-form-urlencoded`` POST per parcel. httpx's
``build_request`` copies the client's headers three times, re-normalises them, copies the
URL and looks headers up one by one for every request: tens of µs. For a client with no
cookies, no default query parameters and no default ``Host`` or content headers its result
is always ``Host``, the client's headers, ``Content-Length`` and ``Content-Type``, built
here in one step (the unit tests compare the two). Any other client goes through
``build_request`` unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

__all__ = ["FORM_CONTENT_TYPE", "encode_form", "form_request"]

#: What httpx sends as the content type of ``data=``.
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"

_CONTENT_TYPE = (b"Content-Type", FORM_CONTENT_TYPE.encode("ascii"))
# default headers that build_request would merge with, rather than add before, ours
_MERGED = frozenset({b"host", b"content-length", b"content-type", b"transfer-encoding"})
# quote_plus's output for each byte: unreserved ASCII as is, space as "+", the rest %XX
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_QUOTED = [chr(b) if b in _UNRESERVED else "+" if b == 0x20 else f"%{b:02X}" for b in range(256)]


def _quote_plus(text: str) -> str:
    """``urllib.parse.quote_plus(text)``: one C-level ``translate`` over its UTF-8 bytes."""
    if not text.isascii():
        text = text.encode("utf-8").decode("latin-1")  # one character per UTF-8 byte
    return text.translate(_QUOTED)


def encode_form(fields: Mapping[str, str]) -> bytes:
    """The body httpx sends for ``data=fields`` (text values): ``urlencode``, UTF-8.

    ``urlencode`` quotes byte by byte in Python (a few µs per Kuaidi100 ``param``); text
    keys and values are quoted here through a table instead, anything else by ``urlencode``.
    """
    parts = []
    for key, value in fields.items():
        if type(key) is not str or type(value) is not str:
            return urlencode(list(fields.items()), doseq=True).encode("utf-8")
        parts.append(f"{_quote_plus(key)}={_quote_plus(value)}")
    return "&".join(parts).encode("ascii")


def form_request(
    client: httpx.AsyncClient, url: httpx.URL, form: Mapping[str, str], extensions: dict[str, Any]
) -> httpx.Request:
    """What ``client.build_request("POST", url, data=form, extensions=extensions)`` builds."""
    raw = client.headers.raw
    if (
        client.cookies
        or client.params
        or url.is_relative_url
        or any(key.lower() in _MERGED for key, _ in raw)
    ):
        return client.build_request("POST", url, data=form, extensions=extensions)
    body = encode_form(form)
    headers = [
        (b"Host", url.netloc),
        *raw,
        (b"Content-Length", str(len(body)).encode("ascii")),
        _CONTENT_TYPE,
    ]
    request = httpx.Request(
        "POST", url, headers=headers, stream=httpx.ByteStream(body), extensions=extensions
    )
    request.read()  # as for data=: the body is known up front, not streamed
    return request
