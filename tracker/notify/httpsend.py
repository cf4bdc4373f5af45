"""Shared HTTP plumbing for channels and webhooks: guarded POST and status classification."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from tracker.domain.masking import mask_phones_in_text
from tracker.notify.base import SendResult
from tracker.notify.ssrf import ForbiddenDestination, Resolver, guarded_post, system_resolver

__all__ = ["HttpTarget", "classify_status", "clip", "excerpt", "post", "retry_after"]

_RETRYABLE_STATUS = frozenset({408, 425, 429})


@dataclass(frozen=True, slots=True)
class HttpTarget:
    """Where and how a channel or webhook posts: the SSRF policy and the client to use."""

    allow_private_networks: bool = False
    timeout_s: float = 10.0
    resolver: Resolver = system_resolver
    client: httpx.AsyncClient | None = None


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a ``Retry-After`` header (delta or HTTP date), or None."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def clip(text: str, limit: int = 200) -> str:
    """A provider message on one line, shortened, phone numbers masked."""
    return mask_phones_in_text(" ".join(text[: limit * 4].split())[:limit])


def excerpt(response: httpx.Response, limit: int = 200) -> str:
    """The start of a response body, phone numbers masked, for failure reasons."""
    return clip(response.text, limit)


def classify_status(response: httpx.Response, provider: str) -> SendResult:
    """2xx ok; 410 disables; 408/425/429/5xx retryable; other 3xx/4xx permanent."""
    code = response.status_code
    if 200 <= code < 300:
        return SendResult(True, provider, status_code=code)
    body = excerpt(response)
    reason = f"HTTP {code}" + (f": {body}" if body else "")
    if code == 410:
        return SendResult(
            False,
            provider,
            status_code=code,
            reason=f"{reason} (endpoint gone)",
            disable_endpoint=True,
        )
    retryable = code >= 500 or code in _RETRYABLE_STATUS
    return SendResult(
        False,
        provider,
        status_code=code,
        retryable=retryable,
        reason=reason,
        retry_after_s=retry_after(response) if retryable else None,
    )


async def post(
    target: HttpTarget, provider: str, url: str, content: bytes, headers: dict[str, str]
) -> httpx.Response | SendResult:
    """POST through the SSRF guard; transport trouble comes back as a SendResult."""
    try:
        return await guarded_post(
            url,
            content=content,
            headers=headers,
            allow_private=target.allow_private_networks,
            timeout_s=target.timeout_s,
            resolver=target.resolver,
            client=target.client,
        )
    except ForbiddenDestination as exc:
        return SendResult(False, provider, reason=str(exc))
    except OSError as exc:
        return SendResult(False, provider, retryable=True, reason=f"DNS lookup failed: {exc}")
    except httpx.HTTPError as exc:
        return SendResult(
            False, provider, retryable=True, reason=f"{type(exc).__name__}: {exc}".rstrip(": ")
        )
