"""Small SQL helpers that hide the few differences between SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from tracker.errors import NotFoundError

__all__ = [
    "claim_rows",
    "driver_cursor",
    "driver_rows",
    "insert_ignore",
    "pg_bool_array",
    "pg_int_array",
    "pg_time_array",
    "requeue",
]


def driver_cursor(conn: Connection) -> Any:
    """The driver's own cursor on ``conn``, inside the connection's SQLAlchemy transaction.

    For hot paths that send fixed SQL and read plain tuples without SQLAlchemy's per-row
    work. A transaction is begun first if none is, as SQLAlchemy would (with the unit of
    work's BEGIN IMMEDIATE on SQLite), so the statement commits or rolls back with the rest.
    """
    if not conn.in_transaction():
        conn.begin()
    return conn.connection.driver_connection.cursor()  # type: ignore[union-attr]


def driver_rows(conn: Connection, sql: str, params: Any) -> list[tuple[Any, ...]]:
    """Run a read in the connection's transaction on the driver's own cursor: plain tuples.

    SQLAlchemy's ``Row`` objects cost more to make and to unpack than the driver's tuples,
    which the detection loaders read by the thousand per batch. ``sql`` and ``params`` are
    in the driver's own style (``?`` for SQLite, ``%(name)s`` for psycopg).
    """
    cursor = driver_cursor(conn)
    try:
        cursor.execute(sql, params)
        rows: list[tuple[Any, ...]] = cursor.fetchall()
    finally:
        cursor.close()
    return rows


# Arrays go to PostgreSQL as text literals cast in the statement (``%(ids)s::bigint[]``):
# psycopg's list dumper inspects and converts every element in Python, which cost more
# than the statements themselves at a few hundred orders per batch.
def pg_int_array(values: Iterable[int]) -> str:
    """``{1,2,3}``: a bigint[] literal."""
    return "{" + ",".join(map(str, values)) + "}"


def pg_bool_array(values: Iterable[bool]) -> str:
    """``{t,f}``: a boolean[] literal."""
    return "{" + ",".join("t" if v else "f" for v in values) + "}"


def pg_time_array(values: Iterable[datetime | None]) -> str:
    """``{"2026-11-26T10:00:00+08:00",NULL}``: a timestamptz[] literal (aware times, exact)."""
    return "{" + ",".join("NULL" if v is None else f'"{v.isoformat()}"' for v in values) + "}"


def insert_ignore(
    conn: Connection, table: Table, rows: list[dict[str, Any]], keys: list[str]
) -> int:
    """Insert rows, silently skipping those that clash on ``keys``; returns rows inserted."""
    if not rows:
        return 0
    dialect = conn.dialect.name
    module: Any = postgresql if dialect == "postgresql" else sqlite
    stmt = module.insert(table).on_conflict_do_nothing(index_elements=keys)
    # rowcount is unreliable for executemany; RETURNING counts exactly what was inserted
    result = conn.execute(stmt.returning(table.c.id), rows)
    return len(result.all())


def claim_rows(
    conn: Connection,
    table: Table,
    due: ColumnElement[bool],
    order_by: ColumnElement[Any],
    *,
    limit: int,
    now: datetime,
    lease: timedelta,
    worker: str,
) -> list[int]:
    """Lease up to ``limit`` due rows for ``worker``; concurrent workers never share a row.

    The table needs ``claimed_until`` and ``claimed_by`` columns; an expired lease counts as
    free, so rows held by a killed process come back by themselves. On PostgreSQL candidates
    are locked with ``FOR UPDATE SKIP LOCKED``; on SQLite the single writer makes the UPDATE
    itself the claim.
    """
    free = or_(table.c.claimed_until.is_(None), table.c.claimed_until < now)
    candidates = select(table.c.id).where(and_(due, free)).order_by(order_by).limit(limit)
    if conn.dialect.name == "postgresql":
        candidates = candidates.with_for_update(skip_locked=True)
    return list(
        conn.execute(
            update(table)
            .where(table.c.id.in_(candidates.scalar_subquery()))
            .values(claimed_until=now + lease, claimed_by=worker)
            .returning(table.c.id)
        ).scalars()
    )


def requeue(
    conn: Connection,
    table: Table,
    row_id: int,
    *,
    noun: str,
    from_status: str,
    due_column: str,
    now: datetime,
) -> str:
    """Queue a ``from_status`` outbox row again with fresh attempts; says what happened.

    Raises :class:`tracker.errors.NotFoundError` when there is no such row.
    """
    status = conn.execute(select(table.c.status).where(table.c.id == row_id)).scalar()
    if status is None:
        raise NotFoundError(f"{noun} {row_id} does not exist")
    if status != from_status:
        return f"{noun} {row_id} is {status}, not {from_status}: nothing to retry"
    conn.execute(
        update(table)
        .where(table.c.id == row_id)
        .values(
            {
                "status": "queued",
                "attempts": 0,
                due_column: now,
                "reason": "retry requested",
                "claimed_until": None,
                "claimed_by": None,
            }
        )
    )
    return f"{noun} {row_id} queued again"
