"""Import use cases: orders and courier weights from files, all-or-nothing per file."""

from __future__ import annotations

from pathlib import Path

import structlog

from tracker.bootstrap import App
from tracker.domain.model import Address
from tracker.errors import BadInputError
from tracker.service.importing import LineError, read_orders, read_weights
from tracker.store import orders_repo, shipments_repo

__all__ = ["import_orders", "import_weights"]

_log = structlog.get_logger("tracker.imports")

_CHUNK = 500


def _reject(path: Path, errors: list[LineError]) -> BadInputError:
    noun = "problem" if len(errors) == 1 else "problems"
    return BadInputError(
        f"{path}: {len(errors)} {noun}; nothing from this file was stored",
        [str(e) for e in errors],
    )


def import_orders(app: App, path: Path) -> str:
    """Validate the whole file, then upsert every order in one transaction; returns a summary."""
    origin = app.settings.shop.origin
    default_origin = Address(province=origin.province, city=origin.city) if origin else None
    if not path.is_file():
        raise BadInputError(f"{path}: no such file")
    orders, errors = read_orders(path, timezone=app.settings.tz, default_origin=default_origin)
    if errors:
        raise _reject(path, errors)
    now = app.clock()
    inserted = updated = 0
    with app.uow() as uow:
        for start in range(0, len(orders), _CHUNK):
            added, changed = orders_repo.upsert_orders(
                uow.conn, orders[start : start + _CHUNK], now
            )
            inserted += added
            updated += changed
        uow.commit()
    parcels = sum(len(o.shipments) for o in orders)
    _log.info(
        "orders_imported", file=str(path), inserted=inserted, updated=updated, parcels=parcels
    )
    return f"{path}: {inserted} orders added, {updated} updated, {parcels} parcels"


def import_weights(app: App, path: Path) -> str:
    """Record courier-billed weights; unknown tracking numbers reject the file."""
    if not path.is_file():
        raise BadInputError(f"{path}: no such file")
    weights, errors = read_weights(path)
    if errors:
        raise _reject(path, errors)
    now = app.clock()
    with app.uow() as uow:
        known = shipments_repo.find_shipment_ids(uow.conn, [tn for tn, _, _ in weights])
        unknown = [
            LineError(str(path), line, f"tracking_number: no parcel {tn!r} is stored")
            for tn, _, line in weights
            if tn not in known
        ]
        if unknown:
            raise _reject(path, unknown)
        touched = shipments_repo.set_weights(uow.conn, [(tn, kg) for tn, kg, _ in weights], now)
        uow.commit()
    return f"{path}: {len(weights)} weights recorded for {len(touched)} orders"
