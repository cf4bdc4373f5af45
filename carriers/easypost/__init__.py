"""EasyPost (Trackers API v2): pure request builders, parsing and webhook checks.

The HTTP adapter is written separately; :mod:`carriers.easypost.codes` holds the raw
code tables and :mod:`carriers.easypost.parse` maps payloads to
:class:`~carriers.model.TrackingResult`.
"""

from carriers.easypost.parse import (
    ApiRequest,
    carrier_name,
    create_tracker_request,
    parse_event,
    parse_tracker,
    parse_trackers,
    verify_webhook_signature,
)

__all__ = [
    "ApiRequest",
    "carrier_name",
    "create_tracker_request",
    "parse_event",
    "parse_tracker",
    "parse_trackers",
    "verify_webhook_signature",
]
