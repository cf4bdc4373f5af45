"""EasyPost Tracker parsing, request builders and webhook checks, over the copied fixtures."""

from __future__ import annotations

import hashlib
import hmac
import json
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from carriers.easypost import codes
from carriers.easypost.parse import (
    carrier_name,
    create_tracker_request,
    parse_event,
    parse_tracker,
    parse_trackers,
    verify_webhook_signature,
)
from carriers.model import ErrorKind, Location, Problem, Status, TrackingQuery

FIXTURES = Path(__file__).parents[1] / "fixtures" / "easypost"
SOURCE = "easypost"


def raw(name: str) -> bytes:
    """The bytes of a fixture file."""
    return (FIXTURES / name).read_bytes()


def load(name: str) -> dict[str, Any]:
    """A fixture file decoded, for building variants in the test."""
    data: dict[str, Any] = json.loads(raw(name))
    return data


# --- the seven test trackers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "problem", "finished", "events"),
    [
        ("tracker_EZ1000000001_pre_transit.json", Status.PENDING, None, False, 2),
        ("tracker_EZ2000000002_in_transit.json", Status.IN_TRANSIT, None, False, 6),
        ("tracker_EZ3000000003_out_for_delivery.json", Status.OUT_FOR_DELIVERY, None, False, 7),
        ("tracker_EZ4000000004_delivered.json", Status.DELIVERED, None, True, 8),
        ("tracker_EZ5000000005_return_to_sender.json", Status.RETURNING, None, False, 8),
        ("tracker_EZ6000000006_failure.json", Status.EXCEPTION, Problem.OTHER, False, 4),
        ("tracker_EZ7000000007_unknown.json", Status.UNKNOWN, None, False, 0),
    ],
)
def test_test_trackers(
    name: str, status: Status, problem: Problem | None, finished: bool, events: int
) -> None:
    """Each EasyPost test code maps to its common status, problem and event count."""
    result = parse_tracker(raw(name), source=SOURCE)
    assert result.ok and result.courier == "usps"
    assert (result.status, result.problem, result.finished) == (status, problem, finished)
    assert len(result.events) == events


def test_events_oldest_first_with_raw_codes_and_text() -> None:
    """tracking_details become events oldest first, raw status kept, message verbatim."""
    result = parse_tracker(raw("tracker_EZ4000000004_delivered.json"), source=SOURCE)
    times = [e.time for e in result.events]
    assert times == sorted(times)
    assert [e.raw_code for e in result.events[-3:]] == [
        "in_transit",
        "out_for_delivery",
        "delivered",
    ]
    assert result.events[0].status is Status.PENDING
    assert result.events[-1].status is Status.DELIVERED
    assert result.events[-1].text == "Delivered"
    assert result.events[-1].time == datetime(2021, 9, 7, 19, 10, 6, tzinfo=UTC)


def test_raw_code_includes_status_detail() -> None:
    """With a status_detail the raw code is "status/status_detail"."""
    result = parse_tracker(raw("tracker_create_EZ1000000001_2025.json"), source=SOURCE)
    assert [e.raw_code for e in result.events] == ["pre_transit/status_update"] * 2
    assert result.extra["status_detail"] == "status_update"


def test_return_to_sender_event_text_kept() -> None:
    """The return-to-sender scan keeps the carrier's reason text."""
    result = parse_tracker(raw("tracker_EZ5000000005_return_to_sender.json"), source=SOURCE)
    last = result.events[-1]
    assert last.status is Status.RETURNING and last.raw_code == "return_to_sender"
    assert last.text == "Address Does Not Exist - Returning to Sender"


def test_failure_event_is_exception() -> None:
    """The failure scan (item seized) is a carrier exception."""
    result = parse_tracker(raw("tracker_EZ6000000006_failure.json"), source=SOURCE)
    assert result.events[-1].status is Status.EXCEPTION
    assert result.events[-1].problem is Problem.OTHER


def test_detail_without_time_is_skipped() -> None:
    """The unknown tracker's detail has no datetime: skipped and counted."""
    result = parse_tracker(raw("tracker_EZ7000000007_unknown.json"), source=SOURCE)
    assert result.events == () and result.extra["skipped_events"] == "1"
    assert result.weight_kg is None


def test_weight_ounces_to_kg() -> None:
    """The weight is in ounces: 17.6 oz is about 0.499 kg."""
    result = parse_tracker(raw("tracker_EZ1000000001_pre_transit.json"), source=SOURCE)
    assert result.weight_kg == pytest.approx(17.6 * 0.0283495, rel=1e-5)
    assert result.weight_kg == pytest.approx(0.49895, abs=1e-4)


def test_locations() -> None:
    """tracking_location gives country, state and city; empty locations are unknown."""
    result = parse_tracker(raw("tracker_EZ2000000002_in_transit.json"), source=SOURCE)
    assert result.events[0].location == Location()
    assert result.events[2].location == Location("US", "CA", "Oakland", None)
    created = parse_tracker(raw("tracker_create_EZ1000000001_2025.json"), source=SOURCE)
    assert created.events[1].location == Location(None, "TX", "HOUSTON", None)


def test_chinese_tracking_location() -> None:
    """A CN tracking location becomes 中国 with full province and city names."""
    doc = load("tracker_EZ2000000002_in_transit.json")
    doc["tracking_details"][2]["tracking_location"].update(
        country="CN", state="Guangdong", city="深圳"
    )
    result = parse_tracker(doc, source=SOURCE)
    assert result.events[2].location == Location("中国", "广东省", "深圳市", None)


def test_extra_fields() -> None:
    """Tracker id, carrier, estimate and signer are kept in extra."""
    result = parse_tracker(raw("tracker_EZ4000000004_delivered.json"), source=SOURCE)
    assert result.extra["easypost_id"].startswith("trk_")
    assert result.extra["carrier"] == "USPS"
    assert result.extra["signed_by"] == "John Tester"
    assert result.extra["est_delivery_date"] == "2021-10-03T18:01:06Z"


def test_query_courier_kept_and_correction_reported() -> None:
    """With a query its courier stays; EasyPost's different carrier is a correction."""
    query = TrackingQuery("ups", "EZ4000000004")
    result = parse_tracker(raw("tracker_EZ4000000004_delivered.json"), source=SOURCE, query=query)
    assert result.courier == "ups" and result.courier_corrected == "usps"
    assert result.tracking_number == "EZ4000000004"


@pytest.mark.parametrize("name", ["trackers_list_page.json", "trackers_list_docs.json"])
def test_trackers_list(name: str) -> None:
    """A trackers page gives one pending USPS result per tracker."""
    results = parse_trackers(raw(name), source=SOURCE)
    assert results and all(r.ok and r.status is Status.PENDING for r in results)
    assert all(r.courier == "usps" and len(r.events) == 2 for r in results)
    assert len({r.tracking_number for r in results}) == len(results)


# --- webhook events ----------------------------------------------------------------------


def test_event_tracker_updated_fedex() -> None:
    """A tracker.updated Event gives the tracker's result with the previous status kept."""
    result = parse_event(raw("webhook_event_tracker_updated_fedex.json"), source=SOURCE)
    assert result is not None and result.ok
    assert result.courier == "fedex" and result.status is Status.IN_TRANSIT
    assert result.extra["previous_status"] == "in_transit" and result.extra["event_id"] == "evt_1"
    assert result.weight_kg == pytest.approx(614.4 * codes.OUNCE_KG)
    assert [e.raw_code for e in result.events][:2] == [
        "pre_transit/label_created",
        "in_transit/arrived_at_facility",
    ]
    assert result.events[-1].location == Location("US", "NJ", "EDISON", None)


def test_event_docs_example_sorts_out_of_order_delivery() -> None:
    """The docs example lists its delivery scan out of order; events are re-sorted by time."""
    result = parse_event(raw("webhook_event_tracker_updated_docs.json"), source=SOURCE)
    assert result is not None
    assert result.courier == "ups" and result.status is Status.DELIVERED and result.finished
    times = [e.time for e in result.events]
    assert times == sorted(times)
    assert result.events[0].raw_code == "delivered"


def test_event_about_another_object_is_ignored() -> None:
    """An Event that is not about a tracker gives None."""
    event = {"object": "Event", "description": "batch.created", "result": {"object": "Batch"}}
    assert parse_event(event, source=SOURCE) is None


@pytest.mark.parametrize(
    "body",
    [
        b"<html>oops</html>",
        b'{"object": "Tracker"}',
        b'{"object": "Event", "description": "tracker.updated", "result": {"object": "Shipment"}}',
    ],
)
def test_event_malformed_is_bad_response(body: bytes) -> None:
    """A body that is not a tracker Event gives an error result, never an exception."""
    result = parse_event(body, source=SOURCE)
    assert result is not None
    assert result.error is not None and result.error.kind is ErrorKind.BAD_RESPONSE


def test_signature_worked_example() -> None:
    """X-Hmac-Signature is hmac-sha256-hex= + hex HMAC over the body with the NFKD secret."""
    body = b'{"description":"tracker.updated"}'
    secret = "sécret"
    expected = "hmac-sha256-hex=562be7a716cb4c03373fe99c34ee0da0f3fd9184950e5f060f6309cd8398fd19"
    key = unicodedata.normalize("NFKD", secret).encode()
    assert "hmac-sha256-hex=" + hmac.new(key, body, hashlib.sha256).hexdigest() == expected
    assert verify_webhook_signature(body, expected, secret)
    assert verify_webhook_signature(body.decode(), expected, unicodedata.normalize("NFC", secret))
    assert not verify_webhook_signature(body + b" ", expected, secret)
    assert not verify_webhook_signature(body, expected.replace("562b", "562c"), secret)


# --- errors ------------------------------------------------------------------------------


def test_404_not_found_alt_format() -> None:
    """A 404 with errors[] as strings is not_found and keeps the messages."""
    query = TrackingQuery("usps", "EZ0")
    result = parse_tracker(
        raw("error_404_not_found_alt_format.json"), source=SOURCE, query=query, http_status=404
    )
    assert result.error is not None and result.error.kind is ErrorKind.NOT_FOUND
    assert "No eligible insurance" in result.error.message
    assert result.courier == "usps" and result.tracking_number == "EZ0"


def test_422_parameter_required_is_provider_error() -> None:
    """A 422 PARAMETER.REQUIRED is a non-retryable provider error naming the field problem."""
    result = parse_tracker(raw("error_422_parameter_required.json"), source=SOURCE, http_status=422)
    assert result.error is not None and result.error.kind is ErrorKind.PROVIDER
    assert not result.error.retryable
    assert (
        "PARAMETER.REQUIRED" in result.error.message and "cannot be blank" in result.error.message
    )


def test_error_envelope_without_status_code() -> None:
    """An error envelope is an error even when the HTTP status is not given."""
    result = parse_tracker(raw("error_address_verify_failure_docs.json"), source=SOURCE)
    assert result.error is not None and result.error.kind is ErrorKind.PROVIDER
    assert "House number is missing" in result.error.message


@pytest.mark.parametrize(
    ("status", "code", "kind", "retryable"),
    [
        (401, "APIKEY.INACTIVE", ErrorKind.AUTH, False),
        (429, "RATE_LIMITED", ErrorKind.RATE_LIMITED, True),
        (503, "SERVICE_UNAVAILABLE", ErrorKind.PROVIDER, True),
        (422, "TRACKER.TRACKING_CODE.INVALID", ErrorKind.INVALID_NUMBER, False),
    ],
)
def test_error_kinds(status: int, code: str, kind: ErrorKind, retryable: bool) -> None:
    """HTTP status and error code decide the error kind and whether to retry."""
    body = {"error": {"code": code, "message": "x", "errors": []}}
    result = parse_tracker(body, source=SOURCE, http_status=status, retry_after_s=3.0)
    assert result.error is not None
    assert (result.error.kind, result.error.retryable) == (kind, retryable)
    assert result.error.retry_after_s == (3.0 if kind is ErrorKind.RATE_LIMITED else None)


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"<html>502 Bad Gateway</html>", 502), (b"", None), (b"[]", 200), (b"{}", 200)],
)
def test_malformed_bodies_never_raise(body: bytes, status: int | None) -> None:
    """Non-JSON and non-Tracker bodies are retryable bad_response errors."""
    result = parse_tracker(body, source=SOURCE, http_status=status)
    assert result.error is not None and result.error.kind is ErrorKind.BAD_RESPONSE
    assert result.error.retryable and result.error.raw_excerpt == body.decode()[:200]
    [listed] = parse_trackers(body, source=SOURCE, http_status=status)
    assert listed.error is not None and listed.error.kind is ErrorKind.BAD_RESPONSE


def test_text_429_is_rate_limited() -> None:
    """A 429 whose body is not JSON is still a rate limit."""
    result = parse_tracker(b"slow down", source=SOURCE, http_status=429, retry_after_s=5.0)
    assert result.error is not None and result.error.kind is ErrorKind.RATE_LIMITED
    assert result.error.retry_after_s == 5.0


# --- requests and tables -----------------------------------------------------------------


def test_create_tracker_request() -> None:
    """Create posts the tracking code and EasyPost's carrier name."""
    request = create_tracker_request(TrackingQuery("dhl", "1234567890"))
    assert (request.method, request.path) == ("POST", "/v2/trackers")
    assert request.json == {"tracker": {"tracking_code": "1234567890", "carrier": "DHLExpress"}}
    unknown = create_tracker_request(TrackingQuery("sf", "SF1"))
    assert unknown.json == {"tracker": {"tracking_code": "SF1"}}


def test_carrier_names_round_trip() -> None:
    """Canonical couriers and EasyPost carrier strings map both ways."""
    assert [carrier_name(c) for c in ("usps", "ups", "fedex", "dhl", "sf")] == [
        "USPS",
        "UPS",
        "FedEx",
        "DHLExpress",
        None,
    ]
    assert codes.courier_for_carrier("FEDEX") == "fedex"
    assert codes.courier_for_carrier("LaserShip") is None


@pytest.mark.parametrize(
    ("status", "detail", "expected"),
    [
        ("available_for_pickup", None, (Status.READY_FOR_PICKUP, None)),
        ("in_transit", "arrived_at_facility", (Status.IN_TRANSIT, None)),
        ("in_transit", "address_correction", (Status.IN_TRANSIT, Problem.ADDRESS_PROBLEM)),
        ("in_transit", "lost", (Status.EXCEPTION, Problem.LOST)),
        ("in_transit", "weather_delay", (Status.IN_TRANSIT, Problem.DELAYED)),
        ("delivered", "return", (Status.DELIVERED, None)),
        ("cancelled", None, (Status.EXCEPTION, None)),
        ("error", None, (Status.UNKNOWN, None)),
        ("teleported", "status_update", (Status.UNKNOWN, None)),
    ],
)
def test_status_table(
    status: str, detail: str | None, expected: tuple[Status, Problem | None]
) -> None:
    """Statuses and details map to the common status and problem."""
    assert codes.status_for(status, detail) == expected


def test_cancelled_is_finished() -> None:
    """Delivered and cancelled trackers are finished; returning ones are not."""
    assert codes.is_finished("delivered") and codes.is_finished("cancelled")
    assert not codes.is_finished("return_to_sender")
