"""The daemon's HTTP side (Starlette): /healthz, /metrics and the provider push callbacks.

``/healthz`` answers 200 with a JSON body when the database answers and the scheduler is
making progress, else 503 with the failing check as ``reason``; it runs the same checks
as ``tracker check``. ``/metrics`` is the Prometheus text format. Provider callbacks come
from :mod:`tracker.web.callbacks` (``callback_routes(app)``) when that module is installed.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio
import structlog
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from tracker import metrics
from tracker.bootstrap import App
from tracker.errors import ConfigError
from tracker.service.health import HealthReport, Liveness, check_health

__all__ = ["ProviderStatus", "create_web_app", "parse_listen"]

_log = structlog.get_logger("tracker.web")

#: a probe that hangs is worse than one that says no: the database gets this long to answer
HEALTH_TIMEOUT_S = 5.0

#: names of the configured sources, and those failing now (name -> error kind)
ProviderStatus = Callable[[], tuple[Sequence[str], Mapping[str, str]]]

_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})$")


def parse_listen(value: str) -> tuple[str, int] | None:
    """``[web] listen`` as (host, port); None when set to ``""`` or ``"off"``."""
    if value.strip().lower() in ("", "off", "none"):
        return None
    match = _LISTEN.match(value.strip())
    port = int(match.group("port")) if match else -1
    if match is None or not 0 <= port <= 65535:
        raise ConfigError(
            f'web.listen: {value!r} is not "host:port" (e.g. "127.0.0.1:8787", '
            '"[::1]:8787", "0.0.0.0:8787"; "off" disables the listener)'
        )
    return (match.group("v6") or match.group("host")), port


def create_web_app(
    app: App,
    *,
    liveness: Liveness | None = None,
    providers: ProviderStatus | None = None,
) -> Starlette:
    """The ASGI application; ``liveness`` and ``providers`` come from the running daemon."""

    def run_checks() -> HealthReport:
        names, failing = providers() if providers is not None else (None, None)
        return check_health(app, liveness=liveness, sources=names, failing=failing)

    async def healthz(_request: Request) -> Response:
        report: HealthReport | None = None
        with anyio.move_on_after(HEALTH_TIMEOUT_S):
            report = await anyio.to_thread.run_sync(run_checks, abandon_on_cancel=True)
        if report is None:
            report = HealthReport()
            report.add("database", False, f"no answer within {HEALTH_TIMEOUT_S:g} s")
        return JSONResponse(report.as_dict(), status_code=200 if report.healthy else 503)

    async def metrics_endpoint(_request: Request) -> Response:
        return Response(metrics.exposition(), headers={"Content-Type": metrics.CONTENT_TYPE_LATEST})

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    routes += _callback_routes(app)
    return Starlette(routes=routes)


def _callback_routes(app: App) -> list[BaseRoute]:
    """Provider push routes from ``tracker.web.callbacks``, when that module exists."""
    try:
        module: Any = importlib.import_module("tracker.web.callbacks")
    except ModuleNotFoundError as exc:
        if exc.name != "tracker.web.callbacks":
            raise
        return []
    factory = getattr(module, "callback_routes", None)
    if factory is None:
        return []
    routes = list(factory(app))
    _log.debug("callback_routes_mounted", count=len(routes))
    return routes
