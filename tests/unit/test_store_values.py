"""Values the store hands its drivers directly: dedupe keys and SQLite times (issue 8)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.dialects import sqlite

from carriers.model import Status, TrackingEvent
from tracker.store.shipments_repo import dedupe_key, dedupe_keys
from tracker.store.types import UTCDateTime, sqlite_utc_text, utc_from_db, utc_param

SHANGHAI = ZoneInfo("Asia/Shanghai")
MOVING = TrackingEvent(
    datetime(2026, 9, 12, 6, 0, tzinfo=SHANGHAI), Status.IN_TRANSIT, "0", "到达【杭州转运中心】"
)
TIMES = [
    datetime(2026, 9, 12, 6, 0, tzinfo=SHANGHAI),
    datetime(2026, 9, 12, 6, 0, 0, 1, tzinfo=timezone(timedelta(hours=8))),
    datetime(2026, 3, 29, 2, 30, 5, 999999, tzinfo=ZoneInfo("Europe/Berlin")),
    datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC),
    datetime(2027, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=-5))),
    datetime(999, 1, 2, 3, 4, 5, tzinfo=UTC),
]


def test_dedupe_keys_keep_the_format_existing_databases_hold() -> None:
    """A scan's key is sha1 of ``isoformat|raw code|text``; the batch helper gives the same."""
    assert dedupe_key(MOVING) == "634df7903b7785c008d89250e16525eb29864dbe"
    other = TrackingEvent(TIMES[2], Status.DELIVERED, "3", "已签收\n本人")
    assert dedupe_keys([MOVING, other, MOVING]) == [
        dedupe_key(MOVING),
        dedupe_key(other),
        dedupe_key(MOVING),
    ]
    assert dedupe_keys([]) == []


@pytest.mark.parametrize("value", TIMES)
def test_sqlite_text_is_what_sqlalchemy_stores(value: datetime) -> None:
    """Driver-level SQLite times are byte-identical to UTCDateTime through SQLAlchemy."""
    dialect = sqlite.dialect()
    through_sqlalchemy = UTCDateTime().process_bind_param(value, dialect)
    processor = sqlite.DATETIME().bind_processor(dialect)  # type: ignore[no-untyped-call]
    assert processor is not None
    expected = processor(through_sqlalchemy)
    assert sqlite_utc_text(value) == expected == utc_param(value, "sqlite")
    back = utc_from_db(expected)
    assert back == value.astimezone(UTC) and back is not None and back.tzinfo is UTC


def test_naive_times_are_refused_on_both_backends() -> None:
    """A naive datetime never reaches a driver: it would be read in the wrong zone."""
    naive = datetime(2026, 9, 12, 6, 0)
    with pytest.raises(ValueError, match="naive"):
        sqlite_utc_text(naive)
    with pytest.raises(ValueError, match="naive"):
        utc_param(naive, "postgresql")
    assert utc_param(None, "sqlite") is None
    assert utc_param(TIMES[0], "postgresql") == TIMES[0]
