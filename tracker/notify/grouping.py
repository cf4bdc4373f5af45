"""Regional bursts: many new tickets for one courier and region become one agent alert.

When a courier hub floods or a typhoon closes a city, dozens of parcels stall at once; one
alert listing them tells agents "regional disruption" better than dozens of pings. Pure:
the dispatcher passes the due ``ticket.opened`` alerts it claimed and stores the plan.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from carriers.registry import courier_name
from tracker.settings import AlertGroupingConfig

__all__ = ["Burst", "PendingAlert", "plan_bursts"]


@dataclass(frozen=True, slots=True)
class PendingAlert:
    """A queued alert as grouping sees it."""

    id: int
    endpoint: str
    event_type: str
    payload: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Burst:
    """One alert (sent as ``lead_id``) standing for ``member_ids`` as well."""

    lead_id: int
    member_ids: tuple[int, ...]
    payload: dict[str, Any]


def _region(data: dict[str, Any], level: str) -> tuple[str, ...] | None:
    dest = data.get("destination") or {}
    province, city = dest.get("province"), dest.get("city")
    if not province:
        return None
    if level == "city":
        return (str(province), str(city)) if city else None
    return (str(province),)


def plan_bursts(
    alerts: Sequence[PendingAlert], config: AlertGroupingConfig, now: datetime, tz: ZoneInfo
) -> list[Burst]:
    """Group ``ticket.opened`` alerts per endpoint, courier and region within the window."""
    if not config.enabled:
        return []
    keyed: dict[tuple[str, str, tuple[str, ...]], list[PendingAlert]] = defaultdict(list)
    for alert in alerts:
        if alert.event_type != "ticket.opened":
            continue
        data = alert.payload.get("data") or {}
        courier = data.get("courier")
        region = _region(data, config.region)
        if courier and region:
            keyed[(alert.endpoint, courier, region)].append(alert)
    window = timedelta(seconds=config.window_s)
    bursts: list[Burst] = []
    for (_endpoint, courier, region), group in keyed.items():
        group.sort(key=lambda a: (a.created_at, a.id))
        clusters: list[list[PendingAlert]] = []
        for alert in group:
            if clusters and alert.created_at - clusters[-1][0].created_at <= window:
                clusters[-1].append(alert)
            else:
                clusters.append([alert])
        bursts += [
            _burst(cluster, courier, region, now, tz)
            for cluster in clusters
            if len(cluster) >= config.min_tickets
        ]
    return bursts


def _burst(
    cluster: list[PendingAlert],
    courier: str,
    region: tuple[str, ...],
    now: datetime,
    tz: ZoneInfo,
) -> Burst:
    ordered = sorted(cluster, key=lambda a: a.id)
    tickets = [a.payload.get("data") or {} for a in ordered]
    opened = sorted(str(t.get("opened_at")) for t in tickets if t.get("opened_at"))
    region_json = {"province": region[0]}
    if len(region) > 1:
        region_json["city"] = region[1]
    payload = {
        "type": "ticket.burst",
        "timestamp": now.astimezone(tz).isoformat(),
        "data": {
            "courier": courier,
            "courier_name": courier_name(courier),
            "region": region_json,
            "count": len(tickets),
            "kinds": dict(Counter(str(t.get("kind")) for t in tickets).most_common()),
            "first_opened_at": opened[0] if opened else None,
            "last_opened_at": opened[-1] if opened else None,
            "tickets": tickets,
        },
    }
    return Burst(ordered[0].id, tuple(a.id for a in ordered[1:]), payload)
