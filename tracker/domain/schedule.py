"""When to poll a parcel next: a pure function of its status, age and recent failures."""

from __future__ import annotations

from datetime import datetime, timedelta

from carriers.model import ErrorKind, Status, TrackingError

__all__ = ["PENDING_GIVE_UP", "next_poll_after_error", "next_poll_after_success"]

_HOUR = timedelta(hours=1)

# Statuses where the parcel moves fast and the buyer is waiting at the door.
_HOT = frozenset({Status.OUT_FOR_DELIVERY, Status.READY_FOR_PICKUP, Status.DELIVERY_FAILED})
_SLOW = frozenset({Status.EXCEPTION, Status.ON_HOLD, Status.RETURNING, Status.UNKNOWN})
_DONE = frozenset({Status.DELIVERED, Status.RETURNED})

#: A label with no scan this long after shipping is given up on (Kuaidi100 drops such a
#: subscription after 3 days, 17TRACK stops after 30); the rules have long flagged it.
PENDING_GIVE_UP = timedelta(days=30)
#: Lookups answered "unknown number" this many times in a row (3 days at 4 h) slow to daily.
_NOT_FOUND_PATIENCE = 18


def _spread(shipment_id: int) -> timedelta:
    """A stable per-parcel offset (0-9 min) so parcels imported together don't poll together."""
    return timedelta(seconds=(shipment_id * 7919) % 600)


def next_poll_after_success(
    shipment_id: int,
    status: Status,
    now: datetime,
    since: datetime,
    *,
    finished: bool = False,
) -> datetime | None:
    """Next poll time after a good answer, or None when the parcel needs no more polling.

    ``since`` is when the parcel entered the system (shipped or recorded). Pending parcels
    are polled hourly for the first day, then every 4 h, then twice a day after 3 days;
    moving parcels every 2 h (4 h after a week); out for delivery or at a station hourly;
    exceptions and returns every 4 h; delivered and returned parcels never again, nor a
    parcel still without a scan :data:`PENDING_GIVE_UP` after it was shipped.
    """
    if finished or status in _DONE:
        return None
    age = now - since
    if status is Status.PENDING:
        if age >= PENDING_GIVE_UP:
            return None
        if age < timedelta(days=1):
            step = _HOUR
        elif age < timedelta(days=3):
            step = 4 * _HOUR
        else:
            step = 12 * _HOUR
    elif status in _HOT:
        step = _HOUR
    elif status in _SLOW:
        step = 4 * _HOUR
    else:
        step = 2 * _HOUR if age < timedelta(days=7) else 4 * _HOUR
    return now + step + _spread(shipment_id)


def next_poll_after_error(
    shipment_id: int, error: TrackingError, failures: int, now: datetime
) -> datetime:
    """Next poll time after a failed lookup: honour Retry-After, else back off exponentially.

    ``failures`` counts consecutive failures including this one. Retryable errors back off
    from 5 min doubling up to 6 h; auth and configuration problems wait an hour (an operator
    must act); a number the provider does not know yet is retried like a pending parcel,
    every 4 h, then daily once it has been unknown for about three days.
    """
    if error.retry_after_s is not None:
        return now + timedelta(seconds=max(error.retry_after_s, 1.0))
    if error.kind in (ErrorKind.AUTH, ErrorKind.UNSUPPORTED_COURIER, ErrorKind.QUOTA_EXCEEDED):
        return now + _HOUR + _spread(shipment_id)
    if error.kind in (ErrorKind.NOT_FOUND, ErrorKind.INVALID_NUMBER):
        step = 4 * _HOUR if failures < _NOT_FOUND_PATIENCE else 24 * _HOUR
        return now + step + _spread(shipment_id)
    minutes = min(5 * 2 ** max(failures - 1, 0), 360)
    return now + timedelta(minutes=minutes)
