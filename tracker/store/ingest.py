"""Storing tracking answers: a whole claim batch in a few prebuilt statements.

New scans are inserted once (duplicates skipped in SQL), the parcel's state is updated under
an SQL guard so nothing moves it back from delivered or returned, and the claim is released.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.engine import Connection

from carriers.model import (
    Status,
    TrackingQuery,
    TrackingResult,
    latest_status,
)
from tracker.domain.schedule import next_poll_after_error, next_poll_after_success
from tracker.store.shipments_repo import ClaimedShipment, IngestOutcome, dedupe_keys
from tracker.store.sql import driver_cursor
from tracker.store.tables import shipments, tracking_events
from tracker.store.types import utc_param

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
    parcel's new state in one statement per kind (good answer, error); the claim is freed
    unless ``release_claim`` is false (a push must not steal a poller's lease).
    """
    if not pairs:
        return []
    db = _Driver(conn, now)
    good = [(c, r, dedupe_keys(r.events)) for c, r in pairs if r.error is None]
    new_events = _new_event_rows(db, good)
    problems = [p for c, r, keys in good if (p := _provider_problem(c.id, r, keys)) is not None]
    # PostgreSQL: the writes below go out as one pipeline (they need no answer from each
    # other); the insert runs on the server while the parcel rows are built here
    with db.pipeline():
        fetch_inserted = db.insert_events(new_events)
        if problems:
            db.mark_problems(problems)
        statuses: list[Status | None] = []
        good_rows: list[tuple[Any, ...]] = []
        error_rows: list[tuple[Any, ...]] = []
        for claimed, result in pairs:
            if result.error is not None:
                error_rows.append(_error_row(db, claimed, result))
                statuses.append(None)
                continue
            status = merged_status(claimed.status, result)
            good_rows.append(_good_row(db, claimed, result, status))
            statuses.append(status)
        if good_rows:
            db.update(_SAVE_GOOD[release_claim], good_rows)
        if error_rows:
            db.update(_SAVE_ERROR[release_claim], error_rows)
    inserted = Counter(fetch_inserted())
    return [
        IngestOutcome(claimed.id, claimed.order_pk, 0, claimed.status, ok=False)
        if status is None
        else IngestOutcome(claimed.id, claimed.order_pk, inserted[claimed.id], status, ok=True)
        for (claimed, _), status in zip(pairs, statuses, strict=True)
    ]


class _Driver:
    """Fixed driver-level statements for one batch on the connection's backend.

    SQLAlchemy's per-row work (bind processors for every time value, typed rows) cost more
    CPU than the database did; these statements take values the driver binds as they are.
    SQLite gets times as the text :class:`tracker.store.types.UTCDateTime` stores; PostgreSQL
    gets whole columns as arrays in one statement, as binary parameters (``%b``: psycopg
    quotes every element of a text array with a regex) and binary results.
    """

    def __init__(self, conn: Connection, now: datetime) -> None:
        self.conn = conn
        self.lite = conn.dialect.name != "postgresql"
        self.when = now
        self.now = self.ts(now)

    def ts(self, value: datetime | None) -> Any:
        """A time as this backend's driver takes it (naive datetimes are refused)."""
        return utc_param(value, self.conn.dialect.name)

    def pg_cursor(self) -> Any:
        """The psycopg cursor of this connection, inside its SQLAlchemy transaction."""
        return driver_cursor(self.conn)

    def stored_keys(self, ids: list[int]) -> dict[int, set[str]]:
        """The dedupe keys already stored for these parcels."""
        stored: dict[int, set[str]] = {}
        if self.lite:
            rows: Any = self.conn.exec_driver_sql(_SQLITE_STORED_KEYS, (json.dumps(ids),))
        else:
            with self.pg_cursor() as cursor:
                cursor.execute(_PG_STORED_KEYS, (ids,), binary=True)
                rows = cursor.fetchall()
        for shipment_id, key in rows:
            keys = stored.get(shipment_id)
            if keys is None:
                stored[shipment_id] = {key}
            else:
                keys.add(key)
        return stored

    def pipeline(self) -> AbstractContextManager[Any]:
        """PostgreSQL: statements sent inside run without waiting for each other's answers.

        Results (and errors) arrive when the block ends; SQLite runs each at once.
        """
        if self.lite:
            return contextlib.nullcontext()
        self.pg_cursor().close()  # opens the transaction before the pipeline starts
        driver: Any = self.conn.connection.driver_connection
        pipeline: AbstractContextManager[Any] = driver.pipeline()
        return pipeline

    def insert_events(self, rows: list[tuple[Any, ...]]) -> Callable[[], list[int]]:
        """Insert scan rows (duplicates skipped); gives the shipment id of each row inserted.

        The ids are read by calling the returned function (after :meth:`pipeline` ends).
        """
        if not rows:
            return list
        if not self.lite:
            columns = {
                name: list(values)
                for name, values in zip(_EVENT_COLUMNS, zip(*rows, strict=True), strict=True)
            }
            cursor = self.pg_cursor()
            cursor.execute(_PG_INSERT_EVENTS, columns, binary=True)

            def fetch() -> list[int]:
                with cursor:
                    return [row[0] for row in cursor.fetchall()]

            return fetch
        # one multi-row statement per chunk; chunk sizes are powers of two so a handful of
        # statement texts serve every batch (SQLite caches the prepared statements)
        inserted: list[int] = []
        start = 0
        while start < len(rows):
            size = min(_SQLITE_CHUNK, 1 << ((len(rows) - start).bit_length() - 1))
            flat = [value for row in rows[start : start + size] for value in row]
            result = self.conn.exec_driver_sql(_sqlite_insert_events(size), tuple(flat))
            inserted += result.scalars()
            start += size
        return lambda: inserted

    def mark_problems(self, problems: list[dict[str, Any]]) -> None:
        """Put parcel-level provider problems on the scans :func:`_provider_problem` names."""
        if self.lite:
            self.conn.execute(_MARK_PROBLEM, problems)
            return
        with self.pg_cursor() as cursor:
            cursor.executemany(_PG_MARK_PROBLEM, problems)

    def update(self, statement: tuple[str, str], rows: list[tuple[Any, ...]]) -> None:
        """Run an UPDATE per row (SQLite) or over the arrays of all rows (PostgreSQL)."""
        lite_sql, pg_sql = statement
        if self.lite:
            self.conn.exec_driver_sql(lite_sql, rows)
            return
        # UPDATE ... FROM applies only one row per target: a parcel given twice (never by
        # the poller, whose claims are distinct) is updated twice, in order, as one by one
        rounds: list[list[tuple[Any, ...]]] = []
        seen: list[set[int]] = []
        for row in rows:
            depth = next((i for i, ids in enumerate(seen) if row[0] not in ids), len(seen))
            if depth == len(seen):
                rounds.append([])
                seen.append(set())
            rounds[depth].append(row)
            seen[depth].add(row[0])
        with self.pg_cursor() as cursor:
            for batch in rounds:
                cursor.execute(
                    pg_sql, [list(column) for column in zip(*batch, strict=True)], binary=True
                )


def _good_row(
    db: _Driver, claimed: ClaimedShipment, result: TrackingResult, status: Status
) -> tuple[Any, ...]:
    """Values for :data:`_SAVE_GOOD` in :data:`_GOOD_PARAMS` order; ``None`` keeps the stored."""
    events = result.events
    delivered = [e.time for e in events if e.status is Status.DELIVERED]
    corrected = result.courier_corrected
    weight = result.weight_kg
    next_poll = next_poll_after_success(
        claimed.id, status, db.when, claimed.since, finished=result.finished
    )
    return (
        claimed.id,
        status.value,
        result.source,
        db.now,
        bool(result.finished),
        db.ts(next_poll),
        db.ts(events[0].time) if events else None,
        db.ts(max(e.time for e in events)) if events else None,
        db.ts(min(delivered)) if delivered else None,
        float(weight) if weight is not None else None,
        result.source if weight is not None else None,
        corrected if corrected and corrected != claimed.courier else None,
    )


def _error_row(db: _Driver, claimed: ClaimedShipment, result: TrackingResult) -> tuple[Any, ...]:
    """Values for :data:`_SAVE_ERROR` in :data:`_ERROR_PARAMS` order: the failure and back-off."""
    error = result.error
    assert error is not None  # only called for failed answers
    failures = claimed.failures + 1
    return (
        claimed.id,
        error.kind.value,
        error.message,
        error.raw_excerpt[:_EXCERPT],
        db.now,
        failures,
        db.ts(next_poll_after_error(claimed.id, error, failures, db.when)),
        result.source,
    )


def _provider_problem(
    shipment_id: int, result: TrackingResult, keys: list[str]
) -> dict[str, Any] | None:
    """Bind values putting a parcel-level provider problem (e.g. "lost") on its newest scan.

    Some providers state a problem only for the whole parcel ("60 days without change");
    the rules read problems from scans, so it goes on the newest one. ``keys`` are the
    scans' dedupe keys, in order.
    """
    events = result.events
    if result.problem is None or not events:
        return None
    if any(e.problem is not None for e in events):
        return None
    newest = max(range(len(events)), key=lambda i: events[i].time)  # the first on a tie
    return {"p_id": shipment_id, "p_key": keys[newest], "p_problem": result.problem.value}


def _new_event_rows(
    db: _Driver, good: Sequence[tuple[ClaimedShipment, TrackingResult, list[str]]]
) -> list[tuple[Any, ...]]:
    """The rows of the scans not stored yet, for :meth:`_Driver.insert_events`.

    Providers answer with the whole history every time, so most scans are already stored:
    their keys are read first (one indexed query for the batch) and only the rest is
    inserted. ON CONFLICT still skips a scan a concurrent push stored meanwhile.
    """
    ids = [c.id for c, r, _ in good if r.events]
    if not ids:
        return []
    stored = db.stored_keys(ids)
    rows: list[tuple[Any, ...]] = []
    ts, now = db.ts, db.now
    for claimed, result, keys in good:
        if not result.events:
            continue
        shipment_id, source = claimed.id, result.source
        seen = stored.setdefault(shipment_id, set())
        for event, key in zip(result.events, keys, strict=True):
            if key in seen:
                continue
            seen.add(key)  # a scan repeated within one answer
            loc, problem = event.location, event.problem
            rows.append(
                (
                    shipment_id,
                    ts(event.time),
                    event.status.value,
                    event.raw_code[:60],
                    event.text,
                    problem.value if problem is not None else None,
                    loc.country,
                    loc.province,
                    loc.city,
                    loc.district,
                    key,
                    source,
                    now,
                )
            )
    return rows


#: column -> PostgreSQL array type, in the order of the rows :func:`_new_event_rows` makes
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
_EVENTS = tracking_events.name
# one fixed statement over arrays: a multi-row VALUES insert is a new query text for every
# batch size, and psycopg re-parses such long texts on every execution
_PG_INSERT_EVENTS = (
    f"INSERT INTO {_EVENTS} ({', '.join(_EVENT_COLUMNS)}) "
    "SELECT * FROM unnest("
    + ", ".join(f"%({name})b::{kind}[]" for name, kind in _EVENT_COLUMNS.items())
    + ") ON CONFLICT (shipment_id, dedupe_key) DO NOTHING RETURNING shipment_id"
)
#: rows per SQLite insert statement (13 values each, well under SQLite's 32766 variables)
_SQLITE_CHUNK = 256


@functools.cache
def _sqlite_insert_events(rows: int) -> str:
    """The SQLite insert of ``rows`` scans; RETURNING names the rows really inserted."""
    values = "(" + ", ".join("?" * len(_EVENT_COLUMNS)) + ")"
    return (
        f"INSERT INTO {_EVENTS} ({', '.join(_EVENT_COLUMNS)}) VALUES "
        + ", ".join([values] * rows)
        + " ON CONFLICT (shipment_id, dedupe_key) DO NOTHING RETURNING shipment_id"
    )


# the ids as one JSON array / one array parameter: the text stays the same for any batch
_SQLITE_STORED_KEYS = (
    f"SELECT shipment_id, dedupe_key FROM {_EVENTS} "
    "WHERE shipment_id IN (SELECT value FROM json_each(?1))"
)
_PG_STORED_KEYS = f"SELECT shipment_id, dedupe_key FROM {_EVENTS} WHERE shipment_id = ANY(%b)"

_PG_MARK_PROBLEM = (
    f"UPDATE {_EVENTS} SET problem = %(p_problem)s "
    "WHERE shipment_id = %(p_id)s AND dedupe_key = %(p_key)s AND problem IS NULL"
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


def _shipment_update(
    params: dict[str, str], values: dict[str, str], *, release_claim: bool
) -> tuple[str, str]:
    """The same parcel UPDATE as SQLite and PostgreSQL text: (per row, over arrays).

    ``params`` are the row values' names -> PostgreSQL array type, in row order, the first
    being the parcel id; in ``values`` ``{name}`` stands for a value and ``{s}`` qualifies a
    stored column.
    """
    if release_claim:
        values = {**values, "claimed_until": "NULL", "claimed_by": "NULL"}
    names = list(params)
    lite_refs = {name: f"?{i}" for i, name in enumerate(names, start=1)}
    pg_refs = {name: f"v.{name}" for name in names}

    def assignments(refs: dict[str, str], stored: str) -> str:
        return ", ".join(f"{col} = {expr.format(s=stored, **refs)}" for col, expr in values.items())

    lite = f"UPDATE {_SHIPMENTS} SET {assignments(lite_refs, '')} WHERE id = ?1"
    arrays = ", ".join(f"%b::{kind}[]" for kind in params.values())
    pg = (
        f"UPDATE {_SHIPMENTS} AS s SET {assignments(pg_refs, 's.')} "
        f"FROM unnest({arrays}) AS v({', '.join(names)}) WHERE s.id = v.{names[0]}"
    )
    return lite, pg


_SHIPMENTS = shipments.name
_DELIVERED, _RETURNED = Status.DELIVERED.value, Status.RETURNED.value
#: the values of a good answer's row (see :func:`_good_row`) -> PostgreSQL array type
_GOOD_PARAMS: dict[str, str] = {
    "p_id": "bigint",
    "p_status": "varchar",
    "p_source": "varchar",
    "p_now": "timestamptz",
    "p_finished": "boolean",
    "p_next_poll": "timestamptz",
    "p_first_scan": "timestamptz",
    "p_last_scan": "timestamptz",
    "p_delivered": "timestamptz",
    "p_weight": "float8",
    "p_weight_source": "varchar",
    "p_courier": "varchar",
}
# a courier bill imported by hand outranks what a tracking API reports
_FROM_BILL = "{s}weight_source = 'bill'"
_GOOD_VALUES: dict[str, str] = {
    "courier": "coalesce({p_courier}, {s}courier)",
    # only "delivered" replaces a stored delivered/returned: checked in SQL so a push
    # committed after this worker read the parcel still wins
    "status": (
        f"CASE WHEN {{p_status}} = '{_DELIVERED}' THEN {{p_status}} "
        f"WHEN {{s}}status = '{_DELIVERED}' OR {{s}}status = '{_RETURNED}' THEN {{s}}status "
        "ELSE {p_status} END"
    ),
    "source": "{p_source}",
    "weight_kg": (
        f"CASE WHEN {_FROM_BILL} THEN {{s}}weight_kg "
        "ELSE coalesce({p_weight}, {s}weight_kg) END"
    ),
    "weight_source": (
        f"CASE WHEN {_FROM_BILL} THEN {{s}}weight_source "
        "ELSE coalesce({p_weight_source}, {s}weight_source) END"
    ),
    "provider_finished": "{p_finished}",
    "first_scan_at": "coalesce({p_first_scan}, {s}first_scan_at)",
    "last_scan_at": "coalesce({p_last_scan}, {s}last_scan_at)",
    "delivered_at": "coalesce({p_delivered}, {s}delivered_at)",
    "next_poll_at": "{p_next_poll}",
    "last_polled_at": "{p_now}",
    "poll_count": "{s}poll_count + 1",
    "consecutive_failures": "0",
    "error_kind": "NULL",
    "error_message": "NULL",
    "error_excerpt": "NULL",
    "updated_at": "{p_now}",
}
#: the values of a failed answer's row (see :func:`_error_row`) -> PostgreSQL array type
_ERROR_PARAMS: dict[str, str] = {
    "p_id": "bigint",
    "p_kind": "varchar",
    "p_message": "text",
    "p_excerpt": "text",
    "p_now": "timestamptz",
    "p_failures": "integer",
    "p_next_poll": "timestamptz",
    "p_source": "varchar",
}
_ERROR_VALUES: dict[str, str] = {
    "source": "{p_source}",
    "next_poll_at": "{p_next_poll}",
    "last_polled_at": "{p_now}",
    "poll_count": "{s}poll_count + 1",
    "consecutive_failures": "{p_failures}",
    "error_kind": "{p_kind}",
    "error_message": "{p_message}",
    "error_excerpt": "{p_excerpt}",
    "error_at": "{p_now}",
    "updated_at": "{p_now}",
}
# statements are built once, by whether the claim is released: building them per parcel
# cost more CPU than running them
_SAVE_GOOD = {
    release: _shipment_update(_GOOD_PARAMS, _GOOD_VALUES, release_claim=release)
    for release in (True, False)
}
_SAVE_ERROR = {
    release: _shipment_update(_ERROR_PARAMS, _ERROR_VALUES, release_claim=release)
    for release in (True, False)
}


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
