"""Small SQL helpers that hide the few differences between SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

__all__ = ["insert_ignore"]


def insert_ignore(
    conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]
) -> int:
    """Insert rows, silently skipping those that clash on ``keys``; returns rows inserted."""
    if not rows:
        return 0
    dialect = conn.dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(table).on_conflict_do_nothing(index_elements=keys)
    result = conn.execute(stmt, rows)
    return max(result.rowcount, 0)
