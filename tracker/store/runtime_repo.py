"""Small runtime facts kept in the database: job heartbeats, provider health."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from tracker.store.tables import runtime_state

__all__ = ["read_state", "record_heartbeat", "write_state"]


def write_state(conn: Connection, key: str, value: dict[str, Any], now: datetime) -> None:
    """Insert or replace one runtime fact."""
    module: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = module.insert(runtime_state).values(key=key, value=value, updated_at=now)
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=["key"], set_={"value": stmt.excluded.value, "updated_at": now}
        )
    )


def read_state(conn: Connection, key: str) -> tuple[dict[str, Any], datetime] | None:
    """One runtime fact and when it was written, or None."""
    row = conn.execute(
        select(runtime_state.c.value, runtime_state.c.updated_at).where(runtime_state.c.key == key)
    ).first()
    return (dict(row.value), row.updated_at) if row else None


def record_heartbeat(conn: Connection, job: str, now: datetime, *, ok: bool) -> None:
    """Note that ``job`` ran at ``now`` (and whether it succeeded)."""
    previous = read_state(conn, f"heartbeat:{job}")
    last_ok = now.isoformat() if ok else (previous[0].get("last_ok") if previous else None)
    write_state(
        conn, f"heartbeat:{job}", {"at": now.isoformat(), "ok": ok, "last_ok": last_ok}, now
    )
