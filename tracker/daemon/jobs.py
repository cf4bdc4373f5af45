"""The daemon's jobs, shared by ``tracker run`` and ``tracker run --once``.

Each job is a coroutine returning a :class:`JobResult`. Poll and dispatch take work in
batches through row claims (so replicas split it) and check for a stop request between
batches: on SIGTERM they finish the batch in flight and take no more. The periodic detection
pass, the daily report and housekeeping run in a worker thread under a cluster-wide
singleton lock; the report and housekeeping also record the day they last ran, so each runs
once a day whichever replica gets there first and however often the trigger fires.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

import structlog

from tracker import metrics
from tracker.bootstrap import App
from tracker.daemon.gauges import refresh_gauges
from tracker.daemon.state import DaemonState
from tracker.report.job import refresh as refresh_report_rollups
from tracker.report.rollup import rollups_built
from tracker.service.detect import DetectStats
from tracker.service.dispatch import DispatchStats
from tracker.service.health import write_heartbeat
from tracker.service.housekeeping import run_housekeeping
from tracker.service.poll import PollStats, SourceRouter
from tracker.store import runtime_repo
from tracker.store.locks import singleton

__all__ = ["JOB_NAMES", "JobResult", "Jobs", "produce_daily_report"]

_log = structlog.get_logger("tracker.daemon")

JOB_NAMES = ("poll", "detect", "dispatch", "report", "housekeeping")
#: a safety valve: one run never loops forever even if a bug keeps rows due
_MAX_BATCHES = 10_000
_DETECT_BATCH = 500

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class JobResult:
    """What one run did; ``worked`` is False when there was nothing to do or it was skipped."""

    summary: str
    worked: bool = True


def produce_daily_report(app: App, day: date, now: datetime) -> str:
    """Build, store and deliver the daily report for ``day``; the one call the report job makes."""
    from tracker.report.job import run_daily_report_sync  # noqa: PLC0415 - loaded on use

    run = run_daily_report_sync(app, now, day=day)
    if run.skipped:
        return f"daily report for {day.isoformat()}: {run.skipped}"
    if not run.ok:
        raise RuntimeError(f"daily report {run.report_id} for {day.isoformat()}: {run.status}")
    return f"daily report {run.report_id} for {day.isoformat()}: {run.status}"


class Jobs:
    """The job bodies, bound to one application, router and daemon state."""

    def __init__(self, app: App, state: DaemonState, router: SourceRouter) -> None:
        self.app = app
        self.state = state
        self.router = router
        self.poller = app.poller(router)
        self.executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tracker-job")
        self.poll_totals = PollStats()
        self.detect_totals = DetectStats()
        self.dispatch_totals = DispatchStats()

    async def poll(self) -> JobResult:
        """Claim and poll due parcels batch after batch until none is due or a stop arrives."""

        def batch_done(stats: PollStats) -> None:
            metrics.record_poll(stats)
            self.state.touch("poll")

        total = await self.poller.run_once(
            self.app.clock(),
            max_batches=_MAX_BATCHES,
            stop=lambda: self.state.stopping,
            on_batch=batch_done,
        )
        _accumulate(self.poll_totals, total)
        opened = total.detect.opened
        return JobResult(
            f"polled {total.claimed} ({total.failed} failed, {total.new_events} new scans, "
            f"{opened} tickets opened)",
            worked=total.claimed > 0,
        )

    async def dispatch(self) -> JobResult:
        """Send due notices and alerts batch after batch until none is due or a stop arrives."""
        total = DispatchStats()
        for _ in range(_MAX_BATCHES):
            if self.state.stopping:
                break
            stats = await self.app.dispatcher.run_once(self.app.clock(), max_batches=1)
            metrics.record_dispatch(stats)
            _accumulate(total, stats)
            self.state.touch("dispatch")
            if not _did_anything(stats):
                break
        _accumulate(self.dispatch_totals, total)
        return JobResult(
            f"sent {total.sent} notices ({total.failed} failed, {total.deferred} held), "
            f"{total.alerts_sent} alerts",
            worked=_did_anything(total),
        )

    async def detect(self) -> JobResult:
        """The periodic detection pass over orders due for a look, for time-based rules."""
        return await self.in_thread(self._detect_pass)

    def _detect_pass(self) -> JobResult:
        with singleton(self.app.engine, "detect") as held:
            if not held:
                return JobResult("skipped: another replica is running it", worked=False)
            now = self.app.clock()
            with self.app.uow() as uow, ExitStack() as extra:
                helper = extra.enter_context(self.app.uow()) if self.app.database_threads else None
                total = self.app.detector.run_due(
                    uow,
                    now,
                    _DETECT_BATCH,
                    should_stop=self.state.should_stop,
                    on_batch=lambda _stats: self.state.touch("detect"),
                    helper=helper,
                )
            metrics.record_detect(total)
            _accumulate(self.detect_totals, total)
            return JobResult(
                f"checked {total.orders} due orders: {total.opened} tickets opened, "
                f"{total.resolved} resolved, {total.escalated} escalated",
                worked=total.orders > 0,
            )

    async def report(self) -> JobResult:
        """Build today's daily report once its time has come, on one replica only."""
        if not self.app.settings.daemon.daily_report:
            return JobResult("disabled ([daemon] daily_report = false)", worked=False)
        return await self.in_thread(
            lambda: self._once_a_day("daily-report", self.app.settings.report.at, self._report)
        )

    def _report(self, day: date, now: datetime) -> str:
        return produce_daily_report(self.app, day, now)

    async def housekeeping(self) -> JobResult:
        """Apply retention once a day, on one replica only."""
        cfg = self.app.settings.housekeeping
        if not cfg.enabled:
            return JobResult("disabled ([housekeeping] enabled = false)", worked=False)
        return await self.in_thread(
            lambda: self._once_a_day("housekeeping", cfg.at, self._housekeeping)
        )

    def _housekeeping(self, day: date, now: datetime) -> str | None:
        cfg = self.app.settings.housekeeping
        result = run_housekeeping(
            self.app.engine,
            now,
            events_days=cfg.events_days,
            orders_days=cfg.orders_days,
            batch_size=cfg.batch_size,
            should_stop=self.state.should_stop,
        )
        if result.interrupted:
            return None  # not marked done: the next run picks up where this one stopped
        with self.app.engine.connect() as conn:
            built = rollups_built(conn)
        if built:
            # the report job folds the rollups' journals before each report; with no
            # report running (disabled, or its timer stopped) they would grow without end.
            # Yesterday's window has ended, so this folds without moving the rollups ahead.
            refresh_report_rollups(self.app, day - timedelta(days=1), now)
        return result.summary().removeprefix("housekeeping: ")

    def _once_a_day(
        self, name: str, at: str, body: Callable[[date, datetime], str | None]
    ) -> JobResult:
        """Run ``body`` for today once local time passed ``at`` and nobody ran it today yet.

        ``body`` returns a summary, or None when it stopped early and must run again.
        """
        now = self.app.clock()
        tz = self.app.settings.tz
        local = now.astimezone(tz)
        if local.time() < time.fromisoformat(at):
            return JobResult(f"not due before {at}", worked=False)
        day = local.date()
        key = f"job:{name}"
        with singleton(self.app.engine, name) as held:
            if not held:
                return JobResult("skipped: another replica is running it", worked=False)
            with self.app.uow() as uow:
                last = runtime_repo.read_state(uow.conn, key)
            if last is not None and last[0].get("date") == day.isoformat():
                return JobResult(f"already done for {day.isoformat()}", worked=False)
            summary = body(day, now)
            if summary is None:
                return JobResult("interrupted; resumes next run", worked=False)
            with self.app.uow() as uow:
                value = {"date": day.isoformat(), "worker": self.app.worker_id, "summary": summary}
                runtime_repo.write_state(uow.conn, key, value, now)
                uow.commit()
        _log.info("daily_job_done", daily_job=name, date=day.isoformat(), summary=summary)
        return JobResult(summary)

    async def heartbeat(self) -> JobResult:
        """Record the heartbeat (when jobs are progressing) and refresh the gauges."""
        return await self.in_thread(self.beat)

    def beat(self) -> JobResult:
        """The heartbeat body; also called once at start-up, before READY."""
        now = self.app.clock()
        limit = self.app.settings.daemon.heartbeat_max_age_s
        fresh = self.state.progress_age() <= limit
        with self.app.uow() as uow:
            if fresh:
                write_heartbeat(
                    uow.conn, now, ok="poll" not in self.state.failed, worker=self.app.worker_id
                )
                uow.commit()
            refresh_gauges(uow.conn, now)
        if not fresh:
            _log.warning("heartbeat_withheld", running=self.state.running(), limit_s=limit)
        return JobResult("beat" if fresh else "withheld: no progress", worked=fresh)

    async def in_thread(self, fn: Callable[[], T]) -> T:
        """Run blocking database work off the event loop, keeping the log context."""
        loop = asyncio.get_running_loop()
        ctx = contextvars.copy_context()
        return await loop.run_in_executor(self.executor, ctx.run, fn)

    def close(self) -> None:
        """Stop the worker threads (not waiting: a stuck thread must not block exit)."""
        self.executor.shutdown(wait=False, cancel_futures=True)


def _accumulate(total: Any, part: Any) -> None:
    """Add every count of a stats dataclass (ints, nested stats, dicts of ints) into ``total``."""
    for f in dataclasses.fields(part):
        mine, theirs = getattr(total, f.name), getattr(part, f.name)
        if isinstance(theirs, bool):
            continue
        if isinstance(theirs, int | float):
            setattr(total, f.name, mine + theirs)
        elif isinstance(theirs, dict):
            for key, value in theirs.items():
                if isinstance(value, int | float):
                    mine[key] = mine.get(key, 0) + value
        elif dataclasses.is_dataclass(theirs):
            _accumulate(mine, theirs)


def _did_anything(stats: Any) -> bool:
    """True when any count in a stats dataclass is non-zero."""
    return any(
        isinstance(v, int | float) and not isinstance(v, bool) and v
        for v in (getattr(stats, f.name) for f in dataclasses.fields(stats))
    )
