"""Engine creation and the unit of work: one transaction per use case, committed explicitly."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

__all__ = ["UnitOfWork", "make_engine"]


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine tuned for the backend: WAL and a busy timeout on SQLite, pooled PostgreSQL."""
    if url.startswith("sqlite"):
        kwargs: dict[str, Any] = {"connect_args": {"timeout": 30}}
        if url in ("sqlite://", "sqlite:///:memory:"):
            kwargs["poolclass"] = StaticPool
            kwargs["connect_args"]["check_same_thread"] = False
        engine = create_engine(url, echo=echo, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class UnitOfWork:
    """A connection in one transaction; leaving the block without ``commit()`` rolls back."""

    conn: Connection

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def __enter__(self) -> Self:
        self.conn = self.engine.connect()
        self._tx = self.conn.begin()
        return self

    def commit(self) -> None:
        """Make everything done in this unit durable, then start a fresh transaction."""
        self._tx.commit()
        self._tx = self.conn.begin()

    def rollback(self) -> None:
        """Undo everything since the last commit."""
        self._tx.rollback()
        self._tx = self.conn.begin()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._tx.is_active:
                self._tx.rollback()
        finally:
            self.conn.close()
