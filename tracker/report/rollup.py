"""The report's rollups: what they hold, when a report may trust them, and keeping them fresh.

A report must read a few thousand rows, not every parcel and ticket of the period, and its
numbers must equal counts over the base tables. So (migration 0004):

* ``report_parcels`` keeps, per parcel with a transit start, what the scorecard needs:
  start day (local, by the timezone's fixed UTC offset), courier, lane, destination,
  whether it is going back, delivery time, deadline under the policy (the
  :mod:`~tracker.report.allowance` table of its start day), transit hours, and its
  tickets as they stood at the *reference instant* (``report_rollup_state.reference_at``,
  the end of the window of the last refresh): their kinds (a bit per kind), whether it
  had any, and how many were open.
* ``report_rollup`` sums those per start day, courier, lane, destination and, for parcels
  pending at the reference instant, the deadline *slot* (local days starting at the
  reference's time of day, 08:00 for the daily report): a report ending on a slot
  boundary decides "late" per row, without reading a parcel. ``report_transit`` counts
  parcels delivered by the reference instant per start day, courier, lane and transit hour.
* ``report_ticket_hours`` counts tickets opened and resolved per UTC hour and kind.

Triggers journal every parcel (``report_dirty_parcels``) and hour (``report_dirty_hours``)
whose rows a write may have changed, whoever wrote it. :func:`refresh_rollups` (the report
job runs it first) recomputes those parcels and hours from the base tables, and when the
window ends later than the reference instant, the parcels whose tickets or delivery fall
in between, applies the difference and moves the reference there: its cost follows what
changed. A report reads the rollups and swaps in a live read of the parcels and hours
whose rows do not hold for its window (journaled, or changed between the reference instant
and its window's end; none for the report the refresh was made for), so it is exact
whenever it runs (:mod:`~tracker.report.scorecard`).

A report trusts the rollups only when they were built for its timezone and offset and
each start day of its period was computed with the allowance table it computes
(:func:`check`): a policy change shows up as a mismatching day, and the next refresh
rebuilds everything. A timezone whose offset changes within the period (daylight saving)
never uses them: its reports read the base tables, as before.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from typing import Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import (
    BigInteger,
    Column,
    Float,
    Integer,
    MetaData,
    Table,
    and_,
    case,
    column,
    delete,
    distinct,
    exists,
    func,
    literal,
    not_,
    null,
    or_,
    select,
    text,
    union,
    union_all,
    values,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from tracker.domain.policy import Policy
from tracker.report.allowance import AllowancePlan, allowance_plan
from tracker.report.model import ReportWindow
from tracker.report.scorecard import (
    _GOING_BACK,
    KIND_BITS,
    KINDS,
    RollupView,
    _lane,
    _profile,
    changed_between,
)
from tracker.report.sqlfuncs import epoch_int, epoch_seconds, floor_int, from_epoch
from tracker.store.tables import (
    REPORT_KIND_SLOTS,
    orders,
    report_dirty_hours,
    report_dirty_parcels,
    report_parcels,
    report_rollup,
    report_rollup_days,
    report_rollup_state,
    report_ticket_hours,
    report_transit,
    shipments,
    tickets,
)
from tracker.store.uow import UnitOfWork

__all__ = [
    "ROLLUP_VERSION",
    "RefreshResult",
    "check",
    "day_signatures",
    "refresh_rollups",
    "rollups_built",
]

#: bump when what the rollups hold changes meaning: the next refresh rebuilds them
ROLLUP_VERSION = 1
_STATE_ID = 1
_EPOCH_DAY = date(1970, 1, 1).toordinal()
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY_S = 86400
_HOUR_S = 3600
#: a fold of more parcels than this rebuilds instead (one pass beats a huge IN list)
REBUILD_ABOVE = 250_000
#: how long a rebuild waits for transactions that began before it announced itself
_SETTLE_TIMEOUT_S = 60.0
_log = structlog.get_logger("tracker.report")


@dataclass(frozen=True, slots=True)
class RefreshResult:
    """What :func:`refresh_rollups` did: ``rebuilt``, ``folded``, or ``skipped`` (and why)."""

    action: str
    parcels: int = 0
    hours: int = 0
    seconds: float = 0.0
    reason: str = ""


def fixed_offset(tz: ZoneInfo, instants: Iterable[datetime]) -> int | None:
    """The timezone's UTC offset in seconds if it is the same at every instant, else None."""
    offsets = {moment.astimezone(tz).utcoffset() for moment in instants}
    if len(offsets) != 1:
        return None
    (offset,) = offsets
    return None if offset is None else int(offset.total_seconds())


def _kinds_key() -> str:
    return ",".join(KINDS)


def _midnight(day: int, tz: ZoneInfo) -> datetime:
    return datetime.combine(date.fromordinal(day), clock_time(), tzinfo=tz)


def plan_for_days(policy: Policy, days: Sequence[int]) -> tuple[AllowancePlan, list[int]]:
    """The allowance plan for these start days (ordinals); row day indexes map to ``days``."""
    edges = [_midnight(day, policy.timezone) for day in days]
    # allowance_plan reads only each edge's own midnight, never the next edge
    plan = allowance_plan(policy, [*edges, edges[-1] + timedelta(days=1)] if edges else [])
    return plan, list(days)


def day_signatures(plan: AllowancePlan, days: Sequence[int]) -> dict[int, str]:
    """Per day (ordinal): a digest of every cell's and lane's deadline rule that day."""
    by_profile: dict[tuple[int, int], tuple[int, float]] = {
        (profile, index): (w, v) for profile, index, w, v in plan.rows
    }
    out: dict[int, str] = {}
    for index, day in enumerate(days):
        parts = sorted(
            (
                cell.courier or "",
                cell.origin or "",
                cell.destination or "",
                lane.value,
                *by_profile[(profile, index)],
            )
            for cell, lane, profile in plan.cells
        )
        text_form = repr((ROLLUP_VERSION, parts))
        out[day] = hashlib.sha1(text_form.encode(), usedforsecurity=False).hexdigest()
    return out


def _window_days(window: ReportWindow) -> list[int]:
    return [day.toordinal() for day in window.days]


def check(
    conn: Connection, window: ReportWindow, policy: Policy, plan: AllowancePlan
) -> RollupView | None:
    """The rollups, if this report may read them; ``None`` means read the base tables.

    They must be built (and not being rebuilt) for this timezone, its offset must hold
    over the whole period, and every start day of the period they hold rows for must
    have been computed with the allowance table ``plan`` gives that day.
    """
    tz = window.tz
    if tz.key != policy.timezone.key:
        return None
    offset = fixed_offset(tz, [*window.day_edges, window.end])
    state = _state(conn)
    if offset is None or state is None or _stale_state(state, tz, offset):
        return None
    days = _window_days(window)
    stored = dict(
        conn.execute(
            select(report_rollup_days.c.day, report_rollup_days.c.signature).where(
                report_rollup_days.c.day >= days[0], report_rollup_days.c.day <= days[-1]
            )
        ).all()
    )
    expected = day_signatures(plan, days)
    if any(expected[day] != signature for day, signature in stored.items()):
        return None
    slot = slot_of(window.end, offset, state.anchor_s)
    journaled = conn.execute(select(exists(select(report_dirty_parcels.c.id)))).scalar_one()
    return RollupView(days[0], days[-1] + 1, slot, state.reference_at, bool(journaled))


def rollups_built(conn: Connection) -> bool:
    """True once the rollups were built (from then on the triggers journal writes)."""
    return _state(conn) is not None


def _state(conn: Connection) -> Any:
    return conn.execute(
        select(report_rollup_state).where(report_rollup_state.c.id == _STATE_ID)
    ).one_or_none()


def _stale_state(state: Any, tz: ZoneInfo, offset: int) -> str:
    """Why the stored rollups cannot serve this timezone and offset ('' when they can)."""
    if not state.ready:
        return "a rebuild has not finished"
    if (state.version, state.timezone, state.utc_offset_s, state.kinds) != (
        ROLLUP_VERSION,
        tz.key,
        offset,
        _kinds_key(),
    ):
        return "built for another version, timezone or set of kinds"
    return ""


def hours_usable(conn: Connection, window: ReportWindow) -> bool:
    """The hourly ticket counts serve this report: built, and its days start on whole hours."""
    if any(int(edge.timestamp()) % _HOUR_S for edge in window.day_edges):
        return False
    state = conn.execute(
        select(report_rollup_state.c.ready, report_rollup_state.c.version).where(
            report_rollup_state.c.id == _STATE_ID
        )
    ).one_or_none()
    return state is not None and bool(state.ready) and state.version == ROLLUP_VERSION


# -- what a parcel adds (report_parcels rows) ------------------------------------------


def _start() -> Any:
    return func.coalesce(shipments.c.shipped_at, shipments.c.first_scan_at)


def _start_day(offset_s: int) -> Any:
    """The local start day (ordinal) in integer arithmetic, exact on both backends."""
    shifted = (epoch_int(_start()) + offset_s).self_group()
    return shifted.op("/", return_type=Integer)(_DAY_S) + _EPOCH_DAY


def _kind_bits(kind: Any) -> Any:
    return case(*((kind == k, bit) for k, bit in KIND_BITS.items()), else_=0)


def slot_of(moment: datetime, offset_s: int, anchor_s: int) -> int:
    """The deadline slot holding ``moment``: local days that start ``anchor_s`` after midnight.

    Exact (integer microseconds); :func:`parcel_facts` computes the same in SQL.
    """
    micros = (moment - _EPOCH) // timedelta(microseconds=1)
    return (micros + (offset_s - anchor_s) * 1_000_000) // (_DAY_S * 1_000_000)


def parcel_facts(
    plan: AllowancePlan,
    days: Sequence[int],
    offset_s: int,
    anchor_s: int,
    reference_at: datetime,
    only: Any = None,
) -> Any:
    """``report_parcels`` rows at ``reference_at``, from the base tables (``only``: those ids).

    Every expression is the one :func:`tracker.report.scorecard.live_cohort_counts` uses
    (epoch floats, the lane, the deadline), so a comparison made later on these stored
    values gives what the live read gives. Tickets count as they stood at
    ``reference_at``: opened before it, open unless resolved before it.
    """
    start_s = epoch_seconds(_start())
    ref_s = reference_at.timestamp()
    base: Any = (
        select(
            shipments.c.id.label("shipment_id"),
            shipments.c.courier,
            shipments.c.status,
            orders.c.origin_province,
            orders.c.dest_province,
            _lane().label("lane"),
            start_s.label("start_s"),
            _start_day(offset_s).label("day"),
            case(
                (shipments.c.delivered_at.is_not(None), epoch_seconds(shipments.c.delivered_at)),
                else_=null(),
            ).label("delivered_s"),
        )
        .select_from(shipments)
        .join(orders, orders.c.id == shipments.c.order_pk)
        .where(_start().is_not(None))
    )
    if only is not None:
        base = base.where(shipments.c.id.in_(only))
    base = base.offset(0).subquery("base")
    allowance = (
        values(
            column("profile", Integer),
            column("day", Integer),
            column("w", Integer),
            column("v", Float),
            name="allowance",
            literal_binds=True,
        )
        .data([(profile, days[index], w, v) for profile, index, w, v in plan.rows])
        .cte("allowance")
    )
    still_open = or_(tickets.c.status != "resolved", tickets.c.resolved_at >= reference_at)
    flagged = select(
        tickets.c.shipment_id,
        func.sum(distinct(_kind_bits(tickets.c.kind))).label("kinds"),
        func.sum(case((still_open, 1), else_=0)).label("open_tickets"),
    ).where(tickets.c.shipment_id.is_not(None), tickets.c.opened_at < reference_at)
    if only is not None:
        flagged = flagged.where(tickets.c.shipment_id.in_(only))
    flags = flagged.group_by(tickets.c.shipment_id).subquery("flags")
    profile = _profile(
        base.c.courier, base.c.origin_province, base.c.dest_province, base.c.lane, plan
    )
    deadline = allowance.c.w * base.c.start_s + allowance.c.v
    transit = base.c.delivered_s - base.c.start_s
    back = base.c.status.in_(_GOING_BACK)
    pending = and_(or_(base.c.delivered_s.is_(None), base.c.delivered_s >= ref_s), not_(back))
    slot = floor_int((deadline + (offset_s - anchor_s)) / float(_DAY_S))
    return (
        select(
            base.c.shipment_id,
            base.c.day,
            base.c.courier,
            base.c.lane,
            base.c.dest_province,
            back.label("back"),
            base.c.delivered_s,
            deadline.label("deadline_s"),
            case((and_(pending, deadline.is_not(None)), slot), else_=0).label("due_slot"),
            case(
                (base.c.delivered_s.is_(None), null()),
                (transit < 0, 0),  # as the live read: bad data, not speed
                else_=floor_int(transit / 3600.0),
            ).label("hours"),
            func.coalesce(flags.c.kinds, 0).label("kinds"),
            flags.c.shipment_id.is_not(None).label("ticketed"),
            func.coalesce(flags.c.open_tickets, 0).label("open_tickets"),
        )
        .select_from(base)
        .join(
            allowance,
            and_(allowance.c.profile == profile, allowance.c.day == base.c.day),
            isouter=True,
        )
        .join(flags, flags.c.shipment_id == base.c.shipment_id, isouter=True)
    )


def _insert_facts(conn: Connection, facts: Any) -> None:
    conn.execute(
        report_parcels.insert().from_select([c.name for c in report_parcels.columns], facts)
    )


def _rollup_groups(reference_at: datetime, only: Any = None) -> Any:
    """``report_parcels`` summed as ``report_rollup`` keeps them (``only``: those parcels)."""
    rp = report_parcels.c
    delivered = rp.delivered_s < reference_at.timestamp()

    def count(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    kinds = [
        count(rp.kinds.op("&")(KIND_BITS[kind]) != 0).label(f"kind_{i}")
        for i, kind in enumerate(KINDS)
    ]
    unused = [literal(0).label(f"kind_{i}") for i in range(len(KINDS), REPORT_KIND_SLOTS)]
    stmt = select(
        rp.day,
        rp.courier,
        rp.lane,
        rp.dest_province,
        rp.due_slot,
        func.count().label("parcels"),
        count(delivered).label("delivered"),
        count(and_(delivered, rp.delivered_s <= rp.deadline_s)).label("on_time"),
        count(and_(delivered, rp.delivered_s > rp.deadline_s)).label("late"),
        # a NULL delivered_s makes ``delivered`` NULL, not false: count pending explicitly
        count(and_(or_(rp.delivered_s.is_(None), not_(delivered)), not_(rp.back))).label("pending"),
        count(rp.ticketed).label("ticketed"),
        func.sum(rp.open_tickets).label("open_tickets"),
        *kinds,
        *unused,
    )
    if only is not None:
        stmt = stmt.where(rp.shipment_id.in_(only))
    return stmt.group_by(rp.day, rp.courier, rp.lane, rp.dest_province, rp.due_slot)


def _transit_groups(reference_at: datetime, only: Any = None) -> Any:
    rp = report_parcels.c
    stmt = select(rp.day, rp.courier, rp.lane, rp.hours, func.count().label("parcels")).where(
        rp.hours.is_not(None), rp.delivered_s < reference_at.timestamp()
    )
    if only is not None:
        stmt = stmt.where(rp.shipment_id.in_(only))
    return stmt.group_by(rp.day, rp.courier, rp.lane, rp.hours)


def _ticket_hour_counts(hours: Any = None) -> Any:
    """Tickets opened and resolved per epoch hour and kind (``hours``: only those hours)."""

    def per_hour(col: Any, opened: int) -> Any:
        hour = epoch_int(col).op("/", return_type=Integer)(_HOUR_S)
        stmt = select(
            hour.label("hour"),
            tickets.c.kind,
            literal(opened).label("opened"),
            literal(1 - opened).label("resolved"),
        ).where(col.is_not(None))
        if hours is not None:
            stmt = stmt.select_from(
                tickets.join(
                    hours,
                    and_(
                        col >= from_epoch(hours.c.hour * _HOUR_S),
                        col < from_epoch((hours.c.hour + 1) * _HOUR_S),
                    ),
                )
            )
        return stmt

    rows = union_all(per_hour(tickets.c.opened_at, 1), per_hour(tickets.c.resolved_at, 0)).subquery(
        "ticket_hours"
    )
    return select(
        rows.c.hour,
        rows.c.kind,
        func.sum(rows.c.opened).label("opened"),
        func.sum(rows.c.resolved).label("resolved"),
    ).group_by(rows.c.hour, rows.c.kind)


def dirty_hours() -> Any:
    """The distinct epoch hours in the hour journal (a subquery with column ``hour``)."""
    hour = epoch_int(report_dirty_hours.c.at).op("/", return_type=Integer)(_HOUR_S)
    return select(hour.label("hour")).distinct().subquery("dirty_hours")


# -- refreshing ---------------------------------------------------------------------------


def refresh_rollups(
    engine: Engine, policy: Policy, window: ReportWindow, now: datetime, *, rebuild: bool = False
) -> RefreshResult:
    """Bring the rollups to ``window``'s end, folding the journals, or rebuild them.

    Rebuilds when they were never built, were built for another timezone, offset or
    version, or a start day of ``window``'s period was computed with another allowance
    table (the policy changed). Otherwise it recomputes only the journaled parcels and
    hours and, when ``window`` ends after the instant the rollups hold at, the parcels
    whose tickets or delivery fall in between, and moves that instant to the window's
    end (never back). A timezone whose offset is not fixed over the period skips (its
    reports read the base tables). Safe to run concurrently: runs queue on a lock.
    """
    started = time.perf_counter()
    tz = policy.timezone
    offset = fixed_offset(tz, [*window.day_edges, window.end, now])
    if offset is None or tz.key != window.tz.key:
        return RefreshResult("skipped", reason="the timezone's UTC offset is not fixed")
    period_plan = allowance_plan(policy, window.day_edges)
    expected = day_signatures(period_plan, _window_days(window))
    with _Locked(engine) as uow:
        conn = uow.conn
        state = _state(conn)
        reason = "asked to" if rebuild else _needs_rebuild(conn, state, tz, offset, expected)
        if not reason:
            target = max(state.reference_at, window.end)
            parcels, hours = _fold(conn, policy, offset, state, target, now)
            if parcels >= 0:
                uow.commit()
                return RefreshResult("folded", parcels, hours, time.perf_counter() - started)
            reason = "too many changes, or the policy changed for a changed parcel's day"
        if conn.dialect.name == "sqlite":
            parcels = _rebuild(conn, policy, tz, offset, window.end, now)
            uow.commit()
            return RefreshResult("rebuilt", parcels, 0, time.perf_counter() - started, reason)
        _announce(conn, tz, offset, window.end, now)
        uow.commit()
    if not _settle(engine):
        return RefreshResult("skipped", reason="transactions older than the rebuild still run")
    with _Locked(engine) as uow:
        parcels = _rebuild(uow.conn, policy, tz, offset, window.end, now)
        uow.commit()
    _log.info("report_rollups_rebuilt", parcels=parcels, reason=reason)
    return RefreshResult("rebuilt", parcels, 0, time.perf_counter() - started, reason)


class _Locked:
    """A write transaction holding the rollup lock, with one snapshot on PostgreSQL.

    PostgreSQL: REPEATABLE READ, and the lock is taken before the first query, so the
    snapshot is taken after any earlier refresh committed. SQLite: BEGIN IMMEDIATE.
    """

    def __init__(self, engine: Engine) -> None:
        self.uow = UnitOfWork(engine)

    def __enter__(self) -> UnitOfWork:
        uow = self.uow.__enter__()
        if uow.conn.dialect.name == "postgresql":
            uow.conn.execution_options(isolation_level="REPEATABLE READ")
            uow.conn.execute(text("LOCK TABLE report_rollup_state IN EXCLUSIVE MODE"))
            uow.conn.execute(text("SET LOCAL jit = off"))
            uow.conn.execute(text("SET LOCAL work_mem = '64MB'"))
            # a fold touches a few percent of the rows: by primary key, not by full scans
            # (the default cost assumes random reads from a spinning disk)
            uow.conn.execute(text("SET LOCAL random_page_cost = 1.1"))
        return uow

    def __exit__(self, *exc: object) -> None:
        self.uow.__exit__(None, None, None)


def _needs_rebuild(
    conn: Connection, state: Any, tz: ZoneInfo, offset: int, expected: dict[int, str]
) -> str:
    if state is None:
        return "never built"
    stale = _stale_state(state, tz, offset)
    if stale:
        return stale
    if not _signatures_match(conn, expected):
        return "the policy changed"
    return ""


def _signatures_match(conn: Connection, expected: dict[int, str]) -> bool:
    if not expected:
        return True
    stored = conn.execute(
        select(report_rollup_days.c.day, report_rollup_days.c.signature).where(
            report_rollup_days.c.day.in_(list(expected))
        )
    ).all()
    return all(expected[day] == signature for day, signature in stored)


def _days_of(conn: Connection, offset: int, only: Any = None) -> list[int]:
    stmt = select(_start_day(offset)).distinct().where(_start().is_not(None))
    if only is not None:
        stmt = stmt.where(shipments.c.id.in_(only))
    return sorted(int(d) for (d,) in conn.execute(stmt))


def _upsert(conn: Connection, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Add ``rows``' measures to ``table`` (inserting missing keys)."""
    if not rows:
        return
    module: Any = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = module.insert(table)
    measures = [c.name for c in table.columns if c.name not in keys]
    stmt = stmt.on_conflict_do_update(
        index_elements=keys,
        set_={name: table.c[name] + stmt.excluded[name] for name in measures},
    )
    for start in range(0, len(rows), 2000):
        conn.execute(stmt, rows[start : start + 2000])


_fold_ids = Table(
    "report_fold_ids",
    MetaData(),
    Column("shipment_id", BigInteger, primary_key=True),
    prefixes=["TEMPORARY"],
)
_ROLLUP_KEYS = ["day", "courier", "lane", "dest_province", "due_slot"]
_TRANSIT_KEYS = ["day", "courier", "lane", "hours"]


def _collect(conn: Connection, sources: list[Any]) -> int:
    """Fill the fold's id table (a temporary table: the set stays fixed while rows change)."""
    columns = "(shipment_id BIGINT PRIMARY KEY)"
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"CREATE TEMPORARY TABLE report_fold_ids {columns} ON COMMIT DROP"))
    else:
        conn.execute(text(f"CREATE TEMPORARY TABLE IF NOT EXISTS report_fold_ids {columns}"))
        conn.execute(delete(_fold_ids))
    ids: Any = union(*sources) if len(sources) > 1 else sources[0].distinct()
    conn.execute(_fold_ids.insert().from_select(["shipment_id"], ids))
    if conn.dialect.name == "postgresql":
        conn.execute(text("ANALYZE report_fold_ids"))
    return int(conn.execute(select(func.count()).select_from(_fold_ids)).scalar_one())


def _fold(
    conn: Connection, policy: Policy, offset: int, state: Any, target: datetime, now: datetime
) -> tuple[int, int]:
    """Recompute the journaled (and, moving to ``target``, the affected) parcels and hours.

    Returns (parcels, hours) recomputed; (-1, 0) when a rebuild is the better course (too
    many parcels, or the policy changed for a recomputed parcel's start day).
    """
    moving = target > state.reference_at
    if (
        not moving
        and not conn.execute(
            select(
                exists(select(report_dirty_parcels.c.id)) | exists(select(report_dirty_hours.c.id))
            )
        ).scalar_one()
    ):
        return 0, 0  # nothing changed: no write at all
    sources: list[Any] = [select(report_dirty_parcels.c.shipment_id)]
    if moving:
        sources += changed_between(state.reference_at, target)
    count = _collect(conn, sources)
    if count > REBUILD_ABOVE:
        return -1, 0
    ids = select(_fold_ids.c.shipment_id)
    if count:
        days = _days_of(conn, offset, ids)
        plan = None
        if days:
            plan, _ = plan_for_days(policy, days)
            signatures = day_signatures(plan, days)
            if not _signatures_match(conn, signatures):
                return -1, 0
            _store_signatures(conn, signatures)
        old, new = state.reference_at, target
        before = _measures(conn, _rollup_groups(old, ids), _ROLLUP_KEYS, -1)
        hist_before = _measures(conn, _transit_groups(old, ids), _TRANSIT_KEYS, -1)
        conn.execute(delete(report_parcels).where(report_parcels.c.shipment_id.in_(ids)))
        if plan is not None:
            facts = parcel_facts(plan, days, offset, state.anchor_s, new, only=ids)
            _insert_facts(conn, facts)
        after = _measures(conn, _rollup_groups(new, ids), _ROLLUP_KEYS, 1)
        hist_after = _measures(conn, _transit_groups(new, ids), _TRANSIT_KEYS, 1)
        _apply(conn, report_rollup, _ROLLUP_KEYS, before, after)
        _apply(conn, report_transit, _TRANSIT_KEYS, hist_before, hist_after)
    conn.execute(delete(report_dirty_parcels))
    if conn.dialect.name == "sqlite":
        conn.execute(text("DROP TABLE IF EXISTS temp.report_fold_ids"))
    hours = dirty_hours()
    n_hours = int(conn.execute(select(func.count()).select_from(hours)).scalar_one())
    if n_hours:
        conn.execute(
            delete(report_ticket_hours).where(report_ticket_hours.c.hour.in_(select(hours.c.hour)))
        )
        conn.execute(
            report_ticket_hours.insert().from_select(
                ["hour", "kind", "opened", "resolved"], _ticket_hour_counts(hours)
            )
        )
        conn.execute(delete(report_dirty_hours))
    conn.execute(
        report_rollup_state.update()
        .where(report_rollup_state.c.id == _STATE_ID)
        .values(reference_at=target, refreshed_at=now)
    )
    return count, n_hours


def _measures(
    conn: Connection, stmt: Any, keys: list[str], sign: int
) -> dict[tuple[Any, ...], dict[str, int]]:
    out: dict[tuple[Any, ...], dict[str, int]] = {}
    for row in conn.execute(stmt).mappings():
        key = tuple(row[k] for k in keys)
        out[key] = {k: sign * int(v or 0) for k, v in row.items() if k not in keys}
    return out


def _apply(
    conn: Connection,
    table: Any,
    keys: list[str],
    before: dict[tuple[Any, ...], dict[str, int]],
    after: dict[tuple[Any, ...], dict[str, int]],
) -> None:
    """Add ``after + before`` (``before`` is negated) per key; drop rows left empty."""
    rows: list[dict[str, Any]] = []
    for key in before.keys() | after.keys():
        old, new = before.get(key, {}), after.get(key, {})
        delta = {name: old.get(name, 0) + new.get(name, 0) for name in old.keys() | new.keys()}
        if any(delta.values()):
            rows.append({**dict(zip(keys, key, strict=True)), **delta})
    _upsert(conn, table, rows, keys)
    conn.execute(delete(table).where(table.c.parcels == 0))


def _store_signatures(conn: Connection, signatures: dict[int, str]) -> None:
    known = set(
        conn.execute(
            select(report_rollup_days.c.day).where(report_rollup_days.c.day.in_(list(signatures)))
        ).scalars()
    )
    missing = [{"day": d, "signature": s} for d, s in signatures.items() if d not in known]
    if missing:
        conn.execute(report_rollup_days.insert(), missing)


def _anchor(moment: datetime, tz: ZoneInfo) -> int:
    local = moment.astimezone(tz)
    return local.hour * 3600 + local.minute * 60 + local.second


def _state_values(
    tz: ZoneInfo, offset: int, reference_at: datetime, now: datetime, ready: bool
) -> dict[str, Any]:
    return {
        "id": _STATE_ID,
        "version": ROLLUP_VERSION,
        "timezone": tz.key,
        "utc_offset_s": offset,
        "kinds": _kinds_key(),
        "ready": ready,
        "reference_at": reference_at,
        "anchor_s": _anchor(reference_at, tz),
        "built_at": now,
        "refreshed_at": now,
    }


def _announce(
    conn: Connection, tz: ZoneInfo, offset: int, reference_at: datetime, now: datetime
) -> None:
    """Make the triggers journal from now on, and mark the rollups unreadable meanwhile."""
    conn.execute(delete(report_rollup_state))
    conn.execute(
        report_rollup_state.insert().values(**_state_values(tz, offset, reference_at, now, False))
    )


_WRITERS = text(
    "SELECT pid, backend_xid::text FROM pg_stat_activity WHERE datname = current_database()"
    " AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
)


def _settle(engine: Engine) -> bool:
    """Wait until every transaction of this database that wrote before the announcement ended.

    A writer whose trigger ran before the state row was committed journaled nothing; the
    rebuild's snapshot must include what it wrote, so it must have committed first. Such
    a writer holds a transaction id from its first write on, so it is among those running
    right after the announcement (later writers' triggers see the state row and journal).
    """
    deadline = time.monotonic() + _SETTLE_TIMEOUT_S
    with engine.connect() as conn:
        waiting = {(pid, xid) for pid, xid in conn.execute(_WRITERS)}
        conn.rollback()
        while waiting:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
            waiting &= {(pid, xid) for pid, xid in conn.execute(_WRITERS)}
            conn.rollback()
    return True


def _rebuild(
    conn: Connection,
    policy: Policy,
    tz: ZoneInfo,
    offset: int,
    reference_at: datetime,
    now: datetime,
) -> int:
    """Recompute every rollup from the base tables at ``reference_at``; returns the parcels."""
    for table in (report_parcels, report_rollup, report_transit, report_ticket_hours):
        if conn.dialect.name == "postgresql":
            conn.execute(text(f"TRUNCATE {table.name}"))
        else:
            conn.execute(delete(table))
    conn.execute(delete(report_rollup_days))
    # journal rows visible now are covered by this snapshot; later ones stay for a fold
    conn.execute(delete(report_dirty_parcels))
    conn.execute(delete(report_dirty_hours))
    anchor = _anchor(reference_at, tz)
    days = _days_of(conn, offset)
    if days:
        plan, _ = plan_for_days(policy, days)
        _insert_facts(conn, parcel_facts(plan, days, offset, anchor, reference_at))
        _store_signatures(conn, day_signatures(plan, days))
    rollup_columns = [c.name for c in report_rollup.columns]
    conn.execute(report_rollup.insert().from_select(rollup_columns, _rollup_groups(reference_at)))
    conn.execute(
        report_transit.insert().from_select(
            ["day", "courier", "lane", "hours", "parcels"], _transit_groups(reference_at)
        )
    )
    conn.execute(
        report_ticket_hours.insert().from_select(
            ["hour", "kind", "opened", "resolved"], _ticket_hour_counts()
        )
    )
    conn.execute(delete(report_rollup_state))
    conn.execute(
        report_rollup_state.insert().values(**_state_values(tz, offset, reference_at, now, True))
    )
    if conn.dialect.name == "postgresql":
        for table in (report_parcels, report_rollup, report_transit, report_ticket_hours):
            conn.execute(text(f"ANALYZE {table.name}"))
    return int(conn.execute(select(func.count()).select_from(report_parcels)).scalar_one())
