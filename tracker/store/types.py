"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["UTCDateTime", "sqlite_utc_text", "utc_from_db", "utc_param"]


def sqlite_utc_text(value: datetime) -> str:
    """An aware datetime as :class:`UTCDateTime` stores it on SQLite, for driver-level SQL.

    The same text SQLAlchemy's SQLite ``DATETIME`` writes (naive UTC, always with
    microseconds), so stored values keep comparing correctly as text.
    """
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime cannot be stored: {value!r}")
    # the aware isoformat less its "+00:00": cheaper than dropping the tzinfo first
    return value.astimezone(UTC).isoformat(" ", "microseconds")[:26]


def utc_param(value: datetime | None, dialect_name: str) -> Any:
    """What the driver gets for a :class:`UTCDateTime` value (rejects naive datetimes)."""
    if value is None:
        return None
    if dialect_name == "sqlite":
        return sqlite_utc_text(value)
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime cannot be stored: {value!r}")
    return value.astimezone(UTC)


def utc_from_db(value: Any) -> datetime | None:
    """An aware UTC datetime from what the driver returned (SQLite text or a datetime)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
    return value.astimezone(UTC)  # type: ignore[no-any-return]


class UTCDateTime(TypeDecorator[datetime]):
    """An aware datetime stored as UTC (TIMESTAMPTZ on PostgreSQL, naive UTC text on SQLite)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        """Reject naive datetimes and normalise to UTC before storing."""
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime cannot be stored: {value!r}")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return an aware UTC datetime whatever the backend gave back."""
        return utc_from_db(value)
