"""Agent alerts over HTTP: Standard Webhooks signing or a chat preset, through the SSRF guard."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from standardwebhooks.webhooks import Webhook

from tracker.notify.base import OutgoingAlert, SendResult
from tracker.notify.httpsend import HttpTarget, post
from tracker.notify.presets import interpret, render
from tracker.notify.ratelimit import RateLimiter
from tracker.notify.ssrf import is_forbidden_address
from tracker.settings import AlertWebhookConfig

__all__ = ["WebhookSender", "is_forbidden_address", "sign_headers", "standard_secret_problem"]

_SECRET_FORM = re.compile(r"[A-Za-z0-9+/]{4,}={0,2}")
# Robots throttle per webhook (DingTalk and WeCom: 20 messages a minute); stay under it.
_PRESET_RATE = {"dingtalk": 0.3, "wecom": 0.3, "feishu": 1.5, "slack": 1.0}


def sign_headers(secret: str, msg_id: str, timestamp: datetime, body: str) -> dict[str, str]:
    """The three Standard Webhooks headers for ``body`` (``v1,`` base64 HMAC-SHA256)."""
    at = timestamp.astimezone(UTC)  # the library reads a naive or UTC time as UTC
    signature = Webhook(secret).sign(msg_id, at, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def standard_secret_problem(secret: str) -> str | None:
    """Why ``secret`` is not a usable Standard Webhooks secret, or None."""
    # the library decodes leniently (stray characters vanish); check the form ourselves
    if not _SECRET_FORM.fullmatch(secret.removeprefix("whsec_")):
        return "not a Standard Webhooks secret (whsec_ followed by base64)"
    try:
        Webhook(secret)
    except Exception as exc:  # the library raises its own empty-secret error
        return str(exc) or type(exc).__name__
    return None


class WebhookSender:
    """POSTs one alert to one endpoint; 2xx = delivered, 410 = endpoint gone."""

    def __init__(
        self,
        name: str,
        config: AlertWebhookConfig,
        target: HttpTarget | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.name = name
        self.config = config
        self.target = target or HttpTarget(
            allow_private_networks=config.allow_private_networks, timeout_s=config.timeout_s
        )
        self._clock = clock or (lambda: datetime.now(UTC))
        rate = config.requests_per_s or _PRESET_RATE.get(config.preset)
        self._limiter = RateLimiter(rate)

    async def send(self, alert: OutgoingAlert) -> SendResult:
        """Deliver one alert, classifying failures as retryable or permanent."""
        now = self._clock()
        request = render(
            self.config.preset,
            alert.payload,
            url=self.config.url,
            secret=self.config.secret,
            now=now,
        )
        headers = dict(request.headers)
        headers["idempotency-key"] = alert.idempotency_key
        if self.config.preset == "standard" and self.config.secret:
            headers.update(
                sign_headers(
                    self.config.secret, alert.idempotency_key, now, request.body.decode("utf-8")
                )
            )
        else:
            headers["webhook-id"] = alert.idempotency_key
        await self._limiter.wait()
        answer = await post(self.target, self.name, request.url, request.body, headers)
        if isinstance(answer, SendResult):
            return answer
        return interpret(self.config.preset, answer, self.name)
