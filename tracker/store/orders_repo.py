"""Orders, buyers, items and shipments: upsert from imports and load facts for detection."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.engine import Connection, Row

from carriers.model import Location, Problem, Status, TrackingEvent
from tracker.domain.model import Address, Order, OrderFacts, ShipmentFacts
from tracker.store.tables import buyers, order_items, orders, shipments, tickets, tracking_events

__all__ = [
    "BuyerRow",
    "OrderContext",
    "iter_active_order_pks",
    "load_order_contexts",
    "refresh_active_flags",
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


def iter_active_order_pks(conn: Connection, batch: int = 1000) -> Iterator[list[int]]:
    """Active order primary keys in ascending batches (keyset pagination, constant memory)."""
    last = 0
    while True:
        pks = list(
            conn.execute(
                select(orders.c.id)
                .where(and_(orders.c.active.is_(True), orders.c.id > last))
                .order_by(orders.c.id)
                .limit(batch)
            ).scalars()
        )
        if not pks:
            return
        yield pks
        last = pks[-1]


def load_order_contexts(conn: Connection, order_pks: Iterable[int]) -> list[OrderContext]:
    """Everything the rules need for these orders, in three queries."""
    pks = sorted(set(order_pks))
    if not pks:
        return []
    order_rows = conn.execute(
        select(
            orders,
            buyers.c.name.label("b_name"),
            buyers.c.phone,
            buyers.c.chat_id,
            buyers.c.opt_out,
        )
        .join(buyers, buyers.c.id == orders.c.buyer_id)
        .where(orders.c.id.in_(pks))
    ).all()
    ship_rows = conn.execute(
        select(shipments).where(shipments.c.order_pk.in_(pks)).order_by(shipments.c.id)
    ).all()
    ship_ids = [s.id for s in ship_rows]
    events_by_ship: dict[int, list[TrackingEvent]] = defaultdict(list)
    if ship_ids:
        for e in conn.execute(
            select(tracking_events)
            .where(tracking_events.c.shipment_id.in_(ship_ids))
            .order_by(tracking_events.c.shipment_id, tracking_events.c.time, tracking_events.c.id)
        ):
            events_by_ship[e.shipment_id].append(_event_from_row(e))
    ships_by_order: dict[int, list[tuple[int, ShipmentFacts]]] = defaultdict(list)
    for s in ship_rows:
        ships_by_order[s.order_pk].append(
            (
                s.id,
                ShipmentFacts(
                    courier=s.courier,
                    tracking_number=s.tracking_number,
                    status=Status(s.status),
                    shipped_at=s.shipped_at,
                    events=tuple(events_by_ship.get(s.id, ())),
                    weight_kg=s.weight_kg,
                    provider_finished=bool(s.provider_finished),
                ),
            )
        )
    contexts = []
    for o in order_rows:
        parcels = ships_by_order.get(o.id, [])
        facts = OrderFacts(
            order_id=o.order_id,
            paid_at=o.paid_at,
            origin=Address(province=o.origin_province, city=o.origin_city),
            destination=Address(
                province=o.dest_province,
                city=o.dest_city,
                district=o.dest_district,
                address=o.dest_address,
            ),
            items_weight_kg=o.items_weight_kg,
            shipments=tuple(f for _, f in parcels),
            ship_by=o.ship_by,
            deliver_by=o.deliver_by,
        )
        buyer = BuyerRow(
            id=o.buyer_id, name=o.b_name, phone=o.phone, chat_id=o.chat_id, opt_out=bool(o.opt_out)
        )
        contexts.append(
            OrderContext(
                pk=o.id,
                facts=facts,
                buyer=buyer,
                shipment_ids={f.tracking_number: sid for sid, f in parcels},
            )
        )
    return contexts


def _event_from_row(r: Row[Any]) -> TrackingEvent:
    return TrackingEvent(
        time=r.time,
        status=Status(r.status),
        raw_code=r.raw_code,
        text=r.text,
        location=Location(country=r.country, province=r.province, city=r.city, district=r.district),
        problem=Problem(r.problem) if r.problem else None,
    )


def refresh_active_flags(conn: Connection, order_pks: Iterable[int], now: datetime) -> None:
    """Mark orders inactive once every parcel is finished and no ticket is open."""
    pks = list(order_pks)
    if not pks:
        return
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
    conn.execute(
        update(orders)
        .where(orders.c.id.in_(pks))
        .values(active=(open_tickets > 0) | (unfinished > 0) | (any_parcel == 0), updated_at=now)
    )
