"""Pure AfterShip Tracking API v4 helpers: requests, payload -> model parsing, webhook checks.

Nothing here does I/O or raises on a bad payload: a body that is not JSON (the 502
``Interal Error`` text page), an error envelope or a missing key becomes a
:class:`~carriers.model.TrackingError` (non-JSON: ``bad_response`` with the first 200
characters of the body).

Times: ``checkpoint_time`` is "the local time of the checkpoint" and may come with an
offset (``-05:00``, ``.000Z``), without one (``2018-07-23T08:58:00``) or as a bare date.
Without an offset the checkpoint's country decides when it has a single civil time
(:data:`~carriers.aftership.codes.COUNTRY_ZONES`, e.g. China -> Asia/Shanghai); otherwise
the offset of the nearest checkpoint that has one is used; failing that, UTC.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from carriers.aftership import codes
from carriers.geo import CHINA, canonical_city, canonical_province, parse_location
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
    as_int,
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
    "create_tracking_request",
    "get_tracking_request",
    "meta_code",
    "parse_last_checkpoint",
    "parse_tracking",
    "parse_trackings",
    "parse_webhook",
    "retry_after",
    "tracking_slug",
    "verify_webhook_signature",
]


# --- requests ----------------------------------------------------------------------------


def tracking_slug(courier: str) -> str | None:
    """AfterShip's slug for a canonical courier code, or ``None`` when it has none."""
    return codes.COURIER_SLUGS.get(courier)


def create_tracking_request(
    query: TrackingQuery, *, order_id: str | None = None, title: str | None = None
) -> ApiRequest:
    """``POST /v4/trackings``; without a known slug AfterShip detects the courier itself."""
    tracking: dict[str, Any] = {"tracking_number": query.tracking_number}
    if slug := tracking_slug(query.courier):
        tracking["slug"] = slug
    if order_id:
        tracking["order_id"] = order_id
    if title:
        tracking["title"] = title
    if query.destination is not None and (dest := codes.iso3(_country_code(query.destination))):
        tracking["destination_country_iso3"] = dest
    return ApiRequest("POST", "/v4/trackings", json={"tracking": tracking})


def get_tracking_request(query: TrackingQuery) -> ApiRequest | None:
    """``GET /v4/trackings/{slug}/{tracking_number}``; ``None`` when the courier has no slug."""
    slug = tracking_slug(query.courier)
    if slug is None:
        return None
    number = quote(query.tracking_number, safe="")
    return ApiRequest("GET", f"/v4/trackings/{slug}/{number}")


def _country_code(location: Location) -> str | None:
    return "CN" if location.country in (CHINA, "CN", "China") else location.country


def verify_webhook_signature(body: bytes | str, signature: str, secret: str) -> bool:
    """True when the ``aftership-hmac-sha256`` header matches the raw body.

    https://www.aftership.com/docs/tracking/webhook/webhook-signature: the header is the
    base64 HMAC-SHA256 of the raw request body keyed with the account's webhook secret.
    """
    raw = body.encode("utf-8") if isinstance(body, str) else body
    digest = hmac.new(secret.encode("utf-8"), raw, hashlib.sha256).digest()
    return hmac.compare_digest(base64.b64encode(digest).decode("ascii"), signature.strip())


def retry_after(ratelimit_reset: float | int | str | None, now: datetime) -> float | None:
    """Seconds until ``x-ratelimit-reset`` (a Unix time in seconds), at least 1 s."""
    try:
        reset = float(str(ratelimit_reset).strip())
    except ValueError:
        return None
    return max(1.0, reset - now.timestamp())


def meta_code(body: JsonBody) -> int | None:
    """``meta.code`` of a response (4003 means the tracking already exists), else ``None``."""
    return as_int(as_dict(as_dict(load_json(body)).get("meta")).get("code"))


def _envelope(
    body: JsonBody,
    http_status: int | None,
    ratelimit_reset: float | int | str | None,
    now: datetime | None,
) -> tuple[dict[str, Any], TrackingError | None]:
    """The ``data`` object, or the error the response stands for."""
    excerpt = body_excerpt(body)
    doc = load_json(body)
    meta = as_dict(as_dict(doc).get("meta"))
    code = as_int(meta.get("code"))
    failed = code if code is not None and not 200 <= code < 300 else None
    if failed is None and http_status is not None and http_status >= 400:
        failed = http_status
    if failed is None and isinstance(doc, Mapping):
        return as_dict(doc.get("data")), None
    wait = retry_after(ratelimit_reset, now) if ratelimit_reset is not None and now else None
    if failed in (401, 403, 429) or isinstance(doc, Mapping):
        kind, retryable = codes.meta_error(failed)
        head = " ".join(p for p in (str(failed), as_text(meta.get("type"))) if p)
        detail = as_text(meta.get("message"))
        return {}, TrackingError(
            kind,
            f"{head}: {detail}" if detail else head,
            retryable=retryable,
            raw_excerpt=excerpt,
            retry_after_s=wait if kind is ErrorKind.RATE_LIMITED else None,
        )
    status = f"HTTP {http_status}: " if http_status is not None else ""
    return {}, bad_response(f"{status}response is not JSON", excerpt)


# --- locations and times -----------------------------------------------------------------


def _location(raw: dict[str, Any]) -> Location:
    country = codes.iso2(as_text(raw.get("country_iso3")))
    state = as_text(raw.get("state"))
    city = as_text(raw.get("city"))
    text = as_text(raw.get("location"))
    if country is None and state is None and city is None:
        if text and any("\u4e00" <= ch <= "\u9fff" for ch in text):
            return parse_location(text)
        return Location()
    if country == "CN":
        province = canonical_province(state)
        found = parse_location(text) if text and city is None and state is None else Location()
        return Location(
            CHINA,
            province or found.province,
            canonical_city(city, province) or found.city,
            found.district,
        )
    return Location(country, state, city, None)


def _aware_times(raws: list[dict[str, Any]]) -> list[datetime | None]:
    """Checkpoint times, naive ones placed per the module docstring."""
    times = [iso_time(r.get("checkpoint_time")) for r in raws]
    aware = [i for i, t in enumerate(times) if t is not None and t.tzinfo is not None]
    out: list[datetime | None] = []
    for i, t in enumerate(times):
        if t is None or t.tzinfo is not None:
            out.append(t)
            continue
        zone = codes.COUNTRY_ZONES.get((as_text(raws[i].get("country_iso3")) or "").upper())
        if zone is not None:
            out.append(t.replace(tzinfo=ZoneInfo(zone)))
        elif aware:
            nearest = times[min(aware, key=lambda j: abs(j - i))]
            out.append(t.replace(tzinfo=nearest.tzinfo if nearest else UTC))
        else:
            out.append(t.replace(tzinfo=UTC))
    return out


def _events(checkpoints: list[Any]) -> tuple[tuple[TrackingEvent, ...], int]:
    raws = [as_dict(c) for c in checkpoints]
    events: list[TrackingEvent] = []
    skipped = 0
    for raw, when in zip(raws, _aware_times(raws), strict=True):
        if when is None:
            skipped += 1
            continue
        tag, subtag = as_text(raw.get("tag")), as_text(raw.get("subtag"))
        status, problem = codes.status_for(tag, subtag)
        text = as_text(raw.get("message")) or ""
        code = subtag or tag or ""
        events.append(TrackingEvent(when, status, code, text, _location(raw), problem))
    events.sort(key=lambda e: e.time)  # stable: same-minute scans keep the provider's order
    return tuple(events), skipped


# --- results -----------------------------------------------------------------------------


def _identity(
    payload: dict[str, Any], query: TrackingQuery | None
) -> tuple[str, str, str | None, dict[str, str]]:
    """(courier, tracking number, corrected courier, extra) for a tracking payload."""
    slug = as_text(payload.get("slug"))
    detected = codes.courier_for_slug(slug)
    extra: dict[str, str] = {}
    if slug:
        extra["slug"] = slug
    if tracking_id := as_text(payload.get("id")):
        extra["aftership_id"] = tracking_id
    if query is not None:
        corrected = detected if detected and detected != query.courier else None
        return query.courier, query.tracking_number, corrected, extra
    courier = detected or (f"aftership:{slug}" if slug else "")
    return courier, as_text(payload.get("tracking_number")) or "", None, extra


def _from_tracking(
    payload: dict[str, Any], *, source: str, query: TrackingQuery | None
) -> TrackingResult:
    courier, number, corrected, extra = _identity(payload, query)
    tag, subtag = as_text(payload.get("tag")), as_text(payload.get("subtag"))
    events, skipped = _events(as_list(payload.get("checkpoints")))
    stated = codes.status_for(tag, subtag) if tag or subtag else None
    status, problem = overall_status(stated, events)
    if subtag:
        extra["subtag"] = subtag
    if skipped:
        extra["skipped_events"] = str(skipped)
    return TrackingResult(
        courier=courier,
        tracking_number=number,
        source=source,
        status=status,
        events=events,
        weight_kg=codes.weight_kg(
            payload.get("shipment_weight"), payload.get("shipment_weight_unit")
        ),
        courier_corrected=corrected,
        finished=codes.is_finished(tag, subtag),
        problem=problem,
        extra=extra,
    )


def parse_tracking(
    body: JsonBody,
    *,
    source: str,
    query: TrackingQuery | None = None,
    http_status: int | None = None,
    ratelimit_reset: float | int | str | None = None,
    now: datetime | None = None,
) -> TrackingResult:
    """A ``data.tracking`` response (GET, POST 201, PUT) as a result.

    ``ratelimit_reset`` is the ``x-ratelimit-reset`` header and ``now`` the current time;
    with both, a rate-limit error carries ``retry_after_s``.
    """
    data, error = _envelope(body, http_status, ratelimit_reset, now)
    if error is not None:
        return error_result(query, source, error)
    tracking = data.get("tracking")
    if not isinstance(tracking, dict):
        return error_result(query, source, _no("data.tracking", body))
    return _from_tracking(tracking, source=source, query=query)


def parse_trackings(
    body: JsonBody,
    *,
    source: str,
    http_status: int | None = None,
    ratelimit_reset: float | int | str | None = None,
    now: datetime | None = None,
) -> list[TrackingResult]:
    """A ``GET /v4/trackings`` page: one result per tracking (a failure gives one error)."""
    data, error = _envelope(body, http_status, ratelimit_reset, now)
    if error is not None:
        return [error_result(None, source, error)]
    trackings = data.get("trackings")
    if not isinstance(trackings, list):
        return [error_result(None, source, _no("data.trackings", body))]
    return [_from_tracking(as_dict(t), source=source, query=None) for t in trackings]


def parse_last_checkpoint(
    body: JsonBody,
    *,
    source: str,
    query: TrackingQuery | None = None,
    http_status: int | None = None,
    ratelimit_reset: float | int | str | None = None,
    now: datetime | None = None,
) -> TrackingResult:
    """``GET /v4/last_checkpoint/...``: the status and at most one (the latest) event."""
    data, error = _envelope(body, http_status, ratelimit_reset, now)
    if error is not None:
        return error_result(query, source, error)
    if not data:
        return error_result(query, source, _no("data", body))
    checkpoint = as_dict(data.get("checkpoint"))
    payload = dict(data, checkpoints=[checkpoint] if checkpoint.get("checkpoint_time") else [])
    return _from_tracking(payload, source=source, query=query)


def parse_webhook(body: JsonBody, *, source: str) -> TrackingResult:
    """A tracking webhook (``{"event": "tracking_update", "msg": {tracking}}``).

    Verify the signature first; a malformed body gives a result with an error and no number.
    """
    doc = load_json(body)
    msg = as_dict(doc).get("msg") if isinstance(doc, Mapping) else None
    if not isinstance(msg, dict):
        return error_result(None, source, _no("msg", body))
    return _from_tracking(msg, source=source, query=None)


def _no(what: str, body: JsonBody) -> TrackingError:
    return bad_response(f"no {what}", body_excerpt(body))
