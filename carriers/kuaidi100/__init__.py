"""Kuaidi100 (快递100): pure parsing of query answers and pushes, plus request signing.

The HTTP adapter (``adapter.py``) is separate; everything here is pure and never raises
for a provider's payload (errors are data on the returned result).
"""

from carriers.kuaidi100.codes import canonical_courier, com_code
from carriers.kuaidi100.parse import decode_body, parse_callback, parse_query
from carriers.kuaidi100.sign import callback_ack, query_form, query_param, verify_callback_sign

__all__ = [
    "callback_ack",
    "canonical_courier",
    "com_code",
    "decode_body",
    "parse_callback",
    "parse_query",
    "query_form",
    "query_param",
    "verify_callback_sign",
]
