"""Which story the sandbox tells for a tracking number.

Tracking-number scheme (spaces and case ignored):

* ``SB`` + two-digit scenario code + 4 to 14 digits of serial, e.g. ``SB03000017``
  (scenario ``03`` = ``stalled``, serial ``000017``). An ``SB`` number with a code not
  in :data:`SCENARIO_CODES` is answered "not found" (``99`` is reserved for that).
* ``options["scenarios"]`` (number -> scenario name) overrides everything, for any
  number shape; besides the scenario names it accepts ``"not_found"`` and
  ``"invalid_number"`` to force those errors.
* Any other number made of 8 to 30 letters and digits is a healthy parcel: one of
  :data:`HEALTHY` chosen by a stable hash of the number (SHA-256, not Python's ``hash``).
* Anything else (too short, too long, punctuation, empty) is an invalid number.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

__all__ = [
    "HEALTHY",
    "INVALID_NUMBER",
    "NOT_FOUND",
    "SCENARIO_CODES",
    "SCENARIO_NAMES",
    "normalise_number",
    "pick_scenario",
    "stable_int",
]

#: two-digit code -> scenario name (the story each tells is in ``stories.py``)
SCENARIO_CODES: dict[str, str] = {
    "00": "delivered",  # 揽收 -> hubs -> 派件 -> 签收, on time
    "01": "in_transit",  # a long but on-time lane with 运输中 notes; delivered in the end
    "02": "out_for_delivery",  # as delivered; without an anchor seen while 派件中
    "03": "stalled",  # leaves the origin hub, then no scan ever again
    "04": "stalled_at_station",  # 菜鸟驿站 with a pick-up code, then nothing
    "05": "lost",  # 30 h after the second hub: 遗失 (EXCEPTION, LOST)
    "06": "mis_sorted",  # in the destination province, then 错分 in a neighbour; delivered late
    "07": "out_of_area",  # the destination station: 超区, 不派送 (EXCEPTION, OUT_OF_AREA)
    "08": "returned",  # 派件 -> 拒收 (RETURNING, REFUSED) -> back to the sender -> RETURNED
    "09": "delivery_failed",  # two attempts, 电话无人接听 (DELIVERY_FAILED, UNREACHABLE)
    "10": "address_problem",  # 地址不详 (DELIVERY_FAILED, ADDRESS_PROBLEM)
    "11": "damaged",  # 破损 at the destination hub, held (EXCEPTION, DAMAGED)
    "12": "no_pickup",  # label printed, never scanned: ok, no events, PENDING
    "13": "slow",  # moves every <= 20 h but the trunk takes 1.6x the lane allowance
    "14": "weight_short",  # delivered on time; the courier weighed 0.4 kg
}
SCENARIO_NAMES = frozenset(SCENARIO_CODES.values())

#: pseudo-scenarios that answer with an error instead of a history
NOT_FOUND = "not_found"
INVALID_NUMBER = "invalid_number"

#: scenarios a number of another shape may get
HEALTHY: tuple[str, ...] = ("delivered", "in_transit", "out_for_delivery")

_SB = re.compile(r"SB(\d{2})\d{4,14}")
_PLAUSIBLE = re.compile(r"[A-Z0-9]{8,30}")


def normalise_number(number: str) -> str:
    """The number without spaces, upper-cased."""
    return "".join(number.split()).upper()


def stable_int(*parts: str) -> int:
    """A non-negative integer that depends only on ``parts`` (same in every process)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def pick_scenario(number: str, overrides: Mapping[str, str] | None = None) -> str:
    """The scenario name for ``number``, or :data:`NOT_FOUND` / :data:`INVALID_NUMBER`.

    ``overrides`` maps numbers already passed through :func:`normalise_number` to names.
    """
    key = normalise_number(number)
    if overrides and key in overrides:
        return overrides[key]
    sb = _SB.fullmatch(key)
    if sb is not None:
        return SCENARIO_CODES.get(sb.group(1), NOT_FOUND)
    if _PLAUSIBLE.fullmatch(key):
        return HEALTHY[stable_int("healthy", key) % len(HEALTHY)]
    return INVALID_NUMBER
