"""Reading the TOML ``[policy]`` table into :class:`~tracker.domain.policy.Policy` arguments.

Every key is optional; an unknown key or a bad value raises ``ValueError`` whose
message starts with the key's full path, e.g. ``policy.stalled_hours: must be a
positive number`` or ``policy.lanes[1].destination: unknown province '火星'``::

    [policy]
    timezone = "Asia/Shanghai"
    dispatch_hours = 48              # any key of Thresholds, at top level = the defaults
    pause_on_weekends = false

    [policy.couriers.deppon]         # per courier
    stalled_hours = 72

    [[policy.lanes]]                 # per lane; origin/destination default to "*" (any)
    origin = "广东"
    destination = "新疆"
    courier = "sf"                   # optional: this courier on this lane only
    remote_days = 6

    [policy.coverage]                # provinces or cities a courier does not deliver to
    deppon = ["西藏自治区"]

    [[policy.promotions]]            # replaces the built-in 618/双11/双12/年货节 list
    name = "双11"
    start = "11-01"                  # MM-DD, YYYY-MM-DD or spring_festival-N
    end = "11-13"
    extra_dispatch_hours = 48
    extra_transit_days = 2
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from carriers.geo import canonical_city, canonical_province
from tracker.domain.holidays import DayRef, Promotion
from tracker.domain.policy import THRESHOLD_KEYS, Override, Thresholds

__all__ = ["policy_kwargs"]

_BOOLEAN_KEYS = frozenset({"pause_on_holidays", "pause_on_weekends"})
_LANE_KEYS = frozenset({"origin", "destination", "courier"})
_PROMOTION_KEYS = frozenset({"name", "start", "end", "extra_dispatch_hours", "extra_transit_days"})


def policy_kwargs(data: Mapping[str, Any], prefix: str = "policy") -> dict[str, Any]:
    """Validated keyword arguments for ``Policy(...)`` from a ``[policy]`` mapping."""
    table = _table(prefix, data)
    kwargs: dict[str, Any] = {}
    defaults: dict[str, Any] = {}
    courier_overrides: list[Override] = []
    lane_overrides: list[Override] = []
    for key, value in table.items():
        path = f"{prefix}.{key}"
        if key == "timezone":
            kwargs["timezone"] = _timezone(path, value)
        elif key == "couriers":
            courier_overrides = _courier_overrides(path, value)
        elif key == "lanes":
            lane_overrides = _lane_overrides(path, value)
        elif key == "coverage":
            kwargs["coverage"] = _coverage(path, value)
        elif key == "promotions":
            kwargs["promotions"] = _promotions(path, value)
        elif key in THRESHOLD_KEYS:
            defaults[key] = _threshold(path, key, value)
        else:
            raise ValueError(f"{path}: unknown key")
    kwargs["defaults"] = Thresholds(**defaults)
    kwargs["overrides"] = (*courier_overrides, *lane_overrides)
    return kwargs


def _table(path: str, value: Any) -> Mapping[str, Any]:
    """``value`` when it is a table, else a ``ValueError`` naming ``path``."""
    if not isinstance(value, Mapping):
        raise ValueError(f"{path}: must be a table")
    return value


def _list(path: str, value: Any) -> list[Any]:
    """``value`` when it is an array, else a ``ValueError`` naming ``path``."""
    if not isinstance(value, list | tuple):
        raise ValueError(f"{path}: must be an array")
    return list(value)


def _text(path: str, value: Any) -> str:
    """``value`` stripped when it is a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{path}: must be a non-empty string")
    return value.strip()


def _is_number(value: Any) -> bool:
    """True for a finite int or float that is not a bool."""
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)


_POSITIVE: tuple[Callable[[float], bool], str] = (lambda v: v > 0, "a positive number")
_RANGES: dict[str, tuple[Callable[[float], bool], str]] = {
    "weight_tolerance_kg": (lambda v: v >= 0, "a non-negative number"),
    "weight_tolerance_ratio": (lambda v: 0 <= v < 1, "a number from 0 up to (not including) 1"),
}


def _threshold(path: str, key: str, value: Any) -> float | bool:
    """One threshold value, checked for the range its key allows."""
    if key in _BOOLEAN_KEYS:
        if not isinstance(value, bool):
            raise ValueError(f"{path}: must be true or false")
        return value
    in_range, wanted = _RANGES.get(key, _POSITIVE)
    if not _is_number(value) or not in_range(float(value)):
        raise ValueError(f"{path}: must be {wanted}")
    return float(value)


def _threshold_values(
    path: str, table: Mapping[str, Any], also_allowed: frozenset[str] = frozenset()
) -> dict[str, float | bool]:
    """The threshold keys of ``table`` validated; any other key outside ``also_allowed`` fails."""
    values: dict[str, float | bool] = {}
    for key, value in table.items():
        if key in THRESHOLD_KEYS:
            values[key] = _threshold(f"{path}.{key}", key, value)
        elif key not in also_allowed:
            raise ValueError(f"{path}.{key}: unknown key")
    return values


def _timezone(path: str, value: Any) -> ZoneInfo:
    """An IANA timezone such as ``Asia/Shanghai``."""
    name = _text(path, value)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{path}: unknown timezone {name!r}") from None


def _courier_code(path: str, value: Any) -> str:
    """A canonical courier code (``sf``, ``yto`` ...), lower-cased."""
    return _text(path, value).lower()


def _courier_overrides(path: str, value: Any) -> list[Override]:
    """``[policy.couriers.<code>]`` tables."""
    overrides = []
    for code, table in _table(path, value).items():
        courier_path = f"{path}.{code}"
        courier = _courier_code(courier_path, code)
        values = _threshold_values(courier_path, _table(courier_path, table))
        overrides.append(Override(values, courier=courier))
    return overrides


def _lane_province(path: str, value: Any) -> str | None:
    """A lane end: a province in any common form, or ``"*"`` for any province."""
    name = _text(path, value)
    if name == "*":
        return None
    province = canonical_province(name)
    if province is None:
        raise ValueError(f"{path}: unknown province {name!r}")
    return province


def _lane_overrides(path: str, value: Any) -> list[Override]:
    """``[[policy.lanes]]`` entries."""
    overrides = []
    for index, entry in enumerate(_list(path, value)):
        lane_path = f"{path}[{index}]"
        table = _table(lane_path, entry)
        origin = _lane_province(f"{lane_path}.origin", table.get("origin", "*"))
        destination = _lane_province(f"{lane_path}.destination", table.get("destination", "*"))
        if origin is None and destination is None:
            raise ValueError(f"{lane_path}: must name an origin or a destination province")
        courier = table.get("courier")
        if courier is not None:
            courier = _courier_code(f"{lane_path}.courier", courier)
        values = _threshold_values(lane_path, table, also_allowed=_LANE_KEYS)
        if not values:
            raise ValueError(f"{lane_path}: sets no threshold")
        overrides.append(Override(values, courier=courier, origin=origin, destination=destination))
    return overrides


def _coverage(path: str, value: Any) -> dict[str, frozenset[str]]:
    """``[policy.coverage]``: courier code -> provinces or cities it does not serve."""
    coverage: dict[str, frozenset[str]] = {}
    for code, areas in _table(path, value).items():
        courier_path = f"{path}.{code}"
        names = set()
        for index, area in enumerate(_list(courier_path, areas)):
            area_path = f"{courier_path}[{index}]"
            name = _text(area_path, area)
            canonical = canonical_province(name) or canonical_city(name)
            if canonical is None:
                raise ValueError(f"{area_path}: unknown province or city {name!r}")
            names.add(canonical)
        coverage[_courier_code(courier_path, code)] = frozenset(names)
    return coverage


def _promotions(path: str, value: Any) -> tuple[Promotion, ...]:
    """``[[policy.promotions]]`` entries; they replace the built-in list."""
    promotions = []
    for index, entry in enumerate(_list(path, value)):
        entry_path = f"{path}[{index}]"
        table = _table(entry_path, entry)
        for key in table:
            if key not in _PROMOTION_KEYS:
                raise ValueError(f"{entry_path}.{key}: unknown key")
        for key in ("name", "start", "end"):
            if key not in table:
                raise ValueError(f"{entry_path}.{key}: is required")
        days = {}
        for key in ("start", "end"):
            try:
                days[key] = DayRef.parse(_text(f"{entry_path}.{key}", table[key]))
            except ValueError as error:
                if str(error).startswith(entry_path):
                    raise
                raise ValueError(f"{entry_path}.{key}: {error}") from None
        extras = {}
        for key in ("extra_dispatch_hours", "extra_transit_days"):
            amount = table.get(key, 0)
            if not _is_number(amount) or amount < 0:
                raise ValueError(f"{entry_path}.{key}: must be a non-negative number")
            extras[key] = float(amount)
        promotions.append(
            Promotion(
                _text(f"{entry_path}.name", table["name"]),
                days["start"],
                days["end"],
                extras["extra_dispatch_hours"],
                extras["extra_transit_days"],
            )
        )
    return tuple(promotions)
