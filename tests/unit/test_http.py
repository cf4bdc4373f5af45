"""The shared HTTP pieces: rate budget, auth circuit, retries, Retry-After, client sharing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from httpx_aiohttp import AiohttpTransport
from structlog.testing import capture_logs

from carriers.model import ErrorKind, TrackingQuery, TrackingResult
from carriers.transport import (
    ClientLease,
    Denial,
    DenialReason,
    GuardRegistry,
    HttpSource,
    Memo,
    OptionError,
    RateBudget,
    RetryPolicy,
    SharedClient,
    make_client,
    parse_retry_after,
    send,
)
from carriers.transport.circuit import AuthCircuit
from tests.unit.adapter_kit import NGINX_502, NOW, FakeTime, build, mocked

URL = "https://api.test/x"


# --- rate budget ------------------------------------------------------------------------


def test_budget_spaces_requests_at_the_configured_rate_after_the_burst() -> None:
    """Two per second with a burst of 2: two go at once, then one every half second."""
    time = FakeTime()
    budget = RateBudget(2.0, burst=2, monotonic=time.monotonic)
    waits = [budget.reserve(NOW, max_wait_s=10) for _ in range(5)]
    assert waits == [0.0, 0.0, 0.5, 1.0, 1.5]


def test_budget_refuses_slots_beyond_max_wait_without_using_them() -> None:
    """A slot further out than max_wait is refused with the wait, and not taken."""
    time = FakeTime()
    budget = RateBudget(1.0, monotonic=time.monotonic)
    assert budget.reserve(NOW, max_wait_s=1.5) == 0.0
    assert budget.reserve(NOW, max_wait_s=1.5) == 1.0
    denied = budget.reserve(NOW, max_wait_s=1.5)
    assert denied == Denial(DenialReason.RATE, 2.0)
    time.now += 1.0
    assert budget.reserve(NOW, max_wait_s=1.5) == 1.0  # the refused slot was not consumed


def test_budget_daily_quota_resets_at_midnight_beijing_time() -> None:
    """After the quota no slot is given until Beijing midnight, whose distance is returned."""
    time = FakeTime()
    budget = RateBudget(100.0, burst=100, daily_quota=2, monotonic=time.monotonic)
    evening = datetime(2026, 9, 14, 15, 0, tzinfo=UTC)  # 23:00 in Beijing
    assert budget.reserve(evening, 10) == 0.0
    assert budget.reserve(evening, 10) == 0.0
    denied = budget.reserve(evening, 10)
    assert isinstance(denied, Denial) and denied.reason is DenialReason.QUOTA
    assert denied.retry_after_s == pytest.approx(3600)
    assert budget.reserve(evening + timedelta(hours=1, seconds=1), 10) == 0.0
    assert budget.used_today == 1


def test_budget_pause_holds_every_request_and_long_pauses_refuse() -> None:
    """A pause delays the next slot to its end; one longer than max_wait is refused."""
    time = FakeTime()
    budget = RateBudget(10.0, burst=10, monotonic=time.monotonic)
    budget.pause(3.0)
    assert budget.reserve(NOW, max_wait_s=5) == pytest.approx(3.0)
    budget.pause(60.0)
    denied = budget.reserve(NOW, max_wait_s=5)
    assert isinstance(denied, Denial) and denied.reason is DenialReason.PAUSED
    assert denied.retry_after_s == pytest.approx(60.0)


# --- auth circuit -----------------------------------------------------------------------


def test_circuit_logs_once_per_outage_fails_fast_then_lets_one_probe_through() -> None:
    """Tripping logs one error; repeats are quiet; after the cool-down exactly one probe goes."""
    time = FakeTime()
    circuit = AuthCircuit("k100", cooldown_s=600, monotonic=time.monotonic)
    with capture_logs() as logs:
        circuit.trip("HTTP 401")
        circuit.trip("HTTP 401")
        assert circuit.check() == pytest.approx(600)
        time.now += 601
        assert circuit.check() is None  # the probe
        assert circuit.check() == pytest.approx(60)  # others wait for the probe
        circuit.trip("HTTP 401")  # the probe failed too: quietly closed again for 600 s
        assert circuit.check() == pytest.approx(600)
        circuit.succeeded()
        circuit.succeeded()
        assert circuit.check() is None
    events = [(e["event"], e["log_level"]) for e in logs]
    assert events == [("provider_auth_rejected", "error"), ("provider_auth_recovered", "info")]
    assert logs[0]["provider"] == "k100" and logs[0]["error"] == "HTTP 401"


# --- Retry-After ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "7"}, 7.0),
        ({"retry-after": "Mon, 14 Sep 2026 02:00:30 GMT"}, 30.0),
        ({"x-ratelimit-reset": str(int(NOW.timestamp()) + 45)}, 45.0),
        ({"x-ratelimit-reset": "12"}, 12.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_reads_seconds_dates_and_reset_times(
    headers: dict[str, str], seconds: float | None
) -> None:
    """Retry-After in seconds or as a date, and x-ratelimit-reset as epoch or seconds."""
    assert parse_retry_after(httpx.Headers(headers), NOW) == seconds


# --- send: retries, back-off, 429, auth, quota ------------------------------------------


def _guard(time: FakeTime, rate: float = 100.0, **kw: Any) -> Any:
    return GuardRegistry(monotonic=time.monotonic).get("p", rate_per_s=rate, burst=100, **kw)


async def _send(guard: Any, time: FakeTime, **kw: Any) -> Any:
    async with httpx.AsyncClient() as client:
        return await send(
            client,
            client.build_request("GET", URL),
            guard,
            clock=lambda: NOW,
            sleep=time.sleep,
            rng=lambda: 1.0,
            **kw,
        )


async def test_5xx_is_retried_with_growing_backoff_then_succeeds() -> None:
    """502, 503, then 200: two back-off sleeps that grow, and the 200 comes back."""
    time = FakeTime()
    with mocked() as router:
        route = router.get(URL).mock(
            side_effect=[
                httpx.Response(502, content=NGINX_502),
                httpx.Response(503),
                httpx.Response(200, json={"ok": 1}),
            ]
        )
        reply = await _send(_guard(time), time)
    assert route.call_count == 3 and reply.status == 200 and reply.error is None
    assert time.sleeps == [0.5, 1.0]


async def test_5xx_to_the_last_attempt_returns_the_last_response_for_parsing() -> None:
    """When every attempt fails with 5xx the final response (body and all) is handed back."""
    time = FakeTime()
    with mocked() as router:
        router.get(URL).mock(return_value=httpx.Response(502, content=NGINX_502))
        reply = await _send(_guard(time), time, policy=RetryPolicy(attempts=2))
    assert reply.status == 502 and reply.body == NGINX_502 and reply.attempts == 2


async def test_backoff_has_jitter_between_half_and_full_delay() -> None:
    """The delay after attempt n lies in [d/2, d] with d = base * 2**n, capped."""
    policy = RetryPolicy(backoff_base_s=1.0, backoff_max_s=4.0)
    assert policy.backoff(0, lambda: 0.0) == 0.5
    assert policy.backoff(1, lambda: 1.0) == 2.0
    assert policy.backoff(5, lambda: 1.0) == 4.0


async def test_timeouts_and_connection_errors_become_a_network_error_after_retries() -> None:
    """Timeouts are retried; when all attempts fail the reply carries a NETWORK error."""
    time = FakeTime()
    with mocked() as router:
        route = router.get(URL).mock(
            side_effect=[
                httpx.ReadTimeout("slow"),
                httpx.ConnectError("refused"),
                httpx.ReadTimeout("x"),
            ]
        )
        reply = await _send(_guard(time), time)
    assert route.call_count == 3 and reply.response is None
    assert reply.error is not None and reply.error.kind is ErrorKind.NETWORK
    assert reply.error.retryable and "timed out" in reply.error.message


async def test_429_pauses_the_provider_for_retry_after_then_retries() -> None:
    """A 429 with Retry-After 2 pauses the shared budget; the retry waits 2 s and succeeds."""
    time = FakeTime()
    guard = _guard(time)
    with mocked() as router:
        router.get(URL).mock(
            side_effect=[
                httpx.Response(429, headers={"retry-after": "2"}),
                httpx.Response(200, json={}),
            ]
        )
        reply = await _send(guard, time)
    assert reply.status == 200 and time.sleeps == [2.0]


async def test_429_with_a_long_retry_after_is_handed_back_and_holds_other_requests() -> None:
    """Retry-After beyond max_wait: no in-line wait; the reply and the budget carry it."""
    time = FakeTime()
    guard = _guard(time)
    with mocked() as router:
        route = router.get(URL).mock(
            return_value=httpx.Response(429, headers={"retry-after": "120"})
        )
        reply = await _send(guard, time)
        assert reply.status == 429 and reply.retry_after_s == 120.0 and route.call_count == 1
        held = await _send(guard, time)  # another job's request: refused without a call
    assert route.call_count == 1 and time.sleeps == []
    assert held.error is not None and held.error.kind is ErrorKind.RATE_LIMITED
    assert held.error.retry_after_s == pytest.approx(120.0)


async def test_401_trips_the_circuit_so_later_requests_fail_fast_without_network() -> None:
    """401 is not retried; the next request gets an AUTH error with no HTTP call at all."""
    time = FakeTime()
    guard = _guard(time)
    with mocked() as router, capture_logs() as logs:
        route = router.get(URL).mock(return_value=httpx.Response(401, json={"msg": "bad key"}))
        first = await _send(guard, time)
        second = await _send(guard, time)
        third = await _send(guard, time)
    assert first.status == 401 and route.call_count == 1
    for reply in (second, third):
        assert reply.error is not None and reply.error.kind is ErrorKind.AUTH
        assert reply.error.retry_after_s == pytest.approx(900)
    assert [e["event"] for e in logs if e["log_level"] == "error"] == ["provider_auth_rejected"]


async def test_quota_used_up_answers_quota_exceeded_without_a_request() -> None:
    """With the daily quota spent, send returns QUOTA_EXCEEDED with the time to midnight."""
    time = FakeTime()
    guard = _guard(time, daily_quota=1)
    with mocked() as router:
        route = router.get(URL).mock(return_value=httpx.Response(200, json={}))
        await _send(guard, time)
        reply = await _send(guard, time)
    assert route.call_count == 1
    assert reply.error is not None and reply.error.kind is ErrorKind.QUOTA_EXCEEDED
    assert reply.error.retry_after_s is not None and reply.error.retry_after_s > 3600


# --- clients ----------------------------------------------------------------------------


async def test_make_client_uses_the_aiohttp_transport_with_the_given_limits() -> None:
    """The shared client keeps httpx's API over aiohttp's pool."""
    client = make_client(max_connections=32, timeout_s=3)
    try:
        transport = client._transport
        assert isinstance(transport, AiohttpTransport)
        assert transport.limits.max_connections == 32
        assert client.timeout.read == 3 and client.timeout.connect == 3
    finally:
        await client.aclose()


async def test_shared_client_is_created_on_use_and_closed_by_its_last_user() -> None:
    """Nothing is opened until used; the last lease's release closes the one client."""
    shared = SharedClient()
    first, second = ClientLease(shared), ClientLease(shared)
    client = first.get()
    assert second.get() is client and not client.is_closed
    await first.release()
    await first.release()  # idempotent: must not count twice
    assert not client.is_closed
    await second.release()
    assert client.is_closed


async def test_lease_of_a_callers_client_never_closes_it() -> None:
    """A client passed in by the caller stays the caller's to close."""
    async with httpx.AsyncClient() as client:
        lease = ClientLease(client)
        assert lease.get() is client
        await lease.release()
        assert not client.is_closed


# --- the source base class --------------------------------------------------------------


class _Echo(HttpSource):
    """A minimal source for testing the base class."""

    default_base_url = "https://api.test"
    crash: Exception | None = None
    short = False

    async def _track(self, queries: list[TrackingQuery]) -> list[TrackingResult]:
        if self.crash is not None:
            raise self.crash
        results = [TrackingResult(q.courier, q.tracking_number, self.name) for q in queries]
        return results[:-1] if self.short else results


async def test_track_turns_an_adapter_bug_into_per_query_errors() -> None:
    """A crash or a wrong result count gives a PROVIDER error per query, never an exception."""
    source = build(_Echo, {})
    queries = [TrackingQuery("yto", "A"), TrackingQuery("yto", "B")]
    source.crash = KeyError("boom")
    results = await source.track(queries)
    assert [r.tracking_number for r in results] == ["A", "B"]
    assert all(r.error is not None and r.error.kind is ErrorKind.PROVIDER for r in results)
    source.crash, source.short = None, True
    results = await source.track(queries)
    assert all(r.error is not None and "1 results for 2" in r.error.message for r in results)
    await source.aclose()


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"base_url": "ftp://x"}, "base_url"),
        ({"requests_per_s": 0}, "requests_per_s"),
        ({"daily_quota": 1.5}, "daily_quota"),
        ({"timeout_s": "fast"}, "timeout_s"),
        ({"max_attempts": 2.5}, "max_attempts"),
    ],
)
def test_bad_shared_options_raise_an_option_error_naming_the_key(
    options: dict[str, Any], key: str
) -> None:
    """Every shared option is validated at construction; the error names the key."""
    with pytest.raises(OptionError) as caught:
        build(_Echo, options)
    assert caught.value.key == key and str(caught.value).startswith(f"{key}: ")


def test_memo_keeps_only_the_most_recently_used_entries() -> None:
    """Per-parcel memories are bounded: the least recently used entry goes first."""
    memo: Memo[str, int] = Memo(size=2)
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1  # "a" is now the most recent
    memo.put("c", 3)
    assert "b" not in memo and memo.get("a") == 1 and memo.get("c") == 3 and len(memo) == 2
    memo.forget("a")
    assert memo.get("a") is None


async def test_source_requests_carry_the_configured_timeout() -> None:
    """``timeout_s`` reaches every request as httpx's timeout (connect capped at 5 s)."""
    source = build(_Echo, {"timeout_s": 7.5})
    seen: list[dict[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={})

    with mocked() as router:
        router.post("https://api.test/q").mock(side_effect=answer)
        for _ in range(2):
            reply = await source.request("POST", "/q", data={"a": "1"})
            assert reply.status == 200
    assert seen == [{"connect": 5.0, "read": 7.5, "write": 7.5, "pool": 7.5}] * 2
    await source.aclose()
