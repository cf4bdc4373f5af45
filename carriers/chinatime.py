"""China local times: the offset-less timestamps Chinese providers send, read as Asia/Shanghai."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

__all__ = ["CHINA_TIME_FORMATS", "CHINA_TZ", "parse_china_time"]

CHINA_TZ = ZoneInfo("Asia/Shanghai")

#: The layouts Kdniao and Kuaidi100 use (dashes or slashes, with or without seconds).
CHINA_TIME_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S.%f",
)


def parse_china_time(value: object) -> datetime | None:
    """A ``"2026-09-11 09:00:00"``-style China local time as an aware datetime, else ``None``."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    for fmt in CHINA_TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=CHINA_TZ)
        except ValueError:
            continue
    return None
