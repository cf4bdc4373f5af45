"""Migration 0005: shipments pages keep free room on PostgreSQL; SQLite is left alone."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text
from sqlalchemy.engine import Engine

from tests.conftest import empty_pg_database
from tracker.store import migrate
from tracker.store.uow import make_engine


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty database of its own (migrations move up and down on it)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'tracker.db'}")
        yield engine
        engine.dispose()
        return
    with empty_pg_database("tracker_ff") as url:
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def _fillfactor(engine: Engine) -> str | None:
    """The fillfactor set on shipments (PostgreSQL), or None when none is set."""
    with engine.connect() as conn:
        options = conn.execute(
            text("SELECT reloptions FROM pg_class WHERE relname = 'shipments'")
        ).scalar_one()
    found = [o.split("=", 1)[1] for o in options or () if o.startswith("fillfactor=")]
    return found[0] if found else None


def _downgrade(engine: Engine, revision: str) -> None:
    """Alembic downgrade to ``revision`` in one transaction."""
    cfg = migrate.alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


def test_upgrade_sets_and_downgrade_resets_the_fillfactor(fresh_engine: Engine) -> None:
    """0005 gives shipments fillfactor 80 on PostgreSQL, its downgrade the default again."""
    migrate.upgrade(fresh_engine, "0004")
    migrate.upgrade(fresh_engine)
    assert migrate.current_revision(fresh_engine) == migrate.head_revision()
    postgresql = fresh_engine.dialect.name == "postgresql"
    if postgresql:
        assert _fillfactor(fresh_engine) == "80"
    _downgrade(fresh_engine, "0004")
    assert migrate.current_revision(fresh_engine) == "0004"
    if postgresql:
        assert _fillfactor(fresh_engine) is None
    migrate.upgrade(fresh_engine)
    assert migrate.current_revision(fresh_engine) == migrate.head_revision()
