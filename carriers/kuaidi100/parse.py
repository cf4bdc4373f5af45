"""Kuaidi100 payloads -> :class:`~carriers.model.TrackingResult`: pure, never raises.

Two payloads share one tracking body (``message, nu, ischeck, com, status, state,
condition, data[], routeInfo``): the answer of ``poll/query.do`` and the ``lastResult`` of
a subscription push. Decisions (see also :mod:`carriers.kuaidi100.codes`):

* ``returnCode`` 500 (查询无结果，请隔段时间再查) is "no scan yet": an ok, ``pending``
  result with no events, the code and message kept in ``extra``.
* Other failures, an HTML page, truncated JSON or an unexpected shape become a
  :class:`~carriers.model.TrackingError` with a raw excerpt.
* Bodies may be UTF-8 or GBK/GB18030 bytes.
* Times are China local time without an offset: Asia/Shanghai is attached. Events come
  out oldest first whatever the ``order``; an event whose time cannot be read is dropped
  and counted in ``extra["dropped_events"]``.
* Each event keeps ``"<main state>/<statusCode>"`` (e.g. ``"0/1002"``) as its raw code, or
  the documented state name when only a name was sent. Locations come from ``areaName``
  (``"广东,深圳市"``) through :mod:`carriers.geo`, else from the scan text.
* A push with ``status=shutdown`` is finished; ``status=abort`` is finished too unless it
  announces a corrected company (``comNew``), which Kuaidi100 re-subscribes by itself.
  ``3天查询无记录`` adds :attr:`Problem.NO_PROGRESS`, ``60天无变化`` adds :attr:`Problem.LOST`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from operator import itemgetter
from typing import Any

from carriers.chinatime import CHINA_TZ, parse_china_time
from carriers.geo import CHINA, canonical_city, canonical_province, parse_location
from carriers.kuaidi100.codes import (
    CALLBACK_ABORT_LOST,
    CALLBACK_ABORT_NO_RECORD,
    RETURN_CODES,
    STATES,
    Code,
    canonical_courier,
    family,
    lookup,
    lookup_name,
)
from carriers.model import (
    ErrorKind,
    Location,
    Problem,
    Status,
    TrackingError,
    TrackingEvent,
    TrackingResult,
    frozen_builder,
)
from carriers.payload import decode_body, load_object

__all__ = ["CHINA_TZ", "decode_body", "parse_callback", "parse_china_time", "parse_query"]

_EXCERPT = 300
_NO_RESULT = "500"
_TERMINAL_FAMILIES = frozenset({"3", "4"})

# positional constructors for the objects built per answer and per scan (see
# frozen_builder); every event time comes from parse_china_time, aware in Asia/Shanghai,
# which is all TrackingEvent.__post_init__ checks
_event = frozen_builder(TrackingEvent, skip_post_init=True)
_result = frozen_builder(TrackingResult)
_by_time = itemgetter(0)


def _str(value: object) -> str:
    """A field as text: numbers as written, ``None`` as empty."""
    if type(value) is str:  # nearly every field: skip the checks below
        return value.strip()
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value).strip()


def _error(
    kind: ErrorKind, message: str, text: str, *, retryable: bool, retry_after_s: float | None = None
) -> TrackingError:
    return TrackingError(kind, message, retryable, text[:_EXCERPT], retry_after_s)


# areaName values are a few hundred "province,city[,district]" strings, repeated on every
# scan of every poll: each is resolved once.
@functools.lru_cache(maxsize=2048)
def _area_location(area_name: str) -> Location | None:
    """``"广东,深圳市,南山区"`` -> canonical province/city (district as parsed), else ``None``."""
    parts = [p.strip() for p in area_name.replace("，", ",").split(",") if p.strip()]
    province = canonical_province(parts[0]) if parts else None
    if province is None:
        return None
    scanned = parse_location("".join(parts))
    same = scanned.province == province
    city = canonical_city(parts[1], province) if len(parts) > 1 else None
    city = city or (scanned.city if same else None)  # "上海市" alone: a municipality
    district = scanned.district if same and scanned.city in (None, city) else None
    return Location(country=CHINA, province=province, city=city, district=district)


@functools.lru_cache(maxsize=512)
def _coded(status_code: str) -> tuple[str, Code | None]:
    """(raw code, meaning) of a scan's ``statusCode``: ``"1002"`` -> ``("0/1002", 干线)``."""
    return f"{family(status_code)}/{status_code}", lookup(status_code)


def _event_code(item: Mapping[str, Any]) -> tuple[str, Code | None]:
    """(raw code, meaning) of one scan: ``statusCode`` first, else the state name in ``status``."""
    status_code = _str(item.get("statusCode"))
    if status_code:
        return _coded(status_code)
    name = _str(item.get("status"))
    code = lookup_name(name) if name else None
    return name, (lookup(code) if code else None)


def _events(items: object) -> tuple[tuple[TrackingEvent, ...], int]:
    """Scans oldest first, and how many were dropped for an unreadable time."""
    # JSON gives lists and dicts: the exact type checks skip the ABCs' slower ones
    if type(items) is not list and (not isinstance(items, Sequence) or isinstance(items, str)):
        return (), 0
    timed: list[tuple[datetime, Mapping[str, Any]]] = []
    dropped = 0
    for item in items:
        when = None
        if type(item) is dict or isinstance(item, Mapping):
            when = parse_china_time(item.get("ftime")) or parse_china_time(item.get("time"))
        if when is None:
            dropped += 1
            continue
        timed.append((when, item))
    if len(timed) > 1:
        if timed[0][0] >= timed[-1][0]:
            timed.reverse()  # documented default is newest first; ties keep the provider's order
        timed.sort(key=_by_time)
    events: list[TrackingEvent] = []
    previous = Status.PENDING
    unknown = Status.UNKNOWN
    for when, item in timed:
        raw, meaning = _event_code(item)
        text = _str(item.get("context"))
        area_name = item.get("areaName")
        # _area_location strips every part itself: a text needs no _str first
        area = _area_location(area_name if type(area_name) is str else _str(area_name))
        location = area if area is not None else parse_location(text)
        if meaning is None:
            status: Status = unknown
            events.append(_event(when, unknown, raw, text, location, None))
        else:
            status = meaning.status or previous
            events.append(_event(when, status, raw, text, location, meaning.problem))
        previous = status
    return tuple(events), dropped


def _code_of(event: TrackingEvent) -> str:
    """The Kuaidi100 code behind an event's raw code (``"0/1002"`` -> ``"1002"``)."""
    if "/" in event.raw_code:
        return event.raw_code.split("/", 1)[1]
    return lookup_name(event.raw_code) or ""


def _route(info: object) -> dict[str, str]:
    """``routeInfo`` {from, cur, to: {number, name}} as ``extra`` entries."""
    out: dict[str, str] = {}
    if info is not None and isinstance(info, Mapping):  # usually absent: skip the ABC check
        for key in ("from", "cur", "to"):
            place = info.get(key)
            if isinstance(place, Mapping) and _str(place.get("name")):
                out[f"route_{key}"] = _str(place.get("name"))
    return out


def _tracking(
    data: Mapping[str, Any], *, courier: str, tracking_number: str, source: str
) -> TrackingResult:
    """The result for one tracking body (a query answer or a push's ``lastResult``)."""
    events, dropped = _events(data.get("data"))
    state = _str(data.get("state"))
    meaning: Code | None = STATES.get(state) if state else None  # lookup() of a stripped code
    state_family = family(state)
    newest = events[-1] if events else None
    newest_code = _code_of(newest) if newest else ""
    fallback = newest.status if newest else Status.PENDING
    problem = meaning.problem if meaning else None
    if meaning is None:
        status = fallback if (newest or not state) else Status.UNKNOWN
        problem = newest.problem if newest else None
    elif newest is None and state_family == "0":
        status = Status.PENDING  # state defaults to 0 在途: with no scan it says nothing
    elif newest and newest_code != state and family(newest_code) == state:
        status, problem = newest.status, newest.problem  # the scan's sub-state is finer
    else:
        status = meaning.status or fallback
        if problem in (None, Problem.OTHER) and newest is not None and newest.problem:
            problem = newest.problem
    ischeck = _str(data.get("ischeck"))
    finished = ischeck == "1" or state_family in _TERMINAL_FAMILIES  # family("") is ""
    com = _str(data.get("com"))
    corrected = canonical_courier(com) if com else None
    if corrected == courier:
        corrected = None
    extra: dict[str, str] = {}
    for key, value in (
        ("state", state),
        ("ischeck", ischeck),
        ("condition", _str(data.get("condition"))),
        ("com", com),
        ("nu", _str(data.get("nu"))),
        ("dropped_events", str(dropped) if dropped else ""),
    ):
        if value:
            extra[key] = value
    route = data.get("routeInfo")
    if route is not None:
        for key, value in _route(route).items():
            if value:
                extra[key] = value
    # field order: courier, tracking_number, source, status, events, weight_kg, error,
    # courier_corrected, finished, problem, extra
    return _result(
        courier,
        tracking_number,
        source,
        status,
        events,
        None,
        None,
        corrected,
        finished,
        problem,
        extra,
    )


def _failure(data: Mapping[str, Any], text: str, base: TrackingResult) -> TrackingResult:
    """A ``{"result": false, "returnCode": ...}`` answer: pending for 500, else an error."""
    code = _str(data.get("returnCode"))
    message = _str(data.get("message"))
    if code == _NO_RESULT or "查询无结果" in message:
        extra = {"returnCode": code or _NO_RESULT, "message": message}
        return replace(base, status=Status.PENDING, extra=extra)
    known = RETURN_CODES.get(code)
    if any(word in message for word in ("频繁", "频率", "太快", "过快")):
        kind, retryable = ErrorKind.RATE_LIMITED, True
    elif code == "601" and any(word in message for word in ("单量", "充值", "余额")):
        kind, retryable = ErrorKind.QUOTA_EXCEEDED, False
    elif "不支持" in message and "公司" in message:
        kind, retryable = ErrorKind.UNSUPPORTED_COURIER, False
    elif known is not None:
        kind, retryable = known.kind, known.retryable
    else:
        kind, retryable = ErrorKind.PROVIDER, code.startswith("5")
    detail = f"Kuaidi100 returnCode {code or '?'}: {message or (known.meaning if known else '')}"
    return replace(base, error=_error(kind, detail, text, retryable=retryable))


def _http_error(status: int, text: str) -> TrackingError | None:
    """An error for a non-2xx HTTP status whose body says nothing better, else ``None``."""
    if 200 <= status < 300:
        return None
    if status == 429:
        return _error(ErrorKind.RATE_LIMITED, "HTTP 429", text, retryable=True)
    if status in (401, 403):
        return _error(ErrorKind.AUTH, f"HTTP {status}", text, retryable=False)
    return _error(ErrorKind.BAD_RESPONSE, f"HTTP {status}", text, retryable=status >= 500)


def parse_query(
    body: bytes | str,
    *,
    courier: str,
    tracking_number: str,
    source: str,
    http_status: int | None = None,
) -> TrackingResult:
    """Parse a ``poll/query.do`` answer for ``courier`` (canonical) / ``tracking_number``."""
    text = decode_body(body)
    data, why = load_object(text)
    if data is None:
        base = TrackingResult(courier=courier, tracking_number=tracking_number, source=source)
        error = _http_error(http_status, text) if http_status is not None else None
        error = error or _error(ErrorKind.BAD_RESPONSE, why, text, retryable=True)
        return replace(base, error=error)
    tracking_body = "data" in data or "state" in data
    if tracking_body and "returnCode" not in data:  # the usual answer: straight to its body
        return _tracking(data, courier=courier, tracking_number=tracking_number, source=source)
    base = TrackingResult(courier=courier, tracking_number=tracking_number, source=source)
    if "returnCode" in data and (data.get("result") in (False, "false") or not tracking_body):
        return _failure(data, text, base)
    if not tracking_body:
        if "查询无结果" in _str(data.get("message")):
            return _failure(data, text, base)
        error = _http_error(http_status, text) if http_status is not None else None
        error = error or _error(
            ErrorKind.BAD_RESPONSE, "unexpected JSON shape", text, retryable=False
        )
        return replace(base, error=error)
    return _tracking(data, courier=courier, tracking_number=tracking_number, source=source)


def parse_callback(param: bytes | str, *, source: str) -> TrackingResult:
    """Parse the ``param`` field of a subscription push (verify its ``sign`` first)."""
    text = decode_body(param)
    data, why = load_object(text)
    if data is None:
        error = _error(ErrorKind.BAD_RESPONSE, why, text, retryable=False)
        return TrackingResult(courier="", tracking_number="", source=source, error=error)
    last = data.get("lastResult")
    last = last if isinstance(last, Mapping) else {}
    com_old, com_new = _str(data.get("comOld")), _str(data.get("comNew"))
    raw_com = com_old or _str(last.get("com"))
    courier = (canonical_courier(raw_com) or raw_com) if raw_com else ""
    result = _tracking(last, courier=courier, tracking_number=_str(last.get("nu")), source=source)
    push_status, message = _str(data.get("status")), _str(data.get("message"))
    corrected = result.courier_corrected
    if com_new:
        corrected = canonical_courier(com_new)
        corrected = None if corrected == courier else corrected
    problem = result.problem
    if CALLBACK_ABORT_NO_RECORD in message:
        problem = Problem.NO_PROGRESS
    elif CALLBACK_ABORT_LOST in message:
        problem = Problem.LOST
    finished = result.finished or push_status == "shutdown"
    if push_status == "abort":
        finished = not (com_new and com_new != raw_com)
    extra = dict(result.extra)
    extra.update(
        {
            k: v
            for k, v in {
                "push_status": push_status,
                "push_message": message,
                "autoCheck": _str(data.get("autoCheck")),
                "comOld": com_old,
                "comNew": com_new,
            }.items()
            if v
        }
    )
    return replace(
        result, courier_corrected=corrected, finished=finished, problem=problem, extra=extra
    )
