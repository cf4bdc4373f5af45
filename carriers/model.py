"""The common tracking model every provider adapter maps its payloads to."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

__all__ = [
    "ErrorKind",
    "Location",
    "Problem",
    "Status",
    "TrackingError",
    "TrackingEvent",
    "TrackingQuery",
    "TrackingResult",
    "frozen_builder",
    "latest_status",
]

_T = TypeVar("_T")


def frozen_builder(cls: type[_T], *, skip_post_init: bool = False) -> Callable[..., _T]:
    """A positional constructor for a frozen slots dataclass: every field, in field order.

    The same object as ``cls(*values)``, built about three times faster: a frozen
    dataclass's ``__init__`` sets each field through ``object.__setattr__``, which per scan
    of every poll answer is a visible share of a parcel's CPU. A class with a
    ``__post_init__`` is refused unless ``skip_post_init``: the caller then promises its
    values already pass whatever ``__post_init__`` checks.
    """
    if "__slots__" not in cls.__dict__ or not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__} is not a frozen slots dataclass")
    if hasattr(cls, "__post_init__") and not skip_post_init:
        raise TypeError(f"{cls.__name__} has a __post_init__ that a builder would skip")
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    scope.update({f"_set_{n}": cls.__dict__[n].__set__ for n in names})
    body = "".join(f"    _set_{n}(o, {n})\n" for n in names)
    # the text is made of the class's field names only, as dataclasses builds __init__
    exec(f"def build({', '.join(names)}):\n    o = _new(_cls)\n{body}    return o\n", scope)
    build: Callable[..., _T] = scope["build"]
    build.__doc__ = f"``{cls.__name__}(*fields)``, positional, without the frozen guard."
    return build


class Status(StrEnum):
    """Common parcel status; every provider's raw codes map onto one of these."""

    PENDING = "pending"
    PICKED_UP = "picked_up"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    READY_FOR_PICKUP = "ready_for_pickup"
    DELIVERED = "delivered"
    DELIVERY_FAILED = "delivery_failed"
    ON_HOLD = "on_hold"
    RETURNING = "returning"
    RETURNED = "returned"
    EXCEPTION = "exception"
    UNKNOWN = "unknown"


class Problem(StrEnum):
    """A provider-reported problem detail, finer than :class:`Status`, that rules act on."""

    LOST = "lost"
    MIS_SORTED = "mis_sorted"
    OUT_OF_AREA = "out_of_area"
    DAMAGED = "damaged"
    ADDRESS_PROBLEM = "address_problem"
    UNREACHABLE = "unreachable"
    REFUSED = "refused"
    NO_PROGRESS = "no_progress"
    HELD = "held"
    INTERCEPTED = "intercepted"
    DELAYED = "delayed"
    CUSTOMS = "customs"
    LOCKER_OVERDUE = "locker_overdue"
    OTHER = "other"


class ErrorKind(StrEnum):
    """Why a lookup produced no usable result; errors are data, never exceptions."""

    NOT_FOUND = "not_found"
    INVALID_NUMBER = "invalid_number"
    AUTH = "auth"
    RATE_LIMITED = "rate_limited"
    QUOTA_EXCEEDED = "quota_exceeded"
    BAD_RESPONSE = "bad_response"
    NETWORK = "network"
    PROVIDER = "provider"
    UNSUPPORTED_COURIER = "unsupported_courier"


@dataclass(frozen=True, slots=True)
class Location:
    """Where a scan happened; every field is ``None`` when unknown."""

    country: str | None = None
    province: str | None = None
    city: str | None = None
    district: str | None = None

    @property
    def is_known(self) -> bool:
        """True when at least one field is filled in."""
        return any((self.country, self.province, self.city, self.district))


UNKNOWN_LOCATION = Location()


@dataclass(frozen=True, slots=True)
class TrackingEvent:
    """One scan: a timezone-aware time, the common status and the provider's raw code and text."""

    time: datetime
    status: Status
    raw_code: str
    text: str
    location: Location = UNKNOWN_LOCATION
    problem: Problem | None = None

    def __post_init__(self) -> None:
        if self.time.tzinfo is None or self.time.utcoffset() is None:
            raise ValueError(f"event time must be timezone-aware: {self.time!r}")


@dataclass(frozen=True, slots=True)
class TrackingError:
    """Why one tracking number could not be tracked, with a short excerpt of the raw body."""

    kind: ErrorKind
    message: str
    retryable: bool = False
    raw_excerpt: str = ""
    retry_after_s: float | None = None


@dataclass(frozen=True, slots=True)
class TrackingQuery:
    """What an adapter needs to look one parcel up, plus optional hints some providers use.

    ``phone`` is the buyer's phone (SF and some others need its last digits); ``origin``,
    ``destination`` and ``shipped_at`` are hints (Kuaidi100 takes from/to cities; the
    sandbox anchors its simulated history on them).
    """

    courier: str
    tracking_number: str
    phone: str | None = None
    origin: Location | None = None
    destination: Location | None = None
    shipped_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TrackingResult:
    """A provider's answer for one tracking number: events oldest first, or an error."""

    courier: str
    tracking_number: str
    source: str
    status: Status = Status.UNKNOWN
    events: tuple[TrackingEvent, ...] = ()
    weight_kg: float | None = None
    error: TrackingError | None = None
    courier_corrected: str | None = None
    finished: bool = False
    problem: Problem | None = None
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the provider answered for this number (possibly with no scans yet)."""
        return self.error is None


# Statuses after which a parcel has left the normal forward flow for good.
_TERMINAL = frozenset({Status.DELIVERED, Status.RETURNED})


def latest_status(previous: Status, events: Sequence[TrackingEvent]) -> Status:
    """The shipment status after these events, never regressing from a terminal status."""
    if previous in _TERMINAL:
        if previous is Status.DELIVERED:
            return previous
        # a returned parcel may still be re-delivered: only DELIVERED overrides it
        if any(e.status is Status.DELIVERED for e in events):
            return Status.DELIVERED
        return previous
    if not events:
        return previous
    newest = max(events, key=lambda e: e.time)
    if any(e.status is Status.DELIVERED for e in events) and newest.status is not Status.DELIVERED:
        # a late scan after a delivery scan (e.g. a duplicate hub scan) must not undo it
        return Status.DELIVERED
    return newest.status
