"""``tracker run`` as an operator runs it: a real subprocess, real signals, a real HTTP port."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.e2e.daemon_helpers import (
    Daemon,
    fake_provider,
    get_json,
    get_text,
    scalar,
    seed_orders,
    write_config,
)
from tests.e2e.fake_source import plugin_path
from tracker.store import migrate
from tracker.store.uow import make_engine


def _sqlite(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'tracker.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    engine.dispose()
    return url


def _tracker(config: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": plugin_path(tmp_path / "plugin")}
    return subprocess.run(  # noqa: PLW1510 - the exit code is what the tests check
        [sys.executable, "-m", "tracker", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=env,
    )


def _run_once(config: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _tracker(config, tmp_path, "run", "--once", *args)


def test_daemon_serves_health_and_metrics_then_exits_0_on_sigterm(
    db_url: str, tmp_path: Path
) -> None:
    """It polls, opens tickets, sends notices, answers /healthz and /metrics, and stops cleanly."""
    seed_orders(db_url, 30, failed_every=5)
    with fake_provider() as provider:
        config = write_config(tmp_path / "tracker.toml", db_url, provider)
        before = _tracker(config, tmp_path, "check")
        assert before.returncode == 1 and "FAIL scheduler: no heartbeat yet" in before.stdout
        daemon = Daemon(config, tmp_path)
        try:
            daemon.wait_for("job_done", job="poll")
            status, health = get_json(daemon.base_url + "/healthz")
            assert status == 200, health
            assert health["healthy"] and health["reason"] is None
            assert set(health["checks"]) == {"database", "schema", "scheduler", "providers"}
            during = _tracker(config, tmp_path, "check")
            assert during.returncode == 0, during.stdout
            assert during.stdout.splitlines()[-1] == "healthy"
            daemon.wait_for("job_done", job="dispatch")
            text = get_text(daemon.base_url + "/metrics")
            assert 'tracker_polls_total{outcome="ok",provider="fake"} 30.0' in text
            assert 'tracker_tickets_opened_total{kind="delivery_failed"} 6.0' in text
            assert 'tracker_notices_total{outcome="sent"} 6.0' in text
            assert 'tracker_provider_request_seconds_count{provider="fake"} 1.0' in text
            assert "tracker_job_duration_seconds_bucket" in text
            assert 'tracker_outbox_depth{outbox="notices"}' in text
            started = time.monotonic()
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(10) == 0
            assert time.monotonic() - started < 10
        finally:
            daemon.kill()
    assert daemon.count("daemon_stopped") == 1
    errors = [e for e in daemon.events if e.get("level") == "error"]
    assert not errors, "\n".join(str(e.get("exception", e)) for e in errors)
    assert scalar(db_url, "SELECT count(*) FROM notices WHERE status = 'sent'") == 6
    assert scalar(db_url, "SELECT count(*) FROM shipments WHERE claimed_by IS NOT NULL") == 0


def test_sigterm_finishes_the_batch_in_flight(tmp_path: Path) -> None:
    """SIGTERM during a slow provider call: the answers are stored, claims freed, exit 0."""
    db_url = _sqlite(tmp_path)
    seed_orders(db_url, 20)
    with fake_provider(delay=3.0) as provider:
        daemon = Daemon(write_config(tmp_path / "tracker.toml", db_url, provider), tmp_path)
        try:
            _wait_in_flight(provider)
            started = time.monotonic()
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(10) == 0
            assert time.monotonic() - started < 10
        finally:
            daemon.kill()
    daemon.wait_for("waiting_for_jobs")
    assert scalar(db_url, "SELECT count(*) FROM shipments WHERE last_polled_at IS NOT NULL") == 20
    assert scalar(db_url, "SELECT count(*) FROM shipments WHERE claimed_by IS NOT NULL") == 0


def test_second_signal_exits_at_once_and_its_claims_expire(tmp_path: Path) -> None:
    """A second SIGTERM exits within a second; the leases it left are taken over later."""
    db_url = _sqlite(tmp_path)
    seed_orders(db_url, 5)
    with fake_provider(delay=30.0) as slow:
        daemon = Daemon(write_config(tmp_path / "tracker.toml", db_url, slow), tmp_path)
        try:
            _wait_in_flight(slow)
            daemon.signal(signal.SIGTERM)
            daemon.wait_for("waiting_for_jobs")
            started = time.monotonic()
            daemon.signal(signal.SIGTERM)
            assert daemon.wait(5) == 1
            assert time.monotonic() - started < 2
        finally:
            daemon.kill()
    assert daemon.count("forced_exit") == 1
    assert scalar(db_url, "SELECT count(*) FROM shipments WHERE claimed_by IS NOT NULL") == 5
    later = (datetime.now(UTC) + timedelta(minutes=3)).isoformat()
    with fake_provider() as fast:
        config = write_config(tmp_path / "later.toml", db_url, fast)
        result = _run_once(config, tmp_path, "--now", later)
        counts = get_json(fast + "/counts")[1]
    assert result.returncode == 0, result.stderr
    assert "5 parcels polled, 5 ok" in result.stdout
    assert sorted(counts.values()) == [1] * 5


def test_run_once_exit_codes(tmp_path: Path) -> None:
    """``run --once`` exits 0 after running every job, 1 (naming the jobs) when any failed."""
    db_url = _sqlite(tmp_path)
    seed_orders(db_url, 3)
    with fake_provider() as provider:
        good = _run_once(write_config(tmp_path / "ok.toml", db_url, provider), tmp_path)
        path = db_url.removeprefix("sqlite:///")
        read_only = f"sqlite:///file:{path}?mode=ro&uri=true"
        bad = _run_once(write_config(tmp_path / "ro.toml", read_only, provider), tmp_path)
    assert good.returncode == 0, good.stderr
    lines = good.stdout.splitlines()
    assert lines[0].startswith("poll: 3 parcels polled, 3 ok")
    assert [line.split(":")[0] for line in lines] == [
        "poll",
        "detect",
        "dispatch",
        "report",
        "housekeeping",
    ]
    assert bad.returncode == 1
    assert "FAILED: poll" in bad.stdout and "FAILED: dispatch" in bad.stdout
    assert "attempt to write a readonly database" in bad.stderr


def test_sqlite_refuses_a_second_daemon(tmp_path: Path) -> None:
    """A second ``tracker run`` on the same SQLite file exits 1 with a clear message."""
    db_url = _sqlite(tmp_path)
    with fake_provider() as provider:
        config = write_config(tmp_path / "tracker.toml", db_url, provider)
        first = Daemon(config, tmp_path)
        try:
            first.wait_for("daemon_started")
            second = Daemon(config, tmp_path)
            assert second.wait(30) == 1
            message = "".join(second.raw)
            assert "already used by a running tracker daemon" in message
            assert f"pid {first.proc.pid}" in message and "PostgreSQL" in message
            assert get_json(first.base_url + "/healthz")[0] == 200
            first.signal(signal.SIGINT)
            assert first.wait(10) == 0
        finally:
            first.kill()


def _wait_in_flight(provider: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if get_json(provider + "/inflight")[1]["inflight"] > 0:
            return
        time.sleep(0.05)
    pytest.fail("the daemon never called the provider")
