"""The auth circuit: rejected credentials stop a provider for a cool-down, not a retry storm.

When a provider rejects our credentials every further request would fail the same way, so
the circuit opens: requests fail at once (no network) with :attr:`ErrorKind.AUTH` until the
cool-down ends. Then one probe request is let through; if it is rejected again the circuit
re-opens quietly, if it succeeds the circuit closes. Exactly one error is logged per outage
and one info line on recovery.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

__all__ = ["AuthCircuit"]

_log = structlog.get_logger("carriers.transport")

#: How long a probe may stay unanswered before another caller may probe.
_PROBE_TIMEOUT_S = 60.0


class AuthCircuit:
    """Closed (requests flow), open (fail fast) or probing (one request tests the key)."""

    def __init__(
        self, provider: str, *, cooldown_s: float, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.provider = provider
        self.cooldown_s = cooldown_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._open_until: float | None = None
        self._probe_deadline = 0.0
        self.reason = ""

    @property
    def is_open(self) -> bool:
        """True while the provider is considered to have rejected our credentials."""
        return self._open_until is not None

    def check(self) -> float | None:
        """``None`` when a request may go; else the seconds until the next probe."""
        with self._lock:
            if self._open_until is None:
                return None
            now = self._monotonic()
            if now < self._open_until:
                return self._open_until - now
            if now < self._probe_deadline:
                return self._probe_deadline - now  # someone else is probing right now
            self._probe_deadline = now + _PROBE_TIMEOUT_S
            return None

    def trip(self, reason: str) -> None:
        """Open (or re-open) the circuit for the cool-down; logs only when it was closed."""
        with self._lock:
            was_open = self._open_until is not None
            self._open_until = self._monotonic() + self.cooldown_s
            self._probe_deadline = 0.0
            self.reason = reason
        if not was_open:
            _log.error(
                "provider_auth_rejected",
                provider=self.provider,
                error=reason,
                paused_s=self.cooldown_s,
                action="check the provider's credentials in the config; requests are paused",
            )

    def succeeded(self) -> None:
        """Close the circuit after an authenticated answer; logs when it was open."""
        with self._lock:
            was_open = self._open_until is not None
            self._open_until = None
            self._probe_deadline = 0.0
            self.reason = ""
        if was_open:
            _log.info("provider_auth_recovered", provider=self.provider)
