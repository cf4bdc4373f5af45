"""Push ingest: provider callbacks feed the same store and rules as polling.

A push carries one or more tracking answers. Each usable answer is matched to the stored
parcels with its tracking number (one number may belong to several merged orders), stored
with the poller's rules (new scans only, no regress from delivered, courier corrections,
weights), and the touched orders go through detection in the same way a poll batch does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from carriers.model import TrackingResult
from tracker.bootstrap import App
from tracker.service.detect import DetectStats
from tracker.store import ingest, shipments_repo

__all__ = ["PushStats", "ingest_push"]

_log = structlog.get_logger("tracker.push")


@dataclass(slots=True)
class PushStats:
    """What one push changed."""

    received: int = 0
    stored: int = 0
    unknown: list[str] = field(default_factory=list)
    skipped: int = 0
    new_events: int = 0
    detect: DetectStats = field(default_factory=DetectStats)


def ingest_push(app: App, results: Sequence[TrackingResult], now: datetime) -> PushStats:
    """Store pushed answers for known parcels and run detection on their orders.

    Answers with an error or no tracking number are skipped (counted); numbers we do not
    track are listed in ``unknown`` and otherwise ignored.
    """
    stats = PushStats(received=len(results))
    usable = [r for r in results if r.error is None and r.tracking_number.strip()]
    stats.skipped = len(results) - len(usable)
    if not usable:
        return stats
    numbers = sorted({n for r in usable for n in _variants(r.tracking_number)})
    touched: set[int] = set()
    with app.uow() as uow:
        found = shipments_repo.find_shipment_ids(uow.conn, numbers)
        for result in usable:
            ids = sorted({i for n in _variants(result.tracking_number) for i in found.get(n, [])})
            if not ids:
                stats.unknown.append(result.tracking_number)
                continue
            for shipment_id in ids:
                outcome = ingest.save_pushed_result(uow.conn, shipment_id, result, now)
                if outcome is None:
                    continue
                stats.stored += 1
                stats.new_events += outcome.new_events
                touched.add(outcome.order_pk)
        uow.commit()
        if touched:
            stats.detect = app.detector.run(uow, touched, now)
    _log.info(
        "push_ingested",
        provider=usable[0].source,
        received=stats.received,
        stored=stats.stored,
        unknown=len(stats.unknown),
        new_events=stats.new_events,
        tickets_opened=stats.detect.opened,
    )
    return stats


def _variants(number: str) -> tuple[str, ...]:
    """The number as pushed and upper-cased (some providers upper-case what they echo)."""
    clean = number.strip()
    return (clean,) if clean == clean.upper() else (clean, clean.upper())
