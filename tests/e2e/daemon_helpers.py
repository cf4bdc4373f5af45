"""Helpers for daemon tests: the fake provider process, configs, seeding, a daemon handle."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import text

from tests.e2e.fake_source import REPO, plugin_path
from tests.fakes import make_order
from tracker.store import orders_repo
from tracker.store.uow import UnitOfWork, make_engine


@contextmanager
def fake_provider(delay: float = 0.0) -> Iterator[str]:
    """Run the fake provider in its own process; yields its base URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.fake_provider", "--delay", str(delay)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("PORT "), line
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.kill()
        proc.wait(timeout=5)


def get_json(url: str, timeout: float = 5.0) -> tuple[int, Any]:
    """GET a JSON document; returns (status, body) also for error statuses."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def get_text(url: str) -> str:
    """GET a text document."""
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def write_config(path: Path, db_url: str, provider_url: str, extra: str = "") -> Path:
    """A config using the fake provider for every courier, notices never held."""
    path.write_text(
        f"""
timezone = "Asia/Shanghai"
[database]
url = "{db_url}"
[carriers.fake]
provider = "fakehttp"
base_url = "{provider_url}"
couriers = ["*"]
[notify]
quiet_hours = ""
[web]
listen = "127.0.0.1:0"
{extra}
""",
        encoding="utf-8",
    )
    return path


def seed_orders(db_url: str, count: int, *, failed_every: int = 0, prefix: str = "YT") -> None:
    """``count`` shipped orders (one parcel each, unique buyers); every n-th parcel will fail."""
    now = datetime.now(UTC)
    orders = []
    for i in range(count):
        suffix = "F" if failed_every and i % failed_every == 0 else "0"
        orders.append(
            make_order(
                f"E{i:06d}",
                now - timedelta(days=1),
                tracking_number=f"{prefix}{i:08d}{suffix}",
                shipped_at=now - timedelta(hours=22),
                phone=f"138{i:08d}",
            )
        )
    engine = make_engine(db_url)
    try:
        for start in range(0, count, 500):
            with UnitOfWork(engine) as uow:
                orders_repo.upsert_orders(uow.conn, orders[start : start + 500], now)
                uow.commit()
    finally:
        engine.dispose()


def scalar(db_url: str, sql: str) -> Any:
    """One value from the database."""
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


def execute(db_url: str, sql: str) -> None:
    """Run one statement and commit."""
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


class Daemon:
    """A ``tracker run`` subprocess whose JSON log lines are collected as they arrive."""

    def __init__(self, config: Path, tmp: Path, *args: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("TRACKER_CONFIG", "NOTIFY_SOCKET")}
        env["PYTHONPATH"] = plugin_path(tmp / "plugin")
        env["PYTHONUNBUFFERED"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tracker", "--config", str(config), "run", *args],
            cwd=tmp,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.events: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.raw.append(line)
            with suppress(json.JSONDecodeError):
                self.events.append(json.loads(line))

    def wait_for(self, event: str, timeout: float = 30.0, **fields: Any) -> dict[str, Any]:
        """The first log event named ``event`` (with these fields), waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in list(self.events):
                if e.get("event") == event and all(e.get(k) == v for k, v in fields.items()):
                    return e
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.05)
        raise AssertionError(f"no {event} {fields} in time; log:\n{''.join(self.raw)[-4000:]}")

    def count(self, event: str, **fields: Any) -> int:
        """How many log events named ``event`` (with these fields) arrived so far."""
        return sum(
            1
            for e in list(self.events)
            if e.get("event") == event and all(e.get(k) == v for k, v in fields.items())
        )

    @property
    def base_url(self) -> str:
        """Where its web listener is."""
        return f"http://127.0.0.1:{self.wait_for('web_listening')['port']}"

    def signal(self, sig: int = signal.SIGTERM) -> None:
        """Send a signal."""
        self.proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """The exit code, waiting at most ``timeout`` seconds."""
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def kill(self) -> None:
        """Make sure it is gone."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)
