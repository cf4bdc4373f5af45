"""Push protocols without a database: refusals, form decoding, and answers when storing fails."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from starlette.applications import Starlette

from tracker.bootstrap import App
from tracker.settings import CarrierConfig, Settings
from tracker.web import callbacks
from tracker.web.push_protocols import decode_form, kdniao_push, kuaidi100_push, track17_push

NOW = datetime(2026, 9, 14, 2, 0, tzinfo=UTC)
KDN = {"business_id": "1237100", "api_key": "KEY+/="}


def _kdniao_body(data: str, request_type: str = "101") -> bytes:
    digest = hashlib.md5((data + KDN["api_key"]).encode()).hexdigest()
    sign = base64.b64encode(digest.encode()).decode()
    return urlencode({"RequestData": data, "DataSign": sign, "RequestType": request_type}).encode()


def test_form_decoding_reads_utf8_and_gb18030_escapes() -> None:
    """Both UTF-8 and GBK percent-escapes decode to the same text."""
    assert decode_form(b"param=%E5%9C%A8%E9%80%94")["param"] == "在途"
    assert decode_form(b"param=%D4%DA%CD%BE")["param"] == "在途"


def test_kdniao_refuses_other_request_types_and_missing_key() -> None:
    """Only pushes (101/1008) are taken; without api_key nothing is accepted."""
    data = json.dumps({"EBusinessID": "1237100", "Data": []})
    wrong = kdniao_push(_kdniao_body(data, "8001"), {}, "kdniao", KDN, NOW)
    assert wrong.status == 400 and wrong.body["Success"] is False
    keyless = kdniao_push(_kdniao_body(data), {}, "kdniao", {"business_id": "1"}, NOW)
    assert keyless.status == 403 and not keyless.results


def test_secretless_sources_refuse_every_push() -> None:
    """No salt / api_key configured: refused with 403 rather than trusted unsigned."""
    k100 = kuaidi100_push(b"param=%7B%7D&sign=X", {}, "k", {"customer": "c", "key": "k"}, NOW)
    assert k100.status == 403 and k100.body["result"] is False
    t17 = track17_push(b"{}", {"sign": "x"}, "t", {}, NOW)
    assert t17.status == 403


@pytest.fixture
def app() -> App:
    """An app with a Kuaidi100 source that has a salt (no database is touched)."""
    settings = Settings(carriers={"kuaidi100": CarrierConfig(customer="C", key="K", salt="S")})
    return App(settings=settings, clock=lambda: NOW, sources_override=[])


async def test_storing_failure_answers_with_the_providers_failure_body(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If the database write fails the push is not acknowledged, so the provider resends."""

    def broken(*_args: Any) -> None:
        raise RuntimeError("database is down")

    monkeypatch.setattr(callbacks, "ingest_push", broken)
    param = json.dumps({"status": "polling", "lastResult": {"nu": "YT1", "com": "yuantong"}})
    sign = hashlib.md5((param + "S").encode()).hexdigest().upper()
    transport = httpx.ASGITransport(app=Starlette(routes=callbacks.callback_routes(app)))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        response = await client.post(
            "/callbacks/kuaidi100",
            content=urlencode({"param": param, "sign": sign}).encode(),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        too_big = await client.post(
            "/callbacks/kuaidi100", content=b"x" * (callbacks.MAX_BODY_BYTES + 1)
        )
    assert response.status_code == 500
    assert response.json() == {"result": False, "returnCode": "500", "message": "保存失败"}
    assert too_big.status_code == 413
