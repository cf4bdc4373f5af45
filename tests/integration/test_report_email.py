"""Report delivery to a real local SMTP server (aiosmtpd) over STARTTLS, and the daily job.

The server's certificate comes from a throwaway CA made by ``trustme`` in the test; the
client trusts it through ``[report.smtp] ca_file``, exactly as a shop with a private CA
would configure it.
"""

from __future__ import annotations

import asyncio
import email
import json
import logging
import os
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select
from sqlalchemy.engine import Engine

from tests.integration import report_seed as s
from tracker.bootstrap import App
from tracker.notify.base import DryRunAlertSender
from tracker.report import run_daily_report
from tracker.report.delivery import DeliveryError, build_email, send_email
from tracker.report.job import build_rendered, run_daily_report_sync
from tracker.report.store import list_reports
from tracker.settings import ReportSmtpConfig, Settings
from tracker.store import migrate
from tracker.store.tables import reports
from tracker.store.uow import make_engine

RECIPIENTS = ["ops1@shop.example", "ops2@shop.example", "boss@shop.example"]
USER, PASSWORD = "reporter", "s3cret-pw"


@dataclass
class Sink:
    """Messages the SMTP server accepted, with how each session was secured."""

    received: list[tuple[list[str], EmailMessage, bool, str | None]] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        """Accept a recipient unless told to refuse it."""
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        """Keep the parsed message, whether TLS was on, and who logged in."""
        message = email.message_from_bytes(envelope.content, policy=default_policy)
        login = session.auth_data.login.decode() if session.auth_data else None
        self.received.append((list(envelope.rcpt_tos), message, session.ssl is not None, login))  # type: ignore[arg-type]
        return "250 Message accepted"


def _authenticate(
    server: Any, session: Any, envelope: Any, mechanism: str, data: Any
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False, auth_data=data if ok else None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    """A throwaway CA and its certificate as a PEM file."""
    authority = trustme.CA()
    pem = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(pem))
    return authority, pem


def _serve(sink: Sink, tls: trustme.CA | None) -> Controller:
    # the sink's thread logs after pytest closed the stream a handler was bound to
    logging.getLogger("mail.log").propagate = False
    kwargs: dict[str, Any] = {"authenticator": _authenticate}
    if tls is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        kwargs.update(tls_context=context, require_starttls=True)
    controller = Controller(sink, hostname="127.0.0.1", port=_free_port(), **kwargs)
    controller.start()
    return controller


@pytest.fixture
def smtp_server(ca: tuple[trustme.CA, Path]) -> Iterator[tuple[Sink, ReportSmtpConfig]]:
    """A STARTTLS SMTP server requiring login, and the config that reaches it."""
    sink = Sink()
    controller = _serve(sink, ca[0])
    config = ReportSmtpConfig(
        host="127.0.0.1",
        port=controller.port,
        username=USER,
        password=PASSWORD,
        sender="tracker@shop.example",
        ca_file=str(ca[1]),
        timeout_s=10,
    )
    yield sink, config
    controller.stop()


def _app(engine: Engine, smtp: ReportSmtpConfig, webhook: DryRunAlertSender) -> App:
    settings = Settings.model_validate(
        {
            "database": {"url": str(engine.url)},
            "shop": {"name": "金标店"},
            "carriers": {"sandbox": {}},
            "policy": s.POLICY_TABLE,
            "report": {
                "recipients": RECIPIENTS,
                "smtp": smtp.model_dump(),
                "post_to_webhook": True,
                "retention_days": 30,
            },
        }
    )
    return App(
        settings=settings,
        clock=lambda: s.NOW,
        engine_override=engine,
        alert_senders_override={"ops": webhook},
    )


def test_every_recipient_gets_html_body_and_csv_attachment_over_starttls(
    engine: Engine, smtp_server: tuple[Sink, ReportSmtpConfig]
) -> None:
    """One message reaches all recipients through STARTTLS and login, with both attachments."""
    sink, config = smtp_server
    with engine.begin() as conn:
        s.seed(conn)
    app = _app(engine, config, DryRunAlertSender("ops"))
    rendered = build_rendered(app, s.REPORT_DAY, s.NOW)
    detail = send_email(build_email(rendered, config.sender, RECIPIENTS, s.NOW), config, RECIPIENTS)
    assert detail.startswith("sent to 3 recipient(s)")
    [(rcpts, message, secured, login)] = sink.received
    assert rcpts == RECIPIENTS and secured and login == USER
    assert "物流异常日报 2026-10-10" in message["Subject"] and "金标店" in message["Subject"]
    assert message["To"] == ", ".join(RECIPIENTS)
    body = message.get_body(("html",))
    assert body is not None and "最紧急的" in body.get_content()
    assert "<svg" not in body.get_content()  # webmail drops SVG: the charts ride in the attachment
    assert "未结工单" in message.get_body(("plain",)).get_content()
    attachments = {part.get_filename(): part for part in message.iter_attachments()}
    csv_part = attachments["daily-report-2026-10-10.csv"]
    assert csv_part.get_content_type() == "text/csv"
    csv_text = csv_part.get_payload(decode=True).decode("utf-8")
    assert csv_text == rendered.csv and csv_text.startswith("\ufeffticket_id,order_id")
    html_part = attachments["daily-report-2026-10-10.html"]
    assert html_part.get_payload(decode=True).decode("utf-8") == rendered.html


def test_a_server_without_starttls_gets_nothing(ca: tuple[trustme.CA, Path]) -> None:
    """Without STARTTLS on offer the client stops before sending credentials or the report."""
    sink = Sink()
    controller = _serve(sink, None)
    config = ReportSmtpConfig(
        host="127.0.0.1",
        port=controller.port,
        username=USER,
        password=PASSWORD,
        sender="tracker@shop.example",
        ca_file=str(ca[1]),
        timeout_s=10,
    )
    message = EmailMessage()
    message["Subject"] = "x"
    message.set_content("x")
    try:
        with pytest.raises(DeliveryError, match="does not offer STARTTLS"):
            send_email(message, config, RECIPIENTS)
    finally:
        controller.stop()
    assert sink.received == []


def test_an_untrusted_certificate_is_refused(
    smtp_server: tuple[Sink, ReportSmtpConfig],
) -> None:
    """A relay whose certificate the client cannot verify gets neither login nor report."""
    sink, config = smtp_server
    untrusted = config.model_copy(update={"ca_file": None})
    message = EmailMessage()
    message["Subject"] = "x"
    message.set_content("x")
    with pytest.raises(DeliveryError, match=r"TLS failed|certificate"):
        send_email(message, untrusted, RECIPIENTS)
    assert sink.received == []


def test_daily_job_stores_sends_once_and_reports_a_refused_recipient(
    engine: Engine, smtp_server: tuple[Sink, ReportSmtpConfig]
) -> None:
    """The job e-mails and posts the card once; a rerun skips; a refused address is partial."""
    sink, config = smtp_server
    with engine.begin() as conn:
        s.seed(conn)
    webhook = DryRunAlertSender("ops")
    app = _app(engine, config, webhook)
    first = asyncio.run(run_daily_report(app, s.NOW))
    assert first.status == "delivered", first.outcomes
    assert [o.channel for o in first.outcomes] == ["email", "webhook:ops"]
    assert len(sink.received) == 1 and len(webhook.sent) == 1
    card = webhook.sent[0].payload
    assert card["type"] == "report.daily" and card["data"]["date"] == "2026-10-10"
    assert card["data"]["summary"]["open_total"] == first.summary["open_total"]
    again = asyncio.run(run_daily_report(app, s.NOW + timedelta(minutes=5)))
    assert again.status == "skipped" and again.report_id == first.report_id
    assert len(sink.received) == 1 and len(webhook.sent) == 1

    sink.refuse.add(RECIPIENTS[1])
    forced = asyncio.run(run_daily_report(app, s.NOW, force=True))
    assert forced.status == "partial" and forced.report_id == first.report_id
    email_outcome = forced.outcomes[0]
    assert not email_outcome.ok and RECIPIENTS[1] in email_outcome.detail
    assert sink.received[-1][0] == [RECIPIENTS[0], RECIPIENTS[2]]
    with engine.connect() as conn:
        [row] = list_reports(conn)
        stored = conn.execute(select(reports.c.content_csv)).scalar_one()
    assert row.status == "partial" and row.delivery["channels"][1]["ok"] is True
    assert stored.startswith("\ufeffticket_id")


def test_reports_older_than_the_retention_are_purged(
    engine: Engine, smtp_server: tuple[Sink, ReportSmtpConfig]
) -> None:
    """A run deletes stored reports dated before ``retention_days``; newer ones stay."""
    _, config = smtp_server
    app = _app(engine, config, DryRunAlertSender("ops"))
    old_day = s.REPORT_DAY - timedelta(days=31)
    kept_day = s.REPORT_DAY - timedelta(days=29)
    for day in (old_day, kept_day):  # the daemon's worker threads call the sync form
        assert run_daily_report_sync(app, s.NOW, day=day).status == "delivered"
    run = asyncio.run(run_daily_report(app, s.NOW))
    assert run.purged == 1
    with engine.connect() as conn:
        dates = sorted(r.report_date for r in list_reports(conn))
    assert dates == [kept_day, s.REPORT_DAY]


def test_cli_send_emails_stores_and_lists(
    smtp_server: tuple[Sink, ReportSmtpConfig], tmp_path: Path
) -> None:
    """`tracker report daily --send` delivers through the relay; `report list` shows it sent."""
    sink, config = smtp_server
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        s.seed(conn)
    engine.dispose()
    path = tmp_path / "tracker.toml"
    path.write_text(
        f'[database]\nurl = "{url}"\n[report]\nrecipients = {json.dumps(RECIPIENTS)}\n'
        f'[report.smtp]\nhost = "127.0.0.1"\nport = {config.port}\nusername = "{USER}"\n'
        f'password = "${{SMTP_PW}}"\nsender = "{config.sender}"\nca_file = "{config.ca_file}"\n',
        encoding="utf-8",
    )
    env = {**{k: v for k, v in os.environ.items() if k != "TRACKER_CONFIG"}, "SMTP_PW": PASSWORD}
    base = [sys.executable, "-m", "tracker", "--config", str(path), "report"]
    sent = subprocess.run(
        [*base, "daily", "--date", "2026-10-10", "--now", s.NOW.isoformat(), "--send"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert "ok   email: sent to 3 recipient(s)" in sent.stdout and PASSWORD not in sent.stdout
    assert len(sink.received) == 1 and sink.received[0][0] == RECIPIENTS
    listed = subprocess.run(
        [*base, "list", "--format", "json"],
        capture_output=True, text=True, timeout=120, env=env, check=False,
    )  # fmt: skip
    [entry] = json.loads(listed.stdout)
    assert entry["status"] == "delivered" and entry["delivered_to"] == "email"
