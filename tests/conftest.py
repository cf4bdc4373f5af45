"""Shared fixtures: databases on SQLite and (when configured) PostgreSQL, clocks, sample data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from tracker.store import migrate
from tracker.store.tables import metadata
from tracker.store.uow import make_engine

SHANGHAI = ZoneInfo("Asia/Shanghai")
FIXTURES = Path(__file__).parent / "fixtures"
PG_ENV = "TRACKER_TEST_PG_URL"


def pg_base_url() -> str | None:
    """The PostgreSQL URL tests may use, or None to skip them (never None in CI)."""
    url = os.environ.get(PG_ENV)
    if not url and os.environ.get("TRACKER_REQUIRE_PG"):
        pytest.fail(f"PostgreSQL tests are required here but {PG_ENV} is not set")
    return url


@contextmanager
def empty_pg_database(prefix: str) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped on leaving (skips without one)."""
    base = pg_base_url()
    if not base:
        pytest.skip(f"PostgreSQL: set {PG_ENV} to run")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, migrated to head, dropped after."""
    with empty_pg_database("tracker_t") as url:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url


def _truncate(engine: Engine) -> None:
    names = ", ".join(t.name for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database URL: a temp SQLite file, or the session's PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'tracker.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
        return
    url = request.getfixturevalue("pg_database")
    engine = make_engine(url)
    _truncate(engine)
    engine.dispose()
    yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on ``db_url``."""
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def at(text_time: str) -> datetime:
    """A Shanghai-time datetime from ``YYYY-MM-DD HH:MM``."""
    return datetime.fromisoformat(text_time).replace(tzinfo=SHANGHAI)
