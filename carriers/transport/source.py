"""The shared half of every HTTP tracking source: options, client, guard, error handling.

A provider adapter subclasses :class:`HttpSource`, sets its class attributes and writes
``_track`` (a batch of at most ``max_batch`` queries -> one result each, in order). The base
class guarantees the :class:`~carriers.base.TrackingSource` contract around it: ``track``
never raises, a bug or odd answer for one number stays with that number, and everything
the provider says about our credentials or our pace reaches the shared guard.

Options every HTTP provider reads (all optional): ``base_url``, ``requests_per_s``,
``burst``, ``daily_quota``, ``timeout_s``, ``max_attempts``, ``max_wait_s``,
``auth_cooldown_s``.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

import httpx
import structlog

from carriers.model import ErrorKind, TrackingError, TrackingQuery, TrackingResult
from carriers.transport.client import ClientLease
from carriers.transport.form import form_request
from carriers.transport.guard import GUARDS, GuardRegistry, ProviderGuard
from carriers.transport.options import OptionError, base_url, positive
from carriers.transport.request import Reply, RetryPolicy, Sleep, send

__all__ = ["HttpSource", "QueryParser"]

_log = structlog.get_logger("carriers.transport")

# Errors a retry may fix: their excerpt and retry_after are worth keeping on the shipment.
_RETRY_LATER = frozenset({ErrorKind.RATE_LIMITED, ErrorKind.PROVIDER, ErrorKind.BAD_RESPONSE})
_URL_CACHE = 64


def _utc_now() -> datetime:
    return datetime.now(UTC)


class QueryParser(Protocol):
    """A provider's pure parser of the answer to a one-number query."""

    def __call__(
        self,
        body: bytes,
        *,
        courier: str,
        tracking_number: str,
        source: str,
        http_status: int | None = None,
    ) -> TrackingResult:
        """The result for ``tracking_number`` that ``body`` stands for; never raises."""
        ...


class HttpSource:
    """Base of the HTTP tracking sources; usable as a ``SourceFactory`` through subclasses."""

    #: the provider's display name in messages ("Kuaidi100")
    label: ClassVar[str] = ""
    default_base_url: ClassVar[str] = ""
    default_rate_per_s: ClassVar[float] = 5.0
    max_batch: int = 20

    def __init__(
        self,
        name: str,
        options: Mapping[str, Any],
        *,
        http: Any | None = None,
        clock: Callable[[], datetime] | None = None,
        sleep: Sleep | None = None,
        rng: Callable[[], float] | None = None,
        guards: GuardRegistry | None = None,
    ) -> None:
        self.name = name
        self.base_url = base_url(options, self.default_base_url)
        rate = positive(options, "requests_per_s", self.default_rate_per_s)
        burst = positive(options, "burst", max(1.0, round(rate)))
        quota = options.get("daily_quota")
        if quota is not None and (isinstance(quota, bool) or not isinstance(quota, int)):
            raise OptionError("daily_quota", f"must be a whole number, not {quota!r}")
        if quota is not None and quota < 1:
            raise OptionError("daily_quota", "must be positive")
        timeout_s = positive(options, "timeout_s", 10.0)
        attempts = positive(options, "max_attempts", 3)
        if attempts != int(attempts):
            raise OptionError("max_attempts", "must be a whole number")
        self.policy = RetryPolicy(
            attempts=int(attempts), max_wait_s=positive(options, "max_wait_s", 30.0)
        )
        # as the request extension httpx would derive from Timeout on every request
        self._timeout_ext = {
            "timeout": httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)).as_dict()
        }
        self._clock = clock or _utc_now
        self._sleep: Sleep = sleep or asyncio.sleep
        self._rng = rng or random.random
        self.configure(options)  # provider keys: a ConfigError here must not leak a client
        self.guard: ProviderGuard = (guards or GUARDS).get(
            name,
            rate_per_s=rate,
            burst=int(burst),
            daily_quota=quota,
            auth_cooldown_s=positive(options, "auth_cooldown_s", 900.0),
        )
        self._urls: dict[str, httpx.URL] = {}
        self._lease = ClientLease(http, timeout_s=timeout_s)

    def configure(self, options: Mapping[str, Any]) -> None:
        """Read and validate the provider's own keys (raise ``OptionError`` naming the key)."""

    async def _track(self, queries: list[TrackingQuery]) -> list[TrackingResult]:
        """The provider's lookup for at most ``max_batch`` queries, one result each."""
        raise NotImplementedError

    # --- the TrackingSource contract --------------------------------------------------------

    async def track(self, queries: Sequence[TrackingQuery]) -> list[TrackingResult]:
        """One result per query, in order; provider and network trouble come back as errors."""
        batch = list(queries)
        if not batch:
            return []
        try:
            results = await self._track(batch)
            if len(results) != len(batch):
                raise ValueError(f"{len(results)} results for {len(batch)} queries")
            return results
        except Exception as exc:  # a bug must cost this batch only, never the run
            _log.exception("adapter_failed", provider=self.name)
            error = TrackingError(ErrorKind.PROVIDER, f"{self.name}: adapter error: {exc!r}", True)
            return [self.failed(q, error) for q in batch]

    async def aclose(self) -> None:
        """Let go of the HTTP client (the shared one closes with its last user)."""
        await self._lease.release()

    # --- helpers for subclasses -----------------------------------------------------------

    def now(self) -> datetime:
        """The injected clock's current time."""
        return self._clock()

    def failed(self, query: TrackingQuery, error: TrackingError) -> TrackingResult:
        """A result carrying ``error`` for ``query``."""
        return TrackingResult(
            courier=query.courier,
            tracking_number=query.tracking_number,
            source=self.name,
            error=error,
        )

    async def request(
        self,
        method: str,
        path: str,
        *,
        data: Mapping[str, str] | None = None,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send one request to ``base_url + path`` within the budget, with retries."""
        client = self._lease.get()
        request = client.build_request(
            method,
            self._url(path),
            data=data,
            json=json,
            params=params,
            headers=headers,
            extensions=self._timeout_ext,
        )
        return await self._send_request(client, request)

    async def post_form(self, path: str, form: Mapping[str, str]) -> Reply:
        """POST ``form`` (URL-encoded, as ``request(data=form)``) to ``base_url + path``."""
        client = self._lease.get()
        return await self._send_request(
            client, form_request(client, self._url(path), form, self._timeout_ext)
        )

    async def _send_request(self, client: httpx.AsyncClient, request: httpx.Request) -> Reply:
        return await send(
            client,
            request,
            self.guard,
            clock=self._clock,
            policy=self.policy,
            sleep=self._sleep,
            rng=self._rng,
        )

    def _url(self, path: str) -> httpx.URL:
        """``base_url + path`` parsed once per path (URL parsing is a visible share of CPU)."""
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(self.base_url + path)
            if len(self._urls) < _URL_CACHE:  # per-parcel paths (AfterShip, EasyPost) vary
                self._urls[path] = url
        return url

    def checked(self, results: list[TrackingResult], reply: Reply) -> list[TrackingResult]:
        """Results parsed from ``reply``, after telling the guard what they say.

        An auth error in the body trips the circuit (an authenticated 2xx closes it); a
        rate-limit error pauses the budget; ``Retry-After`` is copied onto errors that
        lack it.
        """
        auth: TrackingError | None = None
        limited: TrackingError | None = None
        for result in results:  # the first auth error and the first rate-limit error
            error = result.error
            if error is None:
                continue
            if error.kind is ErrorKind.AUTH and auth is None:
                auth = error
            elif error.kind is ErrorKind.RATE_LIMITED and limited is None:
                limited = error
        status = reply.status
        if auth is not None:
            self.guard.circuit.trip(auth.message)
        elif status is not None and 200 <= status < 300:
            self.guard.circuit.succeeded()
        if limited is not None and status != 429:
            self.guard.budget.pause(limited.retry_after_s or reply.retry_after_s or 1.0)
        if reply.retry_after_s is None:
            return results
        return [self._with_retry_after(r, reply.retry_after_s) for r in results]

    async def post_query(
        self, query: TrackingQuery, path: str, form: Mapping[str, str], parse: QueryParser
    ) -> TrackingResult:
        """POST ``form`` to ``path`` and ``parse`` the answer as the result for ``query``."""
        client = self._lease.get()
        request = form_request(client, self._url(path), form, self._timeout_ext)
        reply = await self._send_request(client, request)  # as post_form, one await less
        if reply.error is not None:
            return self.failed(query, reply.error)
        status = reply.status
        result = parse(
            reply.body,
            courier=query.courier,
            tracking_number=query.tracking_number,
            source=self.name,
            http_status=status,
        )
        if result.error is None and reply.retry_after_s is None:
            # what checked() does for one good result, without its lists
            if status is not None and 200 <= status < 300:
                self.guard.circuit.succeeded()
            return result
        return self.checked([result], reply)[0]

    @staticmethod
    def _with_retry_after(result: TrackingResult, seconds: float) -> TrackingResult:
        error = result.error
        if error is None or error.retry_after_s is not None or error.kind not in _RETRY_LATER:
            return result
        return replace(result, error=replace(error, retry_after_s=max(seconds, 1.0)))

    async def each(
        self,
        queries: list[TrackingQuery],
        one: Callable[[TrackingQuery], Awaitable[TrackingResult]],
    ) -> list[TrackingResult]:
        """Run ``one`` for every query concurrently; a crash stays with its own query."""

        async def guarded(query: TrackingQuery) -> TrackingResult:
            try:
                return await one(query)
            except Exception as exc:
                _log.exception(
                    "adapter_query_failed",
                    provider=self.name,
                    tracking_number=query.tracking_number,
                )
                error = TrackingError(
                    ErrorKind.PROVIDER, f"{self.name}: adapter error: {exc!r}", True
                )
                return self.failed(query, error)

        if len(queries) == 1:  # one-number providers: a task per query would be pure cost
            return [await guarded(queries[0])]
        return list(await asyncio.gather(*(guarded(q) for q in queries)))
