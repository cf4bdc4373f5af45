"""The queries a detection pass starts from: silent parcels, and orders due for a look.

``stalled``: "picked up / in transit / unknown with the last scan older than 48 h, or at
the door (out for delivery, at a station) with the last scan older than 24 h" (the
smallest thresholds any courier or lane is configured with, so a superset the rules still
decide on); it needs ``shipments (status, last_scan_at, order_pk)`` (migration 0003).

``due_orders``: the first batch the periodic pass really reads, active orders whose
``next_check_at`` has come (``tracker.store.orders_repo.iter_due_order_pks``, partial
index ``ix_orders_next_check_active``).

:func:`measure` times them on the schema as migrated; when the stalled index is part of
the schema it also times them without it (dropped inside a transaction that is rolled
back), else with it (created for the measurement and dropped after), so the database is
left as it was either way.
"""

from __future__ import annotations

import statistics
import time
from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CompoundSelect, Select, select, text, union_all
from sqlalchemy.engine import Connection, Engine

from tracker.store.tables import orders, shipments

__all__ = ["PROPOSED_INDEX", "due_orders", "measure", "newly_stalled", "stalled_candidates"]

MOVING = ("picked_up", "in_transit", "unknown")
AT_THE_DOOR = ("out_for_delivery", "ready_for_pickup")
PROPOSED_INDEX = "ix_shipments_status_last_scan"


def stalled_candidates(
    now: datetime, stalled_hours: float = 48, last_mile_hours: float = 24
) -> CompoundSelect[Any]:
    """(shipment id, order pk) of every parcel the stalled rule could fire on at ``now``.

    Two ranges of the covering index, glued with UNION ALL: with OR, PostgreSQL falls back
    to a bitmap scan that visits the table.
    """
    s = shipments.c
    return union_all(
        select(s.id, s.order_pk).where(
            s.status.in_(MOVING), s.last_scan_at < now - timedelta(hours=stalled_hours)
        ),
        select(s.id, s.order_pk).where(
            s.status.in_(AT_THE_DOOR), s.last_scan_at < now - timedelta(hours=last_mile_hours)
        ),
    )


def newly_stalled(
    now: datetime, since: datetime, stalled_hours: float = 48, last_mile_hours: float = 24
) -> CompoundSelect[Any]:
    """Parcels whose silence crossed a stalled threshold between ``since`` and ``now``.

    What an incremental pass needs: the previous pass already saw everything older.
    """
    s = shipments.c

    def crossed(statuses: tuple[str, ...], hours: float) -> Select[Any]:
        span = timedelta(hours=hours)
        return select(s.id, s.order_pk).where(
            s.status.in_(statuses), s.last_scan_at >= since - span, s.last_scan_at < now - span
        )

    return union_all(crossed(MOVING, stalled_hours), crossed(AT_THE_DOOR, last_mile_hours))


def due_orders(now: datetime, batch: int = 500) -> Select[Any]:
    """The periodic pass's first batch: active orders due at ``now``, oldest moment first."""
    o = orders.c
    return (
        select(o.id, o.next_check_at)
        .where(o.active, o.next_check_at <= now)
        .order_by(o.next_check_at, o.id)
        .limit(batch)
    )


def _queries(now: datetime) -> dict[str, Select[Any] | CompoundSelect[Any]]:
    return {
        "all_candidates": stalled_candidates(now),
        "newly_stalled_5min": newly_stalled(now, now - timedelta(minutes=5)),
        "due_orders": due_orders(now),
    }


def _plan(engine: Engine, query: Select[Any] | CompoundSelect[Any]) -> list[str]:
    """The database's plan for the query (``EXPLAIN`` / ``EXPLAIN QUERY PLAN``)."""
    compiled = query.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    params: Any = compiled.construct_params()
    if compiled.positiontup:
        params = tuple(params[name] for name in compiled.positiontup)
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + str(compiled), params).all()
    return [str(row[-1]) for row in rows]


def _timed_runs(
    bind: Engine | Connection, query: Select[Any] | CompoundSelect[Any], runs: int, warmup: int
) -> dict[str, Any]:
    times: list[float] = []
    rows = 0
    with nullcontext(bind) if isinstance(bind, Connection) else bind.connect() as conn:
        for i in range(warmup + runs):
            started = time.perf_counter()
            rows = len(conn.execute(query).all())
            if i >= warmup:
                times.append((time.perf_counter() - started) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, max(0, round(0.95 * len(times)) - 1))]
    return {
        "rows": rows,
        "runs": runs,
        "p50_ms": round(statistics.median(times), 2),
        "p95_ms": round(p95, 2),
        "max_ms": round(times[-1], 2),
    }


def _measure_all(engine: Engine, now: datetime, runs: int, warmup: int) -> dict[str, Any]:
    found = {}
    for name, query in _queries(now).items():
        found[name] = _timed_runs(engine, query, runs, warmup)
        found[name]["plan"] = _plan(engine, query)
    return found


def measure(engine: Engine, now: datetime, *, runs: int = 30, warmup: int = 3) -> dict[str, Any]:
    """p50/p95 of the queries as migrated, and with or without the stalled index for contrast."""
    existing = [ix.name for ix in shipments.indexes if "last_scan_at" in set(ix.columns.keys())]
    result: dict[str, Any] = {
        "queries": {name: str(q.compile(engine)) for name, q in _queries(now).items()},
        "schema_indexes_on_last_scan_at": existing,
        "as_migrated": _measure_all(engine, now, runs, warmup),
    }
    if PROPOSED_INDEX in existing:
        result["with_index"] = result["as_migrated"]
        with engine.connect() as conn:  # transactional DDL on both backends: rolled back
            conn.execute(text(f"DROP INDEX {PROPOSED_INDEX}"))
            result["without_index"] = {
                name: _timed_runs(conn, query, runs, warmup)
                for name, query in _queries(now).items()
                if name != "due_orders"
            }
            conn.rollback()
        return result
    if existing:
        return result
    ddl = f"CREATE INDEX {PROPOSED_INDEX} ON shipments (status, last_scan_at, order_pk)"
    if engine.dialect.name == "postgresql":
        ddl += " INCLUDE (id)"
    with engine.begin() as conn:
        conn.execute(text(ddl))
        conn.execute(text("ANALYZE shipments"))
    try:
        result["with_index"] = _measure_all(engine, now, runs, warmup)
        result["proposed_index"] = ddl
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP INDEX {PROPOSED_INDEX}"))
    return result
