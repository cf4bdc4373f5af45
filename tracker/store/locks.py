"""Process-level exclusion: one daemon per SQLite file, singleton jobs across PostgreSQL replicas.

- SQLite serves one daemon: an exclusive ``flock`` on ``<database>.lock`` next to the
  database file refuses a second ``tracker run`` with a clear error. The kernel drops the
  lock when the holder dies, so a crash never leaves a stale lock behind.
- On PostgreSQL several replicas share the work. Row claims (``FOR UPDATE SKIP LOCKED`` plus
  a lease) split polling and dispatch; jobs that must run on one replica at a time (daily
  report, housekeeping, the periodic detection pass, migrations) take a session-level
  advisory lock on a dedicated connection. The server drops it when that connection ends.
- On shutdown a worker gives back the row leases it still holds, so other replicas pick the
  rows up at once instead of waiting for the leases to expire.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine

from tracker.errors import TrackerError
from tracker.store.tables import alerts, notices, shipments
from tracker.store.uow import sqlite_file

__all__ = [
    "AlreadyRunningError",
    "DaemonLock",
    "advisory_key",
    "daemon_lock_for",
    "release_claims_held_by",
    "singleton",
]


class AlreadyRunningError(TrackerError, RuntimeError):
    """Another daemon already owns this SQLite database."""


class DaemonLock:
    """An exclusive lock file next to a SQLite database; one holder per machine and file."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + ".lock")
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`AlreadyRunningError` naming the current holder."""
        fh = self.path.open("a+", encoding="utf-8")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise AlreadyRunningError(
                f"{self.database} is already used by a running tracker daemon ({holder}; lock "
                f"file {self.path}). SQLite serves one daemon: stop the other one, or move to "
                "PostgreSQL to run several replicas."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        """Drop the lock (closing the file releases the flock)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> DaemonLock:
        self.acquire()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.release()


def daemon_lock_for(engine: Engine) -> DaemonLock | None:
    """The lock a daemon on this database must hold: a file lock for SQLite files, else None."""
    database = sqlite_file(engine.url)
    return None if database is None else DaemonLock(Path(database).resolve())


def advisory_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for a job name."""
    digest = hashlib.sha256(f"tracker:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@contextmanager
def singleton(engine: Engine, name: str, *, wait: bool = False) -> Iterator[bool]:
    """Hold the cluster-wide lock ``name`` for the block; yields False if another holds it.

    With ``wait`` the call blocks until the lock is free (used for migrations). On SQLite
    the daemon lock file already makes the process the only worker, so this yields True.
    """
    if engine.dialect.name != "postgresql":
        yield True
        return
    key = advisory_key(name)
    # a dedicated autocommit connection: the lock lives as long as this session, and no
    # transaction is left idle while the job runs on its own connections
    conn: Connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    held = False
    try:
        lock = func.pg_advisory_lock(key) if wait else func.pg_try_advisory_lock(key)
        result = conn.execute(select(lock)).scalar()
        held = bool(result) if not wait else True
        yield held
    finally:
        try:
            if held:
                conn.execute(select(func.pg_advisory_unlock(key)))
        except Exception:
            conn.invalidate()  # closing the session is what frees the lock then
            raise
        finally:
            conn.close()


def release_claims_held_by(conn: Connection, worker: str) -> dict[str, int]:
    """Give back every row lease ``worker`` still holds; returns how many per table."""
    released: dict[str, int] = {}
    for table in (shipments, notices, alerts):
        result = conn.execute(
            update(table)
            .where(table.c.claimed_by == worker)
            .values(claimed_until=None, claimed_by=None)
        )
        released[table.name] = result.rowcount or 0
    return released
