"""Carrier scorecard and parcels by region: one streaming aggregate over the period's parcels.

The cohort is every parcel whose transit started (``shipped_at``, else its first scan,
as the overdue rule does) within the 30-day period. Lanes are computed in SQL exactly as
:func:`tracker.domain.policy.lane_of` does on the stored (canonical) place names; the
deadline comes from the :mod:`tracker.report.allowance` table.

One pass, hash joins and one hash aggregate (no sort, no materialised intermediate):
parcels join their order, their allowance row, and their tickets *pre-aggregated per
parcel* (one row per parcel with a 0/1 flag per kind, so a parcel with several tickets
is still counted once), grouped by courier, lane, destination province and whole transit
hours (rounded down; null until delivered). Python folds those rows two ways:

* per courier, lane and destination province: parcels, delivered, on time, late,
  parcels with a ticket of each kind and of any kind, and their tickets still open;
* per courier (and lane): a histogram of transit hours, from which it takes
  nearest-rank percentiles, exact to the hour, without sorting every parcel in SQL.

The same SQL runs on SQLite and PostgreSQL. Cost grows with the parcels of the period
(see the report's benchmark notes); the orders join is most of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    and_,
    case,
    column,
    func,
    literal,
    null,
    or_,
    select,
    values,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.selectable import CTE

from carriers.geo import REMOTE_PROVINCES
from tracker.domain.model import ExceptionKind
from tracker.domain.policy import Lane
from tracker.report.allowance import AllowancePlan
from tracker.report.model import ReportWindow
from tracker.report.sqlfuncs import day_of, epoch_seconds, floor_int
from tracker.store.tables import orders, shipments, tickets

__all__ = ["KINDS", "CohortCounts", "GroupCounts", "cohort_counts"]

#: the exception kinds flagged per parcel
KINDS = tuple(k.value for k in ExceptionKind)
#: lanes by the integer code the SQL uses for them
LANES = tuple(Lane)
# the allowance table is keyed by profile * this + day index (one integer hash key)
_DAYS_PER_PROFILE = 1000
_GOING_BACK = ("returning", "returned")


@dataclass(slots=True)
class GroupCounts:
    """Counts for one (courier, lane, destination province) group of the cohort."""

    shipments: int = 0
    delivered: int = 0
    on_time: int = 0
    late: int = 0
    exceptional: int = 0
    open_tickets: int = 0
    exceptions: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class CohortCounts:
    """Additive counts per group, plus percentiles per courier and per (courier, lane)."""

    groups: dict[tuple[str, str, str], GroupCounts] = field(default_factory=dict)
    #: (courier, lane) -> {whole transit hours: delivered parcels}
    transit_hours: dict[tuple[str, str], dict[int, int]] = field(default_factory=dict)

    def percentiles(self, courier: str, lane: str | None) -> tuple[float | None, float | None]:
        """Nearest-rank median and p90 transit, in days, of a courier (or one of its lanes)."""
        histogram: dict[int, int] = {}
        for (of_courier, of_lane), counts in self.transit_hours.items():
            if of_courier == courier and (lane is None or of_lane == lane):
                for hours, n in counts.items():
                    histogram[hours] = histogram.get(hours, 0) + n
        return _rank(histogram, 50), _rank(histogram, 90)


def _lane() -> ColumnElement[int]:
    """The lane as its index in :data:`LANES` (integers hash and compare cheaply)."""
    remote = sorted(REMOTE_PROVINCES)
    return case(
        (
            orders.c.origin_province == orders.c.dest_province,
            case(
                (orders.c.origin_city == orders.c.dest_city, LANES.index(Lane.SAME_CITY)),
                else_=LANES.index(Lane.SAME_PROVINCE),
            ),
        ),
        (
            or_(orders.c.origin_province.in_(remote), orders.c.dest_province.in_(remote)),
            LANES.index(Lane.REMOTE),
        ),
        else_=LANES.index(Lane.OTHER_PROVINCE),
    )


def _member(col: ColumnElement[str], value: str | None, named: frozenset[str]) -> Any:
    if value is not None:
        return col == value
    return col.not_in(sorted(named)) if named else None


def _profile(
    courier: Any, origin: Any, destination: Any, lane: Any, plan: AllowancePlan
) -> ColumnElement[int]:
    whens = []
    for cell, cell_lane, profile_id in plan.cells:
        parts = [
            _member(courier, cell.courier, plan.couriers),
            _member(origin, cell.origin, plan.origins),
            _member(destination, cell.destination, plan.destinations),
            lane == LANES.index(cell_lane),
        ]
        whens.append((and_(*(p for p in parts if p is not None)), literal(profile_id)))
    return case(*whens, else_=null())


def _in_period(parcels: Any, window: ReportWindow) -> Any:
    """Transit started in the period: ``shipped_at``, else the first scan, in range."""
    period = (window.period_start, window.period_end)
    return or_(
        and_(parcels.c.shipped_at >= period[0], parcels.c.shipped_at < period[1]),
        and_(
            parcels.c.shipped_at.is_(None),
            parcels.c.first_scan_at >= period[0],
            parcels.c.first_scan_at < period[1],
        ),
    )


def _ticket_flags(window: ReportWindow) -> Any:
    """Per parcel of the period with tickets: a 0/1 flag per kind, and its open tickets.

    Only the period's parcels' tickets are aggregated (the join comes first), so the
    cost follows the period, not the whole ticket history.
    """
    parcel = shipments.alias("flagged_parcel")
    still_open = or_(tickets.c.status != "resolved", tickets.c.resolved_at >= window.end)
    flags = [
        func.max(case((tickets.c.kind == kind, 1), else_=0)).label(f"k_{kind}") for kind in KINDS
    ]
    return (
        select(
            tickets.c.shipment_id,
            *flags,
            func.sum(case((still_open, 1), else_=0)).label("still_open"),
        )
        .select_from(tickets)
        .join(parcel, parcel.c.id == tickets.c.shipment_id)
        .where(_in_period(parcel, window), tickets.c.opened_at < window.end)
        .group_by(tickets.c.shipment_id)
        .subquery("ticket_flags")
    )


def _allowances(plan: AllowancePlan) -> CTE:
    return (
        values(
            column("key", Integer),
            column("w", Integer),
            column("v", Float),
            name="allowance",
        )
        .data([(profile * _DAYS_PER_PROFILE + day, w, v) for profile, day, w, v in plan.rows])
        .cte("allowance")
    )


def _parcels(window: ReportWindow, plan: AllowancePlan) -> Any:
    """Every parcel of the period with its lane, outcome flags and ticket flags."""
    start_col = func.coalesce(shipments.c.shipped_at, shipments.c.first_scan_at)
    start_s = epoch_seconds(start_col)
    delivered_in_time = and_(
        shipments.c.delivered_at.is_not(None), shipments.c.delivered_at < window.end
    )
    # OFFSET 0 keeps this subquery from being merged into the outer query, so each of its
    # expressions is computed once per parcel rather than once per use
    base = (
        select(
            shipments.c.id,
            shipments.c.courier,
            shipments.c.status,
            orders.c.origin_province,
            orders.c.dest_province,
            _lane().label("lane"),
            start_s.label("start_s"),
            case((delivered_in_time, epoch_seconds(shipments.c.delivered_at)), else_=null()).label(
                "delivered_s"
            ),
            day_of(start_col, start_s, window.day_edges).label("day"),
        )
        .select_from(shipments)
        .join(orders, orders.c.id == shipments.c.order_pk)
        .where(_in_period(shipments, window))
        .offset(0)
        .subquery("base")
    )
    allowance = _allowances(plan)
    profile = _profile(
        base.c.courier, base.c.origin_province, base.c.dest_province, base.c.lane, plan
    )
    deadline = allowance.c.w * base.c.start_s + allowance.c.v
    delivered = base.c.delivered_s.is_not(None)
    transit = base.c.delivered_s - base.c.start_s
    flags = _ticket_flags(window)
    return (
        select(
            base.c.courier,
            base.c.lane,
            base.c.dest_province,
            case((delivered, 1), else_=0).label("delivered"),
            case((and_(delivered, base.c.delivered_s <= deadline), 1), else_=0).label("on_time"),
            case(
                (and_(delivered, base.c.delivered_s > deadline), 1),
                (
                    and_(
                        ~delivered,
                        base.c.status.not_in(_GOING_BACK),
                        literal(window.end.timestamp()) > deadline,
                    ),
                    1,
                ),
                else_=0,
            ).label("late"),
            case(
                (~delivered, null()),
                (transit < 0, 0),  # a delivery scan dated before shipping: bad data, not speed
                else_=floor_int(transit / 3600.0),
            ).label("hours"),
            *(func.coalesce(flags.c[f"k_{kind}"], 0).label(f"k_{kind}") for kind in KINDS),
            case((flags.c.shipment_id.is_not(None), 1), else_=0).label("k_any"),
            func.coalesce(flags.c.still_open, 0).label("still_open"),
        )
        .select_from(base)
        .join(
            allowance,
            allowance.c.key == profile * _DAYS_PER_PROFILE + base.c.day,
            isouter=True,
        )
        .join(flags, flags.c.shipment_id == base.c.id, isouter=True)
    )


def _sums(source: Any) -> list[Any]:
    return [
        func.count().label("n"),
        func.sum(source.c.delivered).label("delivered"),
        func.sum(source.c.on_time).label("on_time"),
        func.sum(source.c.late).label("late"),
        *(func.sum(source.c[f"k_{kind}"]).label(f"k_{kind}") for kind in KINDS),
        func.sum(source.c.k_any).label("k_any"),
        func.sum(source.c.still_open).label("still_open"),
    ]


def _statement(window: ReportWindow, plan: AllowancePlan) -> Any:
    parcels = _parcels(window, plan).subquery("parcels")
    keys = (parcels.c.courier, parcels.c.lane, parcels.c.dest_province, parcels.c.hours)
    return select(*keys, *_sums(parcels)).group_by(*keys)


def cohort_counts(conn: Connection, window: ReportWindow, plan: AllowancePlan) -> CohortCounts:
    """Run the scorecard statement and fold its rows into :class:`CohortCounts`."""
    result = CohortCounts()
    for row in conn.execute(_statement(window, plan)).mappings():
        courier, lane = row["courier"], LANES[int(row["lane"])].value
        hours, n = row["hours"], int(row["n"])
        if hours is not None:
            bins = result.transit_hours.setdefault((courier, lane), {})
            bins[int(hours)] = bins.get(int(hours), 0) + n
        group = result.groups.setdefault((courier, lane, row["dest_province"]), GroupCounts())
        group.shipments += n
        group.delivered += int(row["delivered"] or 0)
        group.on_time += int(row["on_time"] or 0)
        group.late += int(row["late"] or 0)
        group.exceptional += int(row["k_any"] or 0)
        group.open_tickets += int(row["still_open"] or 0)
        for kind in KINDS:
            count = int(row[f"k_{kind}"] or 0)
            if count:
                group.exceptions[kind] = group.exceptions.get(kind, 0) + count
    return result


def _rank(histogram: dict[int, int], percent: int) -> float | None:
    """The nearest-rank percentile of a histogram of whole hours, in days (2 decimals)."""
    total = sum(histogram.values())
    if not total:
        return None
    rank = -(-total * percent // 100)  # ceil without floats
    seen = 0
    for hours in sorted(histogram):
        seen += histogram[hours]
        if seen >= rank:
            return round(hours / 24, 2)
    return None  # pragma: no cover - the loop always reaches the rank
