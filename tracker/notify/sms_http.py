"""A generic HTTP gateway channel: one JSON POST per notice with an ``Idempotency-Key`` header.

The body is ``{"phone", "text", "order_id", "notice_id"}`` unless ``body`` gives a template:
a TOML table (or array) whose string values are jinja templates over the notice variables,
e.g. ``body = { mobile = "{{ phone }}", content = "{{ text }}", sign = "{{ shop }}" }``.
Any 2xx is accepted; ``message_id_field`` (dotted) picks the gateway's id from a JSON answer.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from jinja2 import Environment, StrictUndefined, Template, TemplateSyntaxError, meta
from pydantic import Field

from tracker.notify.base import OutgoingNotice, SendResult
from tracker.notify.httpsend import HttpTarget, classify_status, post
from tracker.notify.provider_config import ProviderOptions
from tracker.notify.ratelimit import RateLimiter

__all__ = ["BODY_VARIABLES", "HttpGatewayChannel", "HttpGatewayOptions", "compile_body"]

#: what a body template may use
BODY_VARIABLES = frozenset(
    {
        "phone",
        "chat_id",
        "recipient",
        "text",
        "order_id",
        "notice_id",
        "idempotency_key",
        "courier",
        "tracking_number",
        "buyer_name",
        "shop",
        "kind",
        "content",
    }
)

_ENV = Environment(undefined=StrictUndefined, autoescape=False)


class HttpGatewayOptions(ProviderOptions):
    """``[notify.sms]`` with ``provider = "http"`` (also the base of the chat webhook)."""

    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | list[Any] | None = None
    message_id_field: str | None = "message_id"


def compile_body(template: Any, path: str = "body") -> Any:
    """Parse every string in a body template; unknown variables raise ValueError naming it."""
    if isinstance(template, dict):
        return {k: compile_body(v, f"{path}.{k}") for k, v in template.items()}
    if isinstance(template, list):
        return [compile_body(v, f"{path}[{i}]") for i, v in enumerate(template)]
    if not isinstance(template, str):
        return template
    try:
        unknown = meta.find_undeclared_variables(_ENV.parse(template)) - BODY_VARIABLES
    except TemplateSyntaxError as exc:
        raise ValueError(f"{path}: {exc.message}") from None
    if unknown:
        raise ValueError(
            f"{path}: unknown variable(s) {', '.join(sorted(unknown))}"
            f" (allowed: {', '.join(sorted(BODY_VARIABLES))})"
        )
    return _ENV.from_string(template)


def _fill(compiled: Any, values: dict[str, Any]) -> Any:
    if isinstance(compiled, dict):
        return {k: _fill(v, values) for k, v in compiled.items()}
    if isinstance(compiled, list):
        return [_fill(v, values) for v in compiled]
    if isinstance(compiled, Template):
        return compiled.render(**values)
    return compiled


def _dig(data: Any, dotted: str) -> str | None:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return None if data is None or isinstance(data, (dict, list)) else str(data)


class HttpGatewayChannel:
    """POSTs each notice to a gateway that deduplicates on ``Idempotency-Key``."""

    recipient_field = "phone"

    def __init__(
        self, name: str, options: HttpGatewayOptions, target: HttpTarget | None = None
    ) -> None:
        self.name = name
        self.options = options
        self.target = target or HttpTarget(
            allow_private_networks=options.allow_private_networks, timeout_s=options.timeout_s
        )
        self._body = compile_body(options.body) if options.body is not None else None
        self._limiter = RateLimiter(options.requests_per_s)

    def values(self, notice: OutgoingNotice) -> dict[str, Any]:
        """The variables a body template sees for ``notice``."""
        base: dict[str, Any] = dict.fromkeys(BODY_VARIABLES, "")
        base.update(notice.variables)
        base.update(
            recipient=notice.recipient,
            text=notice.body,
            order_id=notice.order_id,
            notice_id=notice.notice_id,
            idempotency_key=notice.idempotency_key,
        )
        base[self.recipient_field] = notice.recipient
        return base

    def body(self, notice: OutgoingNotice) -> bytes:
        """The JSON body for ``notice``."""
        if self._body is None:
            data: Any = {
                self.recipient_field: notice.recipient,
                "text": notice.body,
                "order_id": notice.order_id,
                "notice_id": notice.notice_id,
            }
        else:
            data = _fill(self._body, self.values(notice))
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    def headers(self, notice: OutgoingNotice, body: bytes) -> dict[str, str]:
        """Request headers: the configured ones plus the idempotency key."""
        return {
            "content-type": "application/json; charset=utf-8",
            "user-agent": "tracker-notices",
            **{k.lower(): v for k, v in self.options.headers.items()},
            "idempotency-key": notice.idempotency_key,
        }

    async def send(self, notice: OutgoingNotice) -> SendResult:
        """One POST; 2xx accepted, 408/429/5xx retried, other answers permanent."""
        body = self.body(notice)
        headers = self.headers(notice, body)
        await self._limiter.wait()
        answer = await post(self.target, self.name, self.options.url, body, headers)
        if isinstance(answer, SendResult):
            return answer
        result = classify_status(answer, self.name)
        if not result.ok:
            return result
        return SendResult(
            True, self.name, message_id=self._message_id(answer), status_code=answer.status_code
        )

    def _message_id(self, response: httpx.Response) -> str | None:
        if not self.options.message_id_field:
            return None
        try:
            return _dig(response.json(), self.options.message_id_field)
        except ValueError:
            return None
