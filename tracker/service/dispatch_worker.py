"""A dispatch-only worker: sends due notices and alerts every few seconds until signalled.

``tracker dispatch`` (or ``python -m tracker.service.dispatch_worker --config X``) runs the
outbox on its own, next to pollers or instead of ``tracker run`` on extra replicas. SIGTERM
or SIGINT finishes the row in flight and exits; a SIGKILL loses nothing (claims expire).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

import structlog

from tracker import eventloop
from tracker.bootstrap import App, build_app
from tracker.errors import ConfigError
from tracker.logging import configure_logging
from tracker.settings import find_config_path, load_settings
from tracker.store import runtime_repo

__all__ = ["main", "serve"]

_log = structlog.get_logger("tracker.dispatch_worker")


async def serve(app: App, *, interval_s: float = 2.0, once: bool = False) -> int:
    """Dispatch until SIGTERM/SIGINT (or one pass with ``once``); returns the exit code."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    _log.info("dispatch_worker_started", worker=app.worker_id, interval_s=interval_s)
    failed = False
    while not stop.is_set():
        now = app.clock()
        try:
            stats = await app.dispatcher.run_once(now)
            failed = False
            if stats.sent or stats.failed or stats.alerts_sent or stats.alerts_failed:
                _log.info(
                    "dispatched",
                    sent=stats.sent,
                    failed=stats.failed,
                    retried=stats.retried,
                    alerts_sent=stats.alerts_sent,
                    alerts_dead=stats.alerts_failed,
                )
        except Exception:  # the database may be away for a moment; keep going
            _log.exception("dispatch_failed")
            failed = True
        try:
            with app.uow() as uow:
                runtime_repo.record_heartbeat(uow.conn, "dispatch", now, ok=not failed)
                uow.commit()
        except Exception:
            _log.exception("heartbeat_failed")
        if once:
            break
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval_s)
    _log.info("dispatch_worker_stopped")
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``python -m tracker.service.dispatch_worker [--config X] [--once]``."""
    parser = argparse.ArgumentParser(description="Send due buyer notices and agent alerts.")
    parser.add_argument("--config", "-c", help="config file (else $TRACKER_CONFIG, ./tracker.toml)")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between passes")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    args = parser.parse_args(argv)
    configure_logging()
    try:
        settings = load_settings(find_config_path(args.config))
        app = build_app(settings)
        app.ensure_schema()
        app.templates  # noqa: B018 - validate templates and providers before the first pass
        app.dispatcher  # noqa: B018
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return eventloop.run(serve(app, interval_s=args.interval, once=args.once))
    finally:
        app.close()


if __name__ == "__main__":
    sys.exit(main())
