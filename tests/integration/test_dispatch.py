"""The dispatcher on SQLite and PostgreSQL: retries, dead letters, leases, 410s, bursts."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from standardwebhooks.webhooks import Webhook

from tests.conftest import at
from tests.fakes import make_order
from tracker.notify.base import OutgoingNotice, SendResult
from tracker.notify.quiet import QuietHours
from tracker.notify.webhook import WebhookSender
from tracker.service.dispatch import Dispatcher
from tracker.service.dispatch_alerts import disabled_endpoints, retry_alert, set_endpoint_enabled
from tracker.service.notify_admin import set_opt_out
from tracker.settings import AlertGroupingConfig, AlertWebhookConfig
from tracker.store import orders_repo, tickets_repo
from tracker.store.sql import claim_rows
from tracker.store.tables import alerts, notices, orders
from tracker.store.uow import UnitOfWork

TZ = ZoneInfo("Asia/Shanghai")
NOW = at("2026-09-14 10:00")
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def seed_outbox(
    engine: Engine,
    count: int,
    now: datetime,
    *,
    endpoint: str | None = None,
    province: str = "浙江省",
    prefix: str = "C",
) -> list[int]:
    """``count`` orders, each with an open stalled ticket, a queued SMS notice and an alert."""
    paid = now - timedelta(days=4)
    batch = [
        make_order(
            f"{prefix}{i:04d}",
            paid,
            tracking_number=f"YT{i:010d}",
            shipped_at=paid + timedelta(hours=20),
            phone=f"139{i:08d}",
            destination=(province, "杭州市"),
        )
        for i in range(count)
    ]
    with UnitOfWork(engine) as uow:
        orders_repo.upsert_orders(uow.conn, batch, now)
        rows = uow.conn.execute(
            select(orders.c.id, orders.c.order_id, orders.c.buyer_id)
            .where(orders.c.order_id.like(f"{prefix}%"))
            .order_by(orders.c.id)
        ).all()
        ids = []
        for row in rows:
            ticket_id = tickets_repo.insert_open_ticket(
                uow.conn,
                {
                    "order_pk": row.id,
                    "courier": "yto",
                    "tracking_number": f"YT{row.order_id[1:]}",
                    "kind": "stalled",
                    "severity": "medium",
                    "status": "open",
                    "opened_at": now,
                    "updated_at": now,
                    "evidence": {},
                    "suggested_action": "联系快递核实",
                    "detections": 1,
                },
            )
            assert ticket_id is not None
            key = f"notice-{ticket_id}-stalled"
            tickets_repo.add_notice(
                uow.conn,
                {
                    "ticket_id": ticket_id,
                    "order_pk": row.id,
                    "buyer_id": row.buyer_id,
                    "channel": "sms",
                    "recipient": f"139{int(row.order_id[1:]):08d}",
                    "template": "stalled",
                    "body": f"【测试店】您的订单{row.order_id}在运输途中已超过48小时没有更新。",
                    "idempotency_key": key,
                    "status": "queued",
                    "scheduled_for": now,
                    "attempts": 0,
                    "created_at": now,
                },
            )
            ids.append(ticket_id)
            if endpoint:
                data = {
                    "id": ticket_id,
                    "order_id": row.order_id,
                    "kind": "stalled",
                    "courier": "yto",
                    "tracking_number": f"YT{row.order_id[1:]}",
                    "opened_at": now.astimezone(TZ).isoformat(),
                    "destination": {"province": province, "city": "杭州市"},
                }
                tickets_repo.add_alert(
                    uow.conn,
                    [
                        {
                            "ticket_id": ticket_id,
                            "event_type": "ticket.opened",
                            "endpoint": endpoint,
                            "payload": {"type": "ticket.opened", "timestamp": "t", "data": data},
                            "idempotency_key": f"alert-{ticket_id}-ticket.opened-0-{endpoint}",
                            "status": "queued",
                            "attempts": 0,
                            "next_attempt_at": now,
                            "created_at": now,
                        }
                    ],
                )
        uow.commit()
    return ids


class ScriptedChannel:
    """A channel answering from a list of results (the last one repeats)."""

    def __init__(self, *results: SendResult, delay_s: float = 0.0) -> None:
        self.name = "scripted"
        self.results = list(results)
        self.delay_s = delay_s
        self.keys: list[str] = []

    async def send(self, notice: OutgoingNotice) -> SendResult:
        """Record the key and answer."""
        self.keys.append(notice.idempotency_key)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        return self.results.pop(0) if len(self.results) > 1 else self.results[0]


def dispatcher(engine: Engine, channel: Any, senders: dict | None = None, **kw: Any) -> Dispatcher:
    """A dispatcher without quiet hours unless asked."""
    kw.setdefault("quiet", QuietHours("", TZ))
    return Dispatcher(
        engine=engine,
        channels={"sms": channel},
        alert_senders=senders or {},
        tz=TZ,
        worker_id=kw.pop("worker_id", "w1"),
        **kw,
    )


def notice_rows(engine: Engine) -> list[Any]:
    """Every notice, in id order."""
    with engine.connect() as conn:
        return conn.execute(select(notices).order_by(notices.c.id)).all()


def test_sent_notice_records_provider_and_message_id(engine: Engine) -> None:
    """A sent notice keeps the provider, its message id and the attempt count."""
    seed_outbox(engine, 1, NOW)
    channel = ScriptedChannel(SendResult(True, "aliyun", message_id="biz-1"))
    stats = asyncio.run(dispatcher(engine, channel).run_once(NOW))
    (row,) = notice_rows(engine)
    assert stats.sent == 1 and channel.keys == [row.idempotency_key]
    assert (row.status, row.provider, row.provider_message_id, row.attempts) == (
        "sent",
        "aliyun",
        "biz-1",
        1,
    )
    assert row.claimed_by is None


def test_retryable_failures_back_off_then_dead_letter(engine: Engine) -> None:
    """Retries follow 5 s, 5 min...; after max_attempts the notice fails with a clear reason."""
    seed_outbox(engine, 1, NOW)
    channel = ScriptedChannel(SendResult(False, "http", retryable=True, reason="HTTP 503"))
    d = dispatcher(engine, channel, max_attempts=3)
    asyncio.run(d.run_once(NOW))
    (row,) = notice_rows(engine)
    assert (row.status, row.attempts, row.reason) == ("queued", 1, "retrying: HTTP 503")
    assert row.scheduled_for == NOW + timedelta(seconds=5)
    asyncio.run(d.run_once(NOW + timedelta(seconds=4)))  # not due yet
    assert notice_rows(engine)[0].attempts == 1
    asyncio.run(d.run_once(NOW + timedelta(seconds=5)))
    row = notice_rows(engine)[0]
    assert row.attempts == 2 and row.scheduled_for == NOW + timedelta(seconds=305)
    asyncio.run(d.run_once(NOW + timedelta(seconds=305)))
    row = notice_rows(engine)[0]
    assert (row.status, row.attempts) == ("failed", 3)
    assert row.reason == "gave up after 3 attempts: HTTP 503"
    assert len(set(channel.keys)) == 1 and len(channel.keys) == 3


def test_permanent_failure_fails_at_once_and_retry_requeues(engine: Engine) -> None:
    """A permanent error dead-letters immediately; `notices retry` queues it again."""
    from tracker.service.dispatch import retry_notice

    seed_outbox(engine, 1, NOW)
    channel = ScriptedChannel(
        SendResult(False, "aliyun", reason="aliyun isv.MOBILE_NUMBER_ILLEGAL: 13912345678 bad"),
        SendResult(True, "aliyun", message_id="m2"),
    )
    d = dispatcher(engine, channel)
    asyncio.run(d.run_once(NOW))
    row = notice_rows(engine)[0]
    assert row.status == "failed" and "isv.MOBILE_NUMBER_ILLEGAL" in row.reason
    assert "13912345678" not in row.reason and "139****5678" in row.reason
    with UnitOfWork(engine) as uow:
        assert retry_notice(uow.conn, row.id, NOW) == f"notice {row.id} queued again"
        uow.commit()
    asyncio.run(d.run_once(NOW))
    assert notice_rows(engine)[0].status == "sent"


def test_provider_retry_after_is_respected(engine: Engine) -> None:
    """A rate-limit hint longer than the schedule's step postpones the next attempt."""
    seed_outbox(engine, 1, NOW)
    limited = SendResult(False, "aliyun", retryable=True, reason="limit", retry_after_s=600)
    asyncio.run(dispatcher(engine, ScriptedChannel(limited)).run_once(NOW))
    assert notice_rows(engine)[0].scheduled_for == NOW + timedelta(seconds=600)


def test_opt_out_suppresses_queued_notices(engine: Engine) -> None:
    """`buyers opt-out` stops a notice that was already queued."""
    seed_outbox(engine, 2, NOW)
    with UnitOfWork(engine) as uow:
        message = set_opt_out(uow.conn, "13900000001", True, NOW)
        uow.commit()
    assert message == "buyer 139****0001 opted out; 1 queued notice(s) will be suppressed"
    channel = ScriptedChannel(SendResult(True, "http"))
    asyncio.run(dispatcher(engine, channel).run_once(NOW))
    statuses = {r.recipient: (r.status, r.reason) for r in notice_rows(engine)}
    assert statuses["13900000001"] == ("suppressed", "buyer opted out")
    assert statuses["13900000000"][0] == "sent"


def test_quiet_hours_hold_until_morning(engine: Engine) -> None:
    """At 22:00 shop time the notice is held until 08:00 and sent then."""
    seed_outbox(engine, 1, at("2026-09-14 22:00"))
    channel = ScriptedChannel(SendResult(True, "http"))
    d = dispatcher(engine, channel, quiet=QuietHours("21:00-08:00", TZ))
    asyncio.run(d.run_once(at("2026-09-14 22:00")))
    row = notice_rows(engine)[0]
    assert (row.status, row.scheduled_for, row.reason) == (
        "queued",
        at("2026-09-15 08:00"),
        "held: quiet hours",
    )
    asyncio.run(d.run_once(at("2026-09-15 08:00")))
    assert notice_rows(engine)[0].status == "sent" and channel.keys


def test_claims_of_a_killed_worker_expire_and_the_key_is_reused(engine: Engine) -> None:
    """Rows claimed by a dead process are untouched until the lease ends, then sent once."""
    seed_outbox(engine, 3, NOW)
    with UnitOfWork(engine) as uow:
        claimed = claim_rows(
            uow.conn,
            notices,
            notices.c.status == "queued",
            notices.c.id,
            limit=2,
            now=NOW,
            lease=timedelta(seconds=60),
            worker="dead-worker",
        )
        uow.commit()
    channel = ScriptedChannel(SendResult(True, "http"))
    d = dispatcher(engine, channel)
    asyncio.run(d.run_once(NOW + timedelta(seconds=30)))
    assert len(channel.keys) == 1  # only the unclaimed one
    asyncio.run(d.run_once(NOW + timedelta(seconds=61)))
    assert Counter(channel.keys) == Counter(r.idempotency_key for r in notice_rows(engine))
    assert len(claimed) == 2 and all(r.status == "sent" for r in notice_rows(engine))


def test_two_dispatchers_at_once_never_send_a_notice_twice(db_url: str) -> None:
    """Two workers on separate connections share the outbox without double sends."""
    from tracker.store.uow import make_engine

    engines = [make_engine(db_url), make_engine(db_url)]
    try:
        seed_outbox(engines[0], 40, NOW)
        channel = ScriptedChannel(SendResult(True, "http"), delay_s=0.002)
        workers = [
            dispatcher(e, channel, worker_id=f"w{i}", batch_size=5) for i, e in enumerate(engines)
        ]

        async def both() -> None:
            await asyncio.gather(*(w.run_once(NOW) for w in workers))

        asyncio.run(both())
        counts = Counter(channel.keys)
        assert len(counts) == 40 and max(counts.values()) == 1
    finally:
        for e in engines:
            e.dispose()


class Receiver:
    """A real local HTTP endpoint recording requests; the path picks the answer."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.requests.append((self.path, dict(self.headers.items()), body))
                status = int(self.path.strip("/").split("/")[0] or 200)
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A local receiver for webhook tests."""
    r = Receiver()
    yield r
    r.close()


def sender(name: str, url: str, **kw: Any) -> WebhookSender:
    """A Standard Webhooks sender allowed to reach the local receiver."""
    kw.setdefault("allow_private_networks", True)
    return WebhookSender(name, AlertWebhookConfig(url=url, secret=SECRET, **kw))


def alert_rows(engine: Engine) -> list[Any]:
    """Every alert in id order."""
    with engine.connect() as conn:
        return conn.execute(select(alerts).order_by(alerts.c.id)).all()


def test_alerts_are_signed_and_verify_at_a_real_endpoint(
    engine: Engine, receiver: Receiver
) -> None:
    """Each alert arrives once, signed, with webhook-id = its idempotency key."""
    seed_outbox(engine, 2, NOW, endpoint="ops")
    d = dispatcher(
        engine,
        ScriptedChannel(SendResult(True, "x")),
        {"ops": sender("ops", receiver.url + "/200")},
    )
    stats = asyncio.run(d.run_once(NOW))
    assert stats.alerts_sent == 2
    keys = [r.idempotency_key for r in alert_rows(engine)]
    for (_path, headers, body), key in zip(receiver.requests, keys, strict=True):
        lowered = {k.lower(): v for k, v in headers.items()}
        assert lowered["webhook-id"] == key
        assert Webhook(SECRET).verify(body.decode(), lowered)["type"] == "ticket.opened"
    assert all(r.status == "sent" and r.response_status == 200 for r in alert_rows(engine))


def test_410_disables_the_endpoint_until_enabled(engine: Engine, receiver: Receiver) -> None:
    """410 dead-letters and disables; later alerts are not sent; enable + retry delivers."""
    seed_outbox(engine, 2, NOW, endpoint="ops")
    ops = sender("ops", receiver.url + "/410", requests_per_s=1000)
    d = dispatcher(engine, ScriptedChannel(SendResult(True, "x")), {"ops": ops}, grouping=None)
    asyncio.run(d.run_once(NOW))
    first, second = alert_rows(engine)
    assert first.status == "dead" and first.response_status == 410
    assert second.status == "dead" and "endpoint disabled" in second.reason
    assert len(receiver.requests) == 1
    with UnitOfWork(engine) as uow:
        assert "ops" in disabled_endpoints(uow.conn, ["ops"])
        set_endpoint_enabled(uow.conn, "ops", True, NOW)
        retry_alert(uow.conn, second.id, NOW)
        uow.commit()
    ops.config = ops.config.model_copy(update={"url": receiver.url + "/204"})
    asyncio.run(d.run_once(NOW))
    assert alert_rows(engine)[1].status == "sent" and len(receiver.requests) == 2


def test_4xx_is_permanent_and_5xx_retries_on_schedule(engine: Engine, receiver: Receiver) -> None:
    """400 dead-letters at once; 500 is retried 5 s later."""
    seed_outbox(engine, 1, NOW, endpoint="bad", prefix="B")
    seed_outbox(engine, 1, NOW, endpoint="flaky", prefix="F")
    senders = {
        "bad": sender("bad", receiver.url + "/400"),
        "flaky": sender("flaky", receiver.url + "/500"),
    }
    asyncio.run(dispatcher(engine, ScriptedChannel(SendResult(True, "x")), senders).run_once(NOW))
    rows = {r.endpoint: r for r in alert_rows(engine)}
    assert rows["bad"].status == "dead" and rows["bad"].reason.startswith("HTTP 400")
    assert rows["flaky"].status == "queued" and rows["flaky"].attempts == 1
    assert rows["flaky"].next_attempt_at == NOW + timedelta(seconds=5)


def test_private_endpoint_is_refused_without_allow_private_networks(
    engine: Engine, receiver: Receiver
) -> None:
    """A loopback URL is refused (never contacted) unless allow_private_networks is set."""
    seed_outbox(engine, 1, NOW, endpoint="ops")
    ops = sender("ops", receiver.url + "/200", allow_private_networks=False)
    asyncio.run(
        dispatcher(engine, ScriptedChannel(SendResult(True, "x")), {"ops": ops}).run_once(NOW)
    )
    (row,) = alert_rows(engine)
    assert row.status == "dead" and "127.0.0.1 is a loopback address" in row.reason
    assert receiver.requests == []


def test_regional_burst_goes_out_as_one_alert(engine: Engine, receiver: Receiver) -> None:
    """Four stalled YTO parcels to 浙江 are one ticket.burst request; the rest are 'grouped'."""
    seed_outbox(engine, 4, NOW, endpoint="ops")
    d = dispatcher(
        engine,
        ScriptedChannel(SendResult(True, "x")),
        {"ops": sender("ops", receiver.url + "/200")},
        grouping=AlertGroupingConfig(),
    )
    stats = asyncio.run(d.run_once(NOW))
    assert stats.alerts_sent == 1 and stats.alerts_grouped == 3
    (request,) = receiver.requests
    payload = json.loads(request[2])
    assert payload["type"] == "ticket.burst" and payload["data"]["count"] == 4
    rows = alert_rows(engine)
    assert [r.status for r in rows] == ["sent", "grouped", "grouped", "grouped"]
    assert rows[0].event_type == "ticket.burst"
    assert rows[1].reason == f"sent within alert {rows[0].id}"
