"""Per-source state shared by every job in the process: the rate budget and the auth circuit.

Sources are rebuilt for every poll cycle and every one-off lookup, but a provider's request
budget and its "credentials rejected" state must outlive them, so both live here, keyed by
the source name (the ``[carriers.NAME]`` table).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from carriers.transport.budget import CHINA_TZ, RateBudget
from carriers.transport.circuit import AuthCircuit

__all__ = ["GUARDS", "GuardRegistry", "ProviderGuard"]


@dataclass(slots=True)
class ProviderGuard:
    """The budget and the auth circuit of one source."""

    name: str
    budget: RateBudget
    circuit: AuthCircuit


class GuardRegistry:
    """Hands out one :class:`ProviderGuard` per source name; limits follow the latest config."""

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._guards: dict[str, ProviderGuard] = {}

    def get(
        self,
        name: str,
        *,
        rate_per_s: float,
        burst: int = 1,
        daily_quota: int | None = None,
        quota_tz: ZoneInfo = CHINA_TZ,
        auth_cooldown_s: float = 900.0,
    ) -> ProviderGuard:
        """The guard for ``name``, created on first use and re-configured on later calls."""
        with self._lock:
            guard = self._guards.get(name)
            if guard is None:
                guard = ProviderGuard(
                    name,
                    RateBudget(
                        rate_per_s,
                        burst=burst,
                        daily_quota=daily_quota,
                        quota_tz=quota_tz,
                        monotonic=self._monotonic,
                    ),
                    AuthCircuit(name, cooldown_s=auth_cooldown_s, monotonic=self._monotonic),
                )
                self._guards[name] = guard
                return guard
        guard.budget.configure(rate_per_s, burst=burst, daily_quota=daily_quota, quota_tz=quota_tz)
        guard.circuit.cooldown_s = auth_cooldown_s
        return guard

    def clear(self) -> None:
        """Forget every guard (tests; a process never needs this)."""
        with self._lock:
            self._guards.clear()


#: The process-wide registry every adapter uses unless a test injects its own.
GUARDS = GuardRegistry()
