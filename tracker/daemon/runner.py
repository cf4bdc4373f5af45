"""``tracker run``: the scheduler loop, the web listener, systemd notify and clean shutdown.

Start-up: take the SQLite daemon lock (the caller does, before migrating), build the
sources, listen on ``[web] listen``, write the first heartbeat, then tell systemd READY=1.

Jobs (APScheduler 3, one asyncio loop): poll every ``poll_every_s``, dispatch every
``dispatch_every_s``, the periodic detection pass every ``detect_every_s``, the daily
report at ``[report] at`` and housekeeping at ``[housekeeping] at`` (both re-checked every
10 minutes, so a replica that was down at that minute, or a failed run, still gets it done
that day), and a heartbeat every 30 s. Every job has ``max_instances=1`` (never overlaps
itself) and ``coalesce=True`` (a late loop runs a missed job once, not once per missed
tick); interval jobs may start up to one interval late, the daily ones up to an hour.

Shutdown: the first SIGTERM/SIGINT pauses the scheduler and asks jobs to stop taking work;
in-flight batches get ``shutdown_grace_s`` (8 s) to finish, then are cancelled; row leases
this worker still holds are given back; exit 0 within 10 s. A second signal exits at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import datetime
from types import FrameType
from typing import Any

import structlog
import uvicorn
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.combining import OrTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import OperationalError

import tracker
from tracker import eventloop, metrics
from tracker.bootstrap import App
from tracker.daemon.jobs import JobResult, Jobs
from tracker.daemon.state import DaemonState
from tracker.metrics import MeteredSource
from tracker.sdnotify import Notifier, watchdog_interval
from tracker.service.poll import SourceRouter
from tracker.store.locks import release_claims_held_by
from tracker.web.app import create_web_app, parse_listen

__all__ = ["Daemon", "run_daemon"]

_log = structlog.get_logger("tracker.daemon")

HEARTBEAT_EVERY_S = 30
DAILY_RECHECK_MINUTES = 10
FORCED_EXIT_CODE = 1
_BUSY_RETRY_PAUSES = (0.2, 1.0)


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon owns SIGTERM/SIGINT."""

    def install_signal_handlers(self) -> None:  # older uvicorn
        """Leave signals alone."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # uvicorn >= 0.29
        """Leave signals alone."""
        yield


class Daemon:
    """One ``tracker run`` process."""

    def __init__(self, app: App, notifier: Notifier | None = None) -> None:
        self.app = app
        self.state = DaemonState()
        self.notifier = notifier or Notifier()
        self._stop_event: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._signals = 0
        self._in_flight: set[asyncio.Task[Any]] = set()
        self._watchdog_withheld = False

    # -- signals -------------------------------------------------------------------------

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self._signals += 1
        name = signal.Signals(signum).name
        if self._signals > 1:
            _log.warning("forced_exit", signal=name)
            sys.stderr.flush()
            os._exit(FORCED_EXIT_CODE)
        _log.info("stopping", signal=name)
        self.state.request_stop()
        if self._loop is not None and self._stop_event is not None:
            self._loop.call_soon_threadsafe(self._stop_event.set)

    def install_signals(self) -> dict[int, Any]:
        """Route SIGTERM/SIGINT to this daemon; returns the previous handlers."""
        # signal.signal, not loop.add_signal_handler: the handler runs even while the loop is
        # busy in blocking database code, so a second signal always exits at once
        return {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}

    # -- jobs ----------------------------------------------------------------------------

    async def run_job(
        self, name: str, body: Callable[[], Awaitable[JobResult]]
    ) -> JobResult | None:
        """Run one job with logging context, metrics, progress tracking; never raises."""
        if self.state.stopping:
            return None
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
        started = time.perf_counter()
        self.state.begin(name)
        ok = False
        result: JobResult | None = None
        with structlog.contextvars.bound_contextvars(job=name):
            try:
                result = await self._with_busy_retries(body)
                ok = True
            except asyncio.CancelledError:
                _log.warning("job_cancelled")
                raise
            except Exception:
                _log.exception("job_failed")
            finally:
                elapsed = time.perf_counter() - started
                outcome = "failed" if not ok else "ok" if result and result.worked else "skipped"
                metrics.record_job(name, outcome, elapsed)
                self.state.end(name, ok=ok, summary=result.summary if result else None)
                if task is not None:
                    self._in_flight.discard(task)
            if result is not None and result.worked and name != "heartbeat":
                _log.info("job_done", summary=result.summary, seconds=round(elapsed, 3))
        if name == "poll":
            self.notifier.status(self.state.status_line())
        return result

    async def _with_busy_retries(self, body: Callable[[], Awaitable[JobResult]]) -> JobResult:
        """Run ``body``, again after a pause when SQLite was busy with another job's write.

        SQLite lets one writer in at a time; a transaction that read first and then writes
        fails at once ("database is locked") if another job committed in between. Every job
        is safe to repeat: rows are claimed, tickets unique, daily jobs marked when done.
        """
        for pause in _BUSY_RETRY_PAUSES:
            try:
                return await body()
            except OperationalError as exc:
                if "database is locked" not in str(exc) or self.state.stopping:
                    raise
                _log.warning("job_retry_database_busy", pause_s=pause)
                await asyncio.sleep(pause)
        return await body()

    def _watchdog(self) -> None:
        """Ping systemd's watchdog while jobs make progress; withhold it when they stall."""
        limit = self.app.settings.daemon.stall_after_s
        if self.state.progress_age() <= limit:
            self._watchdog_withheld = False
            self.notifier.watchdog()
        elif not self._watchdog_withheld:
            self._watchdog_withheld = True
            _log.error("watchdog_withheld", running=self.state.running(), limit_s=limit)

    def _schedule(self, scheduler: AsyncIOScheduler, jobs: Jobs) -> None:
        cfg = self.app.settings.daemon
        tz = self.app.settings.tz
        now = datetime.now(tz)

        def add(
            name: str,
            body: Callable[[], Awaitable[JobResult]],
            trigger: Any,
            grace: int,
            first: datetime | None,
        ) -> None:
            scheduler.add_job(
                self.run_job,
                trigger,
                args=(name, body),
                id=name,
                name=name,
                max_instances=1,
                coalesce=True,
                misfire_grace_time=grace,
                next_run_time=first,
            )

        every = IntervalTrigger
        add("poll", jobs.poll, every(seconds=cfg.poll_every_s), cfg.poll_every_s, now)
        add(
            "dispatch",
            jobs.dispatch,
            every(seconds=cfg.dispatch_every_s),
            cfg.dispatch_every_s,
            now,
        )
        add("detect", jobs.detect, every(seconds=cfg.detect_every_s), cfg.detect_every_s, now)
        add("heartbeat", jobs.heartbeat, every(seconds=HEARTBEAT_EVERY_S), HEARTBEAT_EVERY_S, None)
        for name, body, at in (
            ("report", jobs.report, self.app.settings.report.at),
            ("housekeeping", jobs.housekeeping, self.app.settings.housekeeping.at),
        ):
            hour, minute = (int(part) for part in at.split(":"))
            trigger = OrTrigger(
                [
                    CronTrigger(hour=hour, minute=minute, timezone=tz),
                    IntervalTrigger(minutes=DAILY_RECHECK_MINUTES, timezone=tz),
                ]
            )
            add(name, body, trigger, 3600, now)
        interval = watchdog_interval()
        if interval is not None and self.notifier.enabled:
            scheduler.add_job(
                self._watchdog,
                "interval",
                seconds=interval,
                id="watchdog",
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,
            )

    # -- the loop ------------------------------------------------------------------------

    async def serve(self) -> int:
        """Run until a stop signal; returns the exit code."""
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        if self.state.stopping:
            self._stop_event.set()
        metrics.BUILD.info({"version": tracker.__version__})
        sources = [(MeteredSource(s), couriers) for s, couriers in self.app.build_sources()]
        router = SourceRouter(sources)
        jobs = Jobs(self.app, self.state, router)
        server: _QuietServer | None = None
        server_task: asyncio.Task[None] | None = None
        scheduler = AsyncIOScheduler(timezone=self.app.settings.tz)
        try:
            server, server_task = await self._start_web(jobs, [s.name for s, _ in sources])
            await jobs.in_thread(jobs.beat)  # the first heartbeat: the database takes writes
            status = f"worker {self.app.worker_id} ready; sources: " + (
                ", ".join(s.name for s, _ in sources) or "none"
            )
            self.notifier.ready(status)
            _log.info(
                "daemon_started",
                worker=self.app.worker_id,
                version=tracker.__version__,
                sources=[s.name for s, _ in sources],
            )
            self._schedule(scheduler, jobs)
            scheduler.start()
            await self._stop_event.wait()
            self.notifier.stopping("finishing in-flight work")
            scheduler.pause()  # no new runs; shutdown() would cancel the running ones
            await self._drain()
            scheduler.shutdown(wait=False)
            await self._release_claims(jobs)
        finally:
            if server is not None and server_task is not None:
                server.should_exit = True
                await asyncio.wait({server_task}, timeout=1.0)
            jobs.close()
            await router.aclose()
        _log.info("daemon_stopped", worker=self.app.worker_id)
        return 0

    async def _start_web(
        self, jobs: Jobs, names: Sequence[str]
    ) -> tuple[_QuietServer | None, asyncio.Task[None] | None]:
        address = parse_listen(self.app.settings.web.listen)
        if address is None:
            return None, None
        host, port = address
        try:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.create_server((host, port), family=family, reuse_port=False)
        except OSError as exc:
            raise OSError(f"web.listen: cannot listen on {host}:{port}: {exc.strerror}") from exc

        def providers() -> tuple[Sequence[str], Mapping[str, str]]:
            return names, dict(jobs.poller.health.failing)

        asgi = create_web_app(self.app, liveness=self.state, providers=providers)
        config = uvicorn.Config(asgi, log_config=None, access_log=False, lifespan="off")
        server = _QuietServer(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        bound = sock.getsockname()
        _log.info(
            "web_listening", host=host, port=bound[1], url=f"http://{host}:{bound[1]}/healthz"
        )
        return server, task

    async def _drain(self) -> None:
        grace = self.app.settings.daemon.shutdown_grace_s
        pending = {t for t in self._in_flight if not t.done()}
        if not pending:
            return
        _log.info("waiting_for_jobs", jobs=self.state.running(), grace_s=grace)
        _done, late = await asyncio.wait(pending, timeout=grace)
        if late:
            _log.warning("cancelling_jobs", jobs=self.state.running())
            for task in late:
                task.cancel()
            await asyncio.wait(late, timeout=0.5)

    async def _release_claims(self, jobs: Jobs) -> None:
        def release() -> dict[str, int]:
            with self.app.uow() as uow:
                released = release_claims_held_by(uow.conn, self.app.worker_id)
                uow.commit()
            return released

        try:
            released = await asyncio.wait_for(jobs.in_thread(release), timeout=1.0)
        except Exception as exc:  # leases expire by themselves; never block the exit on it
            _log.warning("claims_not_released", error=repr(exc))
            return
        if any(released.values()):
            _log.info("claims_released", **released)


def run_daemon(app: App) -> int:
    """Run the daemon until signalled; returns the process exit code."""
    daemon = Daemon(app)
    previous = daemon.install_signals()
    try:
        code = eventloop.run(daemon.serve())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        app.close()
    if any(
        t.is_alive() and not t.daemon
        for t in threading.enumerate()
        if t is not threading.main_thread()
    ):
        # a job thread stuck in a database call: do not let it hold the exit past 10 s
        _log.warning("abandoning_stuck_threads")
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(code)
    return code
