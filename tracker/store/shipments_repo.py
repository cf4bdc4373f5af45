"""Shipment claims for polling, storing tracking results, and courier-recorded weights."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, select, update
from sqlalchemy.engine import Connection

from carriers.model import (
    Location,
    Status,
    TrackingEvent,
    TrackingQuery,
    TrackingResult,
    latest_status,
)
from tracker.domain.schedule import next_poll_after_error, next_poll_after_success
from tracker.store.sql import claim_rows, insert_ignore
from tracker.store.tables import buyers, orders, shipments, tracking_events

__all__ = [
    "ClaimedShipment",
    "IngestOutcome",
    "claim_due_shipments",
    "dedupe_key",
    "find_shipment_ids",
    "merged_status",
    "release_claims",
    "save_pushed_result",
    "save_result",
    "set_weights",
]

_EXCERPT = 500


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


def save_result(
    conn: Connection,
    claimed: ClaimedShipment,
    result: TrackingResult,
    now: datetime,
    *,
    release_claim: bool = True,
) -> IngestOutcome:
    """Store new scans (duplicates skipped in SQL) and the parcel's new state; free the claim."""
    if result.error is not None:
        failures = claimed.failures + 1
        conn.execute(
            update(shipments)
            .where(shipments.c.id == claimed.id)
            .values(
                error_kind=result.error.kind.value,
                error_message=result.error.message,
                error_excerpt=result.error.raw_excerpt[:_EXCERPT],
                error_at=now,
                consecutive_failures=failures,
                last_polled_at=now,
                poll_count=shipments.c.poll_count + 1,
                next_poll_at=next_poll_after_error(claimed.id, result.error, failures, now),
                claimed_until=None,
                claimed_by=None,
                source=result.source,
                updated_at=now,
            )
        )
        return IngestOutcome(claimed.id, claimed.order_pk, 0, claimed.status, ok=False)

    new_events = insert_ignore(
        conn,
        tracking_events,
        [_event_row(claimed.id, e, result.source, now) for e in result.events],
        ["shipment_id", "dedupe_key"],
    )
    _keep_provider_problem(conn, claimed.id, result)
    status = merged_status(claimed.status, result)
    values: dict[str, Any] = {
        "status": _status_guard(status),
        "source": result.source,
        "last_polled_at": now,
        "poll_count": shipments.c.poll_count + 1,
        "consecutive_failures": 0,
        "error_kind": None,
        "error_message": None,
        "error_excerpt": None,
        "provider_finished": result.finished,
        "next_poll_at": next_poll_after_success(
            claimed.id, status, now, claimed.since, finished=result.finished
        ),
        "claimed_until": None,
        "claimed_by": None,
        "updated_at": now,
    }
    if result.events:
        values["first_scan_at"] = result.events[0].time
        values["last_scan_at"] = max(e.time for e in result.events)
        delivered = [e.time for e in result.events if e.status is Status.DELIVERED]
        if delivered:
            values["delivered_at"] = min(delivered)
    if result.weight_kg is not None:
        # a courier bill imported by hand outranks what a tracking API reports
        from_bill = shipments.c.weight_source == "bill"
        values["weight_kg"] = case((from_bill, shipments.c.weight_kg), else_=result.weight_kg)
        values["weight_source"] = case((from_bill, "bill"), else_=result.source)
    if result.courier_corrected and result.courier_corrected != claimed.courier:
        values["courier"] = result.courier_corrected
    if not release_claim:
        del values["claimed_until"], values["claimed_by"]
    conn.execute(update(shipments).where(shipments.c.id == claimed.id).values(**values))
    return IngestOutcome(claimed.id, claimed.order_pk, new_events, status, ok=True)


def _keep_provider_problem(conn: Connection, shipment_id: int, result: TrackingResult) -> None:
    """Record a parcel-level provider problem (e.g. "lost") on its newest scan.

    Some providers state a problem only for the whole parcel ("60 days without change");
    the rules read problems from scans, so it goes on the newest one.
    """
    if result.problem is None or not result.events:
        return
    if any(e.problem is not None for e in result.events):
        return
    newest = max(result.events, key=lambda e: e.time)
    conn.execute(
        update(tracking_events)
        .where(
            and_(
                tracking_events.c.shipment_id == shipment_id,
                tracking_events.c.dedupe_key == dedupe_key(newest),
                tracking_events.c.problem.is_(None),
            )
        )
        .values(problem=result.problem.value)
    )


def _status_guard(status: Status) -> Any:
    """The new status, unless the stored one is terminal (a push and a poll may race)."""
    if status is Status.DELIVERED:
        return status.value
    stored = shipments.c.status
    terminal = stored.in_([Status.DELIVERED.value, Status.RETURNED.value])
    return case((terminal, stored), else_=status.value)


def save_pushed_result(
    conn: Connection, shipment_id: int, result: TrackingResult, now: datetime
) -> IngestOutcome | None:
    """Store a pushed answer for a parcel nobody claimed, by :func:`save_result`'s rules.

    A poller's lease on the parcel is left alone. ``None`` when the parcel is gone or the
    answer is an error (a push that failed to parse says nothing about the parcel).
    """
    if result.error is not None:
        return None
    row = conn.execute(
        select(
            shipments.c.order_pk,
            shipments.c.courier,
            shipments.c.tracking_number,
            shipments.c.status,
            shipments.c.shipped_at,
            shipments.c.created_at,
            shipments.c.consecutive_failures,
        ).where(shipments.c.id == shipment_id)
    ).one_or_none()
    if row is None:
        return None
    current = ClaimedShipment(
        id=shipment_id,
        order_pk=row.order_pk,
        courier=row.courier,
        tracking_number=row.tracking_number,
        status=Status(row.status),
        since=row.shipped_at or row.created_at,
        failures=row.consecutive_failures,
        query=TrackingQuery(courier=row.courier, tracking_number=row.tracking_number),
    )
    return save_result(conn, current, result, now, release_claim=False)


def merged_status(previous: Status, result: TrackingResult) -> Status:
    """The parcel's status after a good answer: never regresses from delivered or returned.

    The provider's overall status wins over the newest scan; a returned parcel only moves on
    to delivered.
    """
    candidate: Status
    if result.status is not Status.UNKNOWN:
        candidate = result.status
    else:
        candidate = latest_status(Status.UNKNOWN, result.events) if result.events else previous
    if previous is Status.DELIVERED or any(e.status is Status.DELIVERED for e in result.events):
        return Status.DELIVERED
    if previous is Status.RETURNED and candidate is not Status.DELIVERED:
        return Status.RETURNED
    return candidate


def _event_row(shipment_id: int, e: TrackingEvent, source: str, now: datetime) -> dict[str, Any]:
    loc = e.location
    return {
        "shipment_id": shipment_id,
        "time": e.time,
        "status": e.status.value,
        "raw_code": e.raw_code[:60],
        "text": e.text,
        "problem": e.problem.value if e.problem else None,
        "country": loc.country,
        "province": loc.province,
        "city": loc.city,
        "district": loc.district,
        "dedupe_key": dedupe_key(e),
        "source": source,
        "ingested_at": now,
    }


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
    conn.execute(update(orders).where(orders.c.id.in_(order_pks)).values(active=True))
    return sorted(order_pks)
