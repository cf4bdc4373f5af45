"""The shared pure helpers of the providers' parsers: carriers.payload and carriers.chinatime."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta, timezone
from types import MappingProxyType

import pytest

from carriers.chinatime import CHINA_TIME_FORMATS, CHINA_TZ, parse_china_time
from carriers.model import ErrorKind, Problem, Status, TrackingEvent, TrackingQuery
from carriers.payload import (
    as_dict,
    as_int,
    as_list,
    as_text,
    bad_response,
    body_excerpt,
    decode_body,
    error_result,
    iso_time,
    load_json,
    load_object,
    overall_status,
)

CHINESE = '{"context": "【深圳市】快件已签收"}'


def test_decode_body_reads_utf8_and_drops_the_bom() -> None:
    """UTF-8 bytes decode as is; a leading BOM is dropped from bytes and from text."""
    assert decode_body(CHINESE.encode("utf-8")) == CHINESE
    assert decode_body(b"\xef\xbb\xbf" + CHINESE.encode("utf-8")) == CHINESE
    assert decode_body("\ufeff" + CHINESE) == CHINESE


def test_decode_body_drops_one_bom_from_bytes_as_utf8_sig_does() -> None:
    """Bytes lose one leading BOM only, exactly as the ``utf-8-sig`` codec decodes them."""
    for raw in (b"", b"\xef\xbb\xbf", b"\xef\xbb\xbf\xef\xbb\xbf{}", b"{}\xef\xbb\xbf", b"x"):
        assert decode_body(raw) == raw.decode("utf-8-sig")


def test_decode_body_falls_back_to_gbk() -> None:
    """GBK bytes (not valid UTF-8) decode through GB18030 to the same text."""
    raw = CHINESE.encode("gbk")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert decode_body(raw) == CHINESE


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "empty body"),
        ("   \n", "empty body"),
        ("<html><body>502 Bad Gateway</body></html>", "HTML page instead of JSON"),
        ('{"message": "ok", "data": [{"ti', "invalid or truncated JSON"),
        ("[1, 2]", "expected a JSON object, got list"),
        ('"text"', "expected a JSON object, got str"),
    ],
)
def test_load_object_returns_why_not_instead_of_raising(text: str, why: str) -> None:
    """Empty, HTML, truncated or non-object bodies give ``None`` and a reason."""
    assert load_object(text) == (None, why)


def test_load_object_returns_the_object() -> None:
    """A JSON object comes back with an empty reason."""
    assert load_object('{"a": 1}') == ({"a": 1}, "")


def test_load_json_accepts_bytes_text_and_mappings() -> None:
    """Bytes and text are parsed; a mapping is passed through untouched."""
    doc = {"meta": {"code": 200}}
    assert load_json(json.dumps(doc).encode()) == doc
    assert load_json(json.dumps(doc)) == doc
    frozen = MappingProxyType(doc)
    assert load_json(frozen) is frozen


@pytest.mark.parametrize("body", [b"<html>Interal Error</html>", '{"data": {"trac', b"", ""])
def test_load_json_gives_none_for_what_is_not_json(body: bytes | str) -> None:
    """HTML, truncated and empty bodies give ``None`` rather than an exception."""
    assert load_json(body) is None


def test_body_excerpt_cuts_every_kind_of_body() -> None:
    """Bytes, text and decoded JSON are cut to the limit; broken UTF-8 does not raise."""
    assert body_excerpt(b"x" * 500) == "x" * 200
    assert body_excerpt("y" * 500, limit=10) == "y" * 10
    assert body_excerpt({"城市": "深圳"}) == '{"城市": "深圳"}'
    assert body_excerpt("深圳".encode()[:4]) == "深\ufffd"
    looped: dict[str, object] = {"a": 1}
    looped["self"] = looped
    assert body_excerpt(looped) == "{'a': 1, 'self': {...}}"  # not serialisable: repr


def test_bad_response_is_retryable_and_keeps_the_excerpt() -> None:
    """``bad_response`` errors are retryable and carry the excerpt given."""
    error = bad_response("response is not JSON", "<html>")
    assert (error.kind, error.message, error.retryable, error.raw_excerpt) == (
        ErrorKind.BAD_RESPONSE,
        "response is not JSON",
        True,
        "<html>",
    )


def test_error_result_names_the_query_or_no_parcel() -> None:
    """An error result names the query's parcel, or no parcel without a query."""
    error = bad_response("no msg", "{}")
    query = TrackingQuery(courier="sf", tracking_number="SF1")
    named = error_result(query, "src", error)
    anonymous = error_result(None, "src", error)
    assert (named.courier, named.tracking_number, named.error) == ("sf", "SF1", error)
    assert (anonymous.courier, anonymous.tracking_number, anonymous.source) == ("", "", "src")
    assert not named.ok and not anonymous.ok


def test_safe_getters_never_raise() -> None:
    """Getters give the value of the right type, else an empty or ``None`` default."""
    assert as_dict({"a": 1}) == {"a": 1} and as_dict([1]) == {} and as_dict(None) == {}
    assert as_list([1]) == [1] and as_list({"a": 1}) == [] and as_list("ab") == []
    assert as_text(" x ") == "x" and as_text(12) == "12"
    assert as_text("  ") is None and as_text({"a": 1}) is None and as_text(None) is None
    assert as_int("42") == 42 and as_int(7) == 7
    assert as_int("4.2") is None and as_int(None) is None and as_int("") is None


def test_iso_time_reads_offsets_z_and_naive_times() -> None:
    """``Z`` is UTC, offsets are kept, no offset stays naive, junk is ``None``."""
    assert iso_time("2026-09-11T09:00:00Z") == datetime(2026, 9, 11, 9, tzinfo=UTC)
    minus5 = timezone(timedelta(hours=-5))
    assert iso_time("2026-09-11T09:00:00-05:00") == datetime(2026, 9, 11, 9, tzinfo=minus5)
    naive = iso_time("2018-07-23T08:58:00")
    assert naive == datetime(2018, 7, 23, 8, 58) and naive.tzinfo is None
    assert iso_time("yesterday") is None and iso_time(None) is None and iso_time(5) is None


def test_overall_status_prefers_the_stated_one_then_the_newest_event() -> None:
    """The stated status wins; without one the newest event's; without events unknown."""
    when = datetime(2026, 9, 11, tzinfo=UTC)
    events = [
        TrackingEvent(when, Status.IN_TRANSIT, "t", "moving"),
        TrackingEvent(when, Status.EXCEPTION, "x", "held", problem=Problem.OTHER),
    ]
    assert overall_status((Status.DELIVERED, None), events) == (Status.DELIVERED, None)
    assert overall_status(None, events) == (Status.EXCEPTION, Problem.OTHER)
    assert overall_status(None, []) == (Status.UNKNOWN, None)


@pytest.mark.parametrize(
    "text",
    [
        "2026-09-11 09:00:00",
        "2026/09/11 09:00:00",
        "2026-09-11 09:00",
        "2026/09/11 09:00",
        "2026-09-11T09:00:00",
        " 2026-09-11 09:00:00.000 ",
    ],
)
def test_naive_china_times_are_read_as_shanghai(text: str) -> None:
    """Offset-less China times in every layout the providers use are Asia/Shanghai."""
    found = parse_china_time(text)
    assert found == datetime(2026, 9, 11, 9, tzinfo=CHINA_TZ)
    assert found is not None and found.utcoffset() == timedelta(hours=8)
    assert found.astimezone(UTC) == datetime(2026, 9, 11, 1, tzinfo=UTC)


@pytest.mark.parametrize("value", ["", "  ", "yesterday", "2026-13-40 09:00:00", None, 1757552400])
def test_unreadable_china_times_are_none(value: object) -> None:
    """Blank, junk, impossible dates and non-strings give ``None``."""
    assert parse_china_time(value) is None


def _strptime_china(text: str) -> datetime | None:
    """The reference: the strptime loop alone, as parse_china_time worked before its fast path."""
    for fmt in CHINA_TIME_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).replace(tzinfo=CHINA_TZ)
        except ValueError:
            continue
    return None


@pytest.mark.parametrize(
    "text",
    [
        "2026-09-11 09:00:00",
        "2024-02-29 23:59:59",
        "0001-01-01 00:00:00",
        "9999-12-31 23:59:59",
        "2026-02-29 09:00:00",  # no such day
        "2026-13-01 09:00:00",
        "2026-00-10 09:00:00",
        "2026-09-11 24:00:00",
        "2026-09-11 09:60:00",
        "2026-09-11 09:00:60",
        "0000-01-01 00:00:00",
        "2026-9-11 09:00:00",  # not zero-padded: strptime still reads it
        "2026-09-11  09:00:00",
        "2026-09-11 9:00:00",
        "２０２６-09-11 09:00:00",  # full-width digits
        "2026-09-11 09:00:00+08:00",
        "2026-09-11T09:00:00",
        "2026/09/11 09:00:00",
    ],
)
def test_fast_china_time_path_agrees_with_strptime(text: str) -> None:
    """Every string gives the same aware time (or None) as the strptime formats alone."""
    found = parse_china_time(text)
    expected = _strptime_china(text)
    assert found == expected
    if found is not None and expected is not None:
        assert found.tzinfo is CHINA_TZ and found.utcoffset() == expected.utcoffset()


def test_fast_china_time_path_agrees_with_strptime_on_random_timestamps() -> None:
    """Random well-formed and off-by-range stamps: identical answers to the strptime loop."""
    rng = random.Random(8)
    for _ in range(3000):
        parts = (
            rng.randrange(0, 10000),
            rng.randrange(0, 14),
            rng.randrange(0, 33),
            rng.randrange(0, 26),
            rng.randrange(0, 62),
            rng.randrange(0, 62),
        )
        text = "{:04d}-{:02d}-{:02d} {:02d}:{:02d}:{:02d}".format(*parts)
        assert parse_china_time(text) == _strptime_china(text), text
