"""The tracker process of the benchmark: the real CLI (or report code), with stopwatches.

``python -m tests.bench.worker cli [--deadline S] -- --config X run --once --now T`` runs the
real ``tracker`` command line in this process, after wrapping a few use-case methods with
timers (wall and CPU seconds, calls, and what they returned): the poll job
(``Poller.run_once``, and inside it the claim, the provider round trips, storing results,
detection on touched orders), the periodic detection pass and the dispatcher. Nothing
else changes; a method that no longer exists is simply not timed. With ``--deadline`` the
detection pass stops at the first batch boundary after that many seconds, so a pass that
would run for an hour can be measured for a minute and extrapolated.

``python -m tests.bench.worker report --config X --now T`` builds and renders the daily
report through the report package's benchmark hook (or the older service module).

The last stdout line is ``BENCH_RESULT {json}``; the harness measures this process's own
CPU time and peak RSS from the outside too (``os.wait4``).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
import inspect
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sized
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

__all__ = ["DeadlineReached", "Stopwatch", "main"]

_STARTED = time.perf_counter()
RESULT_PREFIX = "BENCH_RESULT "


class DeadlineReached(Exception):
    """Raised at a detection batch boundary once the pass has used up its time budget."""


@dataclasses.dataclass
class _Phase:
    calls: int = 0
    wall_s: float = 0.0
    cpu_s: float = 0.0
    items: int = 0


class Stopwatch:
    """Accumulates wall and CPU time per named phase, keeping track of nesting."""

    def __init__(self) -> None:
        self.phases: dict[str, _Phase] = {}
        self.stack: list[str] = []
        self.returns: dict[str, list[Any]] = {}
        self.deadline_s: float | None = None
        self.pass_started: float | None = None
        self.deadline_hit = False

    @contextmanager
    def phase(self, name: str, items: int = 0) -> Iterator[None]:
        """Time the block under ``name`` (CPU time too, except for per-parcel phases)."""
        phase = self.phases.setdefault(name, _Phase())
        # process_time() is a real system call: per-parcel phases get wall time only
        clock = time.perf_counter if name in _WALL_ONLY else time.process_time
        wall, cpu = time.perf_counter(), clock()
        if name == "detect_pass" and self.pass_started is None:
            self.pass_started = wall
        self.stack.append(name)
        try:
            yield
        finally:
            self.stack.pop()
            phase.calls += 1
            phase.items += items
            phase.wall_s += time.perf_counter() - wall
            phase.cpu_s += 0.0 if name in _WALL_ONLY else time.process_time() - cpu

    def record(self, name: str, value: Any) -> None:
        """Keep what a timed call returned (stats dataclasses become dicts)."""
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            value = dataclasses.asdict(value)
        self.returns.setdefault(name, []).append(value)

    def wrap(
        self, owner: Any, attr: str, name: str, count: Callable[..., int] | None = None
    ) -> bool:
        """Replace ``owner.attr`` by a timed version; False when it does not exist."""
        original = getattr(owner, attr, None)
        if original is None:
            return False
        watch = self

        if inspect.iscoroutinefunction(original):

            @functools.wraps(original)
            async def timed_async(*args: Any, **kwargs: Any) -> Any:
                with watch.phase(name, count(*args, **kwargs) if count else 0):
                    result = await original(*args, **kwargs)
                if name in _KEEP_RETURNS:
                    watch.record(name, result)
                return result

            setattr(owner, attr, timed_async)
        else:

            @functools.wraps(original)
            def timed(*args: Any, **kwargs: Any) -> Any:
                with watch.phase(name, count(*args, **kwargs) if count else 0):
                    result = original(*args, **kwargs)
                if name in _KEEP_RETURNS:
                    watch.record(name, result)
                return result

            setattr(owner, attr, timed)
        return True

    def report(self) -> dict[str, Any]:
        """Every phase's totals, rounded."""
        return {
            name: {
                "calls": p.calls,
                "wall_s": round(p.wall_s, 4),
                "cpu_s": round(p.cpu_s, 4),
                "items": p.items,
            }
            for name, p in self.phases.items()
        }


# per-parcel phases: timed by wall clock only, to keep the stopwatch's own cost negligible;
# claim batches overlap in the poller's pipeline, so a batch's CPU time is not its own
_WALL_ONLY = frozenset({"poll.save", "poll.track"})
# phases whose return values are worth keeping (stats objects, not rows)
_KEEP_RETURNS = frozenset({"poll", "detect_pass", "dispatch"})


def _count_orders(_self: Any, _uow: Any, order_pks: Any, *_: Any, **__: Any) -> int:
    return len(order_pks) if isinstance(order_pks, Sized) else 0


def _count_claimed(_self: Any, claimed: Any, *_: Any, **__: Any) -> int:
    return len(claimed) if isinstance(claimed, Sized) else 0


def _instrument(watch: Stopwatch) -> list[str]:
    """Wrap the pipeline's use cases; returns the phases that could be wired."""
    wired: list[str] = []
    poll = importlib.import_module("tracker.service.poll")
    detect = importlib.import_module("tracker.service.detect")
    dispatch = importlib.import_module("tracker.service.dispatch")
    repo = importlib.import_module("tracker.store.shipments_repo")
    ingest = importlib.import_module("tracker.store.ingest")
    targets: list[tuple[Any, str, str, Callable[..., int] | None]] = [
        (poll.Poller, "run_once", "poll", None),
        (poll.Poller, "_track_all", "poll.track", _count_claimed),
        (repo, "claim_due_shipments", "poll.claim", None),
        (ingest, "save_results", "poll.save", None),
        (dispatch.Dispatcher, "run_once", "dispatch", None),
    ]
    try:
        jobs = importlib.import_module("tracker.daemon.jobs")
        targets.append((jobs.Jobs, "_detect_pass", "detect_pass", None))
        # the CLI imports run_once from the package when it calls it: from start-up's end on
        targets.append((importlib.import_module("tracker.daemon"), "run_once", "run_once", None))
    except ImportError:
        pass
    for owner, attr, name, count in targets:
        if watch.wrap(owner, attr, name, count):
            wired.append(name)
    if _wrap_detector_run(watch, detect.Detector):
        wired.append("detect.run")
    return wired


def _wrap_detector_run(watch: Stopwatch, detector: Any) -> bool:
    """Time ``Detector.run`` by caller (poll or pass) and enforce the pass deadline."""
    original = getattr(detector, "run", None)
    if original is None:
        return False

    @functools.wraps(original)
    def timed(self: Any, uow: Any, order_pks: Any, now: datetime, *args: Any, **kw: Any) -> Any:
        inside = next((p for p in reversed(watch.stack) if p in ("poll", "detect_pass")), "other")
        if inside == "detect_pass" and watch.deadline_s is not None:
            started = watch.pass_started or time.perf_counter()
            if time.perf_counter() - started > watch.deadline_s:
                watch.deadline_hit = True
                raise DeadlineReached(f"detection pass stopped after {watch.deadline_s:.0f} s")
        pks = order_pks if isinstance(order_pks, Sized) else list(order_pks)
        with watch.phase(f"detect.run[{inside}]", len(pks)):
            return original(self, uow, pks, now, *args, **kw)

    detector.run = timed
    return True


def _usage() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
        "maxrss_mb": round(usage.ru_maxrss / 1024, 1),
    }


class RssSampler:
    """Samples this process's resident memory a few times a second, per current phase."""

    def __init__(self, watch: Stopwatch, every_s: float = 0.2) -> None:
        self.watch = watch
        self.every_s = every_s
        self.by_phase: dict[str, float] = {}
        self.timeline: list[tuple[float, str, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-rss", daemon=True)
        self._page = os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def rss_mb(self) -> float:
        """Resident set size now, in MiB."""
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * self._page / 2**20

    def _loop(self) -> None:
        started = time.perf_counter()
        last_kept = -10.0
        while not self._stop.wait(self.every_s):
            stack = list(self.watch.stack)
            phase = stack[-1] if stack else "other"
            rss = self.rss_mb()
            self.by_phase[phase] = max(self.by_phase.get(phase, 0.0), round(rss, 1))
            at = time.perf_counter() - started
            if at - last_kept >= 2.0:  # a coarse timeline, at most one point per 2 s
                self.timeline.append((round(at, 1), phase, round(rss, 1)))
                last_kept = at


def _run_cli(args: argparse.Namespace) -> dict[str, Any]:
    watch = Stopwatch()
    watch.deadline_s = args.deadline
    wired = _instrument(watch)
    from tracker.cli import app

    startup = _usage()
    startup["wall_s"] = round(time.perf_counter() - _STARTED, 3)
    wall, cpu = time.perf_counter(), time.process_time()
    with RssSampler(watch) as rss:
        try:
            code = app(args.cli_args, standalone_mode=False)
        except SystemExit as exc:
            code = exc.code
    return {
        "mode": "cli",
        "argv": args.cli_args,
        "exit_code": code if isinstance(code, int) else 0,
        "wired": wired,
        "startup": startup,
        "run_wall_s": round(time.perf_counter() - wall, 3),
        "run_cpu_s": round(time.process_time() - cpu, 3),
        "phases": watch.report(),
        "poll_stats": watch.returns.get("poll", []),
        "detect_pass_stats": watch.returns.get("detect_pass", []),
        "dispatch_stats": watch.returns.get("dispatch", []),
        "deadline_hit": watch.deadline_hit,
        "rss_by_phase_mb": rss.by_phase,
        "rss_timeline": rss.timeline[-300:],
        "usage": _usage(),
    }


def _run_report(args: argparse.Namespace) -> dict[str, Any]:
    from tracker.bootstrap import build_app, fixed_clock
    from tracker.settings import load_settings

    settings = load_settings(Path(args.config))
    now = datetime.fromisoformat(args.now)
    app = build_app(settings, clock=fixed_clock(now))
    result: dict[str, Any] = {"mode": "report"}
    try:
        from tracker.report import time_daily_report

        result["impl"] = "tracker.report.time_daily_report (build_daily_report + render_all)"
        if args.repeat > 1:  # the first build alone, before caches are warm
            cold = time_daily_report(app.engine, settings, now, policy=app.policy, repeat=1)
            result["cold_build_s"] = round(cold["total"], 4)
        fastest = time_daily_report(
            app.engine, settings, now, policy=app.policy, repeat=args.repeat, render=True
        )
        result["repeat"] = args.repeat
        result["timings"] = {k: round(v, 4) for k, v in fastest.items()}
        result["report_s"] = round(fastest["total"] + fastest.get("render", 0.0), 4)
    finally:
        app.close()
    result["usage"] = _usage()
    return result


def main(argv: list[str] | None = None) -> int:
    """Run one benchmark stage in this process and print its result line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    cli = sub.add_parser("cli", help="run the tracker CLI with timers")
    cli.add_argument("--deadline", type=float, default=None)
    cli.add_argument("cli_args", nargs=argparse.REMAINDER)
    report = sub.add_parser("report", help="build and render the daily report")
    report.add_argument("--config", required=True)
    report.add_argument("--now", required=True)
    report.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    if args.mode == "cli":
        if args.cli_args and args.cli_args[0] == "--":
            args.cli_args = args.cli_args[1:]
        result = _run_cli(args)
    else:
        result = _run_report(args)
    sys.stdout.flush()
    print(RESULT_PREFIX + json.dumps(result, default=str, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
