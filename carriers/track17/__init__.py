"""17TRACK (api.17track.net, Tracking API v2.2): pure request bodies, parsing and webhook checks.

The HTTP adapter (``adapter.py``) is written separately; this package only holds the
pure parts: :mod:`carriers.track17.codes` (raw code tables) and
:mod:`carriers.track17.parse` (payload -> :class:`~carriers.model.TrackingResult`).
"""

from carriers.track17.parse import (
    MAX_BATCH,
    Registration,
    WebhookPush,
    batches,
    carrier_key,
    gettrackinfo_body,
    parse_gettrackinfo,
    parse_register,
    parse_webhook,
    register_body,
    verify_webhook_signature,
)

__all__ = [
    "MAX_BATCH",
    "Registration",
    "WebhookPush",
    "batches",
    "carrier_key",
    "gettrackinfo_body",
    "parse_gettrackinfo",
    "parse_register",
    "parse_webhook",
    "register_body",
    "verify_webhook_signature",
]
