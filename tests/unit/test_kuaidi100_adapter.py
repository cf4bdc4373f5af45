"""Kuaidi100 adapter on the wire (respx): signing, batching, pace, errors per number, subscribe."""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from carriers.kuaidi100.adapter import Kuaidi100Source
from carriers.model import ErrorKind, Location, Status, TrackingQuery
from carriers.transport import OptionError
from tests.unit.adapter_kit import NGINX_502, FakeTime, build, fixture, mocked

BASE = "https://k100.test"
QUERY_URL = f"{BASE}/poll/query.do"
OPTIONS: dict[str, Any] = {"customer": "CUST01", "key": "KEY01", "base_url": BASE}


def k100(name: str) -> bytes:
    """A Kuaidi100 fixture's bytes."""
    return fixture("kuaidi100", name)


def form_of(request: httpx.Request) -> dict[str, str]:
    """The decoded form fields of a request."""
    return dict(parse_qsl(request.content.decode("utf-8")))


def number_of(request: httpx.Request) -> str:
    """The tracking number a query request asks about."""
    return str(json.loads(form_of(request)["param"])["num"])


async def test_query_is_signed_md5_of_param_key_customer_with_hints() -> None:
    """The form carries customer, param (com, num, phone, from, to, resultv2=4) and its sign."""
    source = build(Kuaidi100Source, OPTIONS)
    query = TrackingQuery(
        "sf",
        "SF1400000000001",
        phone="13800138000",
        origin=Location("中国", "广东省", "广州市"),
        destination=Location("中国", "上海市", "上海市", "浦东新区"),
    )
    with mocked() as router:
        route = router.post(QUERY_URL).mock(
            return_value=httpx.Response(200, content=k100("query_resultv2_4_delivered.json"))
        )
        [result] = await source.track([query])
    form = form_of(route.calls.last.request)
    param = json.loads(form["param"])
    assert form["customer"] == "CUST01"
    expected = hashlib.md5((form["param"] + "KEY01" + "CUST01").encode()).hexdigest().upper()
    assert form["sign"] == expected
    assert param["com"] == "shunfeng" and param["num"] == "SF1400000000001"
    assert param["phone"] == "13800138000" and param["resultv2"] == "4"
    assert param["from"] == "广东省广州市" and param["to"] == "上海市浦东新区"
    assert result.ok and result.status is Status.DELIVERED and result.source == "src"
    await source.aclose()


async def test_batch_runs_every_number_concurrently_within_the_rate_budget() -> None:
    """25 numbers at 5/s with no burst: 25 requests, spaced 0.2 s apart in reservation order."""
    time = FakeTime()
    source = build(Kuaidi100Source, {**OPTIONS, "requests_per_s": 5, "burst": 1}, time, frozen=True)
    assert source.max_batch == 25
    queries = [TrackingQuery("yto", f"YT70000000{i:02d}") for i in range(25)]
    with mocked() as router:
        route = router.post(QUERY_URL).mock(
            return_value=httpx.Response(200, content=k100("query_resultv2_4_in_transit.json"))
        )
        results = await source.track(queries)
    assert route.call_count == 25
    assert sorted(number_of(c.request) for c in route.calls) == [q.tracking_number for q in queries]
    assert [r.tracking_number for r in results] == [q.tracking_number for q in queries]
    assert sorted(time.sleeps) == [pytest.approx(0.2 * i) for i in range(1, 25)]


async def test_one_bad_number_never_sinks_the_batch() -> None:
    """GBK body, HTML page, truncated JSON, timeout, unknown courier, no result: each its own."""
    good = k100("query_resultv2_4_in_transit.json")
    answers: dict[str, Any] = {
        "N-OK": httpx.Response(200, content=good),
        "N-GBK": httpx.Response(200, content=k100("query_resultv2_4_gbk_encoded.json")),
        "N-HTML": httpx.Response(502, content=NGINX_502),
        "N-TRUNC": httpx.Response(200, content=good[:120]),
        "N-NONE": httpx.Response(200, content=k100("query_500_no_result.json")),
        "N-SLOW": httpx.ReadTimeout("read timed out"),
        "N-408": httpx.Response(200, content=k100("query_408_phone_required.json")),
    }

    def answer(request: httpx.Request) -> httpx.Response:
        reply = answers[number_of(request)]
        if isinstance(reply, Exception):
            raise reply
        return reply

    source = build(Kuaidi100Source, OPTIONS)
    numbers = ["N-OK", "N-GBK", "N-HTML", "N-TRUNC", "N-NONE", "N-SLOW", "N-408"]
    queries = [TrackingQuery("yto", n) for n in numbers] + [TrackingQuery("nosuch", "N-X")]
    with mocked() as router:
        router.post(QUERY_URL).mock(side_effect=answer)
        results = {r.tracking_number: r for r in await source.track(queries)}
    assert results["N-OK"].ok and results["N-OK"].events
    assert results["N-GBK"].ok and results["N-GBK"].status is Status.READY_FOR_PICKUP
    html = results["N-HTML"].error
    assert (
        html is not None
        and html.kind is ErrorKind.BAD_RESPONSE
        and "502 Bad Gateway" in html.raw_excerpt
    )
    trunc = results["N-TRUNC"].error
    assert trunc is not None and trunc.kind is ErrorKind.BAD_RESPONSE and trunc.raw_excerpt
    assert results["N-NONE"].ok and results["N-NONE"].status is Status.PENDING
    slow = results["N-SLOW"].error
    assert slow is not None and slow.kind is ErrorKind.NETWORK and slow.retryable
    phone = results["N-408"].error
    assert phone is not None and phone.kind is ErrorKind.INVALID_NUMBER
    unsupported = results["N-X"].error
    assert unsupported is not None and unsupported.kind is ErrorKind.UNSUPPORTED_COURIER


async def test_key_rejected_in_the_body_stops_the_provider_until_the_cooldown() -> None:
    """Kuaidi100 returnCode 601 trips the circuit: the next batch fails fast, no request."""
    time = FakeTime()
    source = build(Kuaidi100Source, {**OPTIONS, "auth_cooldown_s": 300}, time)
    with mocked() as router:
        route = router.post(QUERY_URL).mock(
            return_value=httpx.Response(200, content=k100("query_601_key_expired.json"))
        )
        [first] = await source.track([TrackingQuery("yto", "A1")])
        later = await source.track([TrackingQuery("yto", f"B{i}") for i in range(10)])
        assert route.call_count == 1
        time.now += 301  # cool-down over: one probe goes out, and it works now
        route.mock(return_value=httpx.Response(200, content=k100("query_500_no_result.json")))
        [probe] = await source.track([TrackingQuery("yto", "C1")])
    assert first.error is not None and first.error.kind is ErrorKind.AUTH
    assert all(r.error is not None and r.error.kind is ErrorKind.AUTH for r in later)
    assert all(r.error is not None and r.error.retry_after_s == pytest.approx(300) for r in later)
    assert probe.ok and not source.guard.circuit.is_open


async def test_server_busy_in_the_body_slows_the_whole_provider_down() -> None:
    """Kuaidi100 returnCode 502 (服务器繁忙) is a rate limit: the shared budget pauses."""
    time = FakeTime()
    source = build(Kuaidi100Source, OPTIONS, time)
    with mocked() as router:
        router.post(QUERY_URL).mock(
            return_value=httpx.Response(200, content=k100("query_502_server_busy.json"))
        )
        [result] = await source.track([TrackingQuery("yto", "A1")])
    assert result.error is not None and result.error.kind is ErrorKind.RATE_LIMITED
    assert source.guard.budget.paused_for() == pytest.approx(1.0)


async def test_http_429_with_retry_after_is_obeyed_then_retried() -> None:
    """An HTTP 429 with Retry-After 3 waits 3 s (fake) and the retry's answer is used."""
    time = FakeTime()
    source = build(Kuaidi100Source, OPTIONS, time)
    with mocked() as router:
        router.post(QUERY_URL).mock(
            side_effect=[
                httpx.Response(429, headers={"Retry-After": "3"}, text="Too Many Requests"),
                httpx.Response(200, content=k100("query_resultv2_4_in_transit.json")),
            ]
        )
        [result] = await source.track([TrackingQuery("yto", "A1")])
    assert result.ok and time.sleeps == [3.0]


async def test_http_429_beyond_max_wait_is_recorded_with_its_retry_after() -> None:
    """A long Retry-After is not waited for: the error carries it for the poll schedule."""
    source = build(Kuaidi100Source, OPTIONS)
    with mocked() as router:
        router.post(QUERY_URL).mock(
            return_value=httpx.Response(429, headers={"Retry-After": "600"}, text="slow down")
        )
        [result] = await source.track([TrackingQuery("yto", "A1")])
    assert result.error is not None and result.error.kind is ErrorKind.RATE_LIMITED
    assert result.error.retry_after_s == 600.0 and "slow down" in result.error.raw_excerpt


async def test_subscribe_posts_schema_json_with_callback_and_salt() -> None:
    """Subscribe sends company, number, key and callbackurl/salt/resultv2; 501 counts as done."""
    source = build(Kuaidi100Source, {**OPTIONS, "salt": "S4LT", "callback_url": "https://me/cb"})
    with mocked() as router:
        route = router.post(f"{BASE}/poll").mock(
            side_effect=[
                httpx.Response(
                    200, json={"result": True, "returnCode": "200", "message": "提交成功"}
                ),
                httpx.Response(
                    200, json={"result": False, "returnCode": "501", "message": "重复订阅"}
                ),
                httpx.Response(
                    200, json={"result": False, "returnCode": "700", "message": "单号错误"}
                ),
            ]
        )
        outcomes = await source.subscribe(
            [TrackingQuery("yto", "A1"), TrackingQuery("yto", "A2"), TrackingQuery("yto", "A3")]
        )
    first = form_of(route.calls[0].request)
    param = json.loads(first["param"])
    assert first["schema"] == "json" and param["company"] == "yuantong" and param["key"] == "KEY01"
    assert param["parameters"]["callbackurl"] == "https://me/cb"
    assert param["parameters"]["salt"] == "S4LT" and param["parameters"]["resultv2"] == "4"
    assert [o.ok for o in outcomes] == [True, True, False]
    assert outcomes[2].error is not None and outcomes[2].error.kind is ErrorKind.INVALID_NUMBER


async def test_auto_subscribe_subscribes_live_parcels_once_per_process() -> None:
    """With subscribe = true, a live parcel is subscribed after its first poll, not again."""
    options = {**OPTIONS, "salt": "S", "callback_url": "https://me/cb", "subscribe": True}
    source = build(Kuaidi100Source, options, name="k100-auto")
    with mocked() as router:
        router.post(QUERY_URL).mock(
            return_value=httpx.Response(200, content=k100("query_resultv2_4_in_transit.json"))
        )
        sub = router.post(f"{BASE}/poll").mock(
            return_value=httpx.Response(200, json={"result": True, "returnCode": "200"})
        )
        await source.track([TrackingQuery("yto", "AUTO1")])
        await source.track([TrackingQuery("yto", "AUTO1")])
    assert sub.call_count == 1


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"key": "K"}, "customer"),
        ({"customer": "C"}, "key"),
        ({"customer": "C", "key": "K", "subscribe": True, "callback_url": "https://x"}, "salt"),
        ({"customer": "C", "key": "K", "subscribe": True, "salt": "S"}, "callback_url"),
    ],
)
def test_missing_keys_are_config_errors_naming_the_key(options: dict[str, Any], key: str) -> None:
    """Construction validates the required keys and names the missing one."""
    with pytest.raises(OptionError) as caught:
        build(Kuaidi100Source, options)
    assert caught.value.key == key
