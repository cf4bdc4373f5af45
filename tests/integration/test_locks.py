"""Singleton locks, the SQLite daemon lock and lease release on real databases."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from tests.conftest import at
from tests.fakes import make_order
from tracker.store import orders_repo, shipments_repo
from tracker.store.locks import (
    AlreadyRunningError,
    DaemonLock,
    advisory_key,
    daemon_lock_for,
    release_claims_held_by,
    singleton,
)
from tracker.store.tables import shipments
from tracker.store.uow import UnitOfWork, make_engine

NOW = at("2026-09-12 10:00")


def test_singleton_admits_one_holder_at_a_time(engine: Engine, db_url: str) -> None:
    """On PostgreSQL a second holder is refused until the first lets go; SQLite always admits."""
    other = make_engine(db_url)
    try:
        with singleton(engine, "report") as first:
            assert first
            with singleton(other, "report") as second:
                assert second is (engine.dialect.name == "sqlite")
            with singleton(other, "housekeeping") as unrelated:
                assert unrelated
        with singleton(other, "report") as after:
            assert after
    finally:
        other.dispose()


def test_postgresql_advisory_lock_dies_with_its_session(pg_database: str) -> None:
    """A replica killed while holding a singleton frees it: the lock ends with its session."""
    engine = make_engine(pg_database)
    victim = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    key = advisory_key("report")
    assert victim.execute(select(func.pg_try_advisory_lock(key))).scalar()
    pid = victim.execute(select(func.pg_backend_pid())).scalar()
    with singleton(engine, "report") as taken:
        assert not taken
    with engine.connect() as admin:
        # with a timeout it returns once the backend is gone (PostgreSQL 14+), not when
        # signalled: the lock is released only as the session ends
        assert admin.execute(select(func.pg_terminate_backend(pid, 5000))).scalar()
    victim.invalidate()
    victim.close()
    with singleton(engine, "report") as taken:
        assert taken
    engine.dispose()


def test_daemon_lock_refuses_a_second_holder_and_names_the_first(tmp_path: Path) -> None:
    """The lock file holds the pid; a second lock on the same database is refused clearly."""
    database = tmp_path / "tracker.db"
    first = DaemonLock(database)
    first.acquire()
    try:
        with pytest.raises(AlreadyRunningError) as refused:
            DaemonLock(database).acquire()
        message = str(refused.value)
        assert str(database) in message and "pid" in message and "PostgreSQL" in message
    finally:
        first.release()
    with DaemonLock(database):
        pass  # free again once released


def test_daemon_lock_applies_to_sqlite_files_only(tmp_path: Path, db_url: str) -> None:
    """File databases get a lock file beside them; memory and PostgreSQL need none."""
    file_engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    memory = make_engine("sqlite://")
    server = make_engine(db_url)
    try:
        lock = daemon_lock_for(file_engine)
        assert lock is not None and lock.path == (tmp_path / "x.db.lock").resolve()
        assert daemon_lock_for(memory) is None
        assert (daemon_lock_for(server) is None) is (server.dialect.name == "postgresql")
    finally:
        for e in (file_engine, memory, server):
            e.dispose()


def test_release_claims_frees_only_this_workers_rows(engine: Engine) -> None:
    """Leases held by a stopping worker are given back; another worker's stay put."""
    orders = [
        make_order(
            f"L{i}",
            at("2026-09-10 10:00"),
            tracking_number=f"YT00{i}",
            shipped_at=at("2026-09-11 09:00"),
            phone=f"1380000000{i}",
        )
        for i in range(4)
    ]
    with UnitOfWork(engine) as uow:
        orders_repo.upsert_orders(uow.conn, orders, NOW)
        mine = shipments_repo.claim_due_shipments(uow.conn, NOW, 3, timedelta(minutes=2), "me")
        theirs = shipments_repo.claim_due_shipments(uow.conn, NOW, 3, timedelta(minutes=2), "you")
        uow.commit()
        assert len(mine) == 3 and len(theirs) == 1
        released = release_claims_held_by(uow.conn, "me")
        uow.commit()
        holders = sorted(str(h) for h in uow.conn.execute(select(shipments.c.claimed_by)).scalars())
    assert released == {"shipments": 3, "notices": 0, "alerts": 0}
    assert holders == ["None", "None", "None", "you"]
