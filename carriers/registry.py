"""Canonical courier codes and provider discovery through entry points."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import cast

import structlog

from carriers.base import SourceFactory

__all__ = ["COURIERS", "ENTRY_POINT_GROUP", "courier_name", "is_known_courier", "load_factories"]

ENTRY_POINT_GROUP = "tracker.carriers"

#: canonical courier code -> display name (Chinese where the courier is Chinese)
COURIERS: dict[str, str] = {
    "sf": "顺丰速运",
    "yto": "圆通速递",
    "zto": "中通快递",
    "sto": "申通快递",
    "yunda": "韵达快递",
    "jd": "京东物流",
    "ems": "EMS",
    "chinapost": "邮政包裹",
    "jt": "极兔速递",
    "deppon": "德邦快递",
    "ups": "UPS",
    "fedex": "FedEx",
    "dhl": "DHL",
    "usps": "USPS",
}

_log = structlog.get_logger("carriers.registry")


def is_known_courier(code: str) -> bool:
    """True when ``code`` is one of the canonical courier codes."""
    return code in COURIERS


def courier_name(code: str) -> str:
    """The display name of a courier code, or the code itself when unknown."""
    return COURIERS.get(code, code)


class _Factories(Mapping[str, SourceFactory]):
    """Installed providers by name; each plugin is imported the first time it is looked up.

    A tracker uses one or two providers: importing all six adapters (and any third-party
    plugin) costs tens of milliseconds of CPU on every start. A plugin that fails to import
    is logged and from then on absent, as if it were not installed.
    """

    def __init__(self, points: dict[str, EntryPoint]) -> None:
        self._points = points
        self._loaded: dict[str, SourceFactory] = {}

    def __getitem__(self, name: str) -> SourceFactory:
        found = self._loaded.get(name)
        if found is not None:
            return found
        point = self._points[name]
        try:
            factory = cast(SourceFactory, point.load())
        except Exception as exc:  # a third-party plugin may fail in any way
            _log.warning("provider_plugin_broken", provider=name, error=repr(exc))
            del self._points[name]
            raise KeyError(name) from None
        self._loaded[name] = factory
        return factory

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._points))

    def __len__(self) -> int:
        return len(self._points)


def load_factories() -> Mapping[str, SourceFactory]:
    """Every installed provider factory by name, imported on first lookup (see _Factories)."""
    return _Factories({ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)})
