"""Pure 17TRACK API v2.2 helpers: request bodies, payload -> model parsing, webhook checks.

Nothing here does I/O or raises on a bad payload: a body that is not JSON, an HTML error
page or a missing key becomes a :class:`~carriers.model.TrackingError` (``bad_response``,
with the first 200 characters of the body). One rejected number never sinks the batch.

Times: events carry ``time_iso`` (local time with offset) and ``time_utc``; when both are
null the time is read from ``time_raw`` (17TRACK documents that a ``Delivered_Other``
event may only have it there). A ``time_raw`` without a timezone is given the offset of
the nearest event from the same carrier that has one; failing that, +08:00 for Chinese
addresses and UTC otherwise.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, TypeVar

from carriers.geo import CHINA, canonical_city, canonical_province, parse_location
from carriers.model import (
    ErrorKind,
    Location,
    Status,
    TrackingError,
    TrackingEvent,
    TrackingQuery,
    TrackingResult,
)
from carriers.track17 import codes

__all__ = [
    "MAX_BATCH",
    "Registration",
    "WebhookPush",
    "batches",
    "carrier_key",
    "gettrackinfo_body",
    "parse_gettrackinfo",
    "parse_register",
    "parse_webhook",
    "register_body",
    "verify_webhook_signature",
]

JsonBody = bytes | str | Mapping[str, Any]
T = TypeVar("T")

#: 17TRACK accepts at most 40 numbers per register / gettrackinfo call.
MAX_BATCH = 40
_EXCERPT = 200
_CST = timezone(timedelta(hours=8))
_CN_CODES = frozenset({"CN"})


@dataclass(frozen=True, slots=True)
class Registration:
    """The outcome of registering one number: registered (or already was), or an error."""

    tracking_number: str
    carrier_key: int | None
    registered: bool
    error: TrackingError | None = None


@dataclass(frozen=True, slots=True)
class WebhookPush:
    """A parsed push: ``result`` for ``TRACKING_UPDATED``, ``None`` for ``TRACKING_STOPPED``."""

    event: str
    tracking_number: str
    result: TrackingResult | None = None
    error: TrackingError | None = None
    extra: dict[str, str] = field(default_factory=dict)


# --- requests ----------------------------------------------------------------------------


def carrier_key(courier: str) -> int | None:
    """The 17TRACK carrier key for a canonical courier code; ``None`` lets 17TRACK auto-detect."""
    return codes.CARRIER_KEYS.get(courier)


def batches(items: Sequence[T], size: int = MAX_BATCH) -> list[list[T]]:
    """``items`` in order, cut into lists of at most ``size`` (17TRACK's limit is 40)."""
    if size < 1:
        raise ValueError("batch size must be positive")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def _number_item(query: TrackingQuery, *, with_param: bool) -> dict[str, Any]:
    item: dict[str, Any] = {"number": query.tracking_number}
    key = carrier_key(query.courier)
    if key is not None:
        item["carrier"] = key
    digits = "".join(ch for ch in query.phone or "" if ch.isdigit())
    if with_param and query.courier in codes.PHONE_PARAM_COURIERS and len(digits) >= 4:
        item["param"] = digits[-4:]
    return item


def register_body(queries: Sequence[TrackingQuery]) -> list[dict[str, Any]]:
    """The JSON body of ``POST /track/v2.2/register`` (call :func:`batches` first)."""
    return [_number_item(q, with_param=True) for q in queries]


def gettrackinfo_body(queries: Sequence[TrackingQuery]) -> list[dict[str, Any]]:
    """The JSON body of ``POST /track/v2.2/gettrackinfo`` (call :func:`batches` first)."""
    return [_number_item(q, with_param=False) for q in queries]


def verify_webhook_signature(body: bytes | str, sign: str, api_key: str) -> bool:
    """True when the push's ``sign`` header matches the raw body.

    ``sign`` is the hex SHA-256 of ``"{raw body}/{api key}"``; hash the bytes exactly as
    received. Scheme as documented for the v2 webhooks (https://api.17track.net/en/doc,
    "Webhook"), taken from godely/aio17track ``webhook.py`` / ``SPEC.md`` §9, which was
    written against the v2.4 docs; the docs page itself was not readable from here.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else body
    expected = hashlib.sha256(raw + b"/" + api_key.encode("utf-8")).hexdigest()
    return hmac.compare_digest(expected, sign.strip().lower())


# --- shared parsing helpers --------------------------------------------------------------


def _excerpt(body: JsonBody) -> str:
    if isinstance(body, bytes):
        return body[: _EXCERPT * 4].decode("utf-8", "replace")[:_EXCERPT]
    if isinstance(body, str):
        return body[:_EXCERPT]
    try:
        return json.dumps(body, ensure_ascii=False, default=str)[:_EXCERPT]
    except (TypeError, ValueError):
        return repr(body)[:_EXCERPT]


def _load(body: JsonBody) -> Any:
    """The decoded JSON document, or ``None`` when the body is not JSON."""
    if isinstance(body, Mapping):
        return body
    try:
        return json.loads(body)
    except (ValueError, TypeError):
        return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _key(value: Any) -> int | None:
    """A carrier key; 17TRACK sends 0 for "not detected"."""
    key = _int(value)
    return key if key else None


def _bad(message: str, excerpt: str) -> TrackingError:
    return TrackingError(ErrorKind.BAD_RESPONSE, message, retryable=True, raw_excerpt=excerpt)


def _http_error(status: int, excerpt: str, retry_after_s: float | None) -> TrackingError:
    if status in (401, 403):
        return TrackingError(ErrorKind.AUTH, f"HTTP {status}", raw_excerpt=excerpt)
    if status == 429:
        return TrackingError(
            ErrorKind.RATE_LIMITED,
            "HTTP 429",
            retryable=True,
            raw_excerpt=excerpt,
            retry_after_s=retry_after_s,
        )
    return TrackingError(
        ErrorKind.PROVIDER, f"HTTP {status}", retryable=status >= 500, raw_excerpt=excerpt
    )


def _coded_error(code: int | None, message: str, excerpt: str) -> TrackingError:
    kind, retryable = codes.error_kind(code)
    return TrackingError(kind, f"{code}: {message}", retryable=retryable, raw_excerpt=excerpt)


def _envelope(
    body: JsonBody, http_status: int | None, retry_after_s: float | None
) -> tuple[dict[str, Any], TrackingError | None]:
    """The ``data`` object, or the error that applies to every number of the call.

    401/403/429 decide on their own; otherwise a non-JSON body is ``bad_response`` and a
    JSON error envelope (``code`` != 0, ``data.errors[]``) is mapped by its code.
    """
    excerpt = _excerpt(body)
    doc = _load(body)
    if http_status in (401, 403, 429):
        return {}, _http_error(http_status, excerpt, retry_after_s)
    if not isinstance(doc, Mapping):
        status = f"HTTP {http_status}: " if http_status is not None else ""
        return {}, _bad(f"{status}response is not a JSON object", excerpt)
    code = _int(doc.get("code"))
    data = _dict(doc.get("data"))
    if code != 0:
        first = _dict(next(iter(_list(data.get("errors"))), None))
        detail = _str(first.get("message")) or _str(doc.get("message")) or "request failed"
        return {}, _coded_error(_int(first.get("code")) or code, detail, excerpt)
    if http_status is not None and http_status >= 400:
        return {}, _http_error(http_status, excerpt, retry_after_s)
    return data, None


def _by_number(items: list[Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for item in items:
        number = _str(_dict(item).get("number"))
        if number is not None:
            found.setdefault(number.upper(), item)
    return found


# --- locations and times -----------------------------------------------------------------


def _location(address: dict[str, Any], text: str | None) -> Location:
    country = (_str(address.get("country")) or "").upper() or None
    state = _str(address.get("state"))
    city = _str(address.get("city"))
    if country in _CN_CODES:
        province = codes.CN_SUBDIVISIONS.get((state or "").upper()) or canonical_province(state)
        # a pinyin city ("SHENZHEN") is dropped rather than compared against 深圳市
        return Location(CHINA, province, canonical_city(city, province), None)
    if country is None and state is None and city is None:
        if text and any("\u4e00" <= ch <= "\u9fff" for ch in text):
            return parse_location(text)
        return Location()
    return Location(country, state, city, None)


def _iso(value: Any) -> datetime | None:
    text = _str(value)
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None


def _event_time(raw: dict[str, Any]) -> datetime | None:
    """The event time; naive when only an offset-less ``time_raw`` is given."""
    for key in ("time_iso", "time_utc"):
        found = _iso(raw.get(key))
        if found is not None:
            return found
    time_raw = _dict(raw.get("time_raw"))
    date = _str(time_raw.get("date"))
    if date is None:
        return None
    clock = _str(time_raw.get("time")) or "00:00:00"
    return _iso(f"{date}T{clock}{_str(time_raw.get('timezone')) or ''}")


def _resolve_naive(
    times: list[datetime | None], countries: list[str | None]
) -> list[datetime | None]:
    """Give each naive time the offset of the nearest aware one (see module docstring)."""
    aware = [i for i, t in enumerate(times) if t is not None and t.tzinfo is not None]
    out: list[datetime | None] = []
    for i, t in enumerate(times):
        if t is None or t.tzinfo is not None:
            out.append(t)
        elif aware:
            nearest = times[min(aware, key=lambda j: abs(j - i))]
            out.append(t.replace(tzinfo=nearest.tzinfo if nearest else UTC))
        else:
            out.append(t.replace(tzinfo=_CST if countries[i] in _CN_CODES else UTC))
    return out


def _provider_events(provider: dict[str, Any]) -> tuple[list[TrackingEvent], int]:
    """One carrier's events, oldest first, and how many had no usable time."""
    raws = [_dict(e) for e in reversed(_list(provider.get("events")))]  # API lists newest first
    times = [_event_time(raw) for raw in raws]
    countries = [(_str(_dict(r.get("address")).get("country")) or "").upper() for r in raws]
    resolved = _resolve_naive(times, [c or None for c in countries])
    events: list[TrackingEvent] = []
    skipped = 0
    for raw, when in zip(raws, resolved, strict=True):
        if when is None:
            skipped += 1
            continue
        sub = _str(raw.get("sub_status"))
        stage = _str(raw.get("stage"))
        status, problem = codes.status_for(stage, sub) if sub else codes.stage_status(stage)
        text = _str(raw.get("description")) or ""
        location = _location(_dict(raw.get("address")), _str(raw.get("location")))
        events.append(TrackingEvent(when, status, sub or stage or "", text, location, problem))
    return events, skipped


# --- results -----------------------------------------------------------------------------


def _weight(misc: dict[str, Any]) -> float | None:
    try:
        kg = float(str(misc.get("weight_kg")).strip())
    except (TypeError, ValueError):
        return None
    return kg if kg > 0 else None


def _track_result(
    item: dict[str, Any], *, source: str, courier: str | None, number: str
) -> TrackingResult:
    excerpt = _excerpt(item)
    key = _key(item.get("carrier"))
    detected = codes.courier_for_key(key)
    extra = {"carrier_key": str(key)} if key is not None else {}
    if tag := _str(item.get("tag")):
        extra["tag"] = tag
    base = courier or detected or (f"17track:{key}" if key is not None else "")
    corrected = detected if courier and detected and detected != courier else None
    info = item.get("track_info")
    if not isinstance(info, dict):
        err = TrackingError(
            ErrorKind.NOT_FOUND, "no tracking information yet", retryable=True, raw_excerpt=excerpt
        )
        return TrackingResult(base, number, source, error=err, extra=extra)
    latest = _dict(info.get("latest_status"))
    main, sub = _str(latest.get("status")), _str(latest.get("sub_status"))
    events: list[TrackingEvent] = []
    skipped = 0
    for provider in _list(_dict(info.get("tracking")).get("providers")):
        found, missed = _provider_events(_dict(provider))
        events.extend(found)
        skipped += missed
    unique = list(dict.fromkeys(events))  # the same scan may come from two providers
    unique.sort(key=lambda e: e.time)
    if main or sub:
        status, problem = codes.status_for(main, sub)
    elif unique:
        status, problem = unique[-1].status, unique[-1].problem
    else:
        status, problem = Status.UNKNOWN, None
    if sub:
        extra["sub_status"] = sub
    if skipped:
        extra["skipped_events"] = str(skipped)
    error = None
    if sub == "NotFound_InvalidCode":
        error = TrackingError(ErrorKind.INVALID_NUMBER, sub, raw_excerpt=excerpt)
    return TrackingResult(
        courier=base,
        tracking_number=number,
        source=source,
        status=status,
        events=tuple(unique),
        weight_kg=_weight(_dict(info.get("misc_info"))),
        error=error,
        courier_corrected=corrected,
        finished=main in codes.FINISHED_MAIN_STATUSES or sub == "Exception_Returned",
        problem=problem,
        extra=extra,
    )


def _rejected(item: dict[str, Any]) -> tuple[TrackingError, int | None]:
    err = _dict(item.get("error"))
    code = _int(err.get("code"))
    return _coded_error(code, _str(err.get("message")) or "rejected", _excerpt(item)), code


def parse_gettrackinfo(
    body: JsonBody,
    *,
    source: str,
    queries: Sequence[TrackingQuery],
    http_status: int | None = None,
    retry_after_s: float | None = None,
) -> list[TrackingResult]:
    """One result per query, in query order, from a ``gettrackinfo`` response."""
    excerpt = _excerpt(body)
    data, failure = _envelope(body, http_status, retry_after_s)
    if failure is not None:
        return [
            TrackingResult(q.courier, q.tracking_number, source, error=failure) for q in queries
        ]
    accepted = _by_number(_list(data.get("accepted")))
    rejected = _by_number(_list(data.get("rejected")))
    results: list[TrackingResult] = []
    for q in queries:
        number = q.tracking_number.strip().upper()
        if number in accepted:
            found = _track_result(
                accepted[number],
                source=source,
                courier=q.courier,
                number=q.tracking_number,
            )
            results.append(found)
        elif number in rejected:
            error, code = _rejected(rejected[number])
            extra = {"error_code": str(code)} if code is not None else {}
            results.append(
                TrackingResult(q.courier, q.tracking_number, source, error=error, extra=extra)
            )
        else:
            missing = _bad("number missing from the response", excerpt)
            results.append(TrackingResult(q.courier, q.tracking_number, source, error=missing))
    return results


def parse_register(
    body: JsonBody,
    *,
    queries: Sequence[TrackingQuery],
    http_status: int | None = None,
    retry_after_s: float | None = None,
) -> list[Registration]:
    """One outcome per query from a ``register`` response; "already registered" is success."""
    excerpt = _excerpt(body)
    data, failure = _envelope(body, http_status, retry_after_s)
    if failure is not None:
        return [
            Registration(q.tracking_number, carrier_key(q.courier), False, failure) for q in queries
        ]
    accepted = _by_number(_list(data.get("accepted")))
    rejected = _by_number(_list(data.get("rejected")))
    out: list[Registration] = []
    for q in queries:
        number = q.tracking_number.strip().upper()
        if number in accepted:
            key = _key(accepted[number].get("carrier"))
            out.append(Registration(q.tracking_number, key, True))
        elif number in rejected:
            key = _key(rejected[number].get("carrier"))
            error, code = _rejected(rejected[number])
            if code == codes.ALREADY_REGISTERED:
                out.append(Registration(q.tracking_number, key, True))
            else:
                out.append(Registration(q.tracking_number, key, False, error))
        else:
            missing = _bad("number missing from the response", excerpt)
            out.append(Registration(q.tracking_number, carrier_key(q.courier), False, missing))
    return out


def parse_webhook(body: JsonBody, *, source: str) -> WebhookPush:
    """A ``TRACKING_UPDATED`` / ``TRACKING_STOPPED`` push (verify the signature first)."""
    excerpt = _excerpt(body)
    doc = _load(body)
    if not isinstance(doc, Mapping):
        return WebhookPush("", "", error=_bad("push body is not a JSON object", excerpt))
    event = _str(doc.get("event")) or ""
    data = _dict(doc.get("data"))
    number = _str(data.get("number"))
    if number is None:
        return WebhookPush(event, "", error=_bad("push has no data.number", excerpt))
    extra = {"carrier_key": str(key)} if (key := _key(data.get("carrier"))) is not None else {}
    if event == "TRACKING_STOPPED":
        return WebhookPush(event, number, extra=extra)
    if event != "TRACKING_UPDATED":
        return WebhookPush(event, number, error=_bad(f"unknown push event {event!r}", excerpt))
    result = _track_result(data, source=source, courier=None, number=number)
    return WebhookPush(event, number, result=result, extra=extra)
