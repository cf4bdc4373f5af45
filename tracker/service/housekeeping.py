"""Retention: drop old scans of finished orders, then whole closed orders, in small batches.

What is removed (each age configurable in ``[housekeeping]``):

- tracking events older than ``events_days`` whose order is closed (inactive: every parcel
  delivered or returned and no ticket open). Live orders keep every scan because the rules
  read them.
- closed orders untouched for ``orders_days``, with everything hanging off them (items,
  parcels, scans, tickets and their log, notices, alerts: the schema cascades).
- buyers left without any order, unless they opted out: the opt-out must survive the
  buyer's next order.

Deletes run in batches with a commit after each, so no long lock blocks the daemon's other
jobs. Afterwards the planner's statistics are refreshed (``ANALYZE`` / ``PRAGMA optimize``)
and a hint is logged when a VACUUM would give space back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Select, Table, and_, delete, select, text
from sqlalchemy.engine import Connection, Engine

from carriers.model import Status
from tracker.store.tables import buyers, orders, shipments, tickets, tracking_events
from tracker.store.uow import UnitOfWork

__all__ = ["HousekeepingResult", "run_housekeeping"]

_log = structlog.get_logger("tracker.housekeeping")

_FINISHED = (Status.DELIVERED.value, Status.RETURNED.value)
#: SQLite's free pages above this share of the file make a VACUUM worth suggesting
_SQLITE_FREE_SHARE = 0.25
_SQLITE_FREE_MIN_PAGES = 2560  # ~10 MiB at 4 KiB pages: below that it is not worth a hint


@dataclass
class HousekeepingResult:
    """What one housekeeping run removed, and maintenance hints for the operator."""

    events_deleted: int = 0
    orders_deleted: int = 0
    buyers_deleted: int = 0
    hints: list[str] = field(default_factory=list)
    interrupted: bool = False

    def summary(self) -> str:
        """One readable line."""
        line = (
            f"housekeeping: {self.events_deleted} old scans, {self.orders_deleted} closed "
            f"orders, {self.buyers_deleted} buyers without orders removed"
        )
        return line + (" (interrupted)" if self.interrupted else "")


def _never() -> bool:
    return False


def run_housekeeping(
    engine: Engine,
    now: datetime,
    *,
    events_days: int,
    orders_days: int,
    batch_size: int = 1000,
    should_stop: Callable[[], bool] = _never,
) -> HousekeepingResult:
    """Apply the retention rules at ``now``; stops between batches when ``should_stop()``."""
    result = HousekeepingResult()
    open_ticket = tickets.alias("open_ticket")
    live_parcel = shipments.alias("live_parcel")
    closed = and_(
        orders.c.active.is_(False),
        ~select(open_ticket.c.id)
        .where(and_(open_ticket.c.order_pk == orders.c.id, open_ticket.c.status != "resolved"))
        .correlate(orders)
        .exists(),
        ~select(live_parcel.c.id)
        .where(and_(live_parcel.c.order_pk == orders.c.id, live_parcel.c.status.not_in(_FINISHED)))
        .correlate(orders)
        .exists(),
    )
    old_events = (
        select(tracking_events.c.id)
        .join(shipments, shipments.c.id == tracking_events.c.shipment_id)
        .join(orders, orders.c.id == shipments.c.order_pk)
        .where(and_(tracking_events.c.time < now - timedelta(days=events_days), closed))
    )
    old_orders = select(orders.c.id).where(
        and_(orders.c.updated_at < now - timedelta(days=orders_days), closed)
    )
    orphan_buyers = select(buyers.c.id).where(
        and_(
            buyers.c.opt_out.is_(False),
            ~select(orders.c.id).where(orders.c.buyer_id == buyers.c.id).correlate(buyers).exists(),
        )
    )
    steps: list[tuple[str, Table, Select[tuple[int]]]] = [
        ("events_deleted", tracking_events, old_events),
        ("orders_deleted", orders, old_orders),
        ("buyers_deleted", buyers, orphan_buyers),
    ]
    for counter, table, candidates in steps:
        while True:
            if should_stop():
                result.interrupted = True
                return result
            deleted = _delete_batch(engine, table, candidates, batch_size)
            setattr(result, counter, getattr(result, counter) + deleted)
            if deleted < batch_size:
                break
    touched = [
        t.name
        for t, n in (
            (tracking_events, result.events_deleted),
            (orders, result.orders_deleted),
            (buyers, result.buyers_deleted),
        )
        if n
    ]
    if touched:
        result.hints = _refresh_statistics(engine, touched)
    _log.info(
        "housekeeping_done",
        events_deleted=result.events_deleted,
        orders_deleted=result.orders_deleted,
        buyers_deleted=result.buyers_deleted,
    )
    for hint in result.hints:
        _log.info("maintenance_hint", hint=hint)
    return result


def _delete_batch(engine: Engine, table: Table, candidates: Select[tuple[int]], limit: int) -> int:
    """Delete up to ``limit`` rows chosen by ``candidates`` (a select of ids), in one commit."""
    with UnitOfWork(engine) as uow:
        ids = list(uow.conn.execute(candidates.order_by(table.c.id).limit(limit)).scalars())
        if not ids:
            return 0
        uow.conn.execute(delete(table).where(table.c.id.in_(ids)))
        uow.commit()
        return len(ids)


def _refresh_statistics(engine: Engine, tables: list[str]) -> list[str]:
    """Update planner statistics after big deletes; return hints about reclaiming space."""
    hints: list[str] = []
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for name in tables:
                conn.execute(text(f"ANALYZE {name}"))
        hints.append(
            "rows were deleted from " + ", ".join(tables) + "; autovacuum reuses the space. "
            "After a first large purge, `VACUUM (ANALYZE)` those tables in a quiet hour "
            "(`VACUUM FULL` only if the disk must shrink: it locks the table)."
        )
        return hints
    with engine.connect() as conn:
        conn.execute(text("PRAGMA optimize"))
        hints.extend(_sqlite_space_hint(conn))
    return hints


def _sqlite_space_hint(conn: Connection) -> list[str]:
    pages = int(conn.execute(text("PRAGMA page_count")).scalar_one())
    free = int(conn.execute(text("PRAGMA freelist_count")).scalar_one())
    size = int(conn.execute(text("PRAGMA page_size")).scalar_one())
    if pages and free >= _SQLITE_FREE_MIN_PAGES and free / pages >= _SQLITE_FREE_SHARE:
        mib = free * size / 2**20
        return [
            f"{mib:.0f} MiB of the SQLite file is free space; it is reused automatically. "
            "To give it back to the filesystem, stop the daemon and run "
            "`sqlite3 <database> 'VACUUM'`."
        ]
    return []
