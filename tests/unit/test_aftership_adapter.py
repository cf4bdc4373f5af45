"""AfterShip adapter on the wire (respx): API key header, get-or-create, detected slugs, errors."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from carriers.aftership.adapter import AfterShipSource
from carriers.model import ErrorKind, Status, TrackingQuery
from carriers.transport import OptionError
from tests.unit.adapter_kit import NOW, build, fixture, mocked

BASE = "https://as.test"
OPTIONS: dict[str, Any] = {"api_key": "AS-KEY", "base_url": BASE}


def af(name: str) -> bytes:
    """An AfterShip fixture's bytes."""
    return fixture("aftership", name)


async def test_get_sends_the_api_key_and_parses_the_tracking() -> None:
    """A known slug is read with GET /v4/trackings/{slug}/{number} and the key header."""
    source = build(AfterShipSource, OPTIONS)
    with mocked() as router:
        route = router.get(f"{BASE}/v4/trackings/fedex/111111111111").mock(
            return_value=httpx.Response(
                200, content=af("v4_get_tracking_delivered_fedex_full_checkpoints.json")
            )
        )
        [result] = await source.track([TrackingQuery("fedex", "111111111111")])
    assert route.calls.last.request.headers["aftership-api-key"] == "AS-KEY"
    assert result.ok and result.status is Status.DELIVERED and len(result.events) > 10
    await source.aclose()


async def test_a_tracking_aftership_does_not_have_is_created() -> None:
    """GET 404 (4004) -> POST /v4/trackings with slug and number -> the 201 tracking."""
    source = build(AfterShipSource, OPTIONS)
    missing = {"meta": {"code": 4004, "message": "Tracking does not exist.", "type": "NotFound"}}
    with mocked() as router:
        router.get(f"{BASE}/v4/trackings/usps/9400100000000000000000").mock(
            return_value=httpx.Response(404, json=missing)
        )
        create = router.post(f"{BASE}/v4/trackings").mock(
            return_value=httpx.Response(201, content=af("v4_create_tracking_201_pending_4px.json"))
        )
        [result] = await source.track([TrackingQuery("usps", "9400100000000000000000")])
    sent = json.loads(create.calls.last.request.content)
    assert sent["tracking"]["slug"] == "usps"
    assert sent["tracking"]["tracking_number"] == "9400100000000000000000"
    assert result.ok and result.status is Status.PENDING


async def test_courier_without_slug_is_created_and_its_detected_slug_remembered() -> None:
    """No slug (jt): POST; 4003 names the slug; GET with it, and later polls GET directly."""
    source = build(AfterShipSource, OPTIONS, name="as-slugs")
    exists = af("error_4003_tracking_already_exists.json")
    with mocked() as router:
        create = router.post(f"{BASE}/v4/trackings").mock(
            return_value=httpx.Response(400, content=exists)
        )
        get = router.get(f"{BASE}/v4/trackings/hong-kong-post/RA123456789HK").mock(
            return_value=httpx.Response(200, content=af("v4_get_tracking_pending_4px.json"))
        )
        [first] = await source.track([TrackingQuery("jt", "RA123456789HK")])
        [second] = await source.track([TrackingQuery("jt", "RA123456789HK")])
    assert "slug" not in json.loads(create.calls[0].request.content)["tracking"]
    assert create.call_count == 1 and get.call_count == 2
    assert first.ok and second.ok and first.tracking_number == "RA123456789HK"


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (httpx.Response(401, content=af("error_401_invalid_api_key.json")), ErrorKind.AUTH),
        (httpx.Response(502, text="Interal Error"), ErrorKind.BAD_RESPONSE),
        (httpx.Response(500, content=af("error_500_internal_error.json")), ErrorKind.PROVIDER),
        (
            httpx.Response(200, content=b'{"meta": {"code": 200}, "data": {"track'),
            ErrorKind.BAD_RESPONSE,
        ),
    ],
    ids=["401", "502-text", "500-json", "truncated"],
)
async def test_error_shapes_become_errors_with_excerpts(
    response: httpx.Response, kind: ErrorKind
) -> None:
    """401, a 502 text page, a 500 envelope and truncated JSON each give a clear error."""
    source = build(AfterShipSource, OPTIONS)
    with mocked() as router:
        router.get(f"{BASE}/v4/trackings/ups/1Z1").mock(return_value=response)
        [result] = await source.track([TrackingQuery("ups", "1Z1")])
    assert result.error is not None and result.error.kind is kind
    assert result.error.raw_excerpt
    assert source.guard.circuit.is_open is (kind is ErrorKind.AUTH)


async def test_429_with_ratelimit_reset_is_recorded_as_the_wait() -> None:
    """A 429 whose x-ratelimit-reset is far off returns RATE_LIMITED with that wait."""
    source = build(AfterShipSource, OPTIONS)
    reset = str(int(NOW.timestamp()) + 120)
    with mocked() as router:
        router.get(f"{BASE}/v4/trackings/ups/1Z1").mock(
            return_value=httpx.Response(
                429,
                headers={"x-ratelimit-reset": reset},
                content=af("error_429_too_many_requests.json"),
            )
        )
        [result] = await source.track([TrackingQuery("ups", "1Z1")])
    assert result.error is not None and result.error.kind is ErrorKind.RATE_LIMITED
    assert result.error.retry_after_s == pytest.approx(120)


def test_api_key_is_required() -> None:
    """Without api_key the source is not built and the error names the key."""
    with pytest.raises(OptionError) as caught:
        build(AfterShipSource, {})
    assert caught.value.key == "api_key"
