"""Storing tracking answers: a whole claim batch in a few prebuilt statements.

New scans are inserted once (duplicates skipped in SQL), the parcel's state is updated under
an SQL guard so nothing moves it back from delivered or returned, and the claim is released.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, bindparam, case, func, or_, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Connection

from carriers.model import (
    Status,
    TrackingEvent,
    TrackingQuery,
    TrackingResult,
    latest_status,
)
from tracker.domain.schedule import next_poll_after_error, next_poll_after_success
from tracker.store.shipments_repo import ClaimedShipment, IngestOutcome, dedupe_key
from tracker.store.tables import shipments, tracking_events

__all__ = ["merged_status", "save_pushed_result", "save_result", "save_results"]

_EXCERPT = 500


def save_result(
    conn: Connection,
    claimed: ClaimedShipment,
    result: TrackingResult,
    now: datetime,
    *,
    release_claim: bool = True,
) -> IngestOutcome:
    """Store one parcel's answer by :func:`save_results`' rules."""
    return save_results(conn, [(claimed, result)], now, release_claim=release_claim)[0]


def save_results(
    conn: Connection,
    pairs: Sequence[tuple[ClaimedShipment, TrackingResult]],
    now: datetime,
    *,
    release_claim: bool = True,
) -> list[IngestOutcome]:
    """Store a batch of answers in a few statements; outcomes come back in ``pairs`` order.

    New scans of the whole batch go in one insert (duplicates skipped in SQL), then each
    parcel's new state in one executemany per kind (good answer, error); the claim is freed
    unless ``release_claim`` is false (a push must not steal a poller's lease).
    """
    good = [(c, r) for c, r in pairs if r.error is None]
    inserted = _insert_new_events(conn, good, now)
    problems = [p for c, r in good if (p := _provider_problem(c.id, r)) is not None]
    if problems:
        conn.execute(_MARK_PROBLEM, problems)

    outcomes: list[IngestOutcome] = []
    good_params: list[dict[str, Any]] = []
    error_params: list[dict[str, Any]] = []
    for claimed, result in pairs:
        if result.error is not None:
            error_params.append(_error_params(claimed, result, now))
            outcomes.append(
                IngestOutcome(claimed.id, claimed.order_pk, 0, claimed.status, ok=False)
            )
            continue
        status = merged_status(claimed.status, result)
        good_params.append(_good_params(claimed, result, status, now))
        outcomes.append(
            IngestOutcome(claimed.id, claimed.order_pk, inserted[claimed.id], status, ok=True)
        )
    if good_params:
        conn.execute(_SAVE_GOOD if release_claim else _SAVE_GOOD_KEEP_CLAIM, good_params)
    if error_params:
        conn.execute(_SAVE_ERROR if release_claim else _SAVE_ERROR_KEEP_CLAIM, error_params)
    return outcomes


def _good_params(
    claimed: ClaimedShipment, result: TrackingResult, status: Status, now: datetime
) -> dict[str, Any]:
    """Bind values for :data:`_SAVE_GOOD`; ``None`` means "keep what is stored"."""
    events = result.events
    delivered = [e.time for e in events if e.status is Status.DELIVERED]
    corrected = result.courier_corrected
    return {
        "p_id": claimed.id,
        "p_status": status.value,
        "p_source": result.source,
        "p_now": now,
        "p_finished": result.finished,
        "p_next_poll": next_poll_after_success(
            claimed.id, status, now, claimed.since, finished=result.finished
        ),
        "p_first_scan": events[0].time if events else None,
        "p_last_scan": max(e.time for e in events) if events else None,
        "p_delivered": min(delivered) if delivered else None,
        "p_weight": result.weight_kg,
        "p_weight_source": result.source if result.weight_kg is not None else None,
        "p_courier": corrected if corrected and corrected != claimed.courier else None,
    }


def _error_params(
    claimed: ClaimedShipment, result: TrackingResult, now: datetime
) -> dict[str, Any]:
    """Bind values for :data:`_SAVE_ERROR`: the failure, its back-off and an excerpt."""
    error = result.error
    assert error is not None  # only called for failed answers
    failures = claimed.failures + 1
    return {
        "p_id": claimed.id,
        "p_kind": error.kind.value,
        "p_message": error.message,
        "p_excerpt": error.raw_excerpt[:_EXCERPT],
        "p_now": now,
        "p_failures": failures,
        "p_next_poll": next_poll_after_error(claimed.id, error, failures, now),
        "p_source": result.source,
    }


def _provider_problem(shipment_id: int, result: TrackingResult) -> dict[str, Any] | None:
    """Bind values putting a parcel-level provider problem (e.g. "lost") on its newest scan.

    Some providers state a problem only for the whole parcel ("60 days without change");
    the rules read problems from scans, so it goes on the newest one.
    """
    if result.problem is None or not result.events:
        return None
    if any(e.problem is not None for e in result.events):
        return None
    newest = max(result.events, key=lambda e: e.time)
    return {"p_id": shipment_id, "p_key": dedupe_key(newest), "p_problem": result.problem.value}


def _status_guard(new_status: ColumnElement[Any]) -> ColumnElement[Any]:
    """The new status, unless the stored one is terminal (a push and a poll may race).

    Only "delivered" may replace a stored delivered/returned; checked in SQL so a push
    committed after this worker read the parcel still wins.
    """
    stored = shipments.c.status
    # OR, not IN: an expanding IN list cannot be used with executemany
    terminal = or_(stored == Status.DELIVERED.value, stored == Status.RETURNED.value)
    return case(
        (new_status == Status.DELIVERED.value, new_status),
        (terminal, stored),
        else_=new_status,
    )


def _param(name: str, column: ColumnElement[Any]) -> Any:
    """A bind parameter typed like ``column`` (so custom types convert the value)."""
    return bindparam(name, type_=column.type)


def _keep_unless_given(name: str, column: ColumnElement[Any]) -> Any:
    """``column`` set to the bound value, or left as stored when the value is NULL."""
    return func.coalesce(_param(name, column), column)


def _insert_new_events(
    conn: Connection, good: Sequence[tuple[ClaimedShipment, TrackingResult]], now: datetime
) -> Counter[int]:
    """Insert the scans not stored yet; returns how many were new per shipment.

    Providers answer with the whole history every time, so most scans are already stored:
    their keys are read first (one indexed query for the batch) and only the rest is
    inserted. ON CONFLICT still skips a scan a concurrent push stored meanwhile.
    """
    ids = [c.id for c, r in good if r.events]
    inserted: Counter[int] = Counter()
    if not ids:
        return inserted
    found = conn.execute(_STORED_KEYS, {"p_ids": ids}).all()
    stored = {(row[0], row[1]) for row in found}
    rows: list[dict[str, Any]] = []
    for claimed, result in good:
        for event in result.events:
            key = dedupe_key(event)
            if (claimed.id, key) not in stored:
                stored.add((claimed.id, key))  # a scan repeated within one answer
                rows.append(_event_row(claimed.id, event, key, result.source, now))
    if not rows:
        return inserted
    if conn.dialect.name == "postgresql":
        # one fixed statement over arrays: a multi-row VALUES insert is a new query text for
        # every batch size, and psycopg re-parses such long texts on every execution
        columns = {name: [row[name] for row in rows] for name in _EVENT_COLUMNS}
        # binary parameters: psycopg quotes every element of a text array with a regex
        with conn.connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            cursor.execute(_PG_INSERT_EVENTS, columns, binary=True)
            inserted.update(row[0] for row in cursor.fetchall())
    else:
        inserted.update(conn.execute(_SQLITE_INSERT_EVENTS, rows).scalars())
    return inserted


_STORED_KEYS = select(tracking_events.c.shipment_id, tracking_events.c.dedupe_key).where(
    tracking_events.c.shipment_id.in_(bindparam("p_ids", expanding=True))
)

# statements are built once: building them per parcel cost more CPU than running them
_SQLITE_INSERT_EVENTS = (
    sqlite.insert(tracking_events)
    .on_conflict_do_nothing(index_elements=["shipment_id", "dedupe_key"])
    .returning(tracking_events.c.shipment_id)
)
#: column -> PostgreSQL array type, in the order of :data:`_PG_INSERT_EVENTS`
_EVENT_COLUMNS: dict[str, str] = {
    "shipment_id": "bigint",
    "time": "timestamptz",
    "status": "varchar",
    "raw_code": "varchar",
    "text": "text",
    "problem": "varchar",
    "country": "varchar",
    "province": "varchar",
    "city": "varchar",
    "district": "varchar",
    "dedupe_key": "varchar",
    "source": "varchar",
    "ingested_at": "timestamptz",
}
_PG_INSERT_EVENTS = (
    f"INSERT INTO {tracking_events.name} ({', '.join(_EVENT_COLUMNS)}) "
    "SELECT * FROM unnest("
    + ", ".join(f"%({name})s::{kind}[]" for name, kind in _EVENT_COLUMNS.items())
    + ") ON CONFLICT (shipment_id, dedupe_key) DO NOTHING RETURNING shipment_id"
)

_MARK_PROBLEM = (
    update(tracking_events)
    .where(
        and_(
            tracking_events.c.shipment_id == bindparam("p_id"),
            tracking_events.c.dedupe_key == bindparam("p_key"),
            tracking_events.c.problem.is_(None),
        )
    )
    .values(problem=bindparam("p_problem"))
)

_S = shipments.c
# a courier bill imported by hand outranks what a tracking API reports
_FROM_BILL = _S.weight_source == "bill"
_GOOD_VALUES: dict[str, Any] = {
    "status": _status_guard(_param("p_status", _S.status)),
    "source": _param("p_source", _S.source),
    "last_polled_at": _param("p_now", _S.last_polled_at),
    "poll_count": _S.poll_count + 1,
    "consecutive_failures": 0,
    "error_kind": None,
    "error_message": None,
    "error_excerpt": None,
    "provider_finished": _param("p_finished", _S.provider_finished),
    "next_poll_at": _param("p_next_poll", _S.next_poll_at),
    "first_scan_at": _keep_unless_given("p_first_scan", _S.first_scan_at),
    "last_scan_at": _keep_unless_given("p_last_scan", _S.last_scan_at),
    "delivered_at": _keep_unless_given("p_delivered", _S.delivered_at),
    "weight_kg": case(
        (_FROM_BILL, _S.weight_kg), else_=_keep_unless_given("p_weight", _S.weight_kg)
    ),
    "weight_source": case(
        (_FROM_BILL, _S.weight_source),
        else_=_keep_unless_given("p_weight_source", _S.weight_source),
    ),
    "courier": _keep_unless_given("p_courier", _S.courier),
    "updated_at": _param("p_now", _S.updated_at),
}
_ERROR_VALUES: dict[str, Any] = {
    "error_kind": _param("p_kind", _S.error_kind),
    "error_message": _param("p_message", _S.error_message),
    "error_excerpt": _param("p_excerpt", _S.error_excerpt),
    "error_at": _param("p_now", _S.error_at),
    "consecutive_failures": _param("p_failures", _S.consecutive_failures),
    "last_polled_at": _param("p_now", _S.last_polled_at),
    "poll_count": _S.poll_count + 1,
    "next_poll_at": _param("p_next_poll", _S.next_poll_at),
    "source": _param("p_source", _S.source),
    "updated_at": _param("p_now", _S.updated_at),
}
_RELEASE: dict[str, Any] = {"claimed_until": None, "claimed_by": None}
_BY_ID = update(shipments).where(_S.id == bindparam("p_id"))
_SAVE_GOOD = _BY_ID.values(**_GOOD_VALUES, **_RELEASE)
_SAVE_GOOD_KEEP_CLAIM = _BY_ID.values(**_GOOD_VALUES)
_SAVE_ERROR = _BY_ID.values(**_ERROR_VALUES, **_RELEASE)
_SAVE_ERROR_KEEP_CLAIM = _BY_ID.values(**_ERROR_VALUES)


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


def _event_row(
    shipment_id: int, e: TrackingEvent, key: str, source: str, now: datetime
) -> dict[str, Any]:
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
        "dedupe_key": key,
        "source": source,
        "ingested_at": now,
    }
