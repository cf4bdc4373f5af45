"""17TRACK (Tracking API v2.2) source: gettrackinfo, registering numbers it does not know yet.

Options (``[carriers.<name>]`` with ``provider = "track17"`` or named ``track17``):

``api_key`` (required)
    the ``17token`` security key (also checks webhook signatures).
``base_url``
    default ``https://api.17track.net``; calls go to ``{base_url}/track/v2.2/<call>``.

plus the shared HTTP options of :class:`~carriers.transport.HttpSource` (``requests_per_s``
defaults to 3, 17TRACK's documented pace). A batch of up to 40 numbers costs one
``gettrackinfo``; numbers 17TRACK answers "not registered" are registered (one
``register`` call, which is what uses quota) and asked again at once. ``stoptrack`` and
``retrack`` are exposed for callers that end or revive tracking.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from carriers.model import ErrorKind, TrackingError, TrackingQuery, TrackingResult
from carriers.track17.codes import NOT_REGISTERED
from carriers.track17.parse import (
    MAX_BATCH,
    Registration,
    gettrackinfo_body,
    parse_gettrackinfo,
    parse_register,
    register_body,
)
from carriers.transport import HttpSource, Reply, require_str

__all__ = ["API_PREFIX", "Track17Source"]

API_PREFIX = "/track/v2.2"
_NOT_REGISTERED = str(NOT_REGISTERED)


class Track17Source(HttpSource):
    """17TRACK v2.2: ``gettrackinfo`` per batch of 40, ``register`` for new numbers."""

    label = "17TRACK"
    default_base_url = "https://api.17track.net"
    default_rate_per_s = 3.0
    max_batch = MAX_BATCH

    def configure(self, options: Mapping[str, Any]) -> None:
        """Read ``api_key``."""
        self.api_key = require_str(options, "api_key", "the 17TRACK security key (17token)")

    async def _call(self, call: str, body: list[dict[str, Any]]) -> Reply:
        return await self.request(
            "POST", f"{API_PREFIX}/{call}", json=body, headers={"17token": self.api_key}
        )

    async def _track(self, queries: list[TrackingQuery]) -> list[TrackingResult]:
        results = await self._gettrackinfo(queries)
        fresh = [
            i
            for i, r in enumerate(results)
            if r.error is not None and r.extra.get("error_code") == _NOT_REGISTERED
        ]
        if fresh:
            registered = await self._register_and_get([queries[i] for i in fresh])
            for i, result in zip(fresh, registered, strict=True):
                results[i] = result
        return results

    async def _gettrackinfo(self, queries: list[TrackingQuery]) -> list[TrackingResult]:
        reply = await self._call("gettrackinfo", gettrackinfo_body(queries))
        if reply.error is not None:
            return [self.failed(q, reply.error) for q in queries]
        results = parse_gettrackinfo(
            reply.body,
            source=self.name,
            queries=queries,
            http_status=reply.status,
            retry_after_s=reply.retry_after_s,
        )
        return self.checked(results, reply)

    async def _register_and_get(self, queries: list[TrackingQuery]) -> list[TrackingResult]:
        outcomes = await self.register(queries)
        out: list[TrackingResult | None] = [None] * len(queries)
        ready: list[int] = []
        for i, (query, outcome) in enumerate(zip(queries, outcomes, strict=True)):
            if outcome.registered:
                ready.append(i)
            elif outcome.error is not None:
                out[i] = self.failed(query, outcome.error)
        if ready:
            got = await self._gettrackinfo([queries[i] for i in ready])
            for i, result in zip(ready, got, strict=True):
                out[i] = result
        return [
            r if r is not None else self.failed(q, _lost())
            for q, r in zip(queries, out, strict=True)
        ]

    async def register(self, queries: Sequence[TrackingQuery]) -> list[Registration]:
        """Register numbers for tracking (uses quota); "already registered" counts as done."""
        return await self._registration_call("register", list(queries))

    async def stoptrack(self, queries: Sequence[TrackingQuery]) -> list[Registration]:
        """Stop tracking numbers (e.g. a cancelled order); ``registered`` means accepted."""
        return await self._registration_call("stoptrack", list(queries))

    async def retrack(self, queries: Sequence[TrackingQuery]) -> list[Registration]:
        """Revive tracking of stopped numbers; ``registered`` means accepted."""
        return await self._registration_call("retrack", list(queries))

    async def _registration_call(
        self, call: str, queries: list[TrackingQuery]
    ) -> list[Registration]:
        out: list[Registration] = []
        for start in range(0, len(queries), MAX_BATCH):
            chunk = queries[start : start + MAX_BATCH]
            body = register_body(chunk) if call == "register" else gettrackinfo_body(chunk)
            reply = await self._call(call, body)
            if reply.error is not None:
                out += [Registration(q.tracking_number, None, False, reply.error) for q in chunk]
                continue
            outcomes = parse_register(
                reply.body,
                queries=chunk,
                http_status=reply.status,
                retry_after_s=reply.retry_after_s,
            )
            as_results = [
                self.failed(q, o.error)
                if o.error
                else TrackingResult(q.courier, q.tracking_number, self.name)
                for q, o in zip(chunk, outcomes, strict=True)
            ]
            self.checked(as_results, reply)
            out += outcomes
        return out


def _lost() -> TrackingError:
    return TrackingError(ErrorKind.PROVIDER, "17TRACK: registration gave no outcome", True)
