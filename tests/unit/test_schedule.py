"""Adaptive poll times: by status and age, honouring Retry-After, stopping at give-up points."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from carriers.model import ErrorKind, Status, TrackingError
from tracker.domain.schedule import (
    PENDING_GIVE_UP,
    next_poll_after_error,
    next_poll_after_success,
)

NOW = datetime(2026, 9, 14, 2, 0, tzinfo=UTC)
SID = 0  # shipment id 0 has no per-parcel spread, so the steps read exactly


@pytest.mark.parametrize(
    ("status", "age", "step"),
    [
        (Status.PENDING, timedelta(hours=3), timedelta(hours=1)),
        (Status.PENDING, timedelta(days=2), timedelta(hours=4)),
        (Status.PENDING, timedelta(days=10), timedelta(hours=12)),
        (Status.IN_TRANSIT, timedelta(days=2), timedelta(hours=2)),
        (Status.IN_TRANSIT, timedelta(days=9), timedelta(hours=4)),
        (Status.OUT_FOR_DELIVERY, timedelta(days=2), timedelta(hours=1)),
        (Status.EXCEPTION, timedelta(days=2), timedelta(hours=4)),
    ],
)
def test_next_poll_follows_status_and_age(status: Status, age: timedelta, step: timedelta) -> None:
    """Pending hourly then slower, moving every 2-4 h, out for delivery hourly."""
    assert next_poll_after_success(SID, status, NOW, NOW - age) == NOW + step


def test_finished_parcels_and_long_pending_labels_are_not_polled_again() -> None:
    """Delivered, returned, provider-finished and labels unscanned for 30 days stop polling."""
    since = NOW - timedelta(days=1)
    assert next_poll_after_success(SID, Status.DELIVERED, NOW, since) is None
    assert next_poll_after_success(SID, Status.RETURNED, NOW, since) is None
    assert next_poll_after_success(SID, Status.IN_TRANSIT, NOW, since, finished=True) is None
    old = NOW - PENDING_GIVE_UP
    assert next_poll_after_success(SID, Status.PENDING, NOW, old) is None
    assert next_poll_after_success(SID, Status.IN_TRANSIT, NOW, old) is not None


def test_retry_after_from_the_provider_wins() -> None:
    """An error carrying retry_after_s is polled again exactly then."""
    error = TrackingError(ErrorKind.RATE_LIMITED, "429", True, retry_after_s=900)
    assert next_poll_after_error(SID, error, 1, NOW) == NOW + timedelta(seconds=900)


def test_unknown_numbers_are_retried_every_4_hours_then_daily() -> None:
    """'Not found' answers retry every 4 h for about three days, then once a day."""
    error = TrackingError(ErrorKind.NOT_FOUND, "no record")
    assert next_poll_after_error(SID, error, 1, NOW) == NOW + timedelta(hours=4)
    assert next_poll_after_error(SID, error, 17, NOW) == NOW + timedelta(hours=4)
    assert next_poll_after_error(SID, error, 18, NOW) == NOW + timedelta(hours=24)


def test_network_errors_back_off_exponentially_to_six_hours() -> None:
    """Retryable failures wait 5, 10, 20 ... minutes, at most 6 h."""
    error = TrackingError(ErrorKind.NETWORK, "timeout", True)
    waits = [next_poll_after_error(SID, error, n, NOW) - NOW for n in (1, 2, 3, 10)]
    assert waits == [timedelta(minutes=m) for m in (5, 10, 20, 360)]
