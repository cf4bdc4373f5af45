"""Processes and databases the harness manages.

Children measured with ``wait4``, the fake provider, and throw-away databases (a file in the
work directory, or a fresh PostgreSQL database).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

__all__ = [
    "ROOT",
    "Child",
    "FakeProvider",
    "fresh_database",
    "py_spy",
    "run_child",
    "start_fake_provider",
]

ROOT = Path(__file__).resolve().parents[2]
RESULT_PREFIX = "BENCH_RESULT "


@dataclass
class Child:
    """How one measured child process went."""

    name: str
    returncode: int | None
    wall_s: float
    cpu_s: float
    user_s: float
    sys_s: float
    maxrss_mb: float
    timed_out: bool
    result: dict[str, Any] | None
    stdout_path: str
    stderr_path: str
    stderr_lines: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """The figures worth keeping in the JSON output."""
        return {
            "returncode": self.returncode,
            "timed_out": self.timed_out,
            "wall_s": round(self.wall_s, 3),
            "cpu_s": round(self.cpu_s, 3),
            "user_s": round(self.user_s, 3),
            "sys_s": round(self.sys_s, 3),
            "maxrss_mb": round(self.maxrss_mb, 1),
            "log_lines": self.stderr_lines,
            "stderr": self.stderr_path,
        }


def run_child(
    name: str,
    cmd: Sequence[str],
    *,
    timeout_s: float,
    log_dir: Path,
    env: dict[str, str] | None = None,
) -> Child:
    """Run ``cmd`` to completion (killed after ``timeout_s``), measuring it with ``wait4``.

    Output goes to files (no pipe can fill up and stall it); the ``BENCH_RESULT`` line on
    stdout, if any, is parsed. CPU time and peak RSS are the child's own, from the kernel.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    out_path, err_path = log_dir / f"{name}.stdout", log_dir / f"{name}.stderr"
    started = time.perf_counter()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=err, cwd=ROOT, env=env)
        timed_out = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() - started > timeout_s:
                timed_out = True
                proc.send_signal(signal.SIGTERM)
                try:
                    _, status, usage = _wait4_within(proc.pid, 10.0)
                except TimeoutError:
                    proc.kill()
                    _, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
    wall = time.perf_counter() - started
    stdout = out_path.read_text("utf-8", "replace")
    result = None
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX) :])
            break
    with err_path.open("rb") as fh:
        lines = sum(1 for _ in fh)
    return Child(
        name=name,
        returncode=proc.returncode,
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        user_s=usage.ru_utime,
        sys_s=usage.ru_stime,
        maxrss_mb=usage.ru_maxrss / 1024,
        timed_out=timed_out,
        result=result,
        stdout_path=str(out_path),
        stderr_path=str(err_path),
        stderr_lines=lines,
    )


def _wait4_within(pid: int, seconds: float) -> tuple[int, int, Any]:
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        found, status, usage = os.wait4(pid, os.WNOHANG)
        if found:
            return found, status, usage
        time.sleep(0.05)
    raise TimeoutError


def py_spy() -> str | None:
    """The py-spy executable next to this interpreter or on PATH, else None."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


class FakeProvider:
    """The fake Kuaidi100 server process (see :mod:`tests.bench.fake_provider`)."""

    def __init__(self, proc: subprocess.Popen[bytes], port: int) -> None:
        self.proc = proc
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    def stats(self) -> dict[str, Any]:
        """Requests served so far and the server's CPU seconds."""
        with urllib.request.urlopen(self.url + "/stats", timeout=10) as response:
            data: dict[str, Any] = json.loads(response.read())
        data["at"] = time.perf_counter()
        return data

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL) and reap it."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_fake_provider(args: Sequence[str], log_dir: Path) -> FakeProvider:
    """Start the fake provider with ``args`` and wait for its ``READY <port>`` line."""
    log_dir.mkdir(parents=True, exist_ok=True)
    err = (log_dir / "fake_provider.stderr").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.bench.fake_provider", *args],
        stdout=subprocess.PIPE,
        stderr=err,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("READY "):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"fake provider did not start (see {err.name}): {line!r}")
    return FakeProvider(proc, int(line.split()[1]))


def server_load(before: dict[str, Any], after: dict[str, Any]) -> dict[str, float]:
    """The fake provider's requests and CPU use between two :meth:`FakeProvider.stats`."""
    wall = max(after["at"] - before["at"], 1e-9)
    cpu = after["cpu_s"] - before["cpu_s"]
    requests = after["requests"] - before["requests"]
    return {
        "requests": requests,
        "cpu_s": round(cpu, 3),
        "cpu_util": round(cpu / wall, 3),
        "cpu_us_per_request": round(cpu / requests * 1e6, 1) if requests else 0.0,
    }


@contextmanager
def fresh_database(
    kind: str, name: str, workdir: Path, pg_base: str, *, keep: bool = False
) -> Iterator[str]:
    """A new empty database URL (SQLite file in ``workdir``, or a new PostgreSQL database).

    It is deleted afterwards unless ``keep`` (a kept PostgreSQL database is named in the log).
    """
    if kind == "sqlite":
        path = workdir / f"{name}.db"
        files = [Path(f"{path}{suffix}") for suffix in ("", "-wal", "-shm", ".lock")]
        for file in files:
            file.unlink(missing_ok=True)
        try:
            yield f"sqlite:///{path}"
        finally:
            if not keep:
                for file in files:
                    file.unlink(missing_ok=True)
        return
    db = f"tracker_bench_{name}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{db}"'))
        yield make_url(pg_base).set(database=db).render_as_string(hide_password=False)
    finally:
        if keep:
            print(f"kept PostgreSQL database {db}", file=sys.stderr)
        else:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()
