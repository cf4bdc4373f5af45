"""17TRACK v2 parsing, request bodies and webhook checks, over the copied fixtures."""

from __future__ import annotations

import copy
import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from carriers.model import ErrorKind, Location, Problem, Status, TrackingQuery
from carriers.track17 import codes
from carriers.track17.parse import (
    MAX_BATCH,
    batches,
    carrier_key,
    gettrackinfo_body,
    parse_gettrackinfo,
    parse_register,
    parse_webhook,
    register_body,
    verify_webhook_signature,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "track17"
SOURCE = "track17"


def raw(name: str) -> bytes:
    """The bytes of a fixture file."""
    return (FIXTURES / name).read_bytes()


def load(name: str) -> dict[str, Any]:
    """A fixture file decoded, for building variants in the test."""
    data: dict[str, Any] = json.loads(raw(name))
    return data


def q(number: str, courier: str = "ups", phone: str | None = None) -> TrackingQuery:
    """A query for one number."""
    return TrackingQuery(courier=courier, tracking_number=number, phone=phone)


# --- gettrackinfo ------------------------------------------------------------------------


def test_delivered_correios_status_and_finished() -> None:
    """A Delivered/Delivered_Other number is delivered, finished, with no error."""
    [result] = parse_gettrackinfo(
        raw("v2_gettrackinfo_correios_2151.json"), source=SOURCE, queries=[q("AA123456789BR")]
    )
    assert result.ok and result.status is Status.DELIVERED and result.finished
    assert result.problem is None
    assert result.source == SOURCE and result.courier == "ups"
    assert result.extra["carrier_key"] == "2151" and result.extra["tag"] == "order-1042"


def test_events_oldest_first_with_raw_codes_and_text() -> None:
    """Events come oldest first, keeping 17TRACK's sub-status and the verbatim description."""
    [result] = parse_gettrackinfo(
        raw("v2_gettrackinfo_correios_2151.json"), source=SOURCE, queries=[q("AA123456789BR")]
    )
    assert [e.raw_code for e in result.events] == [
        "InTransit_PickedUp",
        "OutForDelivery_Other",
        "Delivered_Other",
    ]
    assert [e.status for e in result.events] == [
        Status.PICKED_UP,
        Status.OUT_FOR_DELIVERY,
        Status.DELIVERED,
    ]
    assert result.events[-1].text == "Objeto entregue ao destinatário"
    assert all(e.time.tzinfo is not None for e in result.events)


def test_time_raw_without_timezone_borrows_neighbour_offset() -> None:
    """A delivery time only in time_raw (no timezone) takes the carrier's -03:00 offset."""
    [result] = parse_gettrackinfo(
        raw("v2_gettrackinfo_correios_2151.json"), source=SOURCE, queries=[q("AA123456789BR")]
    )
    delivered = result.events[-1]
    assert delivered.time == datetime(2026, 6, 30, 14, 23, tzinfo=timezone(timedelta(hours=-3)))
    assert delivered.time.astimezone(UTC).hour == 17


def test_naive_time_without_any_offset_is_utc_or_china_time() -> None:
    """With no aware neighbour, a naive time is +08:00 for a CN address and UTC otherwise."""
    doc = load("v2_gettrackinfo_correios_2151.json")
    events = doc["data"]["accepted"][0]["track_info"]["tracking"]["providers"][0]["events"]
    for event in events:
        event["time_iso"] = event["time_utc"] = None
        event["time_raw"]["timezone"] = None
    events[0]["address"]["country"] = "CN"
    [result] = parse_gettrackinfo(doc, source=SOURCE, queries=[q("AA123456789BR")])
    by_code = {e.raw_code: e for e in result.events}
    assert by_code["Delivered_Other"].time.utcoffset() == timedelta(hours=8)
    assert by_code["InTransit_PickedUp"].time.utcoffset() == timedelta(0)


def test_structured_address_becomes_location() -> None:
    """Non-Chinese addresses keep country, state and city as given."""
    [result] = parse_gettrackinfo(
        raw("v2_gettrackinfo_correios_2151.json"), source=SOURCE, queries=[q("AA123456789BR")]
    )
    assert result.events[0].location == Location("BR", "SP", "SAO PAULO", None)


def test_chinese_address_maps_province_and_drops_pinyin_city() -> None:
    """A CN address gives 中国 and the full province; a pinyin city is not guessed."""
    [result, _] = parse_gettrackinfo(
        raw("v2_gettrackinfo_yanwen_190012.json"),
        source=SOURCE,
        queries=[q("YT2616912345678901", "chinapost"), q("21213123123230", "chinapost")],
    )
    picked_up = result.events[0]
    assert picked_up.location == Location("中国", "广东省", None, None)
    assert result.events[-1].location == Location("US", "CA", "LOS ANGELES", None)


def test_chinese_city_is_kept_when_the_gazetteer_knows_it() -> None:
    """A Chinese city name in the address is resolved to its full name."""
    doc = load("v2_gettrackinfo_yanwen_190012.json")
    events = doc["data"]["accepted"][0]["track_info"]["tracking"]["providers"][0]["events"]
    events[-1]["address"].update(state="Guangdong", city="深圳")
    [result] = parse_gettrackinfo(doc, source=SOURCE, queries=[q("YT2616912345678901")])
    assert result.events[0].location == Location("中国", "广东省", "深圳市", None)


def test_free_text_chinese_location_used_when_no_address() -> None:
    """Without a structured address, a Chinese location text goes through the gazetteer."""
    doc = load("v2_gettrackinfo_yanwen_190012.json")
    events = doc["data"]["accepted"][0]["track_info"]["tracking"]["providers"][0]["events"]
    events[-1]["address"] = None
    events[-1]["location"] = "【杭州市】浙江杭州西湖区"
    [result] = parse_gettrackinfo(doc, source=SOURCE, queries=[q("YT2616912345678901")])
    assert result.events[0].location.province == "浙江省"
    assert result.events[0].location.city == "杭州市"


def test_unknown_future_sub_status_falls_back_to_its_main_status() -> None:
    """An undocumented sub-status keeps its raw code and maps by prefix (in transit)."""
    [result, _] = parse_gettrackinfo(
        raw("v2_gettrackinfo_yanwen_190012.json"),
        source=SOURCE,
        queries=[q("YT2616912345678901"), q("21213123123230")],
    )
    odd = result.events[1]
    assert odd.raw_code == "InTransit_QuantumTunnelling"
    assert odd.status is Status.IN_TRANSIT and odd.problem is None
    assert result.status is Status.IN_TRANSIT and not result.finished


def test_rejected_number_is_a_per_number_error() -> None:
    """A rejected number gets its own error; the accepted one in the batch is unaffected."""
    results = parse_gettrackinfo(
        raw("v2_gettrackinfo_yanwen_190012.json"),
        source=SOURCE,
        queries=[q("21213123123230", "chinapost"), q("YT2616912345678901", "chinapost")],
    )
    rejected, accepted = results
    assert rejected.tracking_number == "21213123123230" and rejected.courier == "chinapost"
    assert rejected.error is not None and rejected.error.kind is ErrorKind.NOT_FOUND
    assert rejected.error.retryable
    assert rejected.extra["error_code"] == str(codes.NOT_REGISTERED)
    assert "register first" in rejected.error.message
    assert "21213123123230" in rejected.error.raw_excerpt
    assert accepted.ok and len(accepted.events) == 3


def test_no_tracking_info_yet_differs_from_invalid_number() -> None:
    """-18019909 is a retryable not-found; an invalid format is a final invalid number."""
    doc = {
        "code": 0,
        "data": {
            "accepted": [],
            "rejected": [
                {"number": "A1", "error": {"code": -18019909, "message": "No tracking info."}},
                {"number": "B2", "error": {"code": -18010012, "message": "Format invalid."}},
            ],
        },
    }
    soon, never = parse_gettrackinfo(doc, source=SOURCE, queries=[q("A1"), q("B2")])
    assert soon.error is not None and soon.error.kind is ErrorKind.NOT_FOUND
    assert soon.error.retryable
    assert never.error is not None and never.error.kind is ErrorKind.INVALID_NUMBER
    assert not never.error.retryable


def test_number_missing_from_response_is_bad_response() -> None:
    """A query the response does not mention gets a retryable bad_response error."""
    [result] = parse_gettrackinfo(
        raw("v2_gettrackinfo_exception_returning.json"), source=SOURCE, queries=[q("ZZ1")]
    )
    assert result.error is not None and result.error.kind is ErrorKind.BAD_RESPONSE


def test_exception_returning_status() -> None:
    """Exception_Returning is returning, not finished."""
    [result] = parse_gettrackinfo(
        raw("v2_gettrackinfo_exception_returning.json"), source=SOURCE, queries=[q("AA555666777BR")]
    )
    assert result.status is Status.RETURNING and not result.finished
    assert result.events[0].raw_code == "Exception_Returning"
    assert result.events[0].status is Status.RETURNING


def test_weight_kg_string_is_read() -> None:
    """misc_info.weight_kg given as a string becomes a float weight."""
    doc = load("v2_gettrackinfo_exception_returning.json")
    doc["data"]["accepted"][0]["track_info"]["misc_info"]["weight_kg"] = "1.25"
    [result] = parse_gettrackinfo(doc, source=SOURCE, queries=[q("AA555666777BR")])
    assert result.weight_kg == pytest.approx(1.25)


def test_missing_weight_is_none() -> None:
    """A null weight_kg stays unknown."""
    [result] = parse_gettrackinfo(
        raw("v2_gettrackinfo_correios_2151.json"), source=SOURCE, queries=[q("AA123456789BR")]
    )
    assert result.weight_kg is None


def test_courier_corrected_when_17track_detects_another_carrier() -> None:
    """A known carrier key other than the query's courier is reported as a correction."""
    doc = load("v2_gettrackinfo_correios_2151.json")
    doc["data"]["accepted"][0]["carrier"] = codes.CARRIER_KEYS["fedex"]
    [result] = parse_gettrackinfo(doc, source=SOURCE, queries=[q("AA123456789BR", "ups")])
    assert result.courier == "ups" and result.courier_corrected == "fedex"


def test_accepted_without_track_info_is_not_found_yet() -> None:
    """An accepted number whose track_info is still null is a retryable not-found."""
    doc = load("v2_gettrackinfo_correios_2151.json")
    doc["data"]["accepted"][0]["track_info"] = None
    [result] = parse_gettrackinfo(doc, source=SOURCE, queries=[q("AA123456789BR")])
    assert result.error is not None and result.error.kind is ErrorKind.NOT_FOUND
    assert result.error.retryable


def test_invalid_code_sub_status_is_an_invalid_number() -> None:
    """latest_status NotFound_InvalidCode turns into an invalid_number error."""
    doc = load("v2_gettrackinfo_correios_2151.json")
    doc["data"]["accepted"][0]["track_info"]["latest_status"] = {
        "status": "NotFound",
        "sub_status": "NotFound_InvalidCode",
    }
    [result] = parse_gettrackinfo(doc, source=SOURCE, queries=[q("AA123456789BR")])
    assert result.error is not None and result.error.kind is ErrorKind.INVALID_NUMBER


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"<html><body>502 Bad Gateway</body></html>", 502),
        (b"", None),
        (b"[1, 2, 3]", None),
        ("not json at all", 200),
    ],
)
def test_malformed_bodies_are_bad_response_for_every_number(
    body: bytes | str, status: int | None
) -> None:
    """A non-JSON or non-object body never raises: every query gets bad_response."""
    results = parse_gettrackinfo(
        body, source=SOURCE, queries=[q("A1"), q("B2")], http_status=status
    )
    assert [r.tracking_number for r in results] == ["A1", "B2"]
    for result in results:
        assert result.error is not None and result.error.kind is ErrorKind.BAD_RESPONSE
        assert (
            result.error.raw_excerpt == (body.decode() if isinstance(body, bytes) else body)[:200]
        )


def test_missing_keys_do_not_raise() -> None:
    """An envelope with code 0 but no data treats every number as missing."""
    [result] = parse_gettrackinfo({"code": 0}, source=SOURCE, queries=[q("A1")])
    assert result.error is not None and result.error.kind is ErrorKind.BAD_RESPONSE


def test_long_html_body_excerpt_is_200_chars() -> None:
    """raw_excerpt keeps only the first 200 characters of the body."""
    body = "<html>" + "x" * 500
    [result] = parse_gettrackinfo(body, source=SOURCE, queries=[q("A1")], http_status=502)
    assert result.error is not None and result.error.raw_excerpt == body[:200]


def test_request_level_auth_error() -> None:
    """A non-zero envelope code for a bad key is an auth error for the whole call."""
    doc = {"code": -18010002, "data": {"errors": [{"code": -18010002, "message": "Invalid key"}]}}
    [result] = parse_gettrackinfo(doc, source=SOURCE, queries=[q("A1")])
    assert result.error is not None and result.error.kind is ErrorKind.AUTH
    assert not result.error.retryable


def test_http_429_is_rate_limited_with_retry_after() -> None:
    """HTTP 429 is a retryable rate limit carrying the caller's retry-after."""
    [result] = parse_gettrackinfo(
        b"Too Many Requests", source=SOURCE, queries=[q("A1")], http_status=429, retry_after_s=2.0
    )
    assert result.error is not None and result.error.kind is ErrorKind.RATE_LIMITED
    assert result.error.retryable and result.error.retry_after_s == 2.0


def test_quota_exhausted_is_not_retryable() -> None:
    """-18019908 (quota used up) is quota_exceeded and not retryable."""
    doc = {"code": -18019908, "data": {"errors": [{"code": -18019908, "message": "No quota"}]}}
    [result] = parse_gettrackinfo(doc, source=SOURCE, queries=[q("A1")])
    assert result.error is not None and result.error.kind is ErrorKind.QUOTA_EXCEEDED
    assert not result.error.retryable


# --- register ----------------------------------------------------------------------------


def test_register_mixed_accepted_and_rejected() -> None:
    """Register gives one outcome per query: accepted, or rejected with its error."""
    ok, bad = parse_register(raw("v2_register_mixed.json"), queries=[q("AA123456789BR"), q("1234")])
    assert ok.registered and ok.error is None and ok.carrier_key == 2151
    assert not bad.registered and bad.carrier_key is None
    assert bad.error is not None and bad.error.kind is ErrorKind.INVALID_NUMBER


def test_register_already_registered_counts_as_registered() -> None:
    """-18019901 (already registered) is success, not an error."""
    [outcome] = parse_register(
        raw("v2_register_already_registered.json"), queries=[q("AA123456789BR")]
    )
    assert outcome.registered and outcome.error is None


def test_register_html_body_is_bad_response() -> None:
    """A 502 page on register marks every number unregistered with bad_response."""
    [outcome] = parse_register(b"<html>502</html>", queries=[q("A1")], http_status=502)
    assert not outcome.registered
    assert outcome.error is not None and outcome.error.kind is ErrorKind.BAD_RESPONSE


# --- request bodies ----------------------------------------------------------------------


def test_register_body_uses_carrier_keys_and_auto_detects_the_rest() -> None:
    """Known couriers carry their 17TRACK key; unmapped ones let 17TRACK detect."""
    body = register_body([q("1Z1", "ups"), q("YT1", "yto"), q("EE1", "ems")])
    assert body == [
        {"number": "1Z1", "carrier": 100002},
        {"number": "YT1"},
        {"number": "EE1", "carrier": 3013},
    ]


def test_register_body_sends_phone_tail_for_sf_only() -> None:
    """SF registrations carry the last 4 phone digits as param; others do not."""
    body = register_body([q("SF1", "sf", "138-0013-8000"), q("1Z1", "ups", "13800138000")])
    assert body[0] == {"number": "SF1", "carrier": 190766, "param": "8000"}
    assert "param" not in body[1]
    assert gettrackinfo_body([q("SF1", "sf", "13800138000")]) == [
        {"number": "SF1", "carrier": 190766}
    ]


def test_carrier_keys_for_cross_border_couriers() -> None:
    """The cross-border couriers map to 17TRACK's documented keys."""
    assert [carrier_key(c) for c in ("ups", "fedex", "dhl", "usps", "chinapost")] == [
        100002,
        100003,
        100001,
        21051,
        3011,
    ]
    assert carrier_key("nope") is None


def test_batches_cut_at_forty() -> None:
    """batches() splits in order into chunks of at most 40."""
    items = list(range(85))
    chunks = batches(items)
    assert [len(c) for c in chunks] == [40, 40, 5]
    assert [x for c in chunks for x in c] == items
    assert MAX_BATCH == 40
    assert batches([]) == []
    with pytest.raises(ValueError):
        batches(items, 0)


# --- webhooks ----------------------------------------------------------------------------


def test_signature_worked_example() -> None:
    """The sign header is sha256("{body}/{key}") hex, checked against a hand-computed value."""
    body = b'{"event":"TRACKING_STOPPED","data":{"number":"AA123456789BR","carrier":2151}}'
    expected = "0caf8ba37f0e46c01b7f25b67c61fdf58ad06935e0dd3899fc3748c1ebbe2767"
    assert hashlib.sha256(body + b"/my-17token").hexdigest() == expected
    assert verify_webhook_signature(body, expected, "my-17token")
    assert verify_webhook_signature(body.decode(), expected.upper(), "my-17token")
    assert not verify_webhook_signature(body + b" ", expected, "my-17token")
    assert not verify_webhook_signature(body, expected, "other-token")


def test_webhook_tracking_stopped() -> None:
    """TRACKING_STOPPED gives the number and no result to ingest."""
    push = parse_webhook(raw("v2_webhook_tracking_stopped.json"), source=SOURCE)
    assert push.event == "TRACKING_STOPPED" and push.tracking_number == "AA123456789BR"
    assert push.result is None and push.error is None
    assert push.extra == {"carrier_key": "2151"}


def test_webhook_tracking_updated_parses_track_info() -> None:
    """TRACKING_UPDATED carries a gettrackinfo item and parses like one."""
    item = copy.deepcopy(load("v2_gettrackinfo_yanwen_190012.json")["data"]["accepted"][0])
    item["carrier"] = codes.CARRIER_KEYS["usps"]
    push = parse_webhook({"event": "TRACKING_UPDATED", "data": item}, source=SOURCE)
    assert push.result is not None and push.error is None
    assert push.result.courier == "usps" and push.result.tracking_number == "YT2616912345678901"
    assert push.result.status is Status.IN_TRANSIT and len(push.result.events) == 3


def test_webhook_unknown_carrier_key_keeps_the_key() -> None:
    """A push for a carrier with no canonical code names it by its 17TRACK key."""
    item = load("v2_gettrackinfo_yanwen_190012.json")["data"]["accepted"][0]
    push = parse_webhook({"event": "TRACKING_UPDATED", "data": item}, source=SOURCE)
    assert push.result is not None and push.result.courier == "17track:190012"


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"event": "TRACKING_UPDATED", "data": {}}',
        b'{"event": "WHAT", "data": {"number": "1"}}',
    ],
)
def test_webhook_malformed_is_bad_response(body: bytes) -> None:
    """A malformed or unknown push gives an error, never an exception."""
    push = parse_webhook(body, source=SOURCE)
    assert push.result is None
    assert push.error is not None and push.error.kind is ErrorKind.BAD_RESPONSE


# --- code tables -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sub", "status", "problem"),
    [
        ("InfoReceived", Status.PENDING, None),
        ("InTransit_CustomsRequiringInformation", Status.ON_HOLD, Problem.CUSTOMS),
        ("AvailableForPickup_Other", Status.READY_FOR_PICKUP, None),
        ("DeliveryFailure_NoBody", Status.DELIVERY_FAILED, Problem.UNREACHABLE),
        ("DeliveryFailure_InvalidAddress", Status.DELIVERY_FAILED, Problem.ADDRESS_PROBLEM),
        ("DeliveryFailure_Rejected", Status.DELIVERY_FAILED, Problem.REFUSED),
        ("Exception_Returned", Status.RETURNED, None),
        ("Exception_Lost", Status.EXCEPTION, Problem.LOST),
        ("Exception_Damage", Status.EXCEPTION, Problem.DAMAGED),
        ("Exception_Delayed", Status.IN_TRANSIT, Problem.DELAYED),
        ("Expired_Other", Status.EXCEPTION, Problem.NO_PROGRESS),
        ("Exception_Brandnew", Status.EXCEPTION, Problem.OTHER),
    ],
)
def test_status_table(sub: str, status: Status, problem: Problem | None) -> None:
    """Sub-statuses map to the documented common status and problem."""
    assert codes.status_for(None, sub) == (status, problem)


def test_status_table_unknown_main_status() -> None:
    """A main status nobody knows maps to unknown."""
    assert codes.status_for("Teleported", None) == (Status.UNKNOWN, None)


def test_expired_and_returned_are_finished() -> None:
    """Expired and Exception_Returned results are finished."""
    doc = load("v2_gettrackinfo_exception_returning.json")
    latest = doc["data"]["accepted"][0]["track_info"]["latest_status"]
    latest.update(status="Exception", sub_status="Exception_Returned")
    [returned] = parse_gettrackinfo(doc, source=SOURCE, queries=[q("AA555666777BR")])
    latest.update(status="Expired", sub_status="Expired_Other")
    [expired] = parse_gettrackinfo(doc, source=SOURCE, queries=[q("AA555666777BR")])
    assert returned.status is Status.RETURNED and returned.finished
    assert expired.problem is Problem.NO_PROGRESS and expired.finished
