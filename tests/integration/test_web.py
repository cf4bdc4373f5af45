"""The daemon's HTTP app on a real database: /healthz verdicts, /metrics, mounted callbacks."""

from __future__ import annotations

import asyncio
import sys
import types
from datetime import datetime
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.conftest import at
from tests.fakes import ScriptedSource
from tracker.bootstrap import App
from tracker.service.health import write_heartbeat
from tracker.settings import DatabaseConfig, Settings
from tracker.web.app import create_web_app

NOW = at("2026-09-12 10:00")


class AsgiClient:
    """Calls an ASGI app in-process over httpx (no port, no server)."""

    def __init__(self, asgi: Any) -> None:
        self.asgi = asgi

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.asgi)
            async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(go())

    def get(self, path: str) -> httpx.Response:
        """GET ``path``."""
        return self._call("GET", path)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        """POST to ``path``."""
        return self._call("POST", path, **kwargs)


class _Liveness:
    def __init__(self, *, stopping: bool = False, age: float = 1.0) -> None:
        self.stopping = stopping
        self.age = age

    def progress_age(self) -> float:
        """A fixed age."""
        return self.age


def _app(engine: Engine, now: datetime = NOW) -> App:
    return App(
        settings=Settings(database=DatabaseConfig(url=str(engine.url))),
        clock=lambda: now,
        engine_override=engine,
        sources_override=[(ScriptedSource("fake"), frozenset({"*"}))],
    )


def test_healthz_needs_a_fresh_heartbeat(engine: Engine) -> None:
    """503 naming the scheduler until a heartbeat is written; 200 after; 503 once it is stale."""
    app = _app(engine)
    client = AsgiClient(create_web_app(app))
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unhealthy" and body["reason"].startswith("scheduler: no heartbeat")
    assert body["checks"]["database"]["ok"] and body["checks"]["schema"]["ok"]
    with app.uow() as uow:
        write_heartbeat(uow.conn, at("2026-09-12 09:59"), ok=True, worker="w1")
        uow.commit()
    assert client.get("/healthz").status_code == 200
    stale = AsgiClient(create_web_app(_app(engine, at("2026-09-12 10:10"))))
    response = stale.get("/healthz")
    assert response.status_code == 503
    assert "last heartbeat 660 s ago" in response.json()["reason"]


def test_healthz_in_the_daemon_judges_its_own_loop(engine: Engine) -> None:
    """With the daemon's liveness: fresh progress is healthy, a stall or a stop is not."""
    app = _app(engine)

    def providers() -> tuple[list[str], dict[str, str]]:
        return ["fake"], {"fake": "auth"}

    healthy = AsgiClient(create_web_app(app, liveness=_Liveness(), providers=providers))
    body = healthy.get("/healthz").json()
    assert body["healthy"] and body["checks"]["providers"]["detail"] == "fake (failing: auth)"
    stalled = AsgiClient(create_web_app(app, liveness=_Liveness(age=500)))
    assert "last progress 500 s ago" in stalled.get("/healthz").json()["reason"]
    stopping = AsgiClient(create_web_app(app, liveness=_Liveness(stopping=True)))
    response = stopping.get("/healthz")
    assert response.status_code == 503 and response.json()["reason"] == "scheduler: stopping"


def test_healthz_reports_an_unreachable_database() -> None:
    """A database that does not answer gives 503 with the reason, not an exception."""
    from tracker.store.uow import make_engine

    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1")
    response = AsgiClient(create_web_app(_app(engine))).get("/healthz")
    assert response.status_code == 503
    assert response.json()["reason"].startswith("database: unreachable")


def test_metrics_speaks_the_prometheus_text_format(engine: Engine) -> None:
    """/metrics lists the tracker's metric families with HELP and TYPE lines."""
    response = AsgiClient(create_web_app(_app(engine))).get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    for family in ("tracker_polls_total", "tracker_job_duration_seconds", "tracker_outbox_depth"):
        assert f"# TYPE {family}" in response.text


def test_provider_callback_routes_are_mounted(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Routes from tracker.web.callbacks.callback_routes(app) are served beside /healthz."""
    seen: list[App] = []

    async def push(request: Request) -> JSONResponse:
        return JSONResponse({"got": (await request.json())["n"]})

    def callback_routes(app: App) -> list[Route]:
        seen.append(app)
        return [Route("/callbacks/fake", push, methods=["POST"])]

    module = types.ModuleType("tracker.web.callbacks")
    module.callback_routes = callback_routes  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tracker.web.callbacks", module)
    app = _app(engine)
    client = AsgiClient(create_web_app(app))
    assert client.post("/callbacks/fake", json={"n": 7}).json() == {"got": 7}
    assert seen == [app]
