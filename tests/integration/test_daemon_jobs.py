"""The daemon's jobs in-process on a real database: daily jobs once a day, heartbeat, gauges."""

from __future__ import annotations

import asyncio
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from tests.conftest import at
from tests.fakes import ScriptedSource, make_order
from tracker import metrics
from tracker.bootstrap import App
from tracker.daemon.jobs import Jobs
from tracker.daemon.state import DaemonState
from tracker.service.poll import SourceRouter
from tracker.settings import DatabaseConfig, Settings
from tracker.store import orders_repo, runtime_repo
from tracker.store.tables import report_dirty_hours, report_dirty_parcels


def _jobs(engine: Engine, worker: str, now: datetime, **settings: object) -> Jobs:
    app = App(
        settings=Settings(database=DatabaseConfig(url=str(engine.url)), **settings),  # type: ignore[arg-type]
        clock=lambda: now,
        engine_override=engine,
        sources_override=[(ScriptedSource(), frozenset({"*"}))],
        worker_id=worker,
    )
    return Jobs(app, DaemonState(), SourceRouter([]))


def _run(jobs: Jobs, name: str) -> tuple[bool, str]:
    try:
        result = asyncio.run(getattr(jobs, name)())
    finally:
        jobs.close()
    return result.worked, result.summary


def test_daily_report_runs_once_a_day_whichever_replica_gets_there(engine: Engine) -> None:
    """Not due before 08:00; the first replica after builds and stores it; the next skips."""
    assert _run(_jobs(engine, "w1", at("2026-09-12 07:59")), "report") == (
        False,
        "not due before 08:00",
    )
    assert _run(_jobs(engine, "w1", at("2026-09-12 08:01")), "report") == (
        True,
        "daily report 1 for 2026-09-12: stored",
    )
    assert _run(_jobs(engine, "w2", at("2026-09-12 09:30")), "report") == (
        False,
        "already done for 2026-09-12",
    )
    with engine.connect() as conn:
        state = runtime_repo.read_state(conn, "job:daily-report")
    assert state is not None and state[0]["worker"] == "w1"
    assert _run(_jobs(engine, "w2", at("2026-09-13 08:00")), "report")[0]


def test_daily_jobs_follow_their_config(engine: Engine) -> None:
    """``[daemon] daily_report = false`` and ``[housekeeping] enabled = false`` turn them off."""
    off = {"daemon": {"daily_report": False}, "housekeeping": {"enabled": False, "at": "04:00"}}
    jobs = _jobs(engine, "w1", at("2026-09-12 09:00"), **off)
    assert _run(jobs, "report") == (False, "disabled ([daemon] daily_report = false)")
    jobs = _jobs(engine, "w1", at("2026-09-12 09:00"), **off)
    assert _run(jobs, "housekeeping") == (False, "disabled ([housekeeping] enabled = false)")
    later = {"housekeeping": {"at": "23:00"}}
    assert _run(_jobs(engine, "w1", at("2026-09-12 09:00"), **later), "housekeeping") == (
        False,
        "not due before 23:00",
    )


def test_heartbeat_is_withheld_when_jobs_stall(engine: Engine) -> None:
    """The beat is written while jobs progress, and withheld once one has been stuck too long."""
    now = at("2026-09-12 10:00")
    jobs = _jobs(engine, "w1", now, daemon={"heartbeat_max_age_s": 30})
    assert jobs.beat().worked
    with engine.connect() as conn:
        beat = runtime_repo.read_state(conn, "heartbeat:cycle")
    assert beat is not None and beat[1] == now
    jobs.state.begin("poll")
    jobs.state._running["poll"] -= 60  # the poll job has not progressed for a minute
    assert not jobs.beat().worked
    jobs.close()
    assert metrics.REGISTRY.get_sample_value("tracker_outbox_depth", {"outbox": "alerts"}) == 0


def test_housekeeping_folds_the_report_journals_once_rollups_exist(engine: Engine) -> None:
    """Writes after the rollups were built are journaled; the next housekeeping folds them."""
    assert _run(_jobs(engine, "w1", at("2026-09-12 08:01")), "report")[0]  # builds rollups
    paid = at("2026-09-12 09:00")
    with engine.begin() as conn:
        orders_repo.upsert_orders(
            conn, [make_order("HK1", paid, tracking_number="YT7300000001", shipped_at=paid)], paid
        )
    assert _journaled(engine) > 0
    summary = _run(_jobs(engine, "w1", at("2026-09-13 03:31")), "housekeeping")
    assert summary[0] and _journaled(engine) == 0


def _journaled(engine: Engine) -> int:
    """Rows waiting in the report rollups' two journals."""
    with engine.connect() as conn:
        return sum(
            conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (report_dirty_parcels, report_dirty_hours)
        )
