"""Shipment claims for polling, storing tracking results, and courier-recorded weights."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Connection

from carriers.model import (
    Location,
    Status,
    TrackingEvent,
    TrackingQuery,
)
from tracker.store.sql import claim_rows
from tracker.store.tables import buyers, orders, shipments

__all__ = [
    "ClaimedShipment",
    "IngestOutcome",
    "claim_due_shipments",
    "dedupe_key",
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


def claim_due_shipments(
    conn: Connection, now: datetime, limit: int, lease: timedelta, worker: str
) -> list[ClaimedShipment]:
    """Lease up to ``limit`` parcels due for polling; concurrent workers never get the same one."""
    claimed_ids = claim_rows(
        conn,
        shipments,
        shipments.c.next_poll_at <= now,
        shipments.c.next_poll_at,
        limit=limit,
        now=now,
        lease=lease,
        worker=worker,
    )
    if not claimed_ids:
        return []
    rows = conn.execute(
        select(
            shipments.c.id,
            shipments.c.order_pk,
            shipments.c.courier,
            shipments.c.tracking_number,
            shipments.c.status,
            shipments.c.shipped_at,
            shipments.c.created_at,
            shipments.c.consecutive_failures,
            buyers.c.phone,
            orders.c.origin_province,
            orders.c.origin_city,
            orders.c.dest_province,
            orders.c.dest_city,
            orders.c.dest_district,
        )
        .join(orders, orders.c.id == shipments.c.order_pk)
        .join(buyers, buyers.c.id == orders.c.buyer_id)
        .where(shipments.c.id.in_(claimed_ids))
        .order_by(shipments.c.id)
    )
    return [
        ClaimedShipment(
            id=r.id,
            order_pk=r.order_pk,
            courier=r.courier,
            tracking_number=r.tracking_number,
            status=Status(r.status),
            since=r.shipped_at or r.created_at,
            failures=r.consecutive_failures,
            query=TrackingQuery(
                courier=r.courier,
                tracking_number=r.tracking_number,
                phone=r.phone,
                origin=Location(country="中国", province=r.origin_province, city=r.origin_city),
                destination=Location(
                    country="中国",
                    province=r.dest_province,
                    city=r.dest_city,
                    district=r.dest_district,
                ),
                shipped_at=r.shipped_at,
            ),
        )
        for r in rows
    ]


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
