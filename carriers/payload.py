"""Pure helpers the providers' parsers share: body decoding, JSON loading, excerpts, getters.

None of them raises on a provider's payload: what cannot be read comes back as ``None``,
an empty value or a reason, for the parser to turn into a
:class:`~carriers.model.TrackingError` (errors are data).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from carriers.model import (
    ErrorKind,
    Problem,
    Status,
    TrackingError,
    TrackingEvent,
    TrackingQuery,
    TrackingResult,
)

__all__ = [
    "EXCERPT_CHARS",
    "ApiRequest",
    "JsonBody",
    "as_dict",
    "as_int",
    "as_list",
    "as_text",
    "bad_response",
    "body_excerpt",
    "decode_body",
    "error_result",
    "iso_time",
    "load_json",
    "load_object",
    "overall_status",
]

#: A response or push body as the adapters hand it over: raw bytes, text, or already decoded.
JsonBody = bytes | str | Mapping[str, Any]

#: How much of a body an error keeps by default.
EXCERPT_CHARS = 200

# json.loads(text) without its per-call type checks: the same decoder, the same errors
_decode_json = json.JSONDecoder().decode


@dataclass(frozen=True, slots=True)
class ApiRequest:
    """A JSON API request for an adapter to send (the adapter adds its credentials)."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    json: dict[str, Any] | None = None


def decode_body(body: bytes | str) -> str:
    """Text of a body: UTF-8 (BOM dropped), else GB18030 (a superset of GBK)."""
    if isinstance(body, str):
        return body.lstrip("\ufeff")
    # as "utf-8-sig" decodes (one leading BOM dropped), without its Python-level codec
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return text[1:] if text.startswith("\ufeff") else text
    try:
        return body.decode("gb18030")
    except UnicodeDecodeError:
        pass
    return body.decode("utf-8", errors="replace")  # pragma: no cover - gb18030 decodes nearly all


def load_object(text: str) -> tuple[Mapping[str, Any] | None, str]:
    """The JSON object in ``text``, or ``None`` and why not (empty, HTML, truncated, other)."""
    if not text.strip():
        return None, "empty body"
    try:
        data = _decode_json(text)
    except ValueError:
        html = text.lstrip().startswith("<")
        return None, "HTML page instead of JSON" if html else "invalid or truncated JSON"
    if not isinstance(data, dict):
        return None, f"expected a JSON object, got {type(data).__name__}"
    return data, ""


def load_json(body: JsonBody) -> Any:
    """The decoded JSON document (a mapping is passed through), or ``None`` when not JSON."""
    if isinstance(body, Mapping):
        return body
    try:
        return json.loads(body)
    except (ValueError, TypeError):
        return None


def body_excerpt(body: Any, limit: int = EXCERPT_CHARS) -> str:
    """The first ``limit`` characters of a body (bytes, text or decoded JSON) for an error."""
    if isinstance(body, bytes):
        return body[: limit * 4].decode("utf-8", "replace")[:limit]
    if isinstance(body, str):
        return body[:limit]
    try:
        return json.dumps(body, ensure_ascii=False, default=str)[:limit]
    except (TypeError, ValueError):
        return repr(body)[:limit]


def bad_response(message: str, raw_excerpt: str) -> TrackingError:
    """A retryable ``bad_response`` error keeping ``raw_excerpt`` of the body."""
    return TrackingError(ErrorKind.BAD_RESPONSE, message, retryable=True, raw_excerpt=raw_excerpt)


def error_result(query: TrackingQuery | None, source: str, error: TrackingError) -> TrackingResult:
    """A result carrying ``error`` for ``query``, or for no known parcel without one."""
    if query is None:
        return TrackingResult("", "", source, error=error)
    return TrackingResult(query.courier, query.tracking_number, source, error=error)


def overall_status(
    stated: tuple[Status, Problem | None] | None, events: Sequence[TrackingEvent]
) -> tuple[Status, Problem | None]:
    """The status the provider stated, else the newest event's, else ``unknown``."""
    if stated is not None:
        return stated
    if events:
        return events[-1].status, events[-1].problem
    return Status.UNKNOWN, None


def as_dict(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty dict."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    """``value`` when it is a JSON array, else an empty list."""
    return value if isinstance(value, list) else []


def as_text(value: Any) -> str | None:
    """A scalar field as stripped text; ``None`` for null, blank, objects and arrays."""
    if value is None or isinstance(value, (dict, list)):
        return None
    text = str(value).strip()
    return text or None


def as_int(value: Any) -> int | None:
    """A field as a whole number (``"42"`` counts), else ``None``."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def iso_time(value: Any) -> datetime | None:
    """An ISO 8601 time (``Z`` read as UTC), naive when it has no offset; else ``None``."""
    text = as_text(value)
    if text is None:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
