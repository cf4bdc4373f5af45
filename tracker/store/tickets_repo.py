"""Tickets, their history, and the outbox rows written with them."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, bindparam, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from tracker.domain.model import frozen_builder
from tracker.store.sql import driver_rows, insert_ignore, pg_int_array
from tracker.store.tables import alerts, notices, ticket_log, tickets
from tracker.store.types import utc_from_db

__all__ = [
    "OpenTicket",
    "add_alert",
    "add_alerts",
    "add_notice",
    "add_notices",
    "insert_open_ticket",
    "insert_open_tickets",
    "log_ticket",
    "log_tickets",
    "open_tickets_by_order",
    "resolve_ticket",
    "resolve_tickets",
    "unblock_reopens",
    "update_tickets",
]


@dataclass(frozen=True, slots=True)
class OpenTicket:
    """An unresolved ticket, or a resolved one blocking its kind from reopening."""

    id: int
    order_pk: int
    kind: str
    severity: str
    status: str
    opened_at: datetime
    # what re-detection would rewrite, so an unchanged ticket is left alone
    evidence: dict[str, Any] | None = None
    suggested_action: str | None = None
    courier: str | None = None
    tracking_number: str | None = None
    shipment_id: int | None = None


# Read with plain driver SQL, one fixed statement per backend: the poller runs this for
# every claim batch, and compiling an expanding IN of a few hundred ids plus SQLAlchemy's
# per-row result processing (JSON, UTCDateTime) cost more than the query itself.
_OPEN_TICKET_COLUMNS = (
    "id, order_pk, kind, severity, status, opened_at, evidence, suggested_action, courier, "
    "tracking_number, shipment_id"
)
_OPEN_TICKETS_SQL = {
    "postgresql": f"SELECT {_OPEN_TICKET_COLUMNS} FROM tickets "
    "WHERE order_pk = ANY(%(ids)s::bigint[]) AND (status != 'resolved' OR reopen_blocked) "
    "ORDER BY id",
    "sqlite": f"SELECT {_OPEN_TICKET_COLUMNS} FROM tickets "
    "WHERE order_pk IN (SELECT value FROM json_each(?)) "
    "AND (status != 'resolved' OR reopen_blocked = 1) ORDER BY id",
}


_open_ticket = frozen_builder(OpenTicket)


def open_tickets_by_order(
    conn: Connection, order_pks: Iterable[int]
) -> dict[int, dict[str, OpenTicket]]:
    """Unresolved (or reopen-blocked) tickets for these orders, keyed by order then kind."""
    pks = list(order_pks)
    found: dict[int, dict[str, OpenTicket]] = defaultdict(dict)
    if not pks:
        return found
    if conn.dialect.name == "postgresql":
        ids = pg_int_array(pks)
        rows = driver_rows(conn, _OPEN_TICKETS_SQL["postgresql"], {"ids": ids})
    else:
        rows = driver_rows(conn, _OPEN_TICKETS_SQL["sqlite"], (json.dumps(pks),))
    for (
        ticket_id,
        order_pk,
        kind,
        severity,
        status,
        opened_at,
        stored,
        action,
        courier,
        number,
        shipment_id,
    ) in rows:
        mine = found[order_pk]
        if kind in mine and status == "resolved":
            continue  # an unresolved ticket of the kind outranks an older blocking one
        # SQLite keeps JSON as text; psycopg decodes it
        evidence = json.loads(stored) if isinstance(stored, str) else stored
        mine[kind] = _open_ticket(
            ticket_id,
            order_pk,
            kind,
            severity,
            status,
            utc_from_db(opened_at),
            evidence,
            action,
            courier,
            number,
            shipment_id,
        )
    return found


def insert_open_ticket(conn: Connection, values: dict[str, Any]) -> int | None:
    """Open a ticket; returns None when another worker opened the same (order, kind) first."""
    module: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        module.insert(tickets)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=["order_pk", "kind"], index_where=text("status != 'resolved'")
        )
        .returning(tickets.c.id)
    )
    ticket_id = conn.execute(stmt).scalar_one_or_none()
    return int(ticket_id) if ticket_id is not None else None


# PostgreSQL bulk writes send the batch as one JSON document unpacked by json_to_recordset:
# one fixed statement (the driver parses and prepares it once), one parameter (no per-value
# array escaping), whatever the batch size. SQLite runs a prepared executemany instead.
_PG_TYPES: dict[tuple[str, str], str] = {}
_PG_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]


def _pg_type(table: Table, column: str) -> str:
    """The PostgreSQL type name of ``table.column`` (as json_to_recordset must declare it)."""
    key = (table.name, column)
    found = _PG_TYPES.get(key)
    if found is None:
        found = _PG_TYPES[key] = str(table.c[column].type.compile(dialect=_PG_DIALECT))
    return found


def _json_default(value: Any) -> Any:
    """Datetimes as ISO 8601 with their offset (timestamptz reads them exactly)."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime cannot be stored: {value!r}")
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {value!r}")


def _recordset(table: Table, columns: Sequence[str]) -> str:
    """``json_to_recordset(%(rows)s::json) AS v(col type, ...)`` for these columns."""
    spec = ", ".join(f"{c} {_pg_type(table, c)}" for c in columns)
    return f"json_to_recordset(%(rows)s::json) AS v({spec})"


def _rows_param(rows: Sequence[dict[str, Any]]) -> dict[str, str]:
    return {"rows": json.dumps(list(rows), ensure_ascii=False, default=_json_default)}


_OPEN_COLUMNS = (
    "order_pk",
    "shipment_id",
    "courier",
    "tracking_number",
    "kind",
    "severity",
    "evidence",
    "suggested_action",
)
_OPEN_MANY_PG = (
    f"INSERT INTO tickets ({', '.join(_OPEN_COLUMNS)}, status, opened_at, updated_at, "
    "detections, reopen_blocked) "
    f"SELECT {', '.join('v.' + c for c in _OPEN_COLUMNS)}, 'open', %(now)s, %(now)s, 1, false "
    f"FROM {_recordset(tickets, _OPEN_COLUMNS)} "
    "ON CONFLICT (order_pk, kind) WHERE status != 'resolved' DO NOTHING "
    "RETURNING id, order_pk, kind"
)


# SQLite statements built once (SQLAlchemy caches their compiled form): building the
# construct again for every batch cost more than compiling-cache lookups save
_OPEN_MANY_SQLITE = (
    sqlite.insert(tickets)
    .on_conflict_do_nothing(
        index_elements=["order_pk", "kind"], index_where=text("status != 'resolved'")
    )
    .returning(tickets.c.id, tickets.c.order_pk, tickets.c.kind)
)


def insert_open_tickets(
    conn: Connection, rows: Sequence[dict[str, Any]], now: datetime
) -> dict[tuple[int, str], int]:
    """Open tickets (status open, opened and updated ``now``) in one statement.

    Each row has the keys of ``_OPEN_COLUMNS``. Returns (order pk, kind) -> id of those
    inserted: a ticket another worker opened first for the same (order, kind) is skipped.
    """
    if not rows:
        return {}
    if conn.dialect.name == "postgresql":
        found = conn.exec_driver_sql(_OPEN_MANY_PG, {**_rows_param(rows), "now": now})
    else:
        constant = {"status": "open", "opened_at": now, "updated_at": now, "detections": 1}
        found = conn.execute(
            _OPEN_MANY_SQLITE, [{**r, **constant, "reopen_blocked": False} for r in rows]
        )
    return {(int(order_pk), kind): int(i) for i, order_pk, kind in found}


_UPDATE_COLUMNS = (
    "evidence",
    "updated_at",
    "suggested_action",
    "courier",
    "tracking_number",
    "shipment_id",
    "severity",
)
_UPDATE_MANY_PG = (
    "UPDATE tickets SET detections = tickets.detections + 1, "
    f"{', '.join(f'{c} = v.{c}' for c in _UPDATE_COLUMNS)} "
    f"FROM {_recordset(tickets, ('id', *_UPDATE_COLUMNS))} WHERE tickets.id = v.id"
)
_UPDATE_MANY = (
    update(tickets)
    .where(tickets.c.id == bindparam("t_id"))
    .values(
        detections=tickets.c.detections + 1,
        **{c: bindparam(f"t_{c}", type_=tickets.c[c].type) for c in _UPDATE_COLUMNS},
    )
)


def update_tickets(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Refresh open tickets in one statement: each row has ``id`` and ``_UPDATE_COLUMNS``."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_UPDATE_MANY_PG, _rows_param(rows))
    else:
        conn.execute(_UPDATE_MANY, [{f"t_{k}": v for k, v in row.items()} for row in rows])


def resolve_tickets(
    conn: Connection, ticket_ids: Sequence[int], now: datetime, resolution: str
) -> list[int]:
    """Close these tickets with one reason; returns the ids that were still open."""
    if not ticket_ids:
        return []
    result = conn.execute(
        _RESOLVE_MANY, {"r_ids": list(ticket_ids), "r_now": now, "r_resolution": resolution}
    )
    return sorted(int(i) for i in result.scalars())


_RESOLVE_MANY = (
    update(tickets)
    .where(
        and_(tickets.c.id.in_(bindparam("r_ids", expanding=True)), tickets.c.status != "resolved")
    )
    .values(
        status="resolved",
        resolved_at=bindparam("r_now", type_=tickets.c.resolved_at.type),
        updated_at=bindparam("r_now", type_=tickets.c.updated_at.type),
        resolution=bindparam("r_resolution", type_=tickets.c.resolution.type),
        reopen_blocked=False,
    )
    .returning(tickets.c.id)
)


def unblock_reopens(conn: Connection, ticket_ids: Sequence[int]) -> None:
    """The conditions cleared once: these kinds may open a fresh ticket next time they fire."""
    if ticket_ids:
        conn.execute(_UNBLOCK_MANY, {"ids": list(ticket_ids)})


_UNBLOCK_MANY = (
    update(tickets)
    .where(tickets.c.id.in_(bindparam("ids", expanding=True)))
    .values(reopen_blocked=False)
)


def resolve_ticket(
    conn: Connection,
    ticket_id: int,
    now: datetime,
    resolution: str,
    note: str | None = None,
    *,
    block_reopen: bool = False,
) -> bool:
    """Close a ticket with the reason; False when it was already resolved."""
    values: dict[str, Any] = {
        "status": "resolved",
        "resolved_at": now,
        "updated_at": now,
        "resolution": resolution,
        "reopen_blocked": block_reopen,
    }
    if note is not None:
        values["note"] = note
    result = conn.execute(
        update(tickets)
        .where(and_(tickets.c.id == ticket_id, tickets.c.status != "resolved"))
        .values(**values)
    )
    return result.rowcount == 1


def log_ticket(
    conn: Connection,
    ticket_id: int,
    at: datetime,
    action: str,
    *,
    severity: str | None = None,
    note: str | None = None,
    actor: str = "system",
) -> None:
    """Append to a ticket's history."""
    conn.execute(
        ticket_log.insert().values(
            ticket_id=ticket_id, at=at, action=action, severity=severity, note=note, actor=actor
        )
    )


def log_tickets(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Append several history rows in one statement (keys as :func:`log_ticket`'s)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        columns = list(rows[0])
        conn.exec_driver_sql(
            f"INSERT INTO ticket_log ({', '.join(columns)}) "
            f"SELECT {', '.join('v.' + c for c in columns)} FROM {_recordset(ticket_log, columns)}",
            _rows_param(rows),
        )
    else:
        conn.execute(ticket_log.insert(), list(rows))


def add_notices(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Queue several buyer notices; repeated idempotency keys are ignored. Returns how many."""
    return _insert_ignore_many(conn, notices, rows)


def add_alerts(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Queue several agent alerts; repeated idempotency keys are ignored. Returns how many."""
    return _insert_ignore_many(conn, alerts, rows)


def _insert_ignore_many(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> int:
    """Insert rows (all with the same keys), skipping those whose idempotency key exists.

    Returns how many were added (both drivers count an executemany exactly).
    """
    if not rows:
        return 0
    if conn.dialect.name == "postgresql":
        columns = list(rows[0])
        sql = (
            f"INSERT INTO {table.name} ({', '.join(columns)}) "
            f"SELECT {', '.join('v.' + c for c in columns)} FROM {_recordset(table, columns)} "
            "ON CONFLICT (idempotency_key) DO NOTHING"
        )
        return int(conn.exec_driver_sql(sql, _rows_param(rows)).rowcount)
    stmt = _IGNORE_SQLITE.get(table.name)
    if stmt is None:
        stmt = sqlite.insert(table).on_conflict_do_nothing(index_elements=["idempotency_key"])
        _IGNORE_SQLITE[table.name] = stmt
    return int(conn.execute(stmt, list(rows)).rowcount)


# table name -> its SQLite INSERT ... ON CONFLICT (idempotency_key) DO NOTHING, built once
_IGNORE_SQLITE: dict[str, Any] = {}


def add_notice(conn: Connection, values: dict[str, Any]) -> bool:
    """Queue a buyer notice; a repeated idempotency key is ignored. True if queued now."""
    return insert_ignore(conn, notices, [values], ["idempotency_key"]) == 1


def add_alert(conn: Connection, rows: Sequence[dict[str, Any]]) -> int:
    """Queue agent alerts; repeated idempotency keys are ignored."""
    return insert_ignore(conn, alerts, list(rows), ["idempotency_key"])
