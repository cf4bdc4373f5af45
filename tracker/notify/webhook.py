"""Agent alerts over HTTP, signed per Standard Webhooks, with a guard against private targets."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import socket
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from standardwebhooks.webhooks import Webhook

from tracker.notify.base import OutgoingAlert, SendResult
from tracker.settings import AlertWebhookConfig

__all__ = ["WebhookSender", "is_forbidden_address", "sign_headers"]


def is_forbidden_address(address: str) -> bool:
    """True for loopback, private, link-local (cloud metadata), reserved and multicast IPs."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return bool(
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


async def _resolves_to_forbidden(host: str) -> str | None:
    try:
        return host if is_forbidden_address(host) else None
    except ValueError:
        pass  # a DNS name: check every address it resolves to
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    for info in infos:
        address = str(info[4][0])
        if is_forbidden_address(address):
            return address
    return None


def sign_headers(secret: str, msg_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body``."""
    signature = Webhook(secret).sign(msg_id, timestamp, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature,
    }


class WebhookSender:
    """POSTs alert JSON to one endpoint; 2xx = delivered, 410 = endpoint gone."""

    def __init__(
        self, name: str, config: AlertWebhookConfig, client: httpx.AsyncClient | None = None
    ) -> None:
        self.name = name
        self.config = config
        self._client = client

    async def send(self, alert: OutgoingAlert) -> SendResult:
        """Deliver one alert, classifying failures as retryable or permanent."""
        url = self.config.url
        host = urlsplit(url).hostname or ""
        if not self.config.allow_private_networks:
            try:
                bad = await _resolves_to_forbidden(host)
            except OSError as exc:
                return SendResult(
                    False, self.name, retryable=True, reason=f"DNS lookup failed: {exc}"
                )
            if bad:
                return SendResult(
                    False,
                    self.name,
                    reason=f"refused: {host} resolves to private address {bad} "
                    "(set allow_private_networks = true to allow)",
                )
        body = json.dumps(alert.payload, ensure_ascii=False, separators=(",", ":"))
        headers = {"content-type": "application/json", "user-agent": "tracker-alerts"}
        if self.config.secret:
            headers.update(
                sign_headers(self.config.secret, alert.idempotency_key, datetime.now(UTC), body)
            )
        else:
            headers["webhook-id"] = alert.idempotency_key
        client = self._client or httpx.AsyncClient(timeout=10.0, follow_redirects=False)
        try:
            response = await client.post(url, content=body.encode("utf-8"), headers=headers)
        except httpx.HTTPError as exc:
            return SendResult(
                False, self.name, retryable=True, reason=f"{type(exc).__name__}: {exc}"
            )
        finally:
            if self._client is None:
                await client.aclose()
        code = response.status_code
        if 200 <= code < 300:
            return SendResult(True, self.name, status_code=code)
        if code == 410:
            return SendResult(
                False,
                self.name,
                status_code=code,
                reason="410 Gone: endpoint disabled",
                disable_endpoint=True,
            )
        retryable = code >= 500 or code in (408, 429)
        if 300 <= code < 400:
            retryable = False
        return SendResult(
            False, self.name, status_code=code, retryable=retryable, reason=f"HTTP {code}"
        )
