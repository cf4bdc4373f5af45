"""Canonical courier codes and provider discovery through entry points."""

from __future__ import annotations

from importlib.metadata import entry_points
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


def load_factories() -> dict[str, SourceFactory]:
    """Every installed provider factory by name; a broken plugin is logged and skipped."""
    factories: dict[str, SourceFactory] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            factories[ep.name] = cast(SourceFactory, ep.load())
        except Exception as exc:  # a third-party plugin may fail in any way
            _log.warning("provider_plugin_broken", provider=ep.name, error=repr(exc))
    return factories
