"""EasyPost adapter on the wire (respx): Basic auth, create-then-read by id, weight, errors."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from carriers.easypost.adapter import EasyPostSource
from carriers.model import ErrorKind, Status, TrackingQuery
from carriers.transport import OptionError
from tests.unit.adapter_kit import NGINX_502, build, fixture, mocked

BASE = "https://ep.test"
OPTIONS: dict[str, Any] = {"api_key": "EZTK123", "base_url": BASE}


def ep(name: str) -> bytes:
    """An EasyPost fixture's bytes."""
    return fixture("easypost", name)


async def test_first_lookup_creates_the_tracker_later_ones_read_it_by_id() -> None:
    """POST /v2/trackers with Basic auth, then GET /v2/trackers/{id}; weight in kg."""
    source = build(EasyPostSource, OPTIONS, name="ep-ids")
    body = ep("tracker_EZ4000000004_delivered.json")
    tracker_id = json.loads(body)["id"]
    with mocked() as router:
        create = router.post(f"{BASE}/v2/trackers").mock(
            return_value=httpx.Response(200, content=body)
        )
        read = router.get(f"{BASE}/v2/trackers/{tracker_id}").mock(
            return_value=httpx.Response(200, content=body)
        )
        [first] = await source.track([TrackingQuery("usps", "EZ4000000004")])
        [second] = await source.track([TrackingQuery("usps", "EZ4000000004")])
    request = create.calls.last.request
    expected = "Basic " + base64.b64encode(b"EZTK123:").decode()
    assert request.headers["authorization"] == expected
    assert json.loads(request.content) == {
        "tracker": {"tracking_code": "EZ4000000004", "carrier": "USPS"}
    }
    assert create.call_count == 1 and read.call_count == 1
    assert first.ok and first.status is Status.DELIVERED
    assert first.weight_kg == pytest.approx(17.6 * 0.028349523125)
    assert second.ok and second.status is Status.DELIVERED
    await source.aclose()


async def test_a_tracker_deleted_upstream_is_created_again() -> None:
    """GET by id answering 404 forgets the id and creates the tracker anew."""
    source = build(EasyPostSource, OPTIONS, name="ep-gone")
    body = ep("tracker_EZ2000000002_in_transit.json")
    tracker_id = json.loads(body)["id"]
    with mocked() as router:
        create = router.post(f"{BASE}/v2/trackers").mock(
            return_value=httpx.Response(200, content=body)
        )
        router.get(f"{BASE}/v2/trackers/{tracker_id}").mock(
            return_value=httpx.Response(404, content=ep("error_404_not_found_alt_format.json"))
        )
        await source.track([TrackingQuery("usps", "EZ2000000002")])
        [again] = await source.track([TrackingQuery("usps", "EZ2000000002")])
    assert create.call_count == 2 and again.ok and again.status is Status.IN_TRANSIT


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (
            httpx.Response(401, json={"error": {"code": "APIKEY.INVALID", "message": "bad"}}),
            ErrorKind.AUTH,
        ),
        (httpx.Response(422, content=ep("error_422_parameter_required.json")), ErrorKind.PROVIDER),
        (httpx.Response(503, content=NGINX_502), ErrorKind.BAD_RESPONSE),
        (httpx.Response(200, content=b'{"object": "Tracker", "id": '), ErrorKind.BAD_RESPONSE),
    ],
    ids=["401", "422", "html-503", "truncated"],
)
async def test_error_shapes_become_errors_with_excerpts(
    response: httpx.Response, kind: ErrorKind
) -> None:
    """401, a 422 envelope, an HTML 503 page and truncated JSON each give a clear error."""
    source = build(EasyPostSource, OPTIONS)
    with mocked() as router:
        router.post(f"{BASE}/v2/trackers").mock(return_value=response)
        [result] = await source.track([TrackingQuery("ups", "1Z1")])
    assert result.error is not None and result.error.kind is kind and result.error.raw_excerpt
    assert source.guard.circuit.is_open is (kind is ErrorKind.AUTH)


def test_api_key_is_required() -> None:
    """Without api_key the source is not built and the error names the key."""
    with pytest.raises(OptionError) as caught:
        build(EasyPostSource, {"base_url": BASE})
    assert caught.value.key == "api_key"
