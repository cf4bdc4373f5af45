"""AfterShip v4 parsing, request builders and webhook checks, over the copied fixtures."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from carriers.aftership import codes
from carriers.aftership.parse import (
    create_tracking_request,
    get_tracking_request,
    meta_code,
    parse_last_checkpoint,
    parse_tracking,
    parse_trackings,
    parse_webhook,
    retry_after,
    tracking_slug,
    verify_webhook_signature,
)
from carriers.model import ErrorKind, Location, Problem, Status, TrackingQuery

FIXTURES = Path(__file__).parents[1] / "fixtures" / "aftership"
SOURCE = "aftership"


def raw(name: str) -> bytes:
    """The bytes of a fixture file."""
    return (FIXTURES / name).read_bytes()


def load(name: str) -> dict[str, Any]:
    """A fixture file decoded, for building variants in the test."""
    data: dict[str, Any] = json.loads(raw(name))
    return data


FEDEX = "v4_get_tracking_delivered_fedex_full_checkpoints.json"
POSTNL_GET = "v4_get_tracking_intransit_postnl.json"
POSTNL_PUT = "v4_update_tracking_200_postnl.json"


# --- trackings ---------------------------------------------------------------------------


def test_delivered_fedex_tracking() -> None:
    """A Delivered_001 tracking is delivered and finished, its courier and weight read."""
    result = parse_tracking(raw(FEDEX), source=SOURCE)
    assert result.ok and result.status is Status.DELIVERED and result.finished
    assert result.courier == "fedex" and result.tracking_number == "111111111111"
    assert result.weight_kg == pytest.approx(4.0)
    assert result.extra["subtag"] == "Delivered_001" and result.extra["slug"] == "fedex"


def test_checkpoints_become_events_oldest_first_with_subtags() -> None:
    """Every checkpoint is an event, oldest first, with its subtag and message verbatim."""
    result = parse_tracking(raw(FEDEX), source=SOURCE)
    assert len(result.events) == 14
    times = [e.time for e in result.events]
    assert times == sorted(times)
    assert result.events[0].raw_code == "InfoReceived_001"
    assert result.events[0].status is Status.PENDING
    assert result.events[1].raw_code == "InTransit_002"
    assert result.events[1].status is Status.PICKED_UP
    assert result.events[-2].status is Status.OUT_FOR_DELIVERY
    assert result.events[-1].status is Status.DELIVERED
    assert result.events[-1].text == "Delivered"
    assert result.events[-2].text == "In transit - Tendered to authorized agent for final delivery"


def test_offsets_in_checkpoint_times_are_kept() -> None:
    """A checkpoint time with an offset keeps that exact instant."""
    result = parse_tracking(raw(FEDEX), source=SOURCE)
    assert result.events[0].time == datetime(2018, 7, 23, 6, 21, 39, tzinfo=UTC)
    assert result.events[-1].time.utcoffset() == timedelta(hours=9)


def test_same_instants_from_offset_and_zulu_fixtures() -> None:
    """The +01:00 (GET) and .000Z (PUT) renderings of one tracking give the same instants."""
    get = parse_tracking(raw(POSTNL_GET), source=SOURCE)
    put = parse_tracking(raw(POSTNL_PUT), source=SOURCE)
    assert [e.time for e in get.events] == [e.time for e in put.events]
    assert [e.raw_code for e in get.events] == [e.raw_code for e in put.events]


def test_checkpoint_time_without_offset_uses_country_zone() -> None:
    """A naive checkpoint time in China is read as Asia/Shanghai local time."""
    doc = load(FEDEX)
    doc["data"]["tracking"]["checkpoints"][1]["checkpoint_time"] = "2018-07-23T16:58:00"
    result = parse_tracking(doc, source=SOURCE)
    picked = result.events[1]
    assert picked.time.utcoffset() == timedelta(hours=8)
    assert picked.time == datetime(2018, 7, 23, 8, 58, tzinfo=UTC)


def test_checkpoint_time_without_offset_borrows_nearest_offset() -> None:
    """A naive time in a country with several zones borrows the nearest checkpoint's offset."""
    doc = load(FEDEX)
    first = doc["data"]["tracking"]["checkpoints"][0]
    first.update(checkpoint_time="2018-07-23T01:21:39", country_iso3="USA")
    result = parse_tracking(doc, source=SOURCE)
    assert result.events[0].time.utcoffset() == timedelta(hours=8)  # from the next checkpoint


def test_checkpoint_time_without_any_offset_is_utc() -> None:
    """With no zone and no aware neighbour, a naive time is taken as UTC."""
    doc = load(POSTNL_PUT)
    for checkpoint in doc["data"]["tracking"]["checkpoints"]:
        checkpoint["checkpoint_time"] = checkpoint["checkpoint_time"].replace(".000Z", "")
        checkpoint["country_iso3"] = None
    result = parse_tracking(doc, source=SOURCE)
    assert all(e.time.utcoffset() == timedelta(0) for e in result.events)


def test_checkpoint_without_time_is_skipped_and_counted() -> None:
    """A checkpoint with no usable time is left out and counted in extra."""
    doc = load(FEDEX)
    doc["data"]["tracking"]["checkpoints"][3]["checkpoint_time"] = "soon"
    result = parse_tracking(doc, source=SOURCE)
    assert len(result.events) == 13 and result.extra["skipped_events"] == "1"


def test_locations_use_alpha2_and_china_name() -> None:
    """country_iso3 becomes alpha-2, and China the project's 中国."""
    result = parse_tracking(raw(FEDEX), source=SOURCE)
    assert result.events[0].location == Location()
    assert result.events[1].location == Location("中国", None, None, None)
    assert result.events[-1].location == Location("JP", None, None, None)
    listed = parse_trackings(raw("v4_get_trackings_list_mixed_tags.json"), source=SOURCE)
    assert listed[0].events[1].location == Location(None, "NY", "BROOKLYN", None)


def test_chinese_checkpoint_fields_are_canonical() -> None:
    """A Chinese state and city are given their full names."""
    doc = load(FEDEX)
    doc["data"]["tracking"]["checkpoints"][1].update(state="Guangdong", city="东莞")
    result = parse_tracking(doc, source=SOURCE)
    assert result.events[1].location == Location("中国", "广东省", "东莞市", None)


def test_chinese_free_text_location_when_no_fields() -> None:
    """A Chinese location text without structured fields goes through the gazetteer."""
    doc = load(FEDEX)
    doc["data"]["tracking"]["checkpoints"][1].update(
        country_iso3=None, location="【杭州市】浙江杭州西湖区公司 已揽收"
    )
    result = parse_tracking(doc, source=SOURCE)
    assert result.events[1].location.province == "浙江省"
    assert result.events[1].location.district == "西湖区"


def test_in_transit_postnl_with_unknown_slug() -> None:
    """A courier with no canonical code is named by its slug; status is in transit."""
    result = parse_tracking(raw(POSTNL_GET), source=SOURCE)
    assert result.courier == "aftership:postnl-3s" and result.status is Status.IN_TRANSIT
    assert not result.finished and result.weight_kg == pytest.approx(1.16)
    assert result.events[-1].raw_code == "InTransit_004"


def test_query_keeps_its_courier_and_reports_correction() -> None:
    """With a query, its courier stays and a different detected slug is a correction."""
    query = TrackingQuery("ups", "111111111111")
    result = parse_tracking(raw(FEDEX), source=SOURCE, query=query)
    assert result.courier == "ups" and result.courier_corrected == "fedex"


@pytest.mark.parametrize(
    "name", ["v4_create_tracking_201_pending_4px.json", "v4_get_tracking_pending_4px.json"]
)
def test_pending_trackings_have_no_events(name: str) -> None:
    """Pending_001 (created, no checkpoints yet) is pending with no events."""
    result = parse_tracking(raw(name), source=SOURCE)
    assert result.status is Status.PENDING and result.events == () and result.ok


def test_post_trackings_201_fedex_pending() -> None:
    """The create response for a FedEx number is a pending fedex result."""
    result = parse_tracking(raw("v4_post_trackings_201.json"), source=SOURCE)
    assert result.courier == "fedex" and result.status is Status.PENDING


def test_exception_013_is_lost_despite_delivered_checkpoints() -> None:
    """The tracking's subtag (Exception_013) decides the status, events keep their own."""
    result = parse_tracking(raw("v4_mark_as_completed_exception_013.json"), source=SOURCE)
    assert result.status is Status.EXCEPTION and result.problem is Problem.LOST
    assert result.events[-1].status is Status.DELIVERED


def test_trackings_list_mixed_tags() -> None:
    """A list page gives one result per tracking, with tags mapped."""
    results = parse_trackings(raw("v4_get_trackings_list_mixed_tags.json"), source=SOURCE)
    assert [(r.courier, r.status) for r in results] == [
        ("fedex", Status.DELIVERED),
        ("ups", Status.EXCEPTION),
        ("usps", Status.EXCEPTION),
    ]
    assert all(r.finished for r in results)
    assert results[1].problem is Problem.NO_PROGRESS  # Expired
    codes_seen = {e.raw_code: e for e in results[0].events}
    assert codes_seen["Exception_001"].status is Status.EXCEPTION
    assert codes_seen["Exception_001"].problem is Problem.OTHER
    assert results[0].weight_kg is None  # weight null with unit kg


def test_last_checkpoint_in_transit() -> None:
    """last_checkpoint gives the status and its one checkpoint as an event."""
    result = parse_last_checkpoint(
        raw("v4_last_checkpoint_intransit_004_postnl.json"), source=SOURCE
    )
    assert result.status is Status.IN_TRANSIT and len(result.events) == 1
    assert result.events[0].location == Location("ES", None, None, None)


def test_last_checkpoint_pending_has_no_event() -> None:
    """An all-null last checkpoint gives no event; China Post maps to chinapost."""
    result = parse_last_checkpoint(raw("v4_last_checkpoint_pending_china_post.json"), source=SOURCE)
    assert result.courier == "chinapost" and result.status is Status.PENDING
    assert result.events == ()


@pytest.mark.parametrize("name", ["v4_delete_tracking.json", "v4_retrack_200_china_post.json"])
def test_partial_tracking_bodies_do_not_raise(name: str) -> None:
    """Delete and retrack bodies (no tag, no checkpoints) parse to an unknown status."""
    result = parse_tracking(raw(name), source=SOURCE)
    assert result.ok and result.status is Status.UNKNOWN and result.events == ()


# --- errors ------------------------------------------------------------------------------


def test_401_is_auth() -> None:
    """meta.code 401 is a non-retryable auth error."""
    query = TrackingQuery("fedex", "1")
    result = parse_tracking(raw("error_401_invalid_api_key.json"), source=SOURCE, query=query)
    assert result.error is not None and result.error.kind is ErrorKind.AUTH
    assert not result.error.retryable and "Invalid API Key." in result.error.message
    assert result.courier == "fedex" and result.tracking_number == "1"


def test_4003_already_exists_is_a_provider_error_with_its_code() -> None:
    """4003 (already exists) is a provider error, and meta_code exposes it to the adapter."""
    body = raw("error_4003_tracking_already_exists.json")
    result = parse_tracking(body, source=SOURCE, http_status=400)
    assert result.error is not None and result.error.kind is ErrorKind.PROVIDER
    assert result.error.message.startswith("4003")
    assert meta_code(body) == codes.ALREADY_EXISTS
    assert meta_code(b"<html>") is None


def test_429_rate_limited_with_retry_after_from_reset_header() -> None:
    """429 is retryable; x-ratelimit-reset (Unix seconds) minus now gives retry_after_s."""
    now = datetime.fromtimestamp(1458463600 - 7, tz=UTC)
    result = parse_tracking(
        raw("error_429_too_many_requests.json"),
        source=SOURCE,
        http_status=429,
        ratelimit_reset="1458463600",
        now=now,
    )
    assert result.error is not None and result.error.kind is ErrorKind.RATE_LIMITED
    assert result.error.retryable and result.error.retry_after_s == pytest.approx(7.0)


def test_429_without_reset_header_has_no_retry_after() -> None:
    """Without the reset header the rate-limit error leaves retry_after_s unset."""
    result = parse_tracking(raw("error_429_too_many_requests.json"), source=SOURCE)
    assert result.error is not None and result.error.kind is ErrorKind.RATE_LIMITED
    assert result.error.retry_after_s is None


def test_retry_after_is_at_least_one_second() -> None:
    """A reset time already past still waits a second; garbage gives None."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert retry_after(now.timestamp() - 100, now) == 1.0
    assert retry_after("soon", now) is None


@pytest.mark.parametrize(
    "name", ["error_500_internal_error.json", "error_500_internal_error_data_string.json"]
)
def test_500_is_retryable_provider_error(name: str) -> None:
    """meta.code 500 (even with data as a string) is a retryable provider error."""
    result = parse_tracking(raw(name), source=SOURCE, http_status=500)
    assert result.error is not None and result.error.kind is ErrorKind.PROVIDER
    assert result.error.retryable


def test_502_cassette_text_body_is_bad_response() -> None:
    """The recorded 502 with a text body ("Interal Error") is a retryable bad_response."""
    cassette = yaml.safe_load(raw("cassette_get_tracking_502_internal_error.yaml"))
    response = cassette["interactions"][0]["response"]
    body = response["body"]["string"]
    result = parse_tracking(
        body.encode(), source=SOURCE, http_status=response["status"]["code"], query=None
    )
    assert result.error is not None and result.error.kind is ErrorKind.BAD_RESPONSE
    assert result.error.retryable and result.error.raw_excerpt == body[:200]
    assert "502" in result.error.message


@pytest.mark.parametrize(
    "body",
    [b"", b"null", b"[]", b'{"meta": {"code": 200}}', b'{"meta": {"code": 200}, "data": []}'],
)
def test_malformed_bodies_never_raise(body: bytes) -> None:
    """Empty, null, list and tracking-less bodies give bad_response errors."""
    result = parse_tracking(body, source=SOURCE)
    assert result.error is not None and result.error.kind is ErrorKind.BAD_RESPONSE
    [listed] = parse_trackings(body, source=SOURCE)
    assert listed.error is not None and listed.error.kind is ErrorKind.BAD_RESPONSE


def test_error_in_list_and_last_checkpoint() -> None:
    """Error envelopes give an error result from every parse function."""
    body = raw("error_401_invalid_api_key.json")
    [listed] = parse_trackings(body, source=SOURCE)
    last = parse_last_checkpoint(body, source=SOURCE)
    assert listed.error is not None and listed.error.kind is ErrorKind.AUTH
    assert last.error is not None and last.error.kind is ErrorKind.AUTH


# --- requests ----------------------------------------------------------------------------


def test_slugs_for_canonical_couriers() -> None:
    """Canonical couriers map to AfterShip slugs; J&T has none yet."""
    assert [tracking_slug(c) for c in ("sf", "ems", "chinapost", "sto", "dhl")] == [
        "sf-express",
        "china-ems",
        "china-post",
        "sto",
        "dhl",
    ]
    assert tracking_slug("jt") is None
    assert codes.courier_for_slug("china-post") == "chinapost"


def test_create_request_body() -> None:
    """Create posts the number, slug and destination country as ISO alpha-3."""
    query = TrackingQuery("sf", "SF1234567890", destination=Location("中国", "浙江省"))
    request = create_tracking_request(query, order_id="A1001")
    assert (request.method, request.path) == ("POST", "/v4/trackings")
    assert request.json == {
        "tracking": {
            "tracking_number": "SF1234567890",
            "slug": "sf-express",
            "order_id": "A1001",
            "destination_country_iso3": "CHN",
        }
    }


def test_create_request_without_slug_lets_aftership_detect() -> None:
    """An unmapped courier is created without a slug."""
    request = create_tracking_request(TrackingQuery("jt", "JT0001"))
    assert request.json == {"tracking": {"tracking_number": "JT0001"}}


def test_get_request_path_quotes_the_number() -> None:
    """Get uses /v4/trackings/{slug}/{number} with the number URL-quoted."""
    request = get_tracking_request(TrackingQuery("usps", "94 00/1"))
    assert request is not None
    assert (request.method, request.path) == ("GET", "/v4/trackings/usps/94%2000%2F1")
    assert get_tracking_request(TrackingQuery("jt", "1")) is None


# --- webhooks ----------------------------------------------------------------------------


def test_signature_worked_example() -> None:
    """The header is base64(HMAC-SHA256(secret, raw body)), checked against a hand value."""
    body = b'{"event":"tracking_update"}'
    expected = "09B+q5x+RfPfS/XkdLV8QA+FXmzngiAA3Ii0xxsN2jY="
    digest = hmac.new(b"whsec-aftership", body, hashlib.sha256).digest()
    assert base64.b64encode(digest).decode() == expected
    assert verify_webhook_signature(body, expected, "whsec-aftership")
    assert not verify_webhook_signature(body + b"\n", expected, "whsec-aftership")
    assert not verify_webhook_signature(body, expected, "other")


def test_webhook_tracking_update() -> None:
    """A tracking_update webhook parses its msg like a tracking."""
    msg = load(FEDEX)["data"]["tracking"]
    result = parse_webhook({"event": "tracking_update", "msg": msg, "ts": 1}, source=SOURCE)
    assert result.courier == "fedex" and result.status is Status.DELIVERED
    assert len(result.events) == 14


@pytest.mark.parametrize("body", [b"nope", b'{"event": "tracking_update"}', b'{"msg": []}'])
def test_webhook_malformed_is_bad_response(body: bytes) -> None:
    """A webhook without a msg object gives an error result."""
    result = parse_webhook(body, source=SOURCE)
    assert result.error is not None and result.error.kind is ErrorKind.BAD_RESPONSE


# --- code tables -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "subtag", "status", "problem"),
    [
        ("AttemptFail", "AttemptFail_001", Status.DELIVERY_FAILED, None),
        ("AvailableForPickup", "AvailableForPickup_001", Status.READY_FOR_PICKUP, None),
        ("Exception", "Exception_003", Status.EXCEPTION, Problem.REFUSED),
        ("Exception", "Exception_004", Status.ON_HOLD, Problem.CUSTOMS),
        ("Exception", "Exception_007", Status.DELIVERY_FAILED, Problem.ADDRESS_PROBLEM),
        ("Exception", "Exception_010", Status.RETURNING, None),
        ("Exception", "Exception_011", Status.RETURNED, None),
        ("Exception", "Exception_012", Status.EXCEPTION, Problem.DAMAGED),
        ("Exception", "Exception_099", Status.EXCEPTION, Problem.OTHER),
        ("Expired", "Expired_001", Status.EXCEPTION, Problem.NO_PROGRESS),
        (None, None, Status.UNKNOWN, None),
    ],
)
def test_status_table(
    tag: str | None, subtag: str | None, status: Status, problem: Problem | None
) -> None:
    """Tags and subtags map to the documented common status and problem."""
    assert codes.status_for(tag, subtag) == (status, problem)


@pytest.mark.parametrize(
    ("value", "unit", "kg"),
    [(4, "kg", 4.0), ("500", "g", 0.5), (2, "lb", 0.90718474), (16, "oz", 0.45359237)],
)
def test_weight_units(value: object, unit: str, kg: float) -> None:
    """shipment_weight is converted to kg by its unit."""
    assert codes.weight_kg(value, unit) == pytest.approx(kg)


@pytest.mark.parametrize(("value", "unit"), [(4, None), (None, "kg"), (4, "stone"), (0, "kg")])
def test_weight_unknown(value: object, unit: str | None) -> None:
    """A missing value or unknown unit gives no weight."""
    assert codes.weight_kg(value, unit) is None


def test_country_codes_round_trip() -> None:
    """Alpha-3 and alpha-2 codes convert both ways."""
    assert codes.iso2("chn") == "CN" and codes.iso3("US") == "USA"
    assert codes.iso2("XYZ") is None and codes.iso2(None) is None
