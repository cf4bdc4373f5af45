"""``tracker run --once``: every job once, in order, then exit (for cron, tests, debugging)."""

from __future__ import annotations

import structlog

from tracker import eventloop
from tracker.bootstrap import App
from tracker.daemon.jobs import JOB_NAMES, Jobs
from tracker.daemon.runner import Daemon
from tracker.service.cycle import CycleResult
from tracker.service.poll import SourceRouter

__all__ = ["run_once"]

_log = structlog.get_logger("tracker.daemon")


async def _run_all(app: App) -> tuple[bool, list[str]]:
    daemon = Daemon(app)
    router = SourceRouter(app.build_sources())
    jobs = Jobs(app, daemon.state, router)
    failures: list[str] = []
    notes: list[str] = []
    daily: list[str] = []
    try:
        for name in JOB_NAMES:
            result = await daemon.run_job(name, getattr(jobs, name))
            if result is None:
                failures.append(f"{name} (see the log)")
            elif name in ("report", "housekeeping"):
                daily.append(f"{name}: {result.summary}")
            elif result.summary.startswith(("skipped", "disabled")):
                notes.append(f"{name}: {result.summary}")
        try:
            await jobs.in_thread(jobs.beat)
        except Exception:
            _log.exception("heartbeat_failed")
            failures.append("heartbeat (see the log)")
    finally:
        jobs.close()
        await router.aclose()
    cycle = CycleResult(
        poll=jobs.poll_totals,
        detect=jobs.detect_totals,
        dispatch=jobs.dispatch_totals,
        failures=failures,
    )
    lines = cycle.summary().splitlines()
    # keep the FAILED lines last
    head = [line for line in lines if not line.startswith("FAILED")]
    tail = [line for line in lines if line.startswith("FAILED")]
    return not failures, head + notes + daily + tail


def run_once(app: App) -> tuple[int, str]:
    """Run poll, detect, dispatch, then the daily report and housekeeping if due.

    Returns the exit code (0 when every job ran, 1 when any failed) and a readable summary.
    """
    try:
        ok, lines = eventloop.run(_run_all(app))
    finally:
        app.close()
    return (0 if ok else 1), "\n".join(lines)
