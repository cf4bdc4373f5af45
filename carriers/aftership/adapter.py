"""AfterShip (Tracking API v4) source: get a tracking, creating it the first time.

Options (``[carriers.<name>]`` with ``provider = "aftership"`` or named ``aftership``):

``api_key`` (required)
    sent as the ``aftership-api-key`` header.
``base_url``
    default ``https://api.aftership.com``.
``webhook_secret``
    the account's webhook secret, to check ``aftership-hmac-sha256`` on pushes.

plus the shared HTTP options of :class:`~carriers.transport.HttpSource` (``requests_per_s``
defaults to 10, AfterShip's documented limit). AfterShip only tracks numbers it has been
given: a lookup is ``GET /v4/trackings/{slug}/{number}``, and on "not found" (or for a
courier without a known slug) the tracking is created with ``POST /v4/trackings``; "already
exists" (4003) names the slug to get it with. Slugs AfterShip detected are remembered for
the life of the process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from carriers.aftership.codes import ALREADY_EXISTS
from carriers.aftership.parse import (
    ApiRequest,
    create_tracking_request,
    get_tracking_request,
    meta_code,
    parse_tracking,
)
from carriers.model import ErrorKind, TrackingQuery, TrackingResult
from carriers.transport import HttpSource, Memo, Reply, optional_str, require_str

__all__ = ["AfterShipSource"]

# tracking number -> slug AfterShip detected, per source name
_DETECTED: dict[str, Memo[str, str]] = {}


class AfterShipSource(HttpSource):
    """AfterShip v4 trackings: GET, else create then read."""

    label = "AfterShip"
    default_base_url = "https://api.aftership.com"
    default_rate_per_s = 10.0
    max_batch = 25

    def configure(self, options: Mapping[str, Any]) -> None:
        """Read ``api_key`` and ``webhook_secret``."""
        self.api_key = require_str(options, "api_key", "the AfterShip API key")
        self.webhook_secret = optional_str(options, "webhook_secret")
        self._detected = _DETECTED.setdefault(self.name, Memo())

    async def _send(self, api: ApiRequest) -> Reply:
        return await self.request(
            api.method,
            api.path,
            params=api.params or None,
            json=api.json,
            headers={"aftership-api-key": self.api_key},
        )

    def _parse(self, reply: Reply, query: TrackingQuery) -> TrackingResult:
        if reply.error is not None:
            return self.failed(query, reply.error)
        headers = reply.response.headers if reply.response is not None else {}
        result = parse_tracking(
            reply.body,
            source=self.name,
            query=query,
            http_status=reply.status,
            ratelimit_reset=headers.get("x-ratelimit-reset"),
            now=self.now(),
        )
        return self.checked([result], reply)[0]

    async def _track(self, queries: list[TrackingQuery]) -> list[TrackingResult]:
        return await self.each(queries, self._query)

    def _get_request(self, query: TrackingQuery) -> ApiRequest | None:
        slug = self._detected.get(query.tracking_number)
        if slug is not None:
            number = quote(query.tracking_number, safe="")
            return ApiRequest("GET", f"/v4/trackings/{quote(slug, safe='')}/{number}")
        return get_tracking_request(query)

    async def _query(self, query: TrackingQuery) -> TrackingResult:
        get = self._get_request(query)
        if get is not None:
            result = self._parse(await self._send(get), query)
            if result.error is None or result.error.kind is not ErrorKind.NOT_FOUND:
                return result
        reply = await self._send(create_tracking_request(query))
        if reply.error is None and meta_code(reply.body) == ALREADY_EXISTS:
            slug = _slug_of(reply.body)
            if slug and get is None:  # AfterShip knows it under a slug we did not
                self._detected.put(query.tracking_number, slug)
                return await self._query(query)
        return self._parse(reply, query)


def _slug_of(body: bytes) -> str | None:
    """``data.tracking.slug`` of an "already exists" answer."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    data = doc.get("data") if isinstance(doc, dict) else None
    tracking = data.get("tracking") if isinstance(data, dict) else None
    slug = tracking.get("slug") if isinstance(tracking, dict) else None
    return slug if isinstance(slug, str) and slug else None
