"""Push callbacks through the ASGI app on a real database: signatures, storing, dedupe, tickets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from tests.conftest import at
from tests.fakes import make_order
from tracker.bootstrap import App
from tracker.notify.base import DryRunAlertSender, DryRunChannel
from tracker.settings import CarrierConfig, DatabaseConfig, Settings
from tracker.store import orders_repo
from tracker.store.tables import shipments, tickets, tracking_events
from tracker.web.app import create_web_app

FIXTURES = Path(__file__).parents[1] / "fixtures"
CARRIERS = {
    "kuaidi100": {"customer": "C1", "key": "K1", "salt": "SALT-1"},
    "kdniao": {"business_id": "1237100", "api_key": "KDN-KEY"},
    "track17": {"api_key": "T17-KEY"},
    "aftership": {"api_key": "AS-KEY", "webhook_secret": "AS-SECRET"},
    "easypost": {"api_key": "EP-KEY", "webhook_secret": "EP-SECRET"},
}


def _json(path: str) -> Any:
    return json.loads((FIXTURES / path).read_bytes())


@dataclass(frozen=True)
class Case:
    """One provider's push: the parcel it is about, the signed request and what it means."""

    provider: str
    courier: str
    number: str
    paid: datetime
    now: datetime
    kind: str  # the ticket kind the pushed history should open

    def payload(self) -> tuple[bytes, dict[str, str]]:
        """A correctly signed push body and its headers."""
        return _PAYLOADS[self.provider]()


def _kuaidi100() -> tuple[bytes, dict[str, str]]:
    last = _json("kuaidi100/query_resultv2_4_problem_unreachable.json")
    param = json.dumps({"status": "polling", "message": "", "lastResult": last}, ensure_ascii=False)
    sign = hashlib.md5((param + "SALT-1").encode()).hexdigest().upper()
    body = urlencode({"param": param, "sign": sign}).encode()
    return body, {"content-type": "application/x-www-form-urlencoded"}


def _kdniao() -> tuple[bytes, dict[str, str]]:
    item = _json("kdniao/query_8001_locker_overdue.json")
    data = json.dumps({"EBusinessID": "1237100", "Count": "1", "Data": [item]}, ensure_ascii=False)
    digest = hashlib.md5((data + "KDN-KEY").encode()).hexdigest()
    sign = base64.b64encode(digest.encode()).decode()
    body = urlencode({"RequestData": data, "DataSign": sign, "RequestType": "101"}).encode()
    return body, {"content-type": "application/x-www-form-urlencoded"}


def _track17() -> tuple[bytes, dict[str, str]]:
    item = _json("track17/v2_gettrackinfo_exception_returning.json")["data"]["accepted"][0]
    body = json.dumps({"event": "TRACKING_UPDATED", "data": item}).encode()
    sign = hashlib.sha256(body + b"/T17-KEY").hexdigest()
    return body, {"content-type": "application/json", "sign": sign}


def _aftership() -> tuple[bytes, dict[str, str]]:
    tracking = _json("aftership/v4_get_tracking_intransit_postnl.json")["data"]["tracking"]
    returned = dict(tracking["checkpoints"][-1], tag="Exception", subtag="Exception_011")
    returned.update(checkpoint_time="2021-03-27T09:00:00+01:00", message="Returned to sender")
    tracking.update(tag="Exception", subtag="Exception_011")
    tracking["checkpoints"].append(returned)
    body = json.dumps({"event": "tracking_update", "msg": tracking}).encode()
    digest = hmac.new(b"AS-SECRET", body, hashlib.sha256).digest()
    return body, {
        "content-type": "application/json",
        "aftership-hmac-sha256": base64.b64encode(digest).decode(),
    }


def _easypost() -> tuple[bytes, dict[str, str]]:
    event = _json("easypost/webhook_event_tracker_updated_fedex.json")
    event["result"]["tracking_code"] = "EZ7700000001"
    event["result"]["status"] = "return_to_sender"
    body = json.dumps(event).encode()
    digest = hmac.new(b"EP-SECRET", body, hashlib.sha256).hexdigest()
    return body, {
        "content-type": "application/json",
        "x-hmac-signature": f"hmac-sha256-hex={digest}",
    }


_PAYLOADS = {
    "kuaidi100": _kuaidi100,
    "kdniao": _kdniao,
    "track17": _track17,
    "aftership": _aftership,
    "easypost": _easypost,
}

CASES = [
    Case("kuaidi100", "zto", "ZT7000000003", at("2026-09-10 10:00"), at("2026-09-14 12:00"),
         "delivery_failed"),
    Case("kdniao", "yto", "YT7000000010", at("2026-09-10 10:00"), at("2026-09-13 12:00"),
         "carrier_exception"),
    Case("track17", "ems", "AA555666777BR", at("2026-06-20 10:00"), at("2026-06-28 12:00"),
         "returned"),
    Case("aftership", "dhl", "3SKAAG5995399", at("2021-03-20 10:00"), at("2021-03-28 12:00"),
         "returned"),
    Case("easypost", "fedex", "EZ7700000001", at("2024-07-30 10:00"), at("2024-08-03 12:00"),
         "returned"),
]  # fmt: skip


def _app(engine: Engine, case: Case) -> App:
    settings = Settings(
        database=DatabaseConfig(url=str(engine.url)),
        carriers={name: CarrierConfig(**opts) for name, opts in CARRIERS.items()},
    )
    app = App(
        settings=settings,
        clock=lambda: case.now,
        engine_override=engine,
        sources_override=[],
        channels_override={"sms": DryRunChannel()},
        alert_senders_override={"ops": DryRunAlertSender("ops")},
    )
    with app.uow() as uow:
        order = make_order(
            f"P-{case.provider}",
            case.paid,
            tracking_number=case.number,
            shipped_at=case.paid,
            courier=case.courier,
        )
        orders_repo.upsert_orders(uow.conn, [order], case.paid)
        uow.commit()
    return app


def _client(app: App) -> httpx.AsyncClient:
    """An HTTP client talking to the daemon's web application in-process, through ASGI."""
    transport = httpx.ASGITransport(app=create_web_app(app))
    return httpx.AsyncClient(transport=transport, base_url="http://tracker.test")


def _count(engine: Engine, table: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _tamper(body: bytes, headers: dict[str, str], provider: str) -> tuple[bytes, dict[str, str]]:
    """The same push with a wrong signature (or with its body changed after signing)."""
    if provider == "kuaidi100":
        return body.replace(b"sign=", b"sign=00"), headers
    if provider == "kdniao":
        return body.replace(b"DataSign=", b"DataSign=AA"), headers
    return body.replace(b"}", b" }", 1), headers


@pytest.mark.parametrize("case", CASES, ids=[c.provider for c in CASES])
async def test_bad_signature_is_rejected_and_nothing_is_stored(engine: Engine, case: Case) -> None:
    """A push whose signature does not match is refused with 401/403 and stores nothing."""
    app = _app(engine, case)
    body, headers = _tamper(*case.payload(), case.provider)
    async with _client(app) as client:
        response = await client.post(f"/callbacks/{case.provider}", content=body, headers=headers)
    assert response.status_code in (401, 403)
    assert _count(engine, tracking_events) == 0 and _count(engine, tickets) == 0


@pytest.mark.parametrize("case", CASES, ids=[c.provider for c in CASES])
async def test_good_push_stores_scans_dedupes_repeats_and_opens_the_ticket(
    engine: Engine, case: Case
) -> None:
    """A signed push is acknowledged, stored, detected on; sending it again adds nothing."""
    app = _app(engine, case)
    body, headers = case.payload()
    async with _client(app) as client:
        first = await client.post(f"/callbacks/{case.provider}", content=body, headers=headers)
        stored = _count(engine, tracking_events)
        again = await client.post(f"/callbacks/{case.provider}", content=body, headers=headers)
    assert first.status_code == 200 and again.status_code == 200
    _assert_ack(case.provider, first.json())
    assert stored > 0 and _count(engine, tracking_events) == stored
    with engine.connect() as conn:
        kinds = {
            row.kind: row.detections
            for row in conn.execute(select(tickets.c.kind, tickets.c.detections))
        }
        status, source = conn.execute(select(shipments.c.status, shipments.c.source)).one()
    assert kinds.get(case.kind) == 1  # opened once; the identical repeat changes nothing
    assert source == case.provider and status != "pending"


def _assert_ack(provider: str, body: Any) -> None:
    """Each provider's documented success answer."""
    if provider == "kuaidi100":
        assert body == {"result": True, "returnCode": "200", "message": "成功"}
    elif provider == "kdniao":
        assert body["Success"] is True and body["EBusinessID"] == "1237100"
        assert body["UpdateTime"] and body["Reason"] == ""
    else:
        assert body == {"ok": True}


async def test_push_for_unknown_source_or_unknown_number_changes_nothing(engine: Engine) -> None:
    """An unconfigured source is 404; a signed push about a parcel we do not track is a no-op."""
    case = CASES[0]
    app = _app(engine, case)
    last = _json("kuaidi100/query_resultv2_4_in_transit.json")
    param = json.dumps({"status": "polling", "lastResult": last}, ensure_ascii=False)
    sign = hashlib.md5((param + "SALT-1").encode()).hexdigest().upper()
    async with _client(app) as client:
        missing = await client.post("/callbacks/nosuch", content=b"x")
        unknown = await client.post(
            "/callbacks/kuaidi100",
            content=urlencode({"param": param, "sign": sign}).encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert missing.status_code == 404
    assert unknown.status_code == 200 and _count(engine, tracking_events) == 0


async def test_kuaidi100_courier_correction_in_a_push_is_applied(engine: Engine) -> None:
    """An ``abort`` push with ``comNew`` moves the parcel to the corrected courier."""
    data = _json("kuaidi100/callback_abort_com_new.json")
    number = data["lastResult"]["nu"]
    case = Case("kuaidi100", "yto", number, at("2026-09-10 10:00"), at("2026-09-14 12:00"), "")
    app = _app(engine, case)
    param = json.dumps(data, ensure_ascii=False)
    sign = hashlib.md5((param + "SALT-1").encode()).hexdigest().upper()
    async with _client(app) as client:
        response = await client.post(
            "/callbacks/kuaidi100",
            content=urlencode({"param": param, "sign": sign}).encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert response.status_code == 200
    with engine.connect() as conn:
        courier = conn.execute(select(shipments.c.courier)).scalar_one()
    assert courier == "zto"
