"""Pure EasyPost Tracker helpers: requests, payload -> model parsing, webhook checks.

Nothing here does I/O or raises on a bad payload: a body that is not JSON, an error
envelope (``{"error": {"code", "message", "errors"}}``) or a missing key becomes a
:class:`~carriers.model.TrackingError` (non-JSON: ``bad_response`` with the first 200
characters of the body).

Times: ``tracking_details[].datetime`` is read as given (ISO 8601, ``Z`` = UTC). The
FedEx webhook fixture backs this: its last scan (18:50Z) precedes the event's creation
(19:26:52Z) only if ``Z`` really is UTC. A detail without a usable time is skipped and
counted in ``extra["skipped_events"]`` (the EZ7000000007 test tracker has one).
Weights: ``weight`` is in ounces and is converted to kg.
"""

from __future__ import annotations

import hashlib
import hmac
import unicodedata
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from carriers.easypost import codes
from carriers.geo import CHINA, canonical_city, canonical_province
from carriers.model import (
    ErrorKind,
    Location,
    TrackingError,
    TrackingEvent,
    TrackingQuery,
    TrackingResult,
)
from carriers.payload import (
    ApiRequest,
    JsonBody,
    as_dict,
    as_list,
    as_text,
    bad_response,
    body_excerpt,
    error_result,
    iso_time,
    load_json,
    overall_status,
)

__all__ = [
    "ApiRequest",
    "carrier_name",
    "create_tracker_request",
    "parse_event",
    "parse_tracker",
    "parse_trackers",
    "verify_webhook_signature",
]

_TRACKER_EVENTS = frozenset({"tracker.created", "tracker.updated"})


# --- requests ----------------------------------------------------------------------------


def carrier_name(courier: str) -> str | None:
    """EasyPost's ``carrier`` string for a canonical courier code, or ``None``."""
    return codes.CARRIER_NAMES.get(courier)


def create_tracker_request(query: TrackingQuery) -> ApiRequest:
    """``POST /v2/trackers``; EasyPost returns the existing tracker for a repeated code.

    Without a known carrier the ``carrier`` key is left out and EasyPost guesses it.
    """
    tracker: dict[str, Any] = {"tracking_code": query.tracking_number}
    if carrier := carrier_name(query.courier):
        tracker["carrier"] = carrier
    return ApiRequest("POST", "/v2/trackers", json={"tracker": tracker})


def verify_webhook_signature(body: bytes | str, signature: str, secret: str) -> bool:
    """True when the ``X-Hmac-Signature`` header matches the raw body.

    As EasyPost's own client does it (easypost-python ``validate_webhook``): the header is
    ``"hmac-sha256-hex=" + hex(HMAC-SHA256(key=NFKD(secret), msg=raw body))``.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else body
    key = unicodedata.normalize("NFKD", secret).encode("utf-8")
    expected = "hmac-sha256-hex=" + hmac.new(key, raw, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, signature.strip())


def _bad(message: str, body: Any) -> TrackingError:
    return bad_response(message, body_excerpt(body))


def _error(
    body: JsonBody, doc: Any, http_status: int | None, retry_after_s: float | None
) -> TrackingError | None:
    """The error the response stands for, or ``None`` for a usable JSON object."""
    failed = http_status is not None and http_status >= 400
    envelope = as_dict(doc).get("error") if isinstance(doc, Mapping) else None
    if not isinstance(doc, Mapping) and not (failed and http_status in (401, 403, 429)):
        status = f"HTTP {http_status}: " if http_status is not None else ""
        return _bad(f"{status}response is not JSON", body)
    if not failed and not isinstance(envelope, dict):
        return None
    err = as_dict(envelope)
    code = as_text(err.get("code"))
    kind, retryable = codes.error_kind(http_status, code)
    details = [
        as_text(e.get("message")) if isinstance(e, dict) else as_text(e)
        for e in as_list(err.get("errors"))
    ]
    head = " ".join(p for p in (str(http_status) if http_status else None, code) if p)
    text = "; ".join(p for p in (as_text(err.get("message")), *details) if p)
    return TrackingError(
        kind,
        f"{head}: {text}" if head and text else head or text or "request failed",
        retryable=retryable,
        raw_excerpt=body_excerpt(body),
        retry_after_s=retry_after_s if kind is ErrorKind.RATE_LIMITED else None,
    )


# --- locations and times -----------------------------------------------------------------


def _location(raw: dict[str, Any]) -> Location:
    country = (as_text(raw.get("country")) or "").upper() or None
    state, city = as_text(raw.get("state")), as_text(raw.get("city"))
    if country == "CN":
        province = canonical_province(state)
        return Location(CHINA, province, canonical_city(city, province), None)
    return Location(country, state, city, None)


def _time(value: Any) -> datetime | None:
    found = iso_time(value)
    if found is None:
        return None
    return found if found.tzinfo is not None else found.replace(tzinfo=UTC)


def _raw_code(status: str | None, detail: str | None) -> str:
    return f"{status}/{detail}" if status and detail else status or detail or ""


def _events(details: list[Any]) -> tuple[tuple[TrackingEvent, ...], int]:
    events: list[TrackingEvent] = []
    skipped = 0
    for raw in (as_dict(d) for d in details):
        when = _time(raw.get("datetime"))
        if when is None:
            skipped += 1
            continue
        status_raw, detail = as_text(raw.get("status")), as_text(raw.get("status_detail"))
        status, problem = codes.status_for(status_raw, detail)
        location = _location(as_dict(raw.get("tracking_location")))
        text = as_text(raw.get("message")) or ""
        code = _raw_code(status_raw, detail)
        events.append(TrackingEvent(when, status, code, text, location, problem))
    events.sort(key=lambda e: e.time)  # the docs example lists a delivery scan out of order
    return tuple(events), skipped


# --- results -----------------------------------------------------------------------------


def _weight(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        ounces = float(str(value).strip())
    except ValueError:
        return None
    return ounces * codes.OUNCE_KG if ounces > 0 else None


def _from_tracker(
    tracker: dict[str, Any], *, source: str, query: TrackingQuery | None
) -> TrackingResult:
    carrier = as_text(tracker.get("carrier"))
    detected = codes.courier_for_carrier(carrier)
    extra: dict[str, str] = {}
    for key, name in (
        ("id", "easypost_id"),
        ("carrier", "carrier"),
        ("status_detail", "status_detail"),
        ("est_delivery_date", "est_delivery_date"),
        ("signed_by", "signed_by"),
        ("public_url", "public_url"),
    ):
        if value := as_text(tracker.get(key)):
            extra[name] = value
    if query is not None:
        courier, number = query.courier, query.tracking_number
        corrected = detected if detected and detected != query.courier else None
    else:
        courier = detected or (f"easypost:{carrier}" if carrier else "")
        number, corrected = as_text(tracker.get("tracking_code")) or "", None
    status_raw, detail = as_text(tracker.get("status")), as_text(tracker.get("status_detail"))
    events, skipped = _events(as_list(tracker.get("tracking_details")))
    stated = codes.status_for(status_raw, detail) if status_raw else None
    status, problem = overall_status(stated, events)
    if skipped:
        extra["skipped_events"] = str(skipped)
    return TrackingResult(
        courier=courier,
        tracking_number=number,
        source=source,
        status=status,
        events=events,
        weight_kg=_weight(tracker.get("weight")),
        courier_corrected=corrected,
        finished=codes.is_finished(status_raw),
        problem=problem,
        extra=extra,
    )


def parse_tracker(
    body: JsonBody,
    *,
    source: str,
    query: TrackingQuery | None = None,
    http_status: int | None = None,
    retry_after_s: float | None = None,
) -> TrackingResult:
    """A Tracker (``POST /v2/trackers``, ``GET /v2/trackers/{id}``) or an error body."""
    doc = load_json(body)
    error = _error(body, doc, http_status, retry_after_s)
    if error is not None:
        return error_result(query, source, error)
    if as_dict(doc).get("object") != "Tracker":
        return error_result(query, source, _bad("response is not a Tracker", body))
    return _from_tracker(as_dict(doc), source=source, query=query)


def parse_trackers(
    body: JsonBody,
    *,
    source: str,
    http_status: int | None = None,
    retry_after_s: float | None = None,
) -> list[TrackingResult]:
    """A ``GET /v2/trackers`` page: one result per tracker (a failure gives one error)."""
    doc = load_json(body)
    error = _error(body, doc, http_status, retry_after_s)
    if error is not None:
        return [error_result(None, source, error)]
    trackers = as_dict(doc).get("trackers")
    if not isinstance(trackers, list):
        return [error_result(None, source, _bad("response has no trackers", body))]
    return [_from_tracker(as_dict(t), source=source, query=None) for t in trackers]


def parse_event(body: JsonBody, *, source: str) -> TrackingResult | None:
    """A webhook Event: the tracker of ``tracker.created`` / ``tracker.updated``.

    ``None`` for events about other objects (nothing to track); a malformed body gives a
    result with an error and no number. Verify the signature first.
    """
    doc = load_json(body)
    if not isinstance(doc, Mapping) or doc.get("object") != "Event":
        return error_result(None, source, _bad("body is not an EasyPost Event", body))
    if as_text(doc.get("description")) not in _TRACKER_EVENTS:
        return None
    result = as_dict(doc.get("result"))
    if result.get("object") != "Tracker":
        return error_result(None, source, _bad("event result is not a Tracker", body))
    found = _from_tracker(result, source=source, query=None)
    extra = dict(found.extra)
    if previous := as_text(as_dict(doc.get("previous_attributes")).get("status")):
        extra["previous_status"] = previous
    if event_id := as_text(doc.get("id")):
        extra["event_id"] = event_id
    return replace(found, extra=extra)
