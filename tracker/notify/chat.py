"""Chat notices through a generic webhook (an IM bridge, a CRM), optionally signed.

``[notify.chat]`` with ``provider = "webhook"``: like the HTTP SMS gateway, but the default
body is ``{"chat_id", "text", "order_id", "notice_id"}`` and, with a ``secret``
(``whsec_...``), each request carries Standard Webhooks signature headers.
"""

from __future__ import annotations

from datetime import UTC, datetime

from tracker.notify.base import OutgoingNotice
from tracker.notify.httpsend import HttpTarget
from tracker.notify.sms_http import HttpGatewayChannel, HttpGatewayOptions
from tracker.notify.webhook import sign_headers, standard_secret_problem

__all__ = ["ChatWebhookChannel", "ChatWebhookOptions"]


class ChatWebhookOptions(HttpGatewayOptions):
    """``[notify.chat]`` with ``provider = "webhook"``."""

    secret: str | None = None


class ChatWebhookChannel(HttpGatewayChannel):
    """POSTs each chat notice to the configured webhook."""

    recipient_field = "chat_id"

    def __init__(
        self, name: str, options: ChatWebhookOptions, target: HttpTarget | None = None
    ) -> None:
        if options.secret and (problem := standard_secret_problem(options.secret)):
            raise ValueError(f"secret: {problem}")
        super().__init__(name, options, target)
        self.secret = options.secret

    def headers(self, notice: OutgoingNotice, body: bytes) -> dict[str, str]:
        """The gateway headers plus the Standard Webhooks signature when a secret is set."""
        headers = super().headers(notice, body)
        if self.secret:
            headers.update(
                sign_headers(
                    self.secret, notice.idempotency_key, datetime.now(UTC), body.decode("utf-8")
                )
            )
        return headers
