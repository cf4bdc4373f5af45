"""Shipment claims for polling, storing tracking results, and courier-recorded weights."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from operator import itemgetter
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from carriers.model import (
    Location,
    Status,
    TrackingEvent,
    TrackingQuery,
)
from tracker.store.tables import orders, shipments
from tracker.store.types import sqlite_utc_text, utc_from_db, utc_param

__all__ = [
    "ClaimedShipment",
    "IngestOutcome",
    "claim_due_shipments",
    "dedupe_key",
    "dedupe_keys",
    "find_shipment_ids",
    "release_claims",
    "set_weights",
]


@dataclass(frozen=True, slots=True)
class ClaimedShipment:
    """A parcel this worker has leased for one poll, with what the adapter needs."""

    id: int
    order_pk: int
    courier: str
    tracking_number: str
    status: Status
    since: datetime
    failures: int
    query: TrackingQuery


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """What storing one result changed."""

    shipment_id: int
    order_pk: int
    new_events: int
    status: Status
    ok: bool


def dedupe_key(event: TrackingEvent) -> str:
    """The identity of a scan: shipment-local hash of time, raw code and text."""
    ident = f"{event.time.isoformat()}|{event.raw_code}|{event.text}"
    return hashlib.sha1(ident.encode("utf-8"), usedforsecurity=False).hexdigest()


def dedupe_keys(events: Sequence[TrackingEvent]) -> list[str]:
    """:func:`dedupe_key` of each scan, in order (the same text, computed in one loop)."""
    sha1 = hashlib.sha1
    return [
        sha1(
            f"{e.time.isoformat()}|{e.raw_code}|{e.text}".encode(), usedforsecurity=False
        ).hexdigest()
        for e in events
    ]


def claim_due_shipments(
    conn: Connection, now: datetime, limit: int, lease: timedelta, worker: str
) -> list[ClaimedShipment]:
    """Lease up to ``limit`` parcels due for polling; concurrent workers never get the same one.

    The rules of :func:`tracker.store.sql.claim_rows` (oldest due first, an expired lease
    counts as free, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, the UPDATE itself is the claim
    under SQLite's single writer) in fixed driver-level SQL that returns the claimed rows,
    ordered by id: building the statement and typed rows through SQLAlchemy cost more CPU
    than the claim itself.
    """
    if conn.dialect.name == "postgresql":
        params = {
            "until": utc_param(now + lease, "postgresql"),
            "worker": worker,
            "now": utc_param(now, "postgresql"),
            "limit": limit,
        }
        rows: list[tuple[Any, ...]] = [tuple(r) for r in conn.exec_driver_sql(_PG_CLAIM, params)]
    else:
        lite = (sqlite_utc_text(now + lease), worker, sqlite_utc_text(now), limit)
        claimed = conn.exec_driver_sql(_SQLITE_CLAIM, lite).all()
        if not claimed:
            return []
        order_pks = json.dumps(sorted({r[1] for r in claimed}))
        found = {r[0]: r[1:] for r in conn.exec_driver_sql(_SQLITE_ORDERS, (order_pks,))}
        # orders.buyer_id and shipments.order_pk are NOT NULL foreign keys: always found
        rows = [tuple(r) + found[r[1]] for r in claimed]
    rows.sort(key=itemgetter(0))
    places: dict[tuple[str | None, ...], Location] = {}
    out: list[ClaimedShipment] = []
    for r in rows:
        shipment_id, order_pk, courier, number, status, shipped, created, failures = r[:8]
        phone, o_province, o_city, d_province, d_city, d_district = r[8:]
        shipped_at = utc_from_db(shipped)
        origin = places.get((o_province, o_city))
        if origin is None:
            origin = places[(o_province, o_city)] = Location("中国", o_province, o_city)
        destination = places.get((d_province, d_city, d_district))
        if destination is None:
            destination = Location("中国", d_province, d_city, d_district)
            places[(d_province, d_city, d_district)] = destination
        out.append(
            ClaimedShipment(
                id=shipment_id,
                order_pk=order_pk,
                courier=courier,
                tracking_number=number,
                status=_STATUS[status],
                since=shipped_at or utc_from_db(created),  # type: ignore[arg-type]
                failures=failures,
                query=TrackingQuery(
                    courier=courier,
                    tracking_number=number,
                    phone=phone,
                    origin=origin,
                    destination=destination,
                    shipped_at=shipped_at,
                ),
            )
        )
    return out


_STATUS = {s.value: s for s in Status}
# the claimed parcel's own columns, then its order's and buyer's (see claim_due_shipments)
_SHIPMENT_COLUMNS = (
    "id",
    "order_pk",
    "courier",
    "tracking_number",
    "status",
    "shipped_at",
    "created_at",
    "consecutive_failures",
)
_ORDER_COLUMNS = (
    "b.phone, o.origin_province, o.origin_city, o.dest_province, o.dest_city, o.dest_district"
)
_DUE = (
    "SELECT id FROM shipments WHERE next_poll_at <= {now} "
    "AND (claimed_until IS NULL OR claimed_until < {now}) ORDER BY next_poll_at LIMIT {limit}"
)
# one statement: lock due rows (skipping those another worker holds), lease them and return
# them with their order's and buyer's columns
_PG_CLAIM = (
    "UPDATE shipments AS s SET claimed_until = %(until)s, claimed_by = %(worker)s "
    "FROM orders AS o JOIN buyers AS b ON b.id = o.buyer_id "
    "WHERE s.id IN ("
    + _DUE.format(now="%(now)s", limit="%(limit)s")
    + " FOR UPDATE SKIP LOCKED) AND o.id = s.order_pk "
    f"RETURNING {', '.join(f's.{c}' for c in _SHIPMENT_COLUMNS)}, {_ORDER_COLUMNS}"
)
# SQLite's RETURNING cannot name other tables: the orders are read in a second statement,
# whose text stays fixed whatever the batch size (ids as one JSON array)
_SQLITE_CLAIM = (
    "UPDATE shipments SET claimed_until = ?1, claimed_by = ?2 WHERE id IN ("
    + _DUE.format(now="?3", limit="?4")
    + f") RETURNING {', '.join(_SHIPMENT_COLUMNS)}"
)
_SQLITE_ORDERS = (
    f"SELECT o.id, {_ORDER_COLUMNS} FROM orders AS o JOIN buyers AS b ON b.id = o.buyer_id "
    "WHERE o.id IN (SELECT value FROM json_each(?1))"
)


def release_claims(conn: Connection, shipment_ids: Sequence[int]) -> None:
    """Give leased parcels back untouched (e.g. on shutdown) so another worker takes them."""
    if shipment_ids:
        conn.execute(
            update(shipments)
            .where(shipments.c.id.in_(list(shipment_ids)))
            .values(claimed_until=None, claimed_by=None)
        )


def find_shipment_ids(conn: Connection, tracking_numbers: Sequence[str]) -> dict[str, list[int]]:
    """Stored parcels by tracking number (one number may serve several merged orders)."""
    found: dict[str, list[int]] = {}
    for start in range(0, len(tracking_numbers), 500):
        chunk = list(tracking_numbers[start : start + 500])
        for r in conn.execute(
            select(shipments.c.id, shipments.c.tracking_number).where(
                shipments.c.tracking_number.in_(chunk)
            )
        ):
            found.setdefault(r.tracking_number, []).append(r.id)
    return found


def set_weights(conn: Connection, weights: Sequence[tuple[str, float]], now: datetime) -> list[int]:
    """Record courier-billed weights by tracking number; returns the orders touched."""
    if not weights:
        return []
    conn.execute(
        update(shipments)
        .where(shipments.c.tracking_number == bindparam("tn"))
        .values(weight_kg=bindparam("kg"), weight_source="bill", updated_at=now),
        [{"tn": tn, "kg": kg} for tn, kg in weights],
    )
    numbers = [tn for tn, _ in weights]
    order_pks: set[int] = set()
    for start in range(0, len(numbers), 500):
        order_pks.update(
            conn.execute(
                select(shipments.c.order_pk).where(
                    shipments.c.tracking_number.in_(numbers[start : start + 500])
                )
            ).scalars()
        )
    # due for detection now: the periodic pass looks at it (weight_mismatch)
    conn.execute(
        update(orders).where(orders.c.id.in_(order_pks)).values(active=True, next_check_at=now)
    )
    return sorted(order_pks)
