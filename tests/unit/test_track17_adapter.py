"""17TRACK adapter on the wire (respx): 17token, 40-number batches, register-then-get, errors."""

from __future__ import annotations

import copy
import json
from typing import Any

import httpx
import pytest

from carriers.model import ErrorKind, Status, TrackingQuery
from carriers.track17.adapter import Track17Source
from carriers.transport import OptionError
from tests.unit.adapter_kit import NGINX_502, build, fixture, mocked

BASE = "https://t17.test"
API = f"{BASE}/track/v2.2"
OPTIONS: dict[str, Any] = {"api_key": "TOKEN-17", "base_url": BASE}
NOT_REGISTERED = -18019902


def _accepted_template() -> dict[str, Any]:
    doc = json.loads(fixture("track17", "v2_gettrackinfo_yanwen_190012.json"))
    item: dict[str, Any] = doc["data"]["accepted"][0]
    return item


class Fake17:
    """A tiny 17TRACK: knows registered numbers, answers gettrackinfo and register."""

    def __init__(self, registered: set[str], invalid: frozenset[str] = frozenset()) -> None:
        self.registered = set(registered)
        self.invalid = invalid
        self.bodies: dict[str, list[list[dict[str, Any]]]] = {"gettrackinfo": [], "register": []}

    def gettrackinfo(self, request: httpx.Request) -> httpx.Response:
        """Accepted items for registered numbers, -18019902 for the rest."""
        body = json.loads(request.content)
        self.bodies["gettrackinfo"].append(body)
        accepted, rejected = [], []
        for item in body:
            if item["number"] in self.registered:
                found = copy.deepcopy(_accepted_template())
                found["number"] = item["number"]
                accepted.append(found)
            else:
                rejected.append(
                    {
                        "number": item["number"],
                        "error": {"code": NOT_REGISTERED, "message": "register first"},
                    }
                )
        return httpx.Response(
            200, json={"code": 0, "data": {"accepted": accepted, "rejected": rejected}}
        )

    def register(self, request: httpx.Request) -> httpx.Response:
        """Registers valid numbers; invalid ones are rejected with -18010012."""
        body = json.loads(request.content)
        self.bodies["register"].append(body)
        accepted, rejected = [], []
        for item in body:
            if item["number"] in self.invalid:
                rejected.append(
                    {
                        "number": item["number"],
                        "error": {"code": -18010012, "message": "bad format"},
                    }
                )
            else:
                self.registered.add(item["number"])
                accepted.append({"number": item["number"], "carrier": item.get("carrier", 0)})
        return httpx.Response(
            200, json={"code": 0, "data": {"accepted": accepted, "rejected": rejected}}
        )


async def test_a_batch_of_40_is_one_call_with_the_17token_header() -> None:
    """40 registered numbers: one gettrackinfo with the token header, carrier keys, in order."""
    numbers = [f"1Z999AA1012345{i:04d}" for i in range(40)]
    fake = Fake17(set(numbers))
    source = build(Track17Source, OPTIONS)
    assert source.max_batch == 40
    with mocked() as router:
        route = router.post(f"{API}/gettrackinfo").mock(side_effect=fake.gettrackinfo)
        results = await source.track([TrackingQuery("ups", n) for n in numbers])
    assert route.call_count == 1
    request = route.calls.last.request
    assert request.headers["17token"] == "TOKEN-17"
    assert request.headers["content-type"] == "application/json"
    body = json.loads(request.content)
    assert [item["number"] for item in body] == numbers and body[0]["carrier"] == 100002
    assert [r.tracking_number for r in results] == numbers
    assert all(r.ok and r.status is Status.IN_TRANSIT for r in results)
    await source.aclose()


async def test_unknown_numbers_are_registered_then_asked_again_bad_ones_stay_errors() -> None:
    """Only not-registered numbers are registered (quota); invalid ones come back as errors."""
    fake = Fake17({"KNOWN1"}, invalid=frozenset({"1234"}))
    source = build(Track17Source, OPTIONS)
    queries = [
        TrackingQuery("dhl", "KNOWN1"),
        TrackingQuery("dhl", "NEW1"),
        TrackingQuery("dhl", "1234"),
    ]
    with mocked() as router:
        get = router.post(f"{API}/gettrackinfo").mock(side_effect=fake.gettrackinfo)
        reg = router.post(f"{API}/register").mock(side_effect=fake.register)
        known, new, invalid = await source.track(queries)
    assert reg.call_count == 1 and [i["number"] for i in fake.bodies["register"][0]] == [
        "NEW1",
        "1234",
    ]
    assert get.call_count == 2 and [i["number"] for i in fake.bodies["gettrackinfo"][1]] == ["NEW1"]
    assert known.ok and new.ok and new.tracking_number == "NEW1"
    assert invalid.error is not None and invalid.error.kind is ErrorKind.INVALID_NUMBER


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (httpx.Response(401, text="Unauthorized"), ErrorKind.AUTH),
        (
            httpx.Response(
                200,
                json={
                    "code": -18010002,
                    "data": {"errors": [{"code": -18010002, "message": "invalid key"}]},
                },
            ),
            ErrorKind.AUTH,
        ),
        (httpx.Response(502, content=NGINX_502), ErrorKind.BAD_RESPONSE),
        (httpx.Response(200, content=b'{"code": 0, "data": {"accep'), ErrorKind.BAD_RESPONSE),
    ],
    ids=["401", "bad-key-envelope", "html-502", "truncated-json"],
)
async def test_a_call_wide_failure_gives_every_number_the_error(
    response: httpx.Response, kind: ErrorKind
) -> None:
    """One envelope failure becomes the same error on each number, with the body excerpt."""
    source = build(Track17Source, OPTIONS)
    with mocked() as router:
        router.post(f"{API}/gettrackinfo").mock(return_value=response)
        results = await source.track([TrackingQuery("ups", "A"), TrackingQuery("ups", "B")])
    assert [r.tracking_number for r in results] == ["A", "B"]
    assert all(r.error is not None and r.error.kind is kind for r in results)
    if kind is ErrorKind.AUTH:
        assert source.guard.circuit.is_open
    else:
        assert all(r.error is not None and r.error.raw_excerpt for r in results)


async def test_429_beyond_max_wait_carries_retry_after_to_every_number() -> None:
    """A 429 with a long Retry-After is not retried in-line; each number gets the wait."""
    source = build(Track17Source, OPTIONS)
    with mocked() as router:
        router.post(f"{API}/gettrackinfo").mock(
            return_value=httpx.Response(429, headers={"Retry-After": "90"}, json={"code": 429})
        )
        results = await source.track([TrackingQuery("ups", "A"), TrackingQuery("ups", "B")])
    assert all(r.error is not None and r.error.kind is ErrorKind.RATE_LIMITED for r in results)
    assert all(r.error is not None and r.error.retry_after_s == 90.0 for r in results)


async def test_stoptrack_and_retrack_post_number_and_carrier() -> None:
    """Calls to stoptrack / retrack send [{number, carrier}] and report acceptance per number."""
    source = build(Track17Source, OPTIONS)
    ok = {"code": 0, "data": {"accepted": [{"number": "A", "carrier": 100001}], "rejected": []}}
    with mocked() as router:
        stop = router.post(f"{API}/stoptrack").mock(return_value=httpx.Response(200, json=ok))
        again = router.post(f"{API}/retrack").mock(return_value=httpx.Response(200, json=ok))
        [stopped] = await source.stoptrack([TrackingQuery("dhl", "A")])
        [revived] = await source.retrack([TrackingQuery("dhl", "A")])
    assert json.loads(stop.calls.last.request.content) == [{"number": "A", "carrier": 100001}]
    assert again.call_count == 1 and stopped.registered and revived.registered


def test_api_key_is_required() -> None:
    """Without api_key the source is not built and the error names the key."""
    with pytest.raises(OptionError) as caught:
        build(Track17Source, {})
    assert caught.value.key == "api_key"
