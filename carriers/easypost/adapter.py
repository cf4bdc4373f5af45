"""EasyPost (Trackers API v2) source: create a tracker once, then read it by id.

Options (``[carriers.<name>]`` with ``provider = "easypost"`` or named ``easypost``):

``api_key`` (required)
    sent with HTTP Basic auth (the key as user name, empty password).
``base_url``
    default ``https://api.easypost.com``.
``webhook_secret``
    the webhook's secret, to check ``X-Hmac-Signature`` on pushes.

plus the shared HTTP options of :class:`~carriers.transport.HttpSource`. ``POST
/v2/trackers`` returns the existing tracker when the same code was tracked before, so the
first lookup of a number in a process creates (or finds) its tracker and later lookups read
``GET /v2/trackers/{id}``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from carriers.easypost.parse import ApiRequest, create_tracker_request, parse_tracker
from carriers.model import ErrorKind, TrackingQuery, TrackingResult
from carriers.transport import HttpSource, Memo, optional_str, require_str

__all__ = ["EasyPostSource"]

# tracking number -> EasyPost tracker id, per source name
_TRACKERS: dict[str, Memo[str, str]] = {}


class EasyPostSource(HttpSource):
    """EasyPost trackers: create (idempotent) then read by id."""

    label = "EasyPost"
    default_base_url = "https://api.easypost.com"
    default_rate_per_s = 5.0
    max_batch = 25

    def configure(self, options: Mapping[str, Any]) -> None:
        """Read ``api_key`` and ``webhook_secret``."""
        api_key = require_str(options, "api_key", "the EasyPost API key")
        token = base64.b64encode(f"{api_key}:".encode()).decode("ascii")
        self._auth = {"authorization": f"Basic {token}"}
        self.webhook_secret = optional_str(options, "webhook_secret")
        self._trackers = _TRACKERS.setdefault(self.name, Memo())

    async def _track(self, queries: list[TrackingQuery]) -> list[TrackingResult]:
        return await self.each(queries, self._query)

    async def _query(self, query: TrackingQuery) -> TrackingResult:
        tracker_id = self._trackers.get(query.tracking_number)
        if tracker_id is not None:
            path = f"/v2/trackers/{quote(tracker_id, safe='')}"
            result = await self._call(ApiRequest("GET", path), query)
            if result.error is None or result.error.kind is not ErrorKind.NOT_FOUND:
                return result
            self._trackers.forget(query.tracking_number)  # deleted on EasyPost's side
        result = await self._call(create_tracker_request(query), query)
        if result.ok and (found := result.extra.get("easypost_id")):
            self._trackers.put(query.tracking_number, found)
        return result

    async def _call(self, api: ApiRequest, query: TrackingQuery) -> TrackingResult:
        reply = await self.request(
            api.method, api.path, params=api.params or None, json=api.json, headers=self._auth
        )
        if reply.error is not None:
            return self.failed(query, reply.error)
        result = parse_tracker(
            reply.body,
            source=self.name,
            query=query,
            http_status=reply.status,
            retry_after_s=reply.retry_after_s,
        )
        return self.checked([result], reply)[0]
