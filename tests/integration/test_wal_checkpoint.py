"""SQLite WAL checkpoints on the daemon's own thread instead of inside writers' commits."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from structlog.testing import capture_logs

from tracker.bootstrap import build_app
from tracker.settings import DatabaseConfig, Settings
from tracker.store.checkpoint import BACKSTOP_PAGES, WalCheckpointer, background_checkpoints
from tracker.store.uow import UnitOfWork, make_engine, sqlite_file

_PAGE = 4096
_ROW = "x" * 3000  # about one page per row


def _write(engine: Engine, commits: int, rows_per_commit: int) -> None:
    with UnitOfWork(engine) as uow:
        uow.conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS filler (body TEXT)")
        uow.commit()
        for _ in range(commits):
            uow.conn.exec_driver_sql(
                "INSERT INTO filler (body) VALUES " + ",".join(["(?)"] * rows_per_commit),
                tuple([_ROW] * rows_per_commit),
            )
            uow.commit()


def _autocheckpoint(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(text("PRAGMA wal_autocheckpoint")).scalar_one())


def test_writers_with_the_backstop_leave_the_log_past_sqlites_default(tmp_path: Path) -> None:
    """With the backstop, commits no longer checkpoint at SQLite's 1,000 pages of log."""
    path = tmp_path / "t.db"
    engine = make_engine(f"sqlite:///{path}", wal_autocheckpoint=BACKSTOP_PAGES)
    try:
        assert _autocheckpoint(engine) == BACKSTOP_PAGES
        _write(engine, commits=30, rows_per_commit=60)  # ~1,800 pages
        wal = Path(f"{path}-wal").stat().st_size
        assert wal > 1_500 * _PAGE  # SQLite's default would have restarted it at ~1,000
    finally:
        engine.dispose()


def test_default_engine_keeps_sqlites_own_checkpoint_threshold(tmp_path: Path) -> None:
    """Without the option, an engine's writers checkpoint at SQLite's default 1,000 pages."""
    engine = make_engine(f"sqlite:///{tmp_path / 't.db'}")
    try:
        assert _autocheckpoint(engine) == 1000
    finally:
        engine.dispose()


def test_checkpoint_thread_copies_the_log_into_the_database_file(tmp_path: Path) -> None:
    """While the writer's engine is still open, the thread has put every row in the file."""
    path = tmp_path / "t.db"
    engine = make_engine(f"sqlite:///{path}", wal_autocheckpoint=BACKSTOP_PAGES)
    try:
        with background_checkpoints(engine, interval_s=0.01) as checkpointer:
            assert checkpointer is not None
            _write(engine, commits=30, rows_per_commit=60)
        # stopped: its last checkpoint copied the whole log, and the writer's is still open
        assert checkpointer.failures == 0
        assert checkpointer.checkpoints >= 1
        assert checkpointer.last_result is not None
        busy, in_log, copied = checkpointer.last_result
        assert (busy, copied) == (0, in_log)
        # the database file alone, without its log, already holds every row
        alone = tmp_path / "alone.db"
        shutil.copyfile(path, alone)
        with sqlite3.connect(alone) as copy:
            assert copy.execute("SELECT count(*) FROM filler").fetchone() == (1800,)
    finally:
        engine.dispose()


def _wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_failing_checkpoints_are_retried_and_logged_once_until_they_recover(
    tmp_path: Path,
) -> None:
    """Failures are retried each tick, logged once per run of them, and the thread recovers."""
    folder = tmp_path / "not-yet"
    checkpointer = WalCheckpointer(str(folder / "t.db"), interval_s=0.01)
    with capture_logs() as logs:
        checkpointer.start()
        try:
            _wait_until(lambda: checkpointer.failures >= 3)
            folder.mkdir()  # now the database can be opened
            _wait_until(lambda: checkpointer.checkpoints >= 1)
        finally:
            checkpointer.stop()
    events = [entry["event"] for entry in logs]
    assert events.count("wal_checkpoint_failed") == 1
    (recovered,) = [entry for entry in logs if entry["event"] == "wal_checkpoint_recovered"]
    assert recovered["failed"] >= 3


def test_memory_databases_and_servers_get_no_checkpoint_thread() -> None:
    """Only a SQLite file has a log to checkpoint; the context is a no-op otherwise."""
    memory = make_engine("sqlite://")
    server = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert sqlite_file("sqlite:///data/t.db") == "data/t.db"
    assert sqlite_file("sqlite:///file:t.db?mode=ro&uri=true") is None
    try:
        for engine in (memory, server):
            assert sqlite_file(engine.url) is None
            with background_checkpoints(engine) as checkpointer:
                assert checkpointer is None
    finally:
        memory.dispose()
        server.dispose()


def test_only_the_daemons_app_moves_checkpoints_to_the_thread(tmp_path: Path) -> None:
    """``sqlite_checkpoint_thread`` raises the writers' threshold and runs the thread."""
    settings = Settings(database=DatabaseConfig(url=f"sqlite:///{tmp_path / 't.db'}"))
    daemon = build_app(settings, sqlite_checkpoint_thread=True)
    command = build_app(settings)
    try:
        assert _autocheckpoint(daemon.engine) == BACKSTOP_PAGES
        assert _autocheckpoint(command.engine) == 1000
        with daemon.background_checkpoints():
            names = {thread.name for thread in threading.enumerate()}
            assert "wal-checkpoint" in names
        with command.background_checkpoints():
            names = {thread.name for thread in threading.enumerate()}
            assert "wal-checkpoint" not in names
        assert "wal-checkpoint" not in {thread.name for thread in threading.enumerate()}
    finally:
        daemon.close()
        command.close()
