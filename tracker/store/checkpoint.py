"""SQLite WAL checkpoints on a thread of their own, so no committing writer waits on them.

In WAL mode a commit appends the changed pages to the ``-wal`` file; a *checkpoint* copies
them back into the database file and fsyncs it. By default SQLite makes the writer whose
commit takes the log past 1,000 pages do that work, inside its commit. In the daemon that
writer is the event loop, so every request in flight waits for the copy and the fsync: 5–8 %
of poll throughput in the benchmark, and a stall as long as the disk's fsync on a slow one.

The daemon instead checkpoints every half second on a thread with its own connection (the
``sqlite3`` module releases the GIL while SQLite works) and raises its writers' own
threshold to :data:`BACKSTOP_PAGES`, which only a stuck checkpointer lets the log reach.
The checkpoints are PASSIVE: they never wait for a reader or a writer, so the worst a busy
moment costs is a checkpoint that copies less, and the next one catches up.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from sqlalchemy.engine import Engine

from tracker.store.uow import sqlite_file

__all__ = ["BACKSTOP_PAGES", "WalCheckpointer", "background_checkpoints"]

_log = structlog.get_logger("tracker.store")

BACKSTOP_PAGES = 10_000  # ~40 MB of log at 4 KiB pages before a writer checkpoints itself


class WalCheckpointer:
    """Runs ``PRAGMA wal_checkpoint(PASSIVE)`` on ``path`` every ``interval_s`` on its thread.

    A failing checkpoint is retried at the next tick; the thread never dies of one. The
    first failure of a run of them is logged, and so is the recovery (not every tick).
    ``stop()`` runs a last checkpoint, so the log a stopping daemon leaves is short.
    """

    def __init__(self, path: str, interval_s: float = 0.5) -> None:
        self.path = path
        self.interval_s = interval_s
        self.checkpoints = 0
        self.failures = 0
        self._failing = 0  # consecutive failures, for logging the first and the recovery
        # the last checkpoint's (busy, frames in the log, frames of it in the database)
        self.last_result: tuple[int, int, int] | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the checkpoint thread (a daemon thread: it never holds up an exit)."""
        self._thread = threading.Thread(target=self._run, name="wal-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread after one last checkpoint, and wait for it."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        conn: sqlite3.Connection | None = None
        try:
            while True:
                stopping = self._stopping.wait(self.interval_s)
                conn = self._checkpoint(conn)
                if stopping:
                    break
        finally:
            if conn is not None:
                conn.close()

    def _checkpoint(self, conn: sqlite3.Connection | None) -> sqlite3.Connection | None:
        """One checkpoint on ``conn`` (opened if needed); returns the connection to reuse."""
        try:
            if conn is None:
                conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
            row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:
            self.failures += 1
            self._failing += 1
            if self._failing == 1:
                _log.warning("wal_checkpoint_failed", database=self.path, error=str(exc))
            if conn is not None:
                conn.close()  # a fresh connection next time, in case this one is the problem
            return None
        if self._failing:
            _log.info("wal_checkpoint_recovered", database=self.path, failed=self._failing)
            self._failing = 0
        self.checkpoints += 1
        self.last_result = (int(row[0]), int(row[1]), int(row[2])) if row else None
        return conn


@contextmanager
def background_checkpoints(
    engine: Engine, interval_s: float = 0.5
) -> Iterator[WalCheckpointer | None]:
    """Checkpoint ``engine``'s SQLite file on a thread for the block; a no-op otherwise.

    Pair it with an engine whose writers' threshold is :data:`BACKSTOP_PAGES`
    (``make_engine(url, wal_autocheckpoint=BACKSTOP_PAGES)``); with the default threshold
    the writers would still checkpoint themselves whenever a burst outran the thread.
    """
    path = sqlite_file(engine.url)
    if path is None:
        yield None
        return
    checkpointer = WalCheckpointer(path, interval_s)
    checkpointer.start()
    try:
        yield checkpointer
    finally:
        checkpointer.stop()
