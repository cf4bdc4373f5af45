"""Pure 17TRACK API v2.2 helpers: request bodies, payload -> model parsing, webhook checks.

Nothing here does I/O or raises on a bad payload: a body that is not JSON, an HTML error
page or a missing key becomes a :class:`~carriers.model.TrackingError` (``bad_response``,
with the first 200 characters of the body). One rejected number never sinks the batch.

Events (times, places) are read by :mod:`carriers.track17.events`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from carriers.model import ErrorKind, TrackingError, TrackingEvent, TrackingQuery, TrackingResult
from carriers.payload import (
    JsonBody,
    as_dict,
    as_int,
    as_list,
    as_text,
    bad_response,
    body_excerpt,
    load_json,
    overall_status,
)
from carriers.track17 import codes
from carriers.track17.events import provider_events

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

T = TypeVar("T")

#: 17TRACK accepts at most 40 numbers per register / gettrackinfo call.
MAX_BATCH = 40


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


def _key(value: Any) -> int | None:
    """A carrier key; 17TRACK sends 0 for "not detected"."""
    key = as_int(value)
    return key if key else None


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
    excerpt = body_excerpt(body)
    doc = load_json(body)
    if http_status in (401, 403, 429):
        return {}, _http_error(http_status, excerpt, retry_after_s)
    if not isinstance(doc, Mapping):
        status = f"HTTP {http_status}: " if http_status is not None else ""
        return {}, bad_response(f"{status}response is not a JSON object", excerpt)
    code = as_int(doc.get("code"))
    data = as_dict(doc.get("data"))
    if code != 0:
        first = as_dict(next(iter(as_list(data.get("errors"))), None))
        detail = as_text(first.get("message")) or as_text(doc.get("message")) or "request failed"
        return {}, _coded_error(as_int(first.get("code")) or code, detail, excerpt)
    if http_status is not None and http_status >= 400:
        return {}, _http_error(http_status, excerpt, retry_after_s)
    return data, None


def _by_number(items: list[Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for item in items:
        number = as_text(as_dict(item).get("number"))
        if number is not None:
            found.setdefault(number.upper(), item)
    return found


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
    excerpt = body_excerpt(item)
    key = _key(item.get("carrier"))
    detected = codes.courier_for_key(key)
    extra = {"carrier_key": str(key)} if key is not None else {}
    if tag := as_text(item.get("tag")):
        extra["tag"] = tag
    base = courier or detected or (f"17track:{key}" if key is not None else "")
    corrected = detected if courier and detected and detected != courier else None
    info = item.get("track_info")
    if not isinstance(info, dict):
        err = TrackingError(
            ErrorKind.NOT_FOUND, "no tracking information yet", retryable=True, raw_excerpt=excerpt
        )
        return TrackingResult(base, number, source, error=err, extra=extra)
    latest = as_dict(info.get("latest_status"))
    main, sub = as_text(latest.get("status")), as_text(latest.get("sub_status"))
    events: list[TrackingEvent] = []
    skipped = 0
    for provider in as_list(as_dict(info.get("tracking")).get("providers")):
        found, missed = provider_events(as_dict(provider))
        events.extend(found)
        skipped += missed
    unique = list(dict.fromkeys(events))  # the same scan may come from two providers
    unique.sort(key=lambda e: e.time)
    stated = codes.status_for(main, sub) if main or sub else None
    status, problem = overall_status(stated, unique)
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
        weight_kg=_weight(as_dict(info.get("misc_info"))),
        error=error,
        courier_corrected=corrected,
        finished=main in codes.FINISHED_MAIN_STATUSES or sub == "Exception_Returned",
        problem=problem,
        extra=extra,
    )


def _rejected(item: dict[str, Any]) -> tuple[TrackingError, int | None]:
    err = as_dict(item.get("error"))
    code = as_int(err.get("code"))
    return _coded_error(code, as_text(err.get("message")) or "rejected", body_excerpt(item)), code


def parse_gettrackinfo(
    body: JsonBody,
    *,
    source: str,
    queries: Sequence[TrackingQuery],
    http_status: int | None = None,
    retry_after_s: float | None = None,
) -> list[TrackingResult]:
    """One result per query, in query order, from a ``gettrackinfo`` response."""
    excerpt = body_excerpt(body)
    data, failure = _envelope(body, http_status, retry_after_s)
    if failure is not None:
        return [
            TrackingResult(q.courier, q.tracking_number, source, error=failure) for q in queries
        ]
    accepted = _by_number(as_list(data.get("accepted")))
    rejected = _by_number(as_list(data.get("rejected")))
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
            missing = bad_response("number missing from the response", excerpt)
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
    excerpt = body_excerpt(body)
    data, failure = _envelope(body, http_status, retry_after_s)
    if failure is not None:
        return [
            Registration(q.tracking_number, carrier_key(q.courier), False, failure) for q in queries
        ]
    accepted = _by_number(as_list(data.get("accepted")))
    rejected = _by_number(as_list(data.get("rejected")))
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
            missing = bad_response("number missing from the response", excerpt)
            out.append(Registration(q.tracking_number, carrier_key(q.courier), False, missing))
    return out


def parse_webhook(body: JsonBody, *, source: str) -> WebhookPush:
    """A ``TRACKING_UPDATED`` / ``TRACKING_STOPPED`` push (verify the signature first)."""
    excerpt = body_excerpt(body)
    doc = load_json(body)
    if not isinstance(doc, Mapping):
        return WebhookPush("", "", error=bad_response("push body is not a JSON object", excerpt))
    event = as_text(doc.get("event")) or ""
    data = as_dict(doc.get("data"))
    number = as_text(data.get("number"))
    if number is None:
        return WebhookPush(event, "", error=bad_response("push has no data.number", excerpt))
    extra = {"carrier_key": str(key)} if (key := _key(data.get("carrier"))) is not None else {}
    if event == "TRACKING_STOPPED":
        return WebhookPush(event, number, extra=extra)
    if event != "TRACKING_UPDATED":
        return WebhookPush(
            event, number, error=bad_response(f"unknown push event {event!r}", excerpt)
        )
    result = _track_result(data, source=source, courier=None, number=number)
    return WebhookPush(event, number, result=result, extra=extra)
