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

The same SQL runs on SQLite and PostgreSQL. That per-parcel read
(:func:`live_cohort_counts`) costs seconds per million parcels in the period, so a
report reads the rollups :mod:`tracker.report.rollup` keeps instead when they hold for
it (:func:`cohort_counts` with a :class:`RollupView`): a few thousand pre-summed rows,
plus the per-parcel read of just the parcels whose rolled-up rows do not hold for this
window, swapped in with opposite signs (see :func:`_rollup_statement`). Both give the
same counts; the golden tests check both against independent counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Float,
    Integer,
    String,
    and_,
    case,
    cast,
    column,
    func,
    literal,
    null,
    or_,
    select,
    union,
    union_all,
    values,
)
from sqlalchemy.engine import Connection
from sqlalchemy.sql.selectable import CTE

from carriers.geo import REMOTE_PROVINCES
from tracker.domain.model import ExceptionKind
from tracker.domain.policy import Lane
from tracker.report.allowance import AllowancePlan
from tracker.report.model import ReportWindow
from tracker.report.sqlfuncs import const, day_of, epoch_seconds, floor_int
from tracker.store.tables import (
    orders,
    report_dirty_parcels,
    report_parcels,
    report_rollup,
    report_rollup_state,
    report_transit,
    shipments,
    tickets,
)

__all__ = [
    "KINDS",
    "KIND_BITS",
    "CohortCounts",
    "GroupCounts",
    "RollupMismatch",
    "RollupView",
    "changed_between",
    "cohort_counts",
    "live_cohort_counts",
]

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


def _ticket_flags(window: ReportWindow, only: Any = None) -> Any:
    """Per parcel of the period with tickets: a 0/1 flag per kind, and its open tickets.

    Only the period's parcels' tickets are aggregated (the join comes first), so the
    cost follows the period, not the whole ticket history; ``only`` (a selectable of
    shipment ids) narrows it to those parcels.
    """
    parcel = shipments.alias("flagged_parcel")
    still_open = or_(tickets.c.status != "resolved", tickets.c.resolved_at >= window.end)
    flags = [
        func.max(case((tickets.c.kind == kind, 1), else_=0)).label(f"k_{kind}") for kind in KINDS
    ]
    stmt = (
        select(
            tickets.c.shipment_id,
            *flags,
            func.sum(case((still_open, 1), else_=0)).label("still_open"),
        )
        .where(tickets.c.opened_at < window.end)
        .group_by(tickets.c.shipment_id)
    )
    if only is not None:
        # the caller's join with the period's parcels drops the others: no second lookup
        return stmt.where(tickets.c.shipment_id.in_(only)).subquery("ticket_flags")
    stmt = stmt.join_from(tickets, parcel, parcel.c.id == tickets.c.shipment_id)
    return stmt.where(_in_period(parcel, window)).subquery("ticket_flags")


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


def _parcels(window: ReportWindow, plan: AllowancePlan, only: Any = None) -> Any:
    """Every parcel of the period (or of ``only``) with its lane, outcome and ticket flags."""
    start_col = func.coalesce(shipments.c.shipped_at, shipments.c.first_scan_at)
    start_s = epoch_seconds(start_col)
    delivered_in_time = and_(
        shipments.c.delivered_at.is_not(None), shipments.c.delivered_at < window.end
    )
    # OFFSET 0 keeps this subquery from being merged into the outer query, so each of its
    # expressions is computed once per parcel rather than once per use
    base: Any = (
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
    )
    if only is not None:
        base = base.where(shipments.c.id.in_(only))
    base = base.offset(0).subquery("base")
    allowance = _allowances(plan)
    profile = _profile(
        base.c.courier, base.c.origin_province, base.c.dest_province, base.c.lane, plan
    )
    deadline = allowance.c.w * base.c.start_s + allowance.c.v
    delivered = base.c.delivered_s.is_not(None)
    transit = base.c.delivered_s - base.c.start_s
    flags = _ticket_flags(window, only)
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


def cohort_counts(
    conn: Connection, window: ReportWindow, plan: AllowancePlan, rollup: RollupView | None = None
) -> CohortCounts:
    """The period's scorecard counts: from the rollups when ``rollup`` says they hold.

    Without ``rollup`` every parcel of the period is read (:func:`live_cohort_counts`).
    """
    if rollup is None:
        return live_cohort_counts(conn, window, plan)
    return _fold_signed(conn.execute(_rollup_statement(window, plan, rollup)).mappings())


def live_cohort_counts(conn: Connection, window: ReportWindow, plan: AllowancePlan) -> CohortCounts:
    """Run the per-parcel scorecard statement and fold its rows into :class:`CohortCounts`."""
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


@dataclass(frozen=True, slots=True)
class RollupView:
    """The rollups hold for this report (see :func:`tracker.report.rollup.check`).

    Days are ``date.toordinal()`` values: the period is ``[first_day, end_day)``.
    ``reference_at`` is the instant the rollups' counts hold at; ``window_slot`` is the
    deadline slot (see :mod:`tracker.report.rollup`) the window's end falls in.
    """

    first_day: int
    end_day: int
    window_slot: int
    reference_at: datetime
    #: parcels are listed in ``report_dirty_parcels`` (they must be read live)
    journaled: bool = True


class RollupMismatch(RuntimeError):
    """The rollup-based counts came out impossible (negative, or measures without parcels)."""


#: bit of each exception kind in ``report_parcels.kinds``
KIND_BITS = {kind: 1 << i for i, kind in enumerate(KINDS)}
_PART_GROUP, _PART_HOURS, _PART_GUARD = 0, 1, 2


def _row(part: int, src: Any, **values: Any) -> Any:
    """One branch of the rollup statement: every column present, in a fixed order."""
    text_null = cast(null(), String)
    int_null = cast(null(), Integer)
    names = ["n", "delivered", "on_time", "late", *(f"k_{k}" for k in KINDS), "k_any"]
    columns = [
        literal(part).label("part"),
        _given(values, "courier", src).label("courier"),
        _given(values, "lane", src).label("lane"),
        values.get("dest_province", text_null).label("dest_province"),
        values.get("hours", int_null).label("hours"),
        *(values.get(name, literal(0)).label(name) for name in [*names, "still_open"]),
    ]
    return select(*columns)


def _given(values: dict[str, Any], name: str, src: Any) -> Any:
    """The value given for a column, else the source's own column of that name."""
    found = values.get(name)
    return found if found is not None else src.c[name]


def _signed(condition: Any, sign: int) -> Any:
    return case((condition, sign), else_=0)


def changed_between(start: datetime, end: datetime) -> Any:
    """Parcels whose counts at ``start`` and at ``end`` may differ although no row changed.

    A ticket opened or resolved, or a delivery, in ``[start, end)``: its parcel's flags,
    open tickets or outcome read differently at the two instants.
    """
    rp = report_parcels.c
    parcel = tickets.c.shipment_id.is_not(None)
    return [
        select(tickets.c.shipment_id).where(
            tickets.c.opened_at >= start, tickets.c.opened_at < end, parcel
        ),
        select(tickets.c.shipment_id).where(
            tickets.c.resolved_at >= start, tickets.c.resolved_at < end, parcel
        ),
        select(rp.shipment_id).where(
            rp.delivered_s >= start.timestamp(), rp.delivered_s < end.timestamp()
        ),
    ]


def _rollup_statement(window: ReportWindow, plan: AllowancePlan, view: RollupView) -> Any:
    """Signed rows whose sums per group are the period's counts (one snapshot, one statement).

    * ``report_rollup`` rows of the period's start days (counts at ``reference_at``):
      parcels pending there are late when their deadline slot ends before the window's,
      and those due in the window's own slot are counted from ``report_parcels``
      (deadline before the window's end; none when the window ends on a slot boundary);
    * ``report_transit`` rows for the percentiles;
    * parcels whose rows do not hold for this window are swapped for a live read: those
      changed since the last fold (``report_dirty_parcels``) and, when the window does
      not end at ``reference_at``, those with a ticket opened or resolved, or delivered,
      in between.
    """
    rp, rr, rt = report_parcels.c, report_rollup.c, report_transit.c
    end_s, ref_s = window.end.timestamp(), view.reference_at.timestamp()

    def in_period(day: Any) -> Any:
        return and_(day >= view.first_day, day < view.end_day)

    # repeats the partial index's condition, constant and all, so SQLite uses the index
    due_now = and_(rp.due_slot > const(0), rp.due_slot == view.window_slot, rp.deadline_s < end_s)
    late_pending = or_(and_(rp.due_slot > 0, rp.due_slot < view.window_slot), due_now)
    delivered = rp.delivered_s < ref_s
    late = or_(and_(delivered, rp.delivered_s > rp.deadline_s), late_pending)
    sources: list[Any] = [select(report_dirty_parcels.c.shipment_id)] if view.journaled else []
    if view.reference_at != window.end:
        early, late_end = sorted((view.reference_at, window.end))
        sources += changed_between(early, late_end)
    kinds = dict(enumerate(KINDS))
    rollup_rows = _row(
        _PART_GROUP,
        report_rollup,
        dest_province=rr.dest_province,
        n=rr.parcels,
        delivered=rr.delivered,
        on_time=rr.on_time,
        late=rr.late
        + case((and_(rr.due_slot > 0, rr.due_slot < view.window_slot), rr.pending), else_=0),
        k_any=rr.ticketed,
        still_open=rr.open_tickets,
        **{f"k_{kind}": rr[f"kind_{i}"] for i, kind in kinds.items()},
    ).where(in_period(rr.day))
    due_today = _row(
        _PART_GROUP, report_parcels, dest_province=rp.dest_province, late=literal(1)
    ).where(in_period(rp.day), due_now)
    transit_rows = _row(_PART_HOURS, report_transit, hours=rt.hours, n=rt.parcels).where(
        in_period(rt.day)
    )
    # the rollups must still hold at the instant this report was planned for (a refresh
    # that committed since moved them on: the caller checks again)
    state = report_rollup_state.c
    guard = _row(
        _PART_GUARD, report_rollup_state, courier=literal(""), lane=literal(0), n=func.count()
    ).where(state.ready.is_(True), state.reference_at == view.reference_at)
    branches = [rollup_rows, due_today, transit_rows, guard]
    if sources:
        branches += _swapped(window, plan, view, sources, late)
    rows = union_all(*branches).subquery("signed")
    keys = (rows.c.part, rows.c.courier, rows.c.lane, rows.c.dest_province, rows.c.hours)
    names = ["n", "delivered", "on_time", "late", *(f"k_{k}" for k in KINDS), "k_any"]
    sums = [func.sum(rows.c[name]).label(name) for name in [*names, "still_open"]]
    return select(*keys, *sums).group_by(*keys)


def _swapped(
    window: ReportWindow, plan: AllowancePlan, view: RollupView, sources: list[Any], late: Any
) -> list[Any]:
    """Branches taking the swapped parcels' rows out and their live rows in."""
    rp = report_parcels.c
    delivered = rp.delivered_s < view.reference_at.timestamp()
    swapped = union(*sources).cte("swapped") if len(sources) > 1 else sources[0].cte("swapped")
    swapped_ids = select(swapped.c.shipment_id)
    stale = and_(rp.day >= view.first_day, rp.day < view.end_day, rp.shipment_id.in_(swapped_ids))
    stale_rows = _row(
        _PART_GROUP,
        report_parcels,
        dest_province=rp.dest_province,
        n=literal(-1),
        delivered=_signed(delivered, -1),
        on_time=_signed(and_(delivered, rp.delivered_s <= rp.deadline_s), -1),
        late=_signed(late, -1),
        k_any=_signed(rp.ticketed, -1),
        still_open=-rp.open_tickets,
        **{f"k_{kind}": _signed(rp.kinds.op("&")(KIND_BITS[kind]) != 0, -1) for kind in KINDS},
    ).where(stale)
    stale_hours = _row(_PART_HOURS, report_parcels, hours=rp.hours, n=literal(-1)).where(
        stale, delivered, rp.hours.is_not(None)
    )
    live = _parcels(window, plan, only=swapped_ids).cte("live")
    live_rows = _row(
        _PART_GROUP,
        live,
        dest_province=live.c.dest_province,
        n=literal(1),
        **{name: live.c[name] for name in ("delivered", "on_time", "late", "k_any", "still_open")},
        **{f"k_{kind}": live.c[f"k_{kind}"] for kind in KINDS},
    )
    live_hours = _row(_PART_HOURS, live, hours=live.c.hours, n=literal(1)).where(
        live.c.hours.is_not(None)
    )
    return [stale_rows, stale_hours, live_rows, live_hours]


def _fold_signed(rows: Iterable[Any]) -> CohortCounts:
    """Sum the signed rows per group and per transit hour; refuse impossible totals."""
    result = CohortCounts()
    guarded = False
    for row in rows:
        counts = {k: int(v or 0) for k, v in row.items() if k not in _KEY_COLUMNS}
        if row["part"] == _PART_GUARD:
            guarded = counts["n"] == 1
            continue
        courier, lane = row["courier"], LANES[int(row["lane"])].value
        if row["part"] == _PART_HOURS:
            if counts["n"]:
                bins = result.transit_hours.setdefault((courier, lane), {})
                bins[int(row["hours"])] = bins.get(int(row["hours"]), 0) + counts["n"]
            continue
        group = result.groups.setdefault((courier, lane, row["dest_province"]), GroupCounts())
        group.shipments += counts["n"]
        group.delivered += counts["delivered"]
        group.on_time += counts["on_time"]
        group.late += counts["late"]
        group.exceptional += counts["k_any"]
        group.open_tickets += counts["still_open"]
        for kind in KINDS:
            group.exceptions[kind] = group.exceptions.get(kind, 0) + counts[f"k_{kind}"]
    for key, group in list(result.groups.items()):
        group.exceptions = {k: n for k, n in group.exceptions.items() if n}
        values = [group.delivered, group.on_time, group.late, group.exceptional]
        values += [group.open_tickets, *group.exceptions.values()]
        if group.shipments < 0 or min(values, default=0) < 0:
            raise RollupMismatch(f"negative counts for {key}")
        if group.shipments == 0:
            if any(values):
                raise RollupMismatch(f"counts without parcels for {key}")
            del result.groups[key]
    if not guarded:
        raise RollupMismatch("the rollups moved on while the report was being built")
    for pair, bins in result.transit_hours.items():
        if any(n < 0 for n in bins.values()):
            raise RollupMismatch(f"negative transit histogram for {pair}")
        result.transit_hours[pair] = {h: n for h, n in bins.items() if n}
    return result


_KEY_COLUMNS = frozenset({"part", "courier", "lane", "dest_province", "hours"})


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
