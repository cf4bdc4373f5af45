"""Orders, buyers, items and shipments: upsert from imports and load facts for detection."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, select, tuple_, update
from sqlalchemy.engine import Connection

from carriers.model import Location, Problem, Status, TrackingEvent
from tracker.domain.model import Address, Order, OrderFacts, ShipmentFacts, frozen_builder
from tracker.store.sql import driver_rows, pg_bool_array, pg_int_array, pg_time_array
from tracker.store.tables import buyers, order_items, orders, shipments, tickets
from tracker.store.types import sqlite_utc_text

__all__ = [
    "BuyerRow",
    "OrderContext",
    "iter_due_order_pks",
    "load_order_contexts",
    "make_active_orders_due",
    "refresh_active_flags",
    "still_active",
    "store_schedules",
    "upsert_orders",
]


@dataclass(frozen=True, slots=True)
class BuyerRow:
    """The buyer of an order as stored (phone unmasked: mask before showing)."""

    id: int
    name: str
    phone: str
    chat_id: str | None
    opt_out: bool


@dataclass(frozen=True, slots=True)
class OrderContext:
    """Facts for the rules plus the ids the ticket service needs to write rows."""

    pk: int
    facts: OrderFacts
    buyer: BuyerRow
    shipment_ids: dict[str, int]


# positional constructors for the objects built per loaded row (see frozen_builder)
_address = frozen_builder(Address)
_shipment_facts = frozen_builder(ShipmentFacts)
_order_facts = frozen_builder(OrderFacts)
_buyer_row = frozen_builder(BuyerRow)
_order_context = frozen_builder(OrderContext)
# TrackingEvent.__post_init__ only rejects naive times: _utc always gives aware UTC
_tracking_event = frozen_builder(TrackingEvent, skip_post_init=True)


def upsert_orders(conn: Connection, batch: Sequence[Order], now: datetime) -> tuple[int, int]:
    """Insert or update orders by ``order_id``; returns (inserted, updated). Never drops parcels."""
    inserted = updated = 0
    existing = _existing_order_pks(conn, [o.order_id for o in batch])
    for order in batch:
        buyer_id = _upsert_buyer(conn, order, now)
        values = {
            "buyer_id": buyer_id,
            "paid_at": order.paid_at,
            "ship_by": order.ship_by,
            "deliver_by": order.deliver_by,
            "origin_province": order.origin.province,
            "origin_city": order.origin.city,
            "dest_province": order.destination.province,
            "dest_city": order.destination.city,
            "dest_district": order.destination.district,
            "dest_address": order.destination.address,
            "items_weight_kg": order.items_weight_kg,
            "active": True,
            # due for detection at once (also under a clock set back with ``--now``)
            "next_check_at": min(now, order.paid_at),
            "updated_at": now,
        }
        pk = existing.get(order.order_id)
        if pk is None:
            pk = conn.execute(
                orders.insert()
                .values(order_id=order.order_id, created_at=now, **values)
                .returning(orders.c.id)
            ).scalar_one()
            inserted += 1
        else:
            conn.execute(update(orders).where(orders.c.id == pk).values(**values))
            conn.execute(delete(order_items).where(order_items.c.order_pk == pk))
            updated += 1
        conn.execute(
            order_items.insert(),
            [
                {
                    "order_pk": pk,
                    "line_no": n,
                    "sku": item.sku,
                    "name": item.name,
                    "qty": item.qty,
                    "unit_weight_kg": item.unit_weight_kg,
                }
                for n, item in enumerate(order.items, start=1)
            ],
        )
        _upsert_shipments(conn, pk, order, now)
    return inserted, updated


def _existing_order_pks(conn: Connection, order_ids: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    for start in range(0, len(order_ids), 500):
        chunk = order_ids[start : start + 500]
        rows = conn.execute(
            select(orders.c.order_id, orders.c.id).where(orders.c.order_id.in_(chunk))
        )
        found.update({r.order_id: r.id for r in rows})
    return found


def _upsert_buyer(conn: Connection, order: Order, now: datetime) -> int:
    buyer = order.buyer
    row = conn.execute(
        select(buyers.c.id, buyers.c.opt_out).where(buyers.c.phone == buyer.phone)
    ).first()
    if row is None:
        return int(
            conn.execute(
                buyers.insert()
                .values(
                    phone=buyer.phone,
                    name=buyer.name,
                    chat_id=buyer.chat_id,
                    opt_out=buyer.opt_out,
                    opt_out_at=now if buyer.opt_out else None,
                    created_at=now,
                    updated_at=now,
                )
                .returning(buyers.c.id)
            ).scalar_one()
        )
    values: dict[str, object] = {"name": buyer.name, "updated_at": now}
    if buyer.chat_id:
        values["chat_id"] = buyer.chat_id
    # An import may opt a buyer out but never silently opts them back in.
    if buyer.opt_out and not row.opt_out:
        values.update(opt_out=True, opt_out_at=now)
    conn.execute(update(buyers).where(buyers.c.id == row.id).values(**values))
    return int(row.id)


def _upsert_shipments(conn: Connection, order_pk: int, order: Order, now: datetime) -> None:
    stored = {
        r.tracking_number: r
        for r in conn.execute(
            select(
                shipments.c.id,
                shipments.c.tracking_number,
                shipments.c.courier,
                shipments.c.weight_source,
            ).where(shipments.c.order_pk == order_pk)
        )
    }
    for record in order.shipments:
        row = stored.get(record.tracking_number)
        if row is None:
            conn.execute(
                shipments.insert().values(
                    order_pk=order_pk,
                    courier=record.courier,
                    tracking_number=record.tracking_number,
                    shipped_at=record.shipped_at,
                    status=Status.PENDING.value,
                    weight_kg=record.weight_kg,
                    weight_source="import" if record.weight_kg is not None else None,
                    # due since it shipped: a clock set back (``--now``) still finds it due
                    next_poll_at=min(now, record.shipped_at or order.paid_at),
                    poll_count=0,
                    consecutive_failures=0,
                    provider_finished=False,
                    created_at=now,
                    updated_at=now,
                )
            )
            continue
        values: dict[str, object] = {"shipped_at": record.shipped_at, "updated_at": now}
        if record.courier != row.courier:
            # a corrected courier code means the old history belongs to another parcel
            values.update(courier=record.courier, next_poll_at=now, provider_finished=False)
        if record.weight_kg is not None and row.weight_source in (None, "import"):
            values.update(weight_kg=record.weight_kg, weight_source="import")
        conn.execute(update(shipments).where(shipments.c.id == row.id).values(**values))


def _due_query(after: bool) -> Any:
    """Active orders due at ``:now``, oldest moment first, from the partial index."""
    o = orders.c
    # a bare boolean renders as the index predicate (``active = 1`` / ``active``)
    query = select(o.id, o.next_check_at).where(o.active, o.next_check_at <= bindparam("now"))
    if after:
        query = query.where(
            tuple_(o.next_check_at, o.id)
            > tuple_(bindparam("last_at", type_=o.next_check_at.type), bindparam("last_id"))
        )
    return query.order_by(o.next_check_at, o.id).limit(bindparam("batch"))


_DUE_FIRST = _due_query(after=False)
_DUE_NEXT = _due_query(after=True)


def iter_due_order_pks(conn: Connection, now: datetime, batch: int = 500) -> Iterator[list[int]]:
    """Active orders whose next check is due at ``now``, in batches (keyset, constant memory).

    Batches follow (next_check_at, id) and never repeat an order, even if detecting it did
    not move its next check past ``now``; orders made due behind the cursor during the pass
    wait for the next pass.
    """
    rows = conn.execute(_DUE_FIRST, {"now": now, "batch": batch}).all()
    while rows:
        yield [r.id for r in rows]
        last = rows[-1]
        params = {"now": now, "batch": batch, "last_at": last.next_check_at, "last_id": last.id}
        rows = conn.execute(_DUE_NEXT, params).all()


def make_active_orders_due(conn: Connection, now: datetime) -> int:
    """Make every active order due at ``now`` (after a policy change); returns how many."""
    result = conn.execute(update(orders).where(orders.c.active.is_(True)).values(next_check_at=now))
    return int(result.rowcount)


# Contexts are read with plain driver SQL: at thousands of orders a second, SQLAlchemy's
# per-row result processing (UTCDateTime, Row objects) cost more than the rules themselves.
_ORDER_COLUMNS = (
    "o.id, o.order_id, o.buyer_id, o.paid_at, o.ship_by, o.deliver_by, o.origin_province, "
    "o.origin_city, o.dest_province, o.dest_city, o.dest_district, o.dest_address, "
    "o.items_weight_kg, b.name, b.phone, b.chat_id, b.opt_out"
)
_SHIP_COLUMNS = (
    "s.id, s.order_pk, s.courier, s.tracking_number, s.status, s.shipped_at, s.weight_kg, "
    "s.provider_finished"
)
_EVENT_COLUMNS = (
    "e.shipment_id, e.time, e.status, e.raw_code, e.text, e.problem, e.country, e.province, "
    "e.city, e.district"
)
_SQL: dict[str, dict[str, str]] = {
    # one parameter whatever the batch size: a bigint array / a JSON list of ids
    "postgresql": {
        "orders": f"SELECT {_ORDER_COLUMNS} FROM orders o JOIN buyers b ON b.id = o.buyer_id "
        "WHERE o.id = ANY(%(ids)s::bigint[]) ORDER BY o.id",
        "orders_locked": f"SELECT {_ORDER_COLUMNS} FROM orders o "
        "JOIN buyers b ON b.id = o.buyer_id WHERE o.id = ANY(%(ids)s::bigint[]) "
        "ORDER BY o.id FOR NO KEY UPDATE OF o",
        "shipments": f"SELECT {_SHIP_COLUMNS} FROM shipments s "
        "WHERE s.order_pk = ANY(%(ids)s::bigint[]) ORDER BY s.id",
        "events": f"SELECT {_EVENT_COLUMNS} FROM tracking_events e "
        "WHERE e.shipment_id = ANY(%(ids)s::bigint[]) ORDER BY e.shipment_id, e.time, e.id",
    },
    "sqlite": {
        "orders": f"SELECT {_ORDER_COLUMNS} FROM orders o JOIN buyers b ON b.id = o.buyer_id "
        "WHERE o.id IN (SELECT value FROM json_each(?)) ORDER BY o.id",
        "shipments": f"SELECT {_SHIP_COLUMNS} FROM shipments s "
        "WHERE s.order_pk IN (SELECT value FROM json_each(?)) ORDER BY s.id",
        "events": f"SELECT {_EVENT_COLUMNS} FROM tracking_events e "
        "WHERE e.shipment_id IN (SELECT value FROM json_each(?)) "
        "ORDER BY e.shipment_id, e.time, e.id",
    },
}
_SQL["sqlite"]["orders_locked"] = _SQL["sqlite"]["orders"]  # a SQLite writer holds the lock

_STATUS: dict[str, Status] = {s.value: s for s in Status}
_PROBLEM: dict[str | None, Problem | None] = {p.value: p for p in Problem}
_PROBLEM[None] = None
_PROBLEM[""] = None


def _utc(value: Any) -> datetime:
    """An aware UTC datetime from the driver's value (as ``UTCDateTime`` returns it)."""
    if value.__class__ is str:  # SQLite: naive UTC text; parsing the offset beats replace()
        return datetime.fromisoformat(value + "+00:00")
    tz = value.tzinfo
    if tz is UTC:
        return value  # type: ignore[no-any-return]
    if tz is None:
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
    # psycopg gives the session's zone (Etc/UTC): astimezone is the same instant and, unlike
    # replace(tzinfo=...) with its keyword parsing, cheaper than the driver's own decoding
    return value.astimezone(UTC)  # type: ignore[no-any-return]


class _Reader:
    """Turns driver rows into domain objects, sharing repeated places and statuses."""

    def __init__(self) -> None:
        self.locations: dict[tuple[str | None, ...], Location] = {}
        self.addresses: dict[tuple[str | None, ...], Address] = {}

    def origin(self, province: str, city: str) -> Address:
        """One shared origin :class:`Address` per (province, city): shops ship from few."""
        key = (province, city)
        found = self.addresses.get(key)
        if found is None:
            found = self.addresses[key] = _address(province, city, None, None)
        return found


def load_order_contexts(
    conn: Connection, order_pks: Iterable[int], *, lock: bool = False
) -> list[OrderContext]:
    """Everything the rules need for these orders, in three queries, ordered by order pk.

    With ``lock`` the orders' rows are locked until the transaction ends (PostgreSQL ``FOR
    NO KEY UPDATE``, which still lets others insert rows referencing them; a SQLite unit of
    work already holds the write lock), so two detections of one order run one after the
    other and the later one reads what the first wrote.
    """
    pks = sorted(set(order_pks))
    if not pks:
        return []
    dialect = conn.dialect.name
    sql = _SQL["postgresql" if dialect == "postgresql" else "sqlite"]
    reader = _Reader()
    if dialect == "postgresql":

        def run(name: str, ids: list[int]) -> list[tuple[Any, ...]]:
            return driver_rows(conn, sql[name], {"ids": pg_int_array(ids)})

    else:

        def run(name: str, ids: list[int]) -> list[tuple[Any, ...]]:
            return driver_rows(conn, sql[name], (json.dumps(ids),))

    order_rows = run("orders_locked" if lock else "orders", pks)
    ship_rows = run("shipments", pks)
    # per-row work is spelled out inline (no helper calls per event): at a few hundred
    # orders per batch, call overhead per row cost as much as building the objects
    utc, locations, origins = _utc, reader.locations, reader.addresses
    status, problem, event, location = _STATUS, _PROBLEM, _tracking_event, Location
    events_by_ship: dict[int, list[TrackingEvent]] = {}
    if ship_rows:
        last_sid: int | None = None
        bucket: list[TrackingEvent] = []
        for sid, at, st, raw_code, text, prob, country, province, city, district in run(
            "events", [s[0] for s in ship_rows]
        ):
            key = (country, province, city, district)
            where = locations.get(key)
            if where is None:
                where = locations[key] = location(*key)
            made = event(utc(at), status[st], raw_code, text, where, problem[prob])
            if sid == last_sid:
                bucket.append(made)
            else:  # rows come by shipment: a new one starts (or an earlier one continues)
                last_sid = sid
                bucket = events_by_ship.setdefault(sid, [])
                bucket.append(made)
    ships_by_order: dict[int, list[tuple[int, ShipmentFacts]]] = {}
    for sid, order_pk, courier, number, st, shipped_at, weight, finished in ship_rows:
        events = events_by_ship.get(sid)
        parcel = _shipment_facts(
            courier,
            number,
            status[st],
            None if shipped_at is None else utc(shipped_at),
            tuple(events) if events else (),
            weight,
            bool(finished),
        )
        mine = ships_by_order.get(order_pk)
        if mine is None:
            ships_by_order[order_pk] = [(sid, parcel)]
        else:
            mine.append((sid, parcel))
    contexts = []
    for (
        pk,
        order_id,
        buyer_id,
        paid_at,
        ship_by,
        deliver_by,
        origin_province,
        origin_city,
        dest_province,
        dest_city,
        dest_district,
        dest_address,
        items_weight_kg,
        name,
        phone,
        chat_id,
        opt_out,
    ) in order_rows:
        origin = origins.get((origin_province, origin_city))
        if origin is None:
            origin = reader.origin(origin_province, origin_city)
        parcels = ships_by_order.get(pk)
        if parcels is None:
            shipments: tuple[ShipmentFacts, ...] = ()
            shipment_ids: dict[str, int] = {}
        elif len(parcels) == 1:
            sid, only = parcels[0]
            shipments = (only,)
            shipment_ids = {only.tracking_number: sid}
        else:
            shipments = tuple(f for _, f in parcels)
            shipment_ids = {f.tracking_number: sid for sid, f in parcels}
        facts = _order_facts(
            order_id,
            utc(paid_at),
            origin,
            _address(dest_province, dest_city, dest_district, dest_address),
            items_weight_kg,
            shipments,
            None if ship_by is None else utc(ship_by),
            None if deliver_by is None else utc(deliver_by),
        )
        contexts.append(
            _order_context(
                pk,
                facts,
                _buyer_row(buyer_id, name, phone, chat_id, bool(opt_out)),
                shipment_ids,
            )
        )
    return contexts


def _active_expr() -> Any:
    """True while a parcel is unfinished, a ticket is open, or no parcel exists yet."""
    open_tickets = (
        select(func.count())
        .select_from(tickets)
        .where(and_(tickets.c.order_pk == orders.c.id, tickets.c.status != "resolved"))
        .scalar_subquery()
    )
    unfinished = (
        select(func.count())
        .select_from(shipments)
        .where(
            and_(
                shipments.c.order_pk == orders.c.id,
                shipments.c.status.not_in([Status.DELIVERED.value, Status.RETURNED.value]),
            )
        )
        .scalar_subquery()
    )
    any_parcel = (
        select(func.count())
        .select_from(shipments)
        .where(shipments.c.order_pk == orders.c.id)
        .scalar_subquery()
    )
    return (open_tickets > 0) | (unfinished > 0) | (any_parcel == 0)


_FINISHED = frozenset({Status.DELIVERED, Status.RETURNED})

# One fixed statement per batch: arrays on PostgreSQL (locks taken in id order), a prepared
# executemany on SQLite, whose times are the naive UTC text SQLAlchemy stores.
_STORE_SCHEDULE = {
    "postgresql": "UPDATE orders SET active = v.active, next_check_at = v.next_check, "
    "updated_at = %(now)s FROM unnest(%(ids)s::bigint[], %(active)s::boolean[], "
    "%(next)s::timestamptz[]) AS v(id, active, next_check) WHERE orders.id = v.id",
    "sqlite": "UPDATE orders SET active = ?, next_check_at = ?, updated_at = ? WHERE id = ?",
}


def still_active(ctx: OrderContext, has_open_ticket: bool) -> bool:
    """The ``active`` flag :func:`refresh_active_flags` would compute, from what was loaded.

    Active while a ticket is open, a parcel is not finished (delivered or returned, as
    stored), or the order has no parcel yet.
    """
    parcels = ctx.facts.shipments
    return has_open_ticket or not parcels or any(s.status not in _FINISHED for s in parcels)


def store_schedules(
    conn: Connection, schedules: Iterable[tuple[int, bool, datetime | None]], now: datetime
) -> None:
    """Store (order pk, active, next check) for orders detection just looked at.

    One prepared statement for the batch: cheaper than recounting tickets and parcels in
    SQL, which the caller (holding the orders' row locks) already knows.
    """
    rows = sorted(schedules)
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(
            _STORE_SCHEDULE["postgresql"],
            {
                "now": now,
                "ids": pg_int_array(pk for pk, _, _ in rows),
                "active": pg_bool_array(active for _, active, _ in rows),
                "next": pg_time_array(at for _, _, at in rows),
            },
        )
        return
    stamp = sqlite_utc_text(now)
    conn.exec_driver_sql(
        _STORE_SCHEDULE["sqlite"],
        [(int(active), at and sqlite_utc_text(at), stamp, pk) for pk, active, at in rows],
    )


def refresh_active_flags(conn: Connection, order_pks: Iterable[int], now: datetime) -> None:
    """Mark orders inactive once every parcel is finished and no ticket is open (in SQL)."""
    pks = list(order_pks)
    if not pks:
        return
    conn.execute(
        update(orders).where(orders.c.id.in_(pks)).values(active=_active_expr(), updated_at=now)
    )
