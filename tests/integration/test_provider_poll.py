"""A poll cycle through a real provider adapter built by bootstrap, on a real database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
import respx
from sqlalchemy import select
from sqlalchemy.engine import Engine

from carriers.transport import GUARDS
from tests.conftest import at
from tests.fakes import make_order
from tracker.bootstrap import App
from tracker.notify.base import DryRunAlertSender, DryRunChannel
from tracker.service.cycle import run_cycle
from tracker.settings import CarrierConfig, DatabaseConfig, Settings
from tracker.store import orders_repo
from tracker.store.tables import shipments, tracking_events

FIXTURES = Path(__file__).parents[1] / "fixtures" / "kuaidi100"
BASE = "https://k100.poll.test"
HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def _answer(request: httpx.Request) -> httpx.Response:
    """Kuaidi100 as seen by three parcels: fine, broken gateway, and rate limited."""
    number = json.loads(dict(parse_qsl(request.content.decode()))["param"])["num"]
    if number == "YT7000000001":
        return httpx.Response(
            200, content=(FIXTURES / "query_resultv2_4_delivered.json").read_bytes()
        )
    if number == "YT7000000002":
        return httpx.Response(502, content=HTML_502)
    return httpx.Response(429, headers={"Retry-After": "900"}, text="too many requests")


@pytest.fixture(autouse=True)
def fresh_guards() -> Iterator[None]:
    """Budgets and circuits are process-wide by source name; each test starts clean."""
    GUARDS.clear()
    yield
    GUARDS.clear()


def test_poll_stores_scans_and_records_errors_with_excerpts_per_parcel(engine: Engine) -> None:
    """One good parcel stores its scans; the others keep their error, excerpt and retry time."""
    now = at("2026-09-14 12:00")
    settings = Settings(
        database=DatabaseConfig(url=str(engine.url)),
        carriers={
            "kuaidi100": CarrierConfig(
                base_url=BASE, customer="C", key="K", max_attempts=1, requests_per_s=50
            )
        },
    )
    app = App(
        settings=settings,
        clock=lambda: now,
        engine_override=engine,
        channels_override={"sms": DryRunChannel()},
        alert_senders_override={"ops": DryRunAlertSender("ops")},
    )
    paid = at("2026-09-10 10:00")
    with app.uow() as uow:
        orders = [
            make_order(f"A{i}", paid, tracking_number=f"YT700000000{i}", shipped_at=paid)
            for i in (1, 2, 3)
        ]
        orders_repo.upsert_orders(uow.conn, orders, paid)
        uow.commit()
    with respx.mock(using="httpx") as router:
        route = router.post(f"{BASE}/poll/query.do").mock(side_effect=_answer)
        result = asyncio.run(run_cycle(app))
    assert result.ok, result.failures
    assert route.call_count == 3 and result.poll.ok == 1 and result.poll.failed == 2
    with engine.connect() as conn:
        rows = {
            r.tracking_number: r
            for r in conn.execute(
                select(
                    shipments.c.tracking_number,
                    shipments.c.status,
                    shipments.c.error_kind,
                    shipments.c.error_excerpt,
                    shipments.c.next_poll_at,
                    shipments.c.source,
                )
            )
        }
        scans = conn.execute(select(tracking_events.c.id)).all()
    good, broken, limited = rows["YT7000000001"], rows["YT7000000002"], rows["YT7000000003"]
    assert good.status == "delivered" and good.error_kind is None and len(scans) == 6
    assert good.next_poll_at is None and good.source == "kuaidi100"
    assert broken.error_kind == "bad_response" and "502 Bad Gateway" in broken.error_excerpt
    assert limited.error_kind == "rate_limited" and "too many requests" in limited.error_excerpt
    assert limited.next_poll_at.timestamp() == now.timestamp() + 900
