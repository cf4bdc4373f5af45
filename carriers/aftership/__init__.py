"""AfterShip (Tracking API v4): pure request builders, parsing and webhook checks.

The HTTP adapter is written separately; :mod:`carriers.aftership.codes` holds the raw
code tables and :mod:`carriers.aftership.parse` maps payloads to
:class:`~carriers.model.TrackingResult`.
"""

from carriers.aftership.parse import (
    ApiRequest,
    create_tracking_request,
    get_tracking_request,
    meta_code,
    parse_last_checkpoint,
    parse_tracking,
    parse_trackings,
    parse_webhook,
    retry_after,
    tracking_slug,
    verify_webhook_signature,
)

__all__ = [
    "ApiRequest",
    "create_tracking_request",
    "get_tracking_request",
    "meta_code",
    "parse_last_checkpoint",
    "parse_tracking",
    "parse_trackings",
    "parse_webhook",
    "retry_after",
    "tracking_slug",
    "verify_webhook_signature",
]
