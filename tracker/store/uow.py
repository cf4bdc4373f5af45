"""Engine creation and the unit of work: one transaction per use case, committed explicitly."""

from __future__ import annotations

from functools import partial
from types import TracebackType
from typing import Any, Self

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

__all__ = ["UnitOfWork", "make_engine", "sqlite_file"]

_WRITER = "tracker_unit_of_work"


def sqlite_file(url: URL | str) -> str | None:
    """The file of a SQLite database URL; ``None`` for memory, URI filenames and servers."""
    url = make_url(url)
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def make_engine(url: str, *, echo: bool = False, wal_autocheckpoint: int | None = None) -> Engine:
    """An engine tuned for the backend: WAL and a busy timeout on SQLite, pooled PostgreSQL.

    ``wal_autocheckpoint`` sets SQLite's log size (in pages) at which a committing writer
    checkpoints by itself; leave it ``None`` (SQLite's 1,000) unless something else
    checkpoints (:mod:`tracker.store.checkpoint`).
    """
    if url.startswith("sqlite"):
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 30}}
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs["poolclass"] = StaticPool
            kwargs["connect_args"]["check_same_thread"] = False
        engine = create_engine(url, echo=echo, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        if wal_autocheckpoint is not None:
            event.listen(engine, "connect", partial(_sqlite_autocheckpoint, wal_autocheckpoint))
        event.listen(engine, "begin", _sqlite_begin_immediate)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # pysqlite's own deferred BEGIN lets a read-then-write transaction fail at once with
    # "database is locked" when another writer commits first; we begin ourselves instead.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def _sqlite_autocheckpoint(pages: int, dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute(f"PRAGMA wal_autocheckpoint={int(pages)}")
    cur.close()


def _sqlite_begin_immediate(conn: Connection) -> None:
    # A unit of work takes the write lock up front (IMMEDIATE), so concurrent writers queue
    # on busy_timeout instead of failing mid-transaction; plain reads stay deferred and, with
    # WAL, never wait for a writer.
    immediate = conn.get_execution_options().get(_WRITER, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class UnitOfWork:
    """A connection whose transaction begins on first use and ends on ``commit()``.

    Leaving the block without ``commit()`` rolls back. Call ``commit()`` (or ``release()``)
    before awaiting network I/O: no transaction, and so no SQLite write lock, is ever held
    while waiting on a provider.
    """

    conn: Connection

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def __enter__(self) -> Self:
        self.conn = self.engine.connect().execution_options(**{_WRITER: True})
        return self

    def commit(self) -> None:
        """Make everything done so far durable; the next statement starts a new transaction."""
        self.conn.commit()

    def release(self) -> None:
        """End a read-only stretch (same as commit) before waiting on something slow."""
        self.conn.commit()

    def rollback(self) -> None:
        """Undo everything since the last commit."""
        self.conn.rollback()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.conn.in_transaction():
                self.conn.rollback()
        finally:
            self.conn.close()
