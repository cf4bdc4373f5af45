"""Three ``tracker run`` replicas on one PostgreSQL share the work without doing any twice."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import empty_pg_database
from tests.e2e.daemon_helpers import (
    Daemon,
    execute,
    fake_provider,
    get_json,
    get_text,
    scalar,
    seed_orders,
    write_config,
)
from tests.e2e.fake_source import REPO

pytestmark = pytest.mark.postgresql

PARCELS = 2000
FAILED_EVERY = 10  # every 10th parcel reports a failed delivery: a ticket and a buyer notice
REPLICAS = 3


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A brand-new, empty PostgreSQL database (migrated by the test itself)."""
    with empty_pg_database("tracker_scale") as url:
        yield url


def test_postgresql_three_replicas_poll_each_parcel_once_and_send_each_notice_once(
    pg_url: str, tmp_path: Path
) -> None:
    """Concurrent upgrades, then three replicas: no parcel polled twice, no notice twice."""
    config_extra = """
[poll]
batch_size = 100
[daemon]
poll_every_s = 5
[report]
at = "00:00"
[alerts.webhook]
url = "{provider}/hooks"
allow_private_networks = true
"""
    (tmp_path / "db.toml").write_text(f'[database]\nurl = "{pg_url}"\n', encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "TRACKER_CONFIG": str(tmp_path / "db.toml")}
    upgrades = [
        subprocess.Popen(
            [sys.executable, "-m", "tracker", "db", "upgrade"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(REPLICAS)
    ]
    assert [p.wait(60) for p in upgrades] == [0] * REPLICAS, [p.stderr.read() for p in upgrades]
    seed_orders(pg_url, PARCELS, failed_every=FAILED_EVERY)
    expected_notices = len(range(0, PARCELS, FAILED_EVERY))

    with fake_provider() as provider:
        config = write_config(
            tmp_path / "tracker.toml",
            pg_url,
            provider,
            config_extra.replace("{provider}", provider),
        )
        replicas = [Daemon(config, tmp_path) for _ in range(REPLICAS)]
        try:
            counts = _wait_until(lambda: get_json(provider + "/counts")[1], _all_polled(1), 60)
            assert set(counts.values()) == {1}
            _wait_until(
                lambda: scalar(pg_url, "SELECT count(*) FROM notices WHERE status = 'sent'"),
                lambda n: n == expected_notices,
                30,
            )
            # the next due cycle: every parcel is due again at once
            execute(pg_url, "UPDATE shipments SET next_poll_at = now()")
            counts = _wait_until(lambda: get_json(provider + "/counts")[1], _all_polled(2), 60)
            time.sleep(1.0)  # a double poll would show up now
            counts = get_json(provider + "/counts")[1]
            assert len(counts) == PARCELS and set(counts.values()) == {2}
            polled = [_polls(get_text(r.base_url + "/metrics")) for r in replicas]
            assert sum(polled) == 2 * PARCELS
            assert sum(1 for n in polled if n) >= 2, polled
            _wait_until(
                lambda: scalar(pg_url, "SELECT count(*) FROM alerts WHERE status = 'queued'"),
                lambda n: n == 0,
                30,
            )
            for replica in replicas:
                replica.signal(signal.SIGTERM)
            assert [r.wait(10) for r in replicas] == [0] * REPLICAS
            hooks = get_json(provider + "/hooks")[1]
        finally:
            for replica in replicas:
                replica.kill()

    assert scalar(pg_url, "SELECT count(*) FROM tickets") == expected_notices
    assert scalar(pg_url, "SELECT count(*) FROM notices") == expected_notices
    assert scalar(pg_url, "SELECT count(*) FROM notices WHERE status = 'sent'") == expected_notices
    assert scalar(pg_url, "SELECT max(attempts) FROM notices") == 1
    assert scalar(pg_url, "SELECT count(*) FROM shipments WHERE claimed_by IS NOT NULL") == 0
    alerts_sent = scalar(pg_url, "SELECT count(*) FROM alerts WHERE status = 'sent'")
    assert alerts_sent > 0 and len(hooks) == alerts_sent and set(hooks.values()) == {1}
    reports = [r.count("daily_job_done", daily_job="daily-report") for r in replicas]
    assert sum(reports) == 1, reports
    errors = [e for r in replicas for e in r.events if e.get("level") == "error"]
    assert not errors, "\n".join(str(e.get("exception", e)) for e in errors)


def _all_polled(times: int) -> Callable[[dict[str, int]], bool]:
    return lambda counts: len(counts) == PARCELS and min(counts.values()) >= times


def _wait_until(read: Callable[[], object], done: Callable[..., bool], timeout: float) -> object:
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out; last value: {str(value)[:300]}")
        time.sleep(0.25)
        value = read()
    return value


def _polls(metrics_text: str) -> int:
    return int(
        sum(
            float(m.group(1))
            for m in re.finditer(r"^tracker_polls_total\{[^}]*\} ([0-9.e+]+)$", metrics_text, re.M)
        )
    )
