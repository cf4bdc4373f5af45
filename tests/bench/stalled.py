"""The query a detection pass should start from: live parcels with no scan for too long.

Instead of loading every active order and running every rule in Python, a pass can ask
the database for the few parcels a time-based rule could fire on. For ``stalled`` that is
"picked up / in transit / unknown with the last scan older than 48 h, or at the door (out
for delivery, at a station) with the last scan older than 24 h". The thresholds are the
smallest any courier or lane is configured with, so the query returns a superset and the
rules still decide.

:func:`measure` times the query on the schema as migrated, then with the index it needs
(``shipments (status, last_scan_at)``, which the schema does not have), and drops that
index again so the database is left as it was.
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, or_, select, text
from sqlalchemy.engine import Engine

from tracker.store.tables import shipments

__all__ = ["PROPOSED_INDEX", "measure", "newly_stalled", "stalled_candidates"]

MOVING = ("picked_up", "in_transit", "unknown")
AT_THE_DOOR = ("out_for_delivery", "ready_for_pickup")
PROPOSED_INDEX = "ix_shipments_status_last_scan"


def stalled_candidates(
    now: datetime, stalled_hours: float = 48, last_mile_hours: float = 24
) -> Select[Any]:
    """(shipment id, order pk) of every parcel the stalled rule could fire on at ``now``."""
    s = shipments.c
    return select(s.id, s.order_pk).where(
        or_(
            and_(s.status.in_(MOVING), s.last_scan_at < now - timedelta(hours=stalled_hours)),
            and_(
                s.status.in_(AT_THE_DOOR),
                s.last_scan_at < now - timedelta(hours=last_mile_hours),
            ),
        )
    )


def newly_stalled(
    now: datetime, since: datetime, stalled_hours: float = 48, last_mile_hours: float = 24
) -> Select[Any]:
    """Parcels whose silence crossed a stalled threshold between ``since`` and ``now``.

    What an incremental pass needs: the previous pass already saw everything older.
    """
    s = shipments.c

    def crossed(hours: float) -> Any:
        span = timedelta(hours=hours)
        return and_(s.last_scan_at >= since - span, s.last_scan_at < now - span)

    return select(s.id, s.order_pk).where(
        or_(
            and_(s.status.in_(MOVING), crossed(stalled_hours)),
            and_(s.status.in_(AT_THE_DOOR), crossed(last_mile_hours)),
        )
    )


def _queries(now: datetime) -> dict[str, Select[Any]]:
    return {
        "all_candidates": stalled_candidates(now),
        "newly_stalled_5min": newly_stalled(now, now - timedelta(minutes=5)),
    }


def _plan(engine: Engine, query: Select[Any]) -> list[str]:
    """The database's plan for the query (``EXPLAIN`` / ``EXPLAIN QUERY PLAN``)."""
    compiled = query.compile(dialect=engine.dialect, compile_kwargs={"render_postcompile": True})
    params: Any = compiled.construct_params()
    if compiled.positiontup:
        params = tuple(params[name] for name in compiled.positiontup)
    prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + str(compiled), params).all()
    return [str(row[-1]) for row in rows]


def _timed_runs(engine: Engine, query: Select[Any], runs: int, warmup: int) -> dict[str, Any]:
    times: list[float] = []
    rows = 0
    with engine.connect() as conn:
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
    """p50/p95 of the candidate queries as migrated and with the proposed index."""
    existing = [ix.name for ix in shipments.indexes if "last_scan_at" in set(ix.columns.keys())]
    result: dict[str, Any] = {
        "queries": {name: str(q.compile(engine)) for name, q in _queries(now).items()},
        "schema_indexes_on_last_scan_at": existing,
        "as_migrated": _measure_all(engine, now, runs, warmup),
    }
    if existing:
        return result
    ddl = f"CREATE INDEX {PROPOSED_INDEX} ON shipments (status, last_scan_at)"
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
