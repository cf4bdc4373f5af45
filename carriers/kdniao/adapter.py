"""Kdniao (快递鸟) source: real-time queries; pushes are handled by the web callbacks.

Options (``[carriers.<name>]`` with ``provider = "kdniao"`` or named ``kdniao``):

``business_id``, ``api_key`` (required)
    the account's EBusinessID and ApiKey (``DataSign`` and push checks).
``base_url``
    default ``https://api.kdniao.com``; calls go to
    ``{base_url}/Ebusiness/EbusinessOrderHandle.aspx``.
``request_type``
    ``"8001"`` (default): 快递查询, the paid real-time API with ``StateEx`` / ``Action``
    detail codes (problem parcels, lockers, interceptions); ``"1002"``: 即时查询, the
    standard real-time API with bare ``State`` and traces.

plus the shared HTTP options of :class:`~carriers.transport.HttpSource`. One number per
request; a batch's numbers are queried concurrently within the rate budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from carriers.kdniao.codes import shipper_code
from carriers.kdniao.parse import parse_query
from carriers.kdniao.sign import (
    REQUEST_TYPE_QUERY,
    REQUEST_TYPE_QUERY_STANDARD,
    query_request_data,
    request_form,
)
from carriers.model import ErrorKind, TrackingError, TrackingQuery, TrackingResult
from carriers.transport import HttpSource, OptionError, optional_str, require_str

__all__ = ["ENDPOINT", "KdniaoSource"]

ENDPOINT = "/Ebusiness/EbusinessOrderHandle.aspx"
_REQUEST_TYPES = (REQUEST_TYPE_QUERY, REQUEST_TYPE_QUERY_STANDARD)


class KdniaoSource(HttpSource):
    """Kdniao real-time query (RequestType 8001 or 1002)."""

    label = "Kdniao"
    default_base_url = "https://api.kdniao.com"
    default_rate_per_s = 10.0
    max_batch = 25

    def configure(self, options: Mapping[str, Any]) -> None:
        """Read ``business_id``, ``api_key`` and ``request_type``."""
        self.business_id = require_str(options, "business_id", "the Kdniao EBusinessID")
        self.api_key = require_str(options, "api_key", "the Kdniao ApiKey")
        request_type = optional_str(options, "request_type") or REQUEST_TYPE_QUERY
        if request_type not in _REQUEST_TYPES:
            raise OptionError(
                "request_type", f"must be one of {', '.join(_REQUEST_TYPES)}, not {request_type!r}"
            )
        self.request_type = request_type

    async def _track(self, queries: list[TrackingQuery]) -> list[TrackingResult]:
        return await self.each(queries, self._query)

    async def _query(self, query: TrackingQuery) -> TrackingResult:
        if shipper_code(query.courier) is None:
            return self.failed(
                query,
                TrackingError(
                    ErrorKind.UNSUPPORTED_COURIER,
                    f"Kdniao has no ShipperCode for courier {query.courier!r}",
                ),
            )
        data = query_request_data(query.courier, query.tracking_number, query.phone)
        form = request_form(self.business_id, self.api_key, self.request_type, data)
        return await self.post_query(query, ENDPOINT, form, parse_query)
