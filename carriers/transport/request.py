"""Sending one request politely: rate budget, auth circuit, retries with back-off and jitter.

:func:`send` never raises for network or provider trouble. It answers with a
:class:`Reply` holding either the final response (whatever its status; the provider's
parser turns it into results, keeping the body excerpt) or a :class:`TrackingError` when no
usable response came (timeouts and connection errors after the last attempt, the circuit
open, the quota used up, the rate budget too far out).

* 5xx (but 501), 408 and network errors are retried with exponential back-off and jitter;
  a ``Retry-After`` on them is honoured when it is short enough.
* 429 pauses the whole provider's budget for ``Retry-After`` (or ``x-ratelimit-reset``),
  then retries; a wait longer than ``max_wait_s`` is handed back as ``retry_after_s`` so
  the parcel's next poll is scheduled after it instead.
* 401 and 403 trip the provider's auth circuit and are not retried.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime

import httpx
import structlog

from carriers.model import ErrorKind, TrackingError
from carriers.transport.budget import Denial, DenialReason
from carriers.transport.client import send_read
from carriers.transport.guard import ProviderGuard

__all__ = ["Reply", "RetryPolicy", "Sleep", "admit", "parse_retry_after", "send"]

Sleep = Callable[[float], Awaitable[None]]

_log = structlog.get_logger("carriers.transport")
_EXCERPT = 300


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard to try: total attempts, back-off range and the longest in-line wait."""

    attempts: int = 3
    backoff_base_s: float = 0.5
    backoff_max_s: float = 8.0
    max_wait_s: float = 30.0

    def backoff(self, attempt: int, rng: Callable[[], float] = random.random) -> float:
        """Delay after failed attempt ``attempt`` (0-based): doubling, half of it jittered."""
        ceiling = min(self.backoff_max_s, self.backoff_base_s * 2.0**attempt)
        return ceiling / 2 + rng() * ceiling / 2


@dataclass(frozen=True, slots=True)
class Reply:
    """The outcome of :func:`send`: a response, or an error when none is usable."""

    response: httpx.Response | None
    error: TrackingError | None = None
    retry_after_s: float | None = None
    attempts: int = 0

    @property
    def status(self) -> int | None:
        """The HTTP status of the final response, if any."""
        return self.response.status_code if self.response is not None else None

    @property
    def body(self) -> bytes:
        """The raw body of the final response (empty without one)."""
        return self.response.content if self.response is not None else b""


def parse_retry_after(headers: Mapping[str, str], now: datetime) -> float | None:
    """Seconds to wait from ``Retry-After`` (seconds or HTTP date) or ``x-ratelimit-reset``.

    ``x-ratelimit-reset`` is a Unix time (AfterShip) or, when small, a number of seconds.
    """
    value = headers.get("retry-after")
    if value:
        try:
            return max(0.0, float(value.strip()))
        except ValueError:
            try:
                when = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None and when.tzinfo is not None:
                return max(0.0, (when - now).total_seconds())
    reset = headers.get("x-ratelimit-reset")
    if reset:
        try:
            number = float(reset.strip())
        except ValueError:
            return None
        return max(0.0, number - now.timestamp()) if number > 1e9 else max(0.0, number)
    return None


def admit(guard: ProviderGuard, wall: datetime, max_wait_s: float) -> float | TrackingError:
    """Seconds to wait before sending, or the error that stops this request (no network)."""
    remaining = guard.circuit.check()
    if remaining is not None:
        return TrackingError(
            ErrorKind.AUTH,
            f"{guard.name}: credentials rejected ({guard.circuit.reason}); "
            f"requests paused for {remaining:.0f} s",
            retryable=False,
            retry_after_s=max(remaining, 1.0),
        )
    slot = guard.budget.reserve(wall, max_wait_s)
    if not isinstance(slot, Denial):
        return slot
    if slot.reason is DenialReason.QUOTA:
        return TrackingError(
            ErrorKind.QUOTA_EXCEEDED,
            f"{guard.name}: daily quota of {guard.budget.daily_quota} requests used up",
            retryable=True,
            retry_after_s=slot.retry_after_s,
        )
    return TrackingError(
        ErrorKind.RATE_LIMITED,
        f"{guard.name}: rate budget ({guard.budget.rate_per_s:g}/s) "
        f"{'paused by the provider' if slot.reason is DenialReason.PAUSED else 'exhausted'}",
        retryable=True,
        retry_after_s=max(slot.retry_after_s, 1.0),
    )


def _retryable_status(status: int) -> bool:
    return status in (408, 429) or (status >= 500 and status != 501)


async def send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    guard: ProviderGuard,
    *,
    clock: Callable[[], datetime],
    policy: RetryPolicy = RetryPolicy(),
    sleep: Sleep = asyncio.sleep,
    rng: Callable[[], float] = random.random,
) -> Reply:
    """Send ``request`` within ``guard``'s budget, retrying what is worth retrying."""
    last_error: TrackingError | None = None
    last_response: httpx.Response | None = None
    for attempt in range(policy.attempts):
        slot = admit(guard, clock(), policy.max_wait_s)
        if isinstance(slot, TrackingError):
            if last_response is not None:  # the provider's own answer says more
                return Reply(last_response, None, slot.retry_after_s, attempt)
            return Reply(None, last_error or slot, slot.retry_after_s, attempt)
        if slot > 0:
            await sleep(slot)
        last = attempt + 1 == policy.attempts
        try:
            response = await send_read(client, request)
        except httpx.TimeoutException as exc:
            last_response = None
            last_error = TrackingError(
                ErrorKind.NETWORK, f"{guard.name}: timed out ({type(exc).__name__})", True
            )
        except httpx.TransportError as exc:
            last_response = None
            detail = str(exc) or type(exc).__name__
            last_error = TrackingError(
                ErrorKind.NETWORK, f"{guard.name}: connection failed: {detail}", True
            )
        else:
            status = response.status_code
            if status in (401, 403):
                guard.circuit.trip(f"HTTP {status}: {_excerpt(response)}")
                return Reply(response, attempts=attempt + 1)
            if not _retryable_status(status):
                return Reply(response, attempts=attempt + 1)
            wait = parse_retry_after(response.headers, clock())
            if status == 429:
                guard.budget.pause(wait if wait is not None else policy.backoff(attempt, rng))
            if last or (wait is not None and wait > policy.max_wait_s):
                return Reply(response, retry_after_s=wait, attempts=attempt + 1)
            last_response, last_error = response, None
            _log.debug("provider_retry", provider=guard.name, status=status, attempt=attempt + 1)
            if status != 429:  # a 429 waits through the paused budget instead
                await sleep(wait if wait is not None else policy.backoff(attempt, rng))
            continue
        if not last:
            _log.debug("provider_retry", provider=guard.name, error=last_error.message)
            await sleep(policy.backoff(attempt, rng))
    return Reply(None, last_error, attempts=policy.attempts)


def _excerpt(response: httpx.Response) -> str:
    return response.content[: _EXCERPT * 2].decode("utf-8", "replace")[:_EXCERPT].strip()
