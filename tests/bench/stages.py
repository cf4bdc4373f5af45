"""The benchmark's stages: ceiling, poll throughput, and the live-database probes.

Each stage returns a plain dict for the JSON output. Every tracker run is its own child
process (:mod:`tests.bench.worker`), measured from outside with ``wait4``.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from carriers.kuaidi100.adapter import Kuaidi100Source
from carriers.transport.client import DEFAULT_MAX_CONNECTIONS
from tests.bench.datagen import load_poll_set, migrate_fresh
from tests.bench.live_set import load_live_set
from tests.bench.procs import Child, FakeProvider, fresh_database, py_spy, run_child, server_load
from tests.bench.scenario import Shares
from tests.bench.stalled import measure as measure_stalled
from tracker.settings import PollConfig
from tracker.store.tables import alerts, notices, orders, tickets, tracking_events
from tracker.store.uow import make_engine

__all__ = [
    "Bench",
    "Sizes",
    "effective_concurrency",
    "profiled",
    "stage_ceiling",
    "stage_live",
    "stage_poll",
]

CUSTOMER, KEY = "BENCHCUSTOMER", "benchkey"


@dataclass(frozen=True)
class Sizes:
    """How big each stage is in one mode."""

    poll_shipments: int
    live_shipments: int
    ceiling_requests: int
    httpx_default_requests: int
    detect_deadline_s: float
    report_timeout_s: float
    cycle_timeout_s: float
    stalled_runs: int
    report_repeat: int


MODES = {
    "full": Sizes(10_000, 1_000_000, 20_000, 1_000, 240, 900, 1200, 30, 2),
    "quick": Sizes(2_000, 100_000, 5_000, 300, 20, 120, 300, 15, 1),
    "toy": Sizes(40, 400, 200, 0, 30, 90, 120, 3, 1),
}


@dataclass
class Bench:
    """One harness run's settings and shared handles."""

    db: str
    sizes: Sizes
    workdir: Path
    pg_base: str
    fake: FakeProvider
    start: datetime
    step: timedelta
    shares: Shares
    cycles: int = 2
    batch_size: int | None = None
    poll_concurrency: int | None = None
    pipeline: int | None = None
    profile_dir: Path | None = None
    profile_gil: bool = False
    keep: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def logs(self) -> Path:
        """Where children's stdout and stderr go."""
        return self.workdir / "logs"

    def worker(self, name: str, args: list[str], timeout_s: float) -> Child:
        """Run the tracker worker with ``args`` (under py-spy when profiling)."""
        cmd = [sys.executable, "-m", "tests.bench.worker", *args]
        spy = py_spy() if self.profile_dir else None
        if self.profile_dir and spy:
            self.profile_dir.mkdir(parents=True, exist_ok=True)
            out = self.profile_dir / f"{self.db}-{name}.speedscope.json"
            cmd = profiled(spy, out, cmd, gil=self.profile_gil)
        elif self.profile_dir and not spy:
            self.notes.append("--profile: py-spy not found, ran without profiling")
        return run_child(name, cmd, timeout_s=timeout_s, log_dir=self.logs)

    def config(self, name: str, url: str) -> Path:
        """A tracker config for ``url`` with the fake provider as the only source."""
        poll = []
        if self.batch_size is not None:
            poll.append(f"batch_size = {self.batch_size}")
        if self.poll_concurrency is not None:
            poll.append(f"concurrency = {self.poll_concurrency}")
        if self.pipeline is not None:
            poll.append(f"pipeline = {self.pipeline}")
        text = "\n".join(
            [
                'timezone = "Asia/Shanghai"',
                "[database]",
                f'url = "{url}"',
                "[carriers.kuaidi100]",
                f'base_url = "{self.fake.url}"',
                f'customer = "{CUSTOMER}"',
                f'key = "{KEY}"',
                'couriers = ["*"]',
                "# the fake has no rate limit; the real one's 10/s would be the bottleneck",
                "requests_per_s = 1000000",
                "burst = 1000000",
                "[daemon]",
                "daily_report = false",
                "[housekeeping]",
                "enabled = false",
                *(["[poll]", *poll] if poll else []),
                "",
            ]
        )
        path = self.workdir / f"{name}.toml"
        path.write_text(text, encoding="utf-8")
        return path


def profiled(spy: str, out: Path, cmd: list[str], *, gil: bool = False) -> list[str]:
    """``cmd`` under ``py-spy record`` (speedscope, 250 Hz); ``gil``: only the GIL's holder.

    Sampling the GIL's holder shows what the threads of a run compete for: with the
    database on threads of their own, the event loop waits for the GIL, not for a core.
    """
    spy_args = [spy, "record", *(["--gil"] if gil else []), "--format", "speedscope"]
    return [*spy_args, "-r", "250", "-o", str(out), "--", *cmd]


def effective_concurrency(
    batch_size: int | None, poll_concurrency: int | None, pipeline: int | None = None
) -> int:
    """Requests the tracker can have in flight: batches, chunks x batch size, connections."""
    defaults = PollConfig()
    claimed = (batch_size or defaults.batch_size) * (pipeline or defaults.pipeline)
    chunks = poll_concurrency or defaults.concurrency
    return min(claimed, chunks * Kuaidi100Source.max_batch, DEFAULT_MAX_CONNECTIONS)


def stage_ceiling(
    bench: Bench, concurrency: int, clients: tuple[str, ...] = ("aiohttp", "httpx-aiohttp", "httpx")
) -> dict[str, Any]:
    """Bare clients against the fake provider at the tracker's concurrency."""
    sizes = {
        "aiohttp": bench.sizes.ceiling_requests,
        "httpx-aiohttp": bench.sizes.ceiling_requests,
        "httpx": bench.sizes.httpx_default_requests,
    }
    plan = [(client, sizes[client]) for client in clients]
    found: dict[str, Any] = {}
    for client, requests in plan:
        if requests <= 0:
            continue
        before = bench.fake.stats()
        child = run_child(
            f"ceiling-{client}",
            [
                sys.executable,
                "-m",
                "tests.bench.ceiling",
                "--url",
                bench.fake.url,
                "--client",
                client,
                "--requests",
                str(requests),
                "--concurrency",
                str(concurrency),
                "--customer",
                CUSTOMER,
                "--key",
                KEY,
            ],
            timeout_s=600,
            log_dir=bench.logs,
        )
        load = server_load(before, bench.fake.stats())
        entry = dict(child.result or {"error": f"no result, see {child.stderr_path}"})
        requests_wall = entry.get("wall_s")
        if isinstance(requests_wall, float) and requests_wall > 0:
            # the fake idles while the client process starts: its share while requests ran
            load["cpu_util_while_requests"] = round(load["cpu_s"] / requests_wall, 3)
        entry["server"] = load
        entry["process"] = child.summary()
        if load.get("cpu_util_while_requests", load["cpu_util"]) > 0.85:
            bench.notes.append(
                f"ceiling {client}: the fake provider used "
                f"{load.get('cpu_util_while_requests', load['cpu_util']):.0%} of a core; "
                "the ceiling may be the fake's limit, not the client's"
            )
        if entry.get("errors"):
            bench.notes.append(f"ceiling {client}: {entry['errors']} requests failed")
        found[client] = entry
    return found


def _counts(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            by_kind: dict[str, int] = dict(
                conn.execute(select(tickets.c.kind, func.count()).group_by(tickets.c.kind)).all()
            )
            by_notice: dict[str, int] = dict(
                conn.execute(
                    select(notices.c.status, func.count()).group_by(notices.c.status)
                ).all()
            )
            return {
                "events": conn.execute(select(func.count()).select_from(tracking_events)).scalar(),
                "tickets_by_kind": by_kind,
                "notices_by_status": by_notice,
                "alerts": conn.execute(select(func.count()).select_from(alerts)).scalar(),
            }
    finally:
        engine.dispose()


def _cycle_figures(child: Child) -> dict[str, Any]:
    result = child.result or {}
    phases = result.get("phases", {})
    polls = result.get("poll_stats", [])
    claimed = sum(p.get("claimed", 0) for p in polls)
    poll = phases.get("poll", {})
    return {
        "exit_code": result.get("exit_code"),
        "polled": claimed,
        "ok": sum(p.get("ok", 0) for p in polls),
        "failed": sum(p.get("failed", 0) for p in polls),
        "new_events": sum(p.get("new_events", 0) for p in polls),
        "tickets_opened": sum(p.get("detect", {}).get("opened", 0) for p in polls),
        "poll_wall_s": poll.get("wall_s", 0.0),
        "poll_cpu_s": poll.get("cpu_s", 0.0),
        "run_wall_s": result.get("run_wall_s"),
        "run_cpu_s": result.get("run_cpu_s"),
        "startup": result.get("startup"),
        "rss_by_phase_mb": result.get("rss_by_phase_mb"),
        "phases": phases,
        "process": child.summary(),
    }


def stage_poll(bench: Bench) -> dict[str, Any]:
    """Poll throughput: ``cycles`` runs of ``tracker run --once`` over a fresh poll set."""
    n = bench.sizes.poll_shipments
    out: dict[str, Any] = {"shipments": n, "cycles": []}
    with fresh_database(bench.db, "poll", bench.workdir, bench.pg_base, keep=bench.keep) as url:
        started = time.perf_counter()
        migrate_fresh(url)
        loaded = load_poll_set(url, n, bench.start, bench.shares)
        out["datagen_s"] = round(time.perf_counter() - started, 2)
        out["fates"] = loaded.fates
        cfg = bench.config("poll", url)
        for cycle in range(bench.cycles):
            now = bench.start + bench.step * cycle
            before = bench.fake.stats()
            child = bench.worker(
                f"poll-cycle{cycle + 1}",
                ["cli", "--", "--config", str(cfg), "run", "--once", "--now", now.isoformat()],
                bench.sizes.cycle_timeout_s,
            )
            figures = _cycle_figures(child)
            figures["now"] = now.isoformat()
            figures["server"] = server_load(before, bench.fake.stats())
            out["cycles"].append(figures)
            if figures["server"]["cpu_util"] > 0.85:
                bench.notes.append(
                    f"poll cycle {cycle + 1}: the fake provider used "
                    f"{figures['server']['cpu_util']:.0%} of a core"
                )
        out["database"] = _counts(url)
    return out


def _detect_figures(child: Child, active: int) -> dict[str, Any]:
    result = child.result or {}
    phases = result.get("phases", {})
    passed = phases.get("detect_pass", {})
    runs = phases.get("detect.run[detect_pass]", {})
    checked = runs.get("items", 0)
    wall = passed.get("wall_s", 0.0)
    # the pass reads only the orders due (tracker.domain.rules_schedule), not every active one
    completed = bool(result) and not result.get("deadline_hit") and result.get("exit_code") == 0
    figures: dict[str, Any] = {
        "completed": completed,
        "active_orders": active,
        "orders_checked": checked,
        "measured_s": wall,
        "cpu_s": passed.get("cpu_s"),
        "listing_s": round(max(0.0, wall - runs.get("wall_s", 0.0)), 3),
        "stats": result.get("detect_pass_stats"),
        "rss_by_phase_mb": result.get("rss_by_phase_mb"),
        "rss_timeline": result.get("rss_timeline"),
        "phases": phases,
        "process": child.summary(),
    }
    if completed:
        figures["detect_pass_s"] = wall
    elif checked and runs.get("wall_s"):
        rate = checked / runs["wall_s"]
        figures["orders_per_s"] = round(rate, 1)
        figures["detect_pass_s"] = round(figures["listing_s"] + active / rate, 1)
        figures["extrapolated"] = True
    else:
        figures["detect_pass_s"] = None
    return figures


def stage_live(bench: Bench) -> dict[str, Any]:
    """The live set: stalled-query latency, the daily report, the periodic detection pass."""
    n = bench.sizes.live_shipments
    out: dict[str, Any] = {"shipments": n}
    with fresh_database(bench.db, "live", bench.workdir, bench.pg_base, keep=bench.keep) as url:
        started = time.perf_counter()
        migrate_fresh(url)
        loaded = load_live_set(url, n, bench.start)
        out["datagen_s"] = round(time.perf_counter() - started, 2)
        out["rows"] = loaded.rows
        out["categories"] = loaded.categories
        engine = make_engine(url)
        try:
            out["stalled_query"] = measure_stalled(
                engine, bench.start, runs=bench.sizes.stalled_runs
            )
            with engine.connect() as conn:
                active = int(
                    conn.execute(
                        select(func.count()).select_from(orders).where(orders.c.active.is_(True))
                    ).scalar_one()
                )
                due = int(
                    conn.execute(
                        select(func.count())
                        .select_from(orders)
                        .where(orders.c.active.is_(True), orders.c.next_check_at <= bench.start)
                    ).scalar_one()
                )
        finally:
            engine.dispose()
        cfg = bench.config("live", url)
        report = bench.worker(
            "report",
            [
                "report",
                "--config",
                str(cfg),
                "--now",
                bench.start.isoformat(),
                "--repeat",
                str(bench.sizes.report_repeat),
            ],
            bench.sizes.report_timeout_s,
        )
        out["report"] = dict(report.result or {"error": f"no result, see {report.stderr_path}"})
        out["report"]["process"] = report.summary()
        if report.timed_out:
            bench.notes.append(
                f"daily report: killed after {bench.sizes.report_timeout_s:.0f} s; report_s is "
                "a lower bound"
            )
            out["report"]["report_s"] = bench.sizes.report_timeout_s
        deadline = bench.sizes.detect_deadline_s
        detect = bench.worker(
            "detect",
            [
                "cli",
                "--deadline",
                str(deadline),
                "--",
                "--config",
                str(cfg),
                "run",
                "--once",
                "--now",
                bench.start.isoformat(),
            ],
            deadline + 600,
        )
        out["detect"] = _detect_figures(detect, active)
        out["detect"]["due_orders"] = due
        if out["detect"].get("extrapolated"):
            bench.notes.append(
                f"detection pass: stopped after {deadline:.0f} s having checked "
                f"{out['detect']['orders_checked']} of {active} active orders; detect_pass_s is "
                "extrapolated from its rate"
            )
    return out
