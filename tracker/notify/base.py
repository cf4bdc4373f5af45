"""Contracts for buyer channels and agent alert senders, and the dry-run implementations."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

__all__ = [
    "AlertSender",
    "BuyerChannel",
    "DryRunAlertSender",
    "DryRunChannel",
    "OutgoingAlert",
    "OutgoingNotice",
    "SendResult",
]


@dataclass(frozen=True, slots=True)
class OutgoingNotice:
    """One buyer notice ready to send; ``idempotency_key`` lets the gateway drop repeats.

    ``variables`` are the values a provider template may use (``order_id``, ``courier``,
    ``tracking_number``, ``buyer_name``, ``shop``, ``kind``, ``content``, ``text``).
    """

    notice_id: int
    order_id: str
    channel: str
    recipient: str
    body: str
    idempotency_key: str
    variables: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OutgoingAlert:
    """One agent alert delivery to one endpoint."""

    alert_id: int
    endpoint: str
    payload: dict[str, Any]
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class SendResult:
    """What a provider said: accepted (with its message id), or a retryable/permanent failure.

    ``retry_after_s`` is the provider's own hint (``Retry-After``, a rate-limit code); the
    dispatcher waits at least that long before the next attempt.
    """

    ok: bool
    provider: str
    message_id: str | None = None
    retryable: bool = False
    reason: str | None = None
    status_code: int | None = None
    disable_endpoint: bool = False
    retry_after_s: float | None = None


class BuyerChannel(Protocol):
    """An SMS or chat provider."""

    name: str

    async def send(self, notice: OutgoingNotice) -> SendResult:
        """Deliver one notice; never raises for provider trouble."""
        ...


class AlertSender(Protocol):
    """An agent webhook endpoint."""

    name: str

    async def send(self, alert: OutgoingAlert) -> SendResult:
        """Deliver one alert; never raises for endpoint trouble."""
        ...


#: how many recent sends a dry-run recorder keeps (the database keeps all of them)
DRY_RUN_MEMORY = 1000


class DryRunChannel:
    """Records a notice as handled without contacting anyone (the default provider)."""

    def __init__(self, name: str = "dry-run") -> None:
        self.name = name
        # bounded: a daemon on the default provider must not grow with every notice
        self.sent: deque[OutgoingNotice] = deque(maxlen=DRY_RUN_MEMORY)

    async def send(self, notice: OutgoingNotice) -> SendResult:
        """Accept every notice and remember the most recent ones."""
        self.sent.append(notice)
        return SendResult(ok=True, provider="dry-run", message_id=f"dry-run-{notice.notice_id}")


class DryRunAlertSender:
    """Records an alert without calling any webhook (used when none is configured)."""

    def __init__(self, name: str = "dry-run") -> None:
        self.name = name
        self.sent: deque[OutgoingAlert] = deque(maxlen=DRY_RUN_MEMORY)

    async def send(self, alert: OutgoingAlert) -> SendResult:
        """Accept every alert and remember the most recent ones."""
        self.sent.append(alert)
        return SendResult(ok=True, provider="dry-run", message_id=f"dry-run-{alert.alert_id}")
