"""Alembic environment: runs migrations on the connection or URL the caller hands over."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from tracker.store.tables import metadata

config = context.config
target_metadata = metadata


def run_migrations_online() -> None:
    """Migrate using the caller's connection if given, else the configured URL."""
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `tracker db upgrade`")
run_migrations_online()
