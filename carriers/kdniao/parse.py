"""Kdniao payloads -> :class:`~carriers.model.TrackingResult`: pure, never raises.

A query answer (RequestType 8001 or 1002) and each item of a push's ``Data`` share one
shape: ``EBusinessID, ShipperCode, LogisticCode, Success, Reason, State, StateEx,
Location, Traces[{AcceptTime, AcceptStation, Location, Action, Remark}],
EstimatedDeliveryTime``. Decisions (see also :mod:`carriers.kdniao.codes`):

* ``StateEx`` wins over ``State``; a scan's ``Action`` gives its status and is kept as
  its raw code. A scan without ``Action`` (1002) gets a status guessed from its text and
  an empty raw code.
* ``Success=false`` with no reason or a no-trace reason (暂无轨迹, 三天无轨迹,
  七天内无轨迹变化) is an ok, ``pending`` result; 三天无轨迹 / 七天内无轨迹变化 add
  :attr:`Problem.NO_PROGRESS`. Any other reason is a :class:`~carriers.model.TrackingError`
  classified by keyword (auth, quota, rate limit, courier, number, provider).
* Bodies may be UTF-8 or GBK; HTML or truncated JSON is ``bad_response`` with an excerpt.
* ``AcceptTime`` (``2026-09-11 09:00:00`` or ``2026/09/11 09:00:00``) is China local time:
  Asia/Shanghai is attached. Events come out oldest first.
* A scan's place is its ``Location`` (a city name), else found in ``AcceptStation``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from carriers.chinatime import CHINA_TZ, parse_china_time
from carriers.geo import parse_location
from carriers.kdniao.codes import (
    NO_TRACE_REASONS,
    STATES,
    STATES_EX,
    Code,
    canonical_courier,
    classify_reason,
    classify_text,
    family,
)
from carriers.model import ErrorKind, Problem, Status, TrackingError, TrackingEvent, TrackingResult
from carriers.payload import decode_body, load_object

__all__ = ["CHINA_TZ", "decode_body", "parse_china_time", "parse_push", "parse_query"]

_EXCERPT = 300
_STALE_REASONS = ("三天无轨迹", "七天内无轨迹变化")


def _str(value: object) -> str:
    """A field as text: numbers as written, ``None`` as empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _error(kind: ErrorKind, message: str, text: str, *, retryable: bool) -> TrackingError:
    return TrackingError(kind, message, retryable, text[:_EXCERPT])


def _events(
    traces: object,
) -> tuple[tuple[TrackingEvent, ...], tuple[str, ...], int]:
    """Scans oldest first, their Action codes, and how many had an unreadable time."""
    if not isinstance(traces, Sequence) or isinstance(traces, str):
        return (), (), 0
    timed: list[tuple[datetime, Mapping[str, Any]]] = []
    dropped = 0
    for item in traces:
        when = parse_china_time(item.get("AcceptTime")) if isinstance(item, Mapping) else None
        if when is None or not isinstance(item, Mapping):
            dropped += 1
            continue
        timed.append((when, item))
    if len(timed) > 1 and timed[0][0] > timed[-1][0]:
        timed.reverse()  # documented order is oldest first; accept newest first too
    timed.sort(key=lambda pair: pair[0])
    events: list[TrackingEvent] = []
    codes: list[str] = []
    previous = Status.PENDING
    for when, item in timed:
        text = _str(item.get("AcceptStation"))
        action = _str(item.get("Action"))
        meaning: Code | None = STATES_EX.get(action) if action else classify_text(text)
        status = Status.UNKNOWN if meaning is None else (meaning.status or previous)
        place = _str(item.get("Location"))
        location = parse_location(place) if place else None
        if location is None or not location.is_known:
            location = parse_location(text)
        problem = meaning.problem if meaning else None
        events.append(TrackingEvent(when, status, action, text, location, problem))
        codes.append(action)
        previous = status
    return tuple(events), tuple(codes), dropped


def _state(data: Mapping[str, Any]) -> tuple[str, Code | None]:
    """The most precise state given: ``StateEx`` when known, else ``State``."""
    state_ex = _str(data.get("StateEx"))
    if state_ex and state_ex in STATES_EX:
        return state_ex, STATES_EX[state_ex]
    state = _str(data.get("State"))
    if state:
        return state, STATES.get(state)
    return state_ex, None


def _tracking(
    data: Mapping[str, Any], *, courier: str, tracking_number: str, source: str
) -> TrackingResult:
    """The result for one query answer or push item that succeeded (or has no trace yet)."""
    events, codes, dropped = _events(data.get("Traces"))
    code, meaning = _state(data)
    newest = events[-1] if events else None
    newest_code = codes[-1] if codes else ""
    fallback = newest.status if newest else Status.PENDING
    if meaning is None:
        status = fallback if (newest or not code) else Status.UNKNOWN
        problem = newest.problem if newest else None
    elif newest is not None and newest_code and newest_code != code and family(newest_code) == code:
        status, problem = newest.status, newest.problem  # the scan's sub-state is finer
    else:
        status = meaning.status or fallback
        problem = meaning.problem
        if problem in (None, Problem.OTHER) and newest is not None and newest.problem:
            problem = newest.problem
    finished = bool(code) and (family(code) == "3" or code == "406")
    shipper = _str(data.get("ShipperCode"))
    corrected = canonical_courier(shipper) if shipper else None
    extra = {
        k: v
        for k, v in {
            "State": _str(data.get("State")),
            "StateEx": _str(data.get("StateEx")),
            "ShipperCode": shipper,
            "location": _str(data.get("Location")),
            "estimated_delivery": _str(data.get("EstimatedDeliveryTime")),
            "Reason": _str(data.get("Reason")),
            "CallBack": _str(data.get("CallBack")) or _str(data.get("Callback")),
            "dropped_events": str(dropped) if dropped else "",
        }.items()
        if v
    }
    return TrackingResult(
        courier=courier,
        tracking_number=tracking_number,
        source=source,
        status=status,
        events=events,
        courier_corrected=None if corrected in (None, courier) else corrected,
        finished=finished,
        problem=problem,
        extra=extra,
    )


def _item(
    data: Mapping[str, Any], text: str, *, courier: str, tracking_number: str, source: str
) -> TrackingResult:
    """One answer or push item: success, no trace yet, or an error from its ``Reason``."""
    success = data.get("Success")
    reason = _str(data.get("Reason"))
    result = _tracking(data, courier=courier, tracking_number=tracking_number, source=source)
    if success is True or _str(success).lower() == "true":
        return result
    if not reason or any(words in reason for words in NO_TRACE_REASONS):
        problem = Problem.NO_PROGRESS if any(r in reason for r in _STALE_REASONS) else None
        return replace(result, problem=problem or result.problem)
    kind, retryable = classify_reason(reason)
    error = _error(kind, f"Kdniao: {reason}", text, retryable=retryable)
    return TrackingResult(
        courier=courier, tracking_number=tracking_number, source=source, error=error
    )


def parse_query(
    body: bytes | str,
    *,
    courier: str,
    tracking_number: str,
    source: str,
    http_status: int | None = None,
) -> TrackingResult:
    """Parse a query answer (8001 or 1002) for ``courier`` (canonical) / ``tracking_number``."""
    text = decode_body(body)
    data, why = load_object(text)
    if data is None or "Success" not in data:
        if http_status == 429:
            error = _error(ErrorKind.RATE_LIMITED, "HTTP 429", text, retryable=True)
        elif http_status in (401, 403):
            error = _error(ErrorKind.AUTH, f"HTTP {http_status}", text, retryable=False)
        elif data is None:
            error = _error(ErrorKind.BAD_RESPONSE, why, text, retryable=True)
        else:
            server = http_status is not None and http_status >= 500
            error = _error(ErrorKind.BAD_RESPONSE, "no Success field", text, retryable=server)
        return TrackingResult(
            courier=courier, tracking_number=tracking_number, source=source, error=error
        )
    return _item(data, text, courier=courier, tracking_number=tracking_number, source=source)


def parse_push(request_data: bytes | str, *, source: str) -> list[TrackingResult]:
    """One result per item of a push's ``RequestData`` (verify its ``DataSign`` first).

    A body that is not a push gives a single ``bad_response`` result with empty courier
    and tracking number, so the caller can answer ``Success: false``.
    """
    text = decode_body(request_data)
    data, why = load_object(text)
    items = data.get("Data") if data is not None else None
    if data is None or not isinstance(items, Sequence) or isinstance(items, str):
        error = _error(ErrorKind.BAD_RESPONSE, why or "no Data list", text, retryable=False)
        return [TrackingResult(courier="", tracking_number="", source=source, error=error)]
    results: list[TrackingResult] = []
    for item in items:
        if not isinstance(item, Mapping):
            error = _error(
                ErrorKind.BAD_RESPONSE, "push item is not an object", text, retryable=False
            )
            results.append(
                TrackingResult(courier="", tracking_number="", source=source, error=error)
            )
            continue
        shipper = _str(item.get("ShipperCode"))
        courier = (canonical_courier(shipper) or shipper) if shipper else ""
        item_text = json.dumps(item, ensure_ascii=False)
        results.append(
            _item(
                item,
                item_text,
                courier=courier,
                tracking_number=_str(item.get("LogisticCode")),
                source=source,
            )
        )
    return results
