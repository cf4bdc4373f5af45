"""Kdniao (快递鸟): pure parsing of query answers and pushes, plus request signing.

The HTTP adapter (``adapter.py``) is separate; everything here is pure and never raises
for a provider's payload (errors are data on the returned results).
"""

from carriers.kdniao.codes import canonical_courier, shipper_code
from carriers.kdniao.parse import decode_body, parse_push, parse_query
from carriers.kdniao.sign import (
    data_sign,
    form_body,
    push_ack,
    query_request_data,
    request_form,
    verify_push_sign,
)

__all__ = [
    "canonical_courier",
    "data_sign",
    "decode_body",
    "form_body",
    "parse_push",
    "parse_query",
    "push_ack",
    "query_request_data",
    "request_form",
    "shipper_code",
    "verify_push_sign",
]
