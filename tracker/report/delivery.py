"""Sending the daily report: e-mail over SMTP (STARTTLS) and a summary card via webhook.

**E-mail.** One message to all ``[report] recipients``: a mail-client-safe HTML body
(inline styles, no SVG, which most webmail drops) with a plain-text alternative, the
action list as a CSV attachment and the full report (charts included) as an HTML
attachment. The connection upgrades with STARTTLS (``starttls = true``, the default)
and refuses to continue if the server does not offer it; credentials are never sent
over an unencrypted connection. ``smtplib`` runs in a worker thread.

**Webhook.** A ``report.daily`` event goes to every configured agent alert endpoint
through the notify package's :class:`~tracker.notify.base.AlertSender` protocol (so it
is signed and rendered the same way as ticket alerts). Its ``data`` carries a ready
card: ``title``, ``lines`` ([label, value] pairs), ``items`` (the most urgent tickets)
and ``summary`` (the numbers), for chat presets to show as they are.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import structlog

from tracker.notify.base import AlertSender, OutgoingAlert
from tracker.report.render import RenderedReport
from tracker.report.render_html import render_email_html, render_email_text
from tracker.settings import ReportSmtpConfig

__all__ = [
    "CARD_ITEMS",
    "DeliveryError",
    "DeliveryOutcome",
    "build_email",
    "post_summary",
    "send_email",
    "summary_payload",
]

_log = structlog.get_logger("tracker.report")
#: urgent tickets listed on the webhook card
CARD_ITEMS = 5


class DeliveryError(RuntimeError):
    """The report could not be handed over (message says why, never a secret)."""


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """How one channel went."""

    channel: str
    ok: bool
    detail: str
    recipients: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON form, stored with the report."""
        return {
            "channel": self.channel,
            "ok": self.ok,
            "detail": self.detail,
            "recipients": list(self.recipients),
        }


def _subject(rendered: RenderedReport) -> str:
    summary = rendered.report.summary()
    meta = rendered.report.meta
    return (
        f"【{meta.shop}】物流异常日报 {meta.date}：未结 {summary['open_total']}，"
        f"丢件+超时 {summary['urgent']}，新增 {summary['opened']}"
    )


def build_email(
    rendered: RenderedReport, sender: str, recipients: Sequence[str], now: datetime
) -> EmailMessage:
    """The report e-mail: text + HTML body, CSV and full-HTML attachments."""
    meta = rendered.report.meta
    message = EmailMessage()
    message["Subject"] = _subject(rendered)
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = format_datetime(now)
    domain = sender.rpartition("@")[2].strip("> ") or None
    message["Message-ID"] = make_msgid("daily-report", domain=domain)
    message.set_content(render_email_text(rendered.report), charset="utf-8")
    message.add_alternative(render_email_html(rendered.report), subtype="html", charset="utf-8")
    message.add_attachment(
        rendered.csv.encode("utf-8"),
        maintype="text",
        subtype="csv",
        filename=f"daily-report-{meta.date}.csv",
    )
    message.add_attachment(
        rendered.html.encode("utf-8"),
        maintype="text",
        subtype="html",
        filename=f"daily-report-{meta.date}.html",
    )
    return message


def _tls_context(config: ReportSmtpConfig) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=config.ca_file)


def send_email(message: EmailMessage, config: ReportSmtpConfig, recipients: Sequence[str]) -> str:
    """Hand ``message`` to the relay (blocking); returns a detail line, raises DeliveryError.

    Recipients the relay refuses while accepting others are named in the detail.
    """
    try:
        with smtplib.SMTP(config.host, config.port, timeout=config.timeout_s) as smtp:
            smtp.ehlo()
            encrypted = False
            if config.starttls:
                if not smtp.has_extn("starttls"):
                    raise DeliveryError(
                        f"{config.host}:{config.port} does not offer STARTTLS "
                        "(set report.smtp.starttls = false only for a trusted local relay)"
                    )
                smtp.starttls(context=_tls_context(config))
                smtp.ehlo()
                encrypted = True
            if config.username:
                if not encrypted:
                    raise DeliveryError("refusing to send SMTP credentials without STARTTLS")
                smtp.login(config.username, config.password or "")
            refused = smtp.send_message(message, from_addr=config.sender, to_addrs=list(recipients))
    except DeliveryError:
        raise
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"SMTP login refused ({exc.smtp_code})") from None
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(f"every recipient refused: {', '.join(exc.recipients)}") from None
    except smtplib.SMTPResponseException as exc:
        text = (
            exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else ""
        )
        raise DeliveryError(f"SMTP error {exc.smtp_code}: {text.strip()[:200]}") from None
    except ssl.SSLError as exc:
        raise DeliveryError(f"TLS failed with {config.host}: {exc.reason or exc}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(
            f"cannot send through {config.host}:{config.port}: {type(exc).__name__}: {exc}"
        ) from None
    accepted = len(recipients) - len(refused)
    detail = f"sent to {accepted} recipient(s) via {config.host}:{config.port}"
    if refused:
        detail += f"; refused: {', '.join(sorted(refused))}"
    return detail


async def email_report(
    rendered: RenderedReport,
    config: ReportSmtpConfig,
    recipients: Sequence[str],
    now: datetime,
) -> DeliveryOutcome:
    """Send the report e-mail from a worker thread; never raises for delivery trouble."""
    message = build_email(rendered, config.sender, recipients, now)
    try:
        detail = await asyncio.to_thread(send_email, message, config, recipients)
    except DeliveryError as exc:
        _log.error("report_email_failed", host=config.host, reason=str(exc))
        return DeliveryOutcome("email", False, str(exc), tuple(recipients))
    _log.info("report_emailed", host=config.host, recipients=len(recipients))
    return DeliveryOutcome("email", "refused:" not in detail, detail, tuple(recipients))


def summary_payload(rendered: RenderedReport, report_id: int, now: datetime) -> dict[str, Any]:
    """The ``report.daily`` webhook event, with a ready-made card in ``data``."""
    report = rendered.report
    h = report.headline
    summary = report.summary()
    items = [
        f"{a.kind_label}｜{a.order_id}｜{a.courier_name or ''} {a.tracking_number or ''}".strip()
        + f"｜{a.evidence}"
        for a in report.actions[:CARD_ITEMS]
    ]
    lines = [
        ["窗口", f"{report.meta.window_start[5:16]} 至 {report.meta.window_end[5:16]}"],
        ["未结工单", f"{h.open_total}（丢件+超时 {summary['urgent']}）"],
        ["24 小时", f"新增 {h.opened}，解决 {h.resolved}"],
        ["买家通知", f"已通知 {h.buyers_notified} 人，失败 {h.notices_failed}"],
        ["告警未送达", str(h.alerts_undelivered)],
    ]
    return {
        "type": "report.daily",
        "timestamp": now.isoformat(),
        "data": {
            "report_id": report_id,
            "date": report.meta.date,
            "title": f"物流异常日报 {report.meta.date}",
            "lines": lines,
            "items": items,
            "summary": summary,
        },
    }


async def post_summary(
    senders: Mapping[str, AlertSender], payload: dict[str, Any], report_id: int
) -> list[DeliveryOutcome]:
    """Post the summary event to every alert endpoint; never raises for endpoint trouble."""
    outcomes = []
    key = f"report-{payload['data']['date']}-{report_id}"
    for name, sender in senders.items():
        alert = OutgoingAlert(
            alert_id=report_id, endpoint=name, payload=payload, idempotency_key=key
        )
        try:
            result = await sender.send(alert)
        except Exception as exc:  # a sender bug must not stop the other channels
            _log.exception("report_webhook_crashed", endpoint=name)
            outcomes.append(DeliveryOutcome(f"webhook:{name}", False, repr(exc)))
            continue
        detail = "accepted" if result.ok else (result.reason or "rejected")
        if result.status_code is not None:
            detail += f" (HTTP {result.status_code})"
        outcomes.append(DeliveryOutcome(f"webhook:{name}", result.ok, detail))
        if not result.ok:
            _log.error("report_webhook_failed", endpoint=name, reason=result.reason)
    return outcomes
