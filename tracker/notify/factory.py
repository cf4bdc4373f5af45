"""Builds buyer channels and alert senders from settings (called by the composition root)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tracker.errors import ConfigError
from tracker.notify.base import AlertSender, BuyerChannel, DryRunAlertSender, DryRunChannel
from tracker.notify.provider_config import parse_options
from tracker.settings import AlertsConfig, AlertWebhookConfig, ChannelConfig

__all__ = ["CHANNEL_PROVIDERS", "alert_endpoints", "build_alert_senders", "build_channel"]

#: providers each channel accepts
CHANNEL_PROVIDERS = {
    "sms": ("dry-run", "aliyun", "tencent", "http"),
    "chat": ("dry-run", "webhook"),
}


def _aliyun(options: dict[str, Any], where: str) -> BuyerChannel:
    from tracker.notify.sms_aliyun import AliyunSms, AliyunSmsOptions  # noqa: PLC0415

    return AliyunSms(parse_options(AliyunSmsOptions, options, where))


def _tencent(options: dict[str, Any], where: str) -> BuyerChannel:
    from tracker.notify.sms_tencent import TencentSms, TencentSmsOptions  # noqa: PLC0415

    return TencentSms(parse_options(TencentSmsOptions, options, where))


def _http(options: dict[str, Any], where: str) -> BuyerChannel:
    from tracker.notify.sms_http import HttpGatewayChannel, HttpGatewayOptions  # noqa: PLC0415

    return HttpGatewayChannel("http", parse_options(HttpGatewayOptions, options, where))


def _chat_webhook(options: dict[str, Any], where: str) -> BuyerChannel:
    from tracker.notify.chat import ChatWebhookChannel, ChatWebhookOptions  # noqa: PLC0415

    return ChatWebhookChannel("webhook", parse_options(ChatWebhookOptions, options, where))


_BUILDERS: dict[tuple[str, str], Callable[[dict[str, Any], str], BuyerChannel]] = {
    ("sms", "aliyun"): _aliyun,
    ("sms", "tencent"): _tencent,
    ("sms", "http"): _http,
    ("chat", "webhook"): _chat_webhook,
}


def build_channel(channel: str, config: ChannelConfig) -> BuyerChannel:
    """The provider for ``[notify.<channel>]``; ConfigError names the key on bad options."""
    where = f"notify.{channel}"
    provider = config.provider
    if provider == "dry-run":
        return DryRunChannel()
    builder = _BUILDERS.get((channel, provider))
    if builder is None:
        known = ", ".join(repr(p) for p in CHANNEL_PROVIDERS[channel])
        raise ConfigError(f"{where}.provider: unknown provider {provider!r} (choose {known})")
    try:
        return builder(config.model_dump(), where)
    except ValueError as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{where}.{exc}") from None


def alert_endpoints(config: AlertsConfig) -> dict[str, AlertWebhookConfig]:
    """Every enabled endpoint by name: ``[alerts.webhook]`` is named ``webhook``."""
    endpoints: dict[str, AlertWebhookConfig] = {}
    if config.webhook is not None:
        endpoints["webhook"] = config.webhook
    endpoints.update(config.endpoints)
    return {name: ep for name, ep in endpoints.items() if ep.enabled}


def build_alert_senders(config: AlertsConfig) -> dict[str, AlertSender]:
    """A sender per configured endpoint, or a dry-run recorder when there is none."""
    from tracker.notify.webhook import WebhookSender, standard_secret_problem  # noqa: PLC0415

    endpoints = alert_endpoints(config)
    if not endpoints:
        return {"dry-run": DryRunAlertSender()}
    senders: dict[str, AlertSender] = {}
    for name, endpoint in endpoints.items():
        where = "alerts.webhook" if name == "webhook" else f"alerts.endpoints.{name}"
        if not endpoint.url.startswith(("http://", "https://")):
            raise ConfigError(f"{where}.url: must start with http:// or https://")
        if endpoint.preset == "standard" and endpoint.secret:
            problem = standard_secret_problem(endpoint.secret)
            if problem:
                raise ConfigError(f"{where}.secret: {problem}")
        senders[name] = WebhookSender(name, endpoint)
    return senders
