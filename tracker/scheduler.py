"""The daemon: APScheduler 3 jobs in one asyncio loop, stopped cleanly by SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal
from datetime import datetime

import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from tracker.bootstrap import App
from tracker.service.cycle import run_cycle

__all__ = ["run_daemon"]

_log = structlog.get_logger("tracker.scheduler")

CYCLE_SECONDS = 60
DISPATCH_SECONDS = 5


async def _serve(app: App) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal(signum: int) -> None:
        nonlocal signals
        signals += 1
        if signals > 1:
            _log.warning("forced_exit", signal=signal.Signals(signum).name)
            raise SystemExit(1)
        _log.info("stopping", signal=signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)

    async def cycle() -> None:
        result = await run_cycle(app)
        _log.info("cycle_done", ok=result.ok, polled=result.poll.claimed, sent=result.dispatch.sent)

    async def dispatch() -> None:
        await app.dispatcher.run_once(app.clock())

    scheduler = AsyncIOScheduler(timezone=app.settings.tz)
    # coalesce + one instance: a slow cycle never overlaps itself nor replays missed runs
    common = {"coalesce": True, "max_instances": 1, "misfire_grace_time": 30}
    scheduler.add_job(
        cycle,
        "interval",
        seconds=CYCLE_SECONDS,
        next_run_time=datetime.now(app.settings.tz),
        id="cycle",
        **common,
    )
    scheduler.add_job(dispatch, "interval", seconds=DISPATCH_SECONDS, id="dispatch", **common)
    scheduler.start()
    _log.info("daemon_started", worker=app.worker_id)
    await stop.wait()
    scheduler.shutdown(wait=False)
    # let in-flight jobs finish, bounded so SIGTERM exits well inside 10 s
    pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    if pending:
        await asyncio.wait(pending, timeout=8)
    _log.info("daemon_stopped")
    return 0


def run_daemon(app: App) -> int:
    """Run until signalled; returns the process exit code."""
    try:
        return asyncio.run(_serve(app))
    finally:
        app.close()
