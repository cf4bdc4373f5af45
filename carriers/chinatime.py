"""China local times: the offset-less timestamps Chinese providers send, read as Asia/Shanghai."""

from __future__ import annotations

import re
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

# Kuaidi100's and Kdniao's usual layout, zero-padded ASCII digits only (strptime's \d would
# also take other scripts' digits: those go the slow way). Such a text is read by
# fromisoformat, ten times cheaper than strptime, and every scan of every poll comes this
# way. Anything not in exactly this shape, or out of range (2026-02-30, 24:00), goes on to
# the strptime loop, which refuses the same out-of-range values: the answers are unchanged.
_EXACT = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", re.ASCII)
_exact_shape = _EXACT.fullmatch


def parse_china_time(value: object) -> datetime | None:
    """A ``"2026-09-11 09:00:00"``-style China local time as an aware datetime, else ``None``."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text:
        return None
    if _exact_shape(text) is not None:
        try:
            naive = datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return datetime(
                naive.year,
                naive.month,
                naive.day,
                naive.hour,
                naive.minute,
                naive.second,
                0,
                CHINA_TZ,
            )
    for fmt in CHINA_TIME_FORMATS:
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=CHINA_TZ)
        except ValueError:
            continue
    return None
