"""Kdniao adapter on the wire (respx): DataSign, request types, pace and errors per number."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from carriers.kdniao.adapter import KdniaoSource
from carriers.model import ErrorKind, Problem, Status, TrackingQuery
from carriers.transport import OptionError
from tests.unit.adapter_kit import NGINX_502, FakeTime, build, fixture, mocked

BASE = "https://kdn.test"
URL = f"{BASE}/Ebusiness/EbusinessOrderHandle.aspx"
OPTIONS: dict[str, Any] = {"business_id": "1237100", "api_key": "APIKEY-1", "base_url": BASE}


def kdn(name: str) -> bytes:
    """A Kdniao fixture's bytes."""
    return fixture("kdniao", name)


def form_of(request: httpx.Request) -> dict[str, str]:
    """The decoded form fields of a request."""
    return dict(parse_qsl(request.content.decode("utf-8")))


def number_of(request: httpx.Request) -> str:
    """The LogisticCode a request asks about."""
    return str(json.loads(form_of(request)["RequestData"])["LogisticCode"])


async def test_request_is_signed_and_url_encoded_once() -> None:
    """DataSign = base64(md5hex(RequestData + key)), URL-encoded once on the wire; 8001 default."""
    source = build(KdniaoSource, OPTIONS)
    with mocked() as router:
        route = router.post(URL).mock(
            return_value=httpx.Response(200, content=kdn("query_8001_delivered.json"))
        )
        [result] = await source.track([TrackingQuery("jd", "JDVA00000000002")])
    request = route.calls.last.request
    form = form_of(request)
    digest = hashlib.md5((form["RequestData"] + "APIKEY-1").encode()).hexdigest()
    sign = base64.b64encode(digest.encode()).decode()
    assert form["DataSign"] == sign and sign.endswith("=")
    assert b"DataSign=" + sign.replace("=", "%3D").encode() in request.content
    assert form["EBusinessID"] == "1237100" and form["RequestType"] == "8001"
    assert form["DataType"] == "2"
    data = json.loads(form["RequestData"])
    assert data["ShipperCode"] == "JD" and data["LogisticCode"] == "JDVA00000000002"
    assert result.ok and result.status is Status.DELIVERED
    await source.aclose()


async def test_sf_sends_the_phone_tail_and_1002_can_be_chosen() -> None:
    """request_type 1002 is sent as configured; SF gets CustomerName = last 4 phone digits."""
    source = build(KdniaoSource, {**OPTIONS, "request_type": 1002})
    with mocked() as router:
        route = router.post(URL).mock(
            return_value=httpx.Response(200, content=kdn("query_1002_docs_example_delivered.json"))
        )
        [result] = await source.track([TrackingQuery("sf", "118461988807", phone="13800138000")])
    form = form_of(route.calls.last.request)
    assert form["RequestType"] == "1002"
    assert json.loads(form["RequestData"])["CustomerName"] == "8000"
    assert result.ok and result.status is Status.DELIVERED


async def test_one_bad_number_never_sinks_the_batch() -> None:
    """No trace, locker overdue, bad shipper, GBK body, HTML page, malformed JSON: per number."""
    gbk = json.dumps(json.loads(kdn("query_8001_out_for_delivery.json")), ensure_ascii=False)
    answers = {
        "N-NOTRACE": httpx.Response(200, content=kdn("query_8001_no_trace.json")),
        "N-LOCKER": httpx.Response(200, content=kdn("query_8001_locker_overdue.json")),
        "N-SHIPPER": httpx.Response(200, content=kdn("query_error_invalid_shipper_code.json")),
        "N-GBK": httpx.Response(200, content=gbk.encode("gbk")),
        "N-HTML": httpx.Response(500, content=NGINX_502),
        "N-BAD": httpx.Response(200, content=b'{"Success": tru'),
    }
    source = build(KdniaoSource, OPTIONS)
    queries = [TrackingQuery("jd", n) for n in answers] + [TrackingQuery("nosuch", "N-X")]
    with mocked() as router:
        router.post(URL).mock(side_effect=lambda request: answers[number_of(request)])
        results = {r.tracking_number: r for r in await source.track(queries)}
    assert results["N-NOTRACE"].ok and results["N-NOTRACE"].status is Status.PENDING
    assert results["N-LOCKER"].ok and results["N-LOCKER"].problem is Problem.LOCKER_OVERDUE
    shipper = results["N-SHIPPER"].error
    assert shipper is not None and shipper.kind is ErrorKind.UNSUPPORTED_COURIER
    assert results["N-GBK"].ok and results["N-GBK"].status is Status.OUT_FOR_DELIVERY
    html = results["N-HTML"].error
    assert html is not None and html.kind is ErrorKind.BAD_RESPONSE and "<html>" in html.raw_excerpt
    bad = results["N-BAD"].error
    assert bad is not None and bad.kind is ErrorKind.BAD_RESPONSE and bad.raw_excerpt
    unsupported = results["N-X"].error
    assert unsupported is not None and unsupported.kind is ErrorKind.UNSUPPORTED_COURIER


async def test_invalid_id_or_key_stops_the_provider() -> None:
    """非法参数[请核实ID和key是否正确] is an auth error: later numbers fail fast, no requests."""
    source = build(KdniaoSource, OPTIONS)
    with mocked() as router:
        route = router.post(URL).mock(
            return_value=httpx.Response(200, content=kdn("query_error_invalid_id_key.json"))
        )
        [first] = await source.track([TrackingQuery("jd", "A")])
        later = await source.track([TrackingQuery("jd", "B"), TrackingQuery("jd", "C")])
    assert route.call_count == 1
    assert first.error is not None and first.error.kind is ErrorKind.AUTH
    assert all(r.error is not None and r.error.kind is ErrorKind.AUTH for r in later)


async def test_too_frequent_and_no_package_are_rate_and_quota_errors() -> None:
    """请求过于频繁 pauses the shared budget (the next request waits 1 s); 没有可用套餐 is quota."""
    time = FakeTime()
    source = build(KdniaoSource, OPTIONS, time)
    answers = {
        "FAST": httpx.Response(200, content=kdn("query_error_too_frequent.json")),
        "BROKE": httpx.Response(200, content=kdn("query_error_no_package.json")),
    }
    with mocked() as router:
        router.post(URL).mock(side_effect=lambda request: answers[number_of(request)])
        fast, broke = await source.track(
            [TrackingQuery("jd", "FAST"), TrackingQuery("jd", "BROKE")]
        )
    assert fast.error is not None and fast.error.kind is ErrorKind.RATE_LIMITED
    assert broke.error is not None and broke.error.kind is ErrorKind.QUOTA_EXCEEDED
    assert time.sleeps == [1.0]  # the mock answers at once, so the second request came after


async def test_daily_quota_from_config_is_enforced_without_requests() -> None:
    """daily_quota = 2: the third number gets QUOTA_EXCEEDED and no request is sent."""
    source = build(KdniaoSource, {**OPTIONS, "daily_quota": 2, "burst": 5})
    with mocked() as router:
        route = router.post(URL).mock(
            return_value=httpx.Response(200, content=kdn("query_8001_delivered.json"))
        )
        results = await source.track([TrackingQuery("jd", n) for n in ("A", "B", "C")])
    assert route.call_count == 2
    kinds = sorted(r.error.kind.value if r.error else "ok" for r in results)
    assert kinds == ["ok", "ok", "quota_exceeded"]


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"api_key": "K"}, "business_id"),
        ({"business_id": "1"}, "api_key"),
        ({"business_id": "1", "api_key": "K", "request_type": "9999"}, "request_type"),
    ],
)
def test_bad_config_names_the_key(options: dict[str, Any], key: str) -> None:
    """Missing credentials or an unknown request type are refused at construction."""
    with pytest.raises(OptionError) as caught:
        build(KdniaoSource, options)
    assert caught.value.key == key
