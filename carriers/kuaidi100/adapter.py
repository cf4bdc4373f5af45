"""Kuaidi100 (快递100) source: real-time queries, and subscriptions for push.

Options (``[carriers.<name>]`` with ``provider = "kuaidi100"`` or named ``kuaidi100``):

``customer``, ``key`` (required)
    the account's customer id and API key (查询 ``sign = MD5(param + key + customer)``).
``base_url``
    default ``https://poll.kuaidi100.com``; queries go to ``{base_url}/poll/query.do``.
``salt``, ``callback_url``
    for subscriptions (``{base_url}/poll``) and for checking pushes (``sign = MD5(param +
    salt)``). ``callback_url`` is where Kuaidi100 should post, e.g.
    ``https://shop.example/callbacks/kuaidi100``.
``subscribe``
    ``true`` to subscribe every parcel the first time this process polls it (needs
    ``salt`` and ``callback_url``); pushes then arrive between polls.

plus the shared HTTP options of :class:`~carriers.transport.HttpSource`. One number per
request; a batch's numbers are queried concurrently within the rate budget.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import structlog

from carriers.kuaidi100.codes import com_code
from carriers.kuaidi100.parse import parse_query
from carriers.kuaidi100.sign import query_form
from carriers.kuaidi100.subscribe import Subscription, parse_subscribe, subscribe_form
from carriers.model import ErrorKind, Location, TrackingError, TrackingQuery, TrackingResult
from carriers.transport import HttpSource, Memo, OptionError, optional_str, require_str

__all__ = ["Kuaidi100Source", "place"]

_log = structlog.get_logger("carriers.kuaidi100")

# Numbers subscribed by this process, per source name (a repeat costs a request, no harm).
_SUBSCRIBED: dict[str, Memo[str, bool]] = {}


def place(location: Location | None) -> str | None:
    """``广东省深圳市南山区`` for Kuaidi100's ``from``/``to`` hints, or ``None``."""
    if location is None:
        return None
    # each part unless it repeats the last one kept: 上海市上海市 -> 上海市
    out = last = location.province or ""
    city = location.city
    if city and city != last:
        out += city
        last = city
    district = location.district
    if district and district != last:
        out += district
    return out or None


class Kuaidi100Source(HttpSource):
    """Kuaidi100 real-time query (``poll/query.do``) with optional subscriptions."""

    label = "Kuaidi100"
    default_base_url = "https://poll.kuaidi100.com"
    default_rate_per_s = 10.0
    max_batch = 25

    def configure(self, options: Mapping[str, Any]) -> None:
        """Read ``customer``, ``key``, ``salt``, ``callback_url`` and ``subscribe``."""
        self.customer = require_str(options, "customer", "the Kuaidi100 customer id")
        self.key = require_str(options, "key", "the Kuaidi100 API key")
        self.salt = optional_str(options, "salt")
        self.callback_url = optional_str(options, "callback_url")
        auto = options.get("subscribe", False)
        if not isinstance(auto, bool):
            raise OptionError("subscribe", "must be true or false")
        if auto and not self.salt:
            raise OptionError("salt", "required when subscribe = true (pushes are signed with it)")
        if auto and not self.callback_url:
            raise OptionError("callback_url", "required when subscribe = true")
        self.auto_subscribe = auto

    async def _track(self, queries: list[TrackingQuery]) -> list[TrackingResult]:
        results = await self.each(queries, self._query)
        if self.auto_subscribe:
            await self._subscribe_new(queries, results)
        return results

    async def _query(self, query: TrackingQuery) -> TrackingResult:
        if com_code(query.courier) is None:
            return self.failed(query, _unsupported(query.courier))
        form = query_form(
            self.customer,
            self.key,
            query.courier,
            query.tracking_number,
            query.phone,
            place(query.origin),
            place(query.destination),
        )
        return await self.post_query(query, "/poll/query.do", form, parse_query)

    async def subscribe(
        self,
        queries: Sequence[TrackingQuery],
        callback_url: str | None = None,
        salt: str | None = None,
    ) -> list[Subscription]:
        """Ask Kuaidi100 to push every change of these parcels; one outcome per query."""
        url = callback_url or self.callback_url
        secret = salt or self.salt
        if not url or not secret:
            raise ValueError("subscribe needs a callback_url and a salt")
        return await self._subscribe_all(list(queries), url, secret)

    async def _subscribe_all(
        self, queries: list[TrackingQuery], url: str, secret: str
    ) -> list[Subscription]:
        async def guarded(query: TrackingQuery) -> Subscription:
            try:
                return await self._subscribe_one(query, url, secret)
            except Exception as exc:  # one odd number must not sink the others
                _log.exception(
                    "subscribe_failed", provider=self.name, tracking_number=query.tracking_number
                )
                error = TrackingError(ErrorKind.PROVIDER, f"subscribe failed: {exc!r}", True)
                return Subscription(query.tracking_number, False, error=error)

        return list(await asyncio.gather(*(guarded(q) for q in queries)))

    async def _subscribe_one(self, query: TrackingQuery, url: str, secret: str) -> Subscription:
        if com_code(query.courier) is None:
            return Subscription(query.tracking_number, False, error=_unsupported(query.courier))
        form = subscribe_form(
            self.key,
            query.courier,
            query.tracking_number,
            url,
            secret,
            phone=query.phone,
            from_place=place(query.origin),
            to_place=place(query.destination),
        )
        reply = await self.post_form("/poll", form)
        if reply.error is not None:
            return Subscription(query.tracking_number, False, error=reply.error)
        outcome = parse_subscribe(
            reply.body, tracking_number=query.tracking_number, http_status=reply.status
        )
        if outcome.error is not None and outcome.error.kind is ErrorKind.AUTH:
            self.guard.circuit.trip(outcome.error.message)
        return outcome

    async def _subscribe_new(
        self, queries: list[TrackingQuery], results: list[TrackingResult]
    ) -> None:
        done = _SUBSCRIBED.setdefault(self.name, Memo())
        todo = [
            q
            for q, r in zip(queries, results, strict=True)
            if r.ok and not r.finished and q.tracking_number not in done
        ]
        if not todo:
            return
        assert self.callback_url and self.salt
        for outcome in await self._subscribe_all(todo, self.callback_url, self.salt):
            if outcome.ok:
                done.put(outcome.tracking_number, True)


def _unsupported(courier: str) -> TrackingError:
    return TrackingError(
        ErrorKind.UNSUPPORTED_COURIER, f"Kuaidi100 has no company code for courier {courier!r}"
    )
