"""Provider push callbacks (ASGI): ``POST /callbacks/<source name>``.

``<source name>`` is the ``[carriers.NAME]`` table the pushes belong to; its ``provider``
picks the protocol (see :mod:`tracker.web.push_protocols`) and its keys hold the secrets.
A push that passes its signature check is stored through the same path as polling
(:func:`tracker.service.push.ingest_push`) before it is acknowledged, so a crash never loses
one: the provider gets a failure answer and sends it again.
"""

from __future__ import annotations

import structlog
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tracker.bootstrap import App
from tracker.service.push import ingest_push
from tracker.web.push_protocols import PROTOCOLS

__all__ = ["MAX_BODY_BYTES", "callback_routes"]

_log = structlog.get_logger("tracker.web.callbacks")

#: Pushes larger than this are refused (a Kdniao push of 100+ parcels is ~1 MB at most).
MAX_BODY_BYTES = 4 * 1024 * 1024


def callback_routes(app: App) -> list[Route]:
    """The push routes, for the web application to mount."""

    async def receive(request: Request) -> Response:
        name = request.path_params["name"]
        cfg = app.settings.carriers.get(name)
        provider = (cfg.provider or name) if cfg is not None else None
        protocol = PROTOCOLS.get(provider) if provider else None
        if cfg is None or protocol is None or not cfg.enabled:
            return JSONResponse({"error": f"no push endpoint for {name!r}"}, status_code=404)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
            return JSONResponse({"error": "push too large"}, status_code=413)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return JSONResponse({"error": "push too large"}, status_code=413)
        now = app.clock()
        verdict = protocol(body, request.headers, name, cfg.options(), now)
        if not verdict.accepted:
            _log.warning(
                "push_rejected",
                source=name,
                provider=provider,
                status=verdict.status,
                reason=verdict.reason,
                client=request.client.host if request.client else None,
            )
            return JSONResponse(verdict.body, status_code=verdict.status)
        if verdict.results:
            try:
                await run_in_threadpool(ingest_push, app, verdict.results, now)
            except Exception:  # the provider will send it again; the daemon carries on
                _log.exception("push_ingest_failed", source=name, provider=provider)
                return JSONResponse(verdict.failure_body, status_code=500)
        return JSONResponse(verdict.body, status_code=verdict.status)

    return [Route("/callbacks/{name}", receive, methods=["POST"], name="provider_callback")]
