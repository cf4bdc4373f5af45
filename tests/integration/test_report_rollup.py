"""The report's rollups stay exact: whatever writes the base tables, whenever the report runs.

Every check compares the rollup read with the base-table read of the same database
(:func:`tracker.report.scorecard.live_cohort_counts`, the trend and activity queries
without ``hourly``), which the golden tests check against independent counts. Writes go
through plain SQL, as any writer's would, so what keeps the rollups right is the
triggers and the refresh, not the tracker's repositories.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.engine import Engine

from tests.integration import report_seed as s
from tracker.domain.policy import Policy
from tracker.report import queries as q
from tracker.report import rollup
from tracker.report.allowance import allowance_plan
from tracker.report.build import build_daily_report, report_window
from tracker.report.model import ReportWindow
from tracker.report.rollup import refresh_rollups
from tracker.report.scorecard import cohort_counts, live_cohort_counts
from tracker.settings import Settings
from tracker.store.tables import (
    orders,
    report_dirty_hours,
    report_dirty_parcels,
    report_parcels,
    report_rollup,
    report_rollup_state,
    shipments,
    tickets,
)


def _settings(engine: Engine, **policy: Any) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": str(engine.url)},
            "carriers": {"sandbox": {}, "kd100": {"provider": "kuaidi100"}},
            "policy": {**s.POLICY_TABLE, **policy},
        }
    )


def _policy(settings: Settings) -> Policy:
    return Policy.from_mapping(settings.policy, timezone=settings.tz)


def _window(settings: Settings, days: int = 0) -> ReportWindow:
    return report_window(s.REPORT_DAY + timedelta(days=days), s.NOW, settings)


def _journal(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        parcels = conn.execute(select(func.count()).select_from(report_dirty_parcels))
        hours = conn.execute(select(func.count()).select_from(report_dirty_hours))
        return int(parcels.scalar_one()), int(hours.scalar_one())


def _assert_exact(engine: Engine, settings: Settings, window: ReportWindow) -> None:
    """The rollup read of ``window`` equals the base-table read, section by section."""
    policy = _policy(settings)
    plan = allowance_plan(policy, window.day_edges)
    with engine.connect() as conn:
        view = rollup.check(conn, window, policy, plan)
        assert view is not None, "the rollups should serve this report"
        assert cohort_counts(conn, window, plan, view) == live_cohort_counts(conn, window, plan)
        assert rollup.hours_usable(conn, window)
        assert sorted(q.period_ticket_counts(conn, window, hourly=True)) == sorted(
            q.period_ticket_counts(conn, window)
        )
        assert sorted(q.resolved_per_day(conn, window, hourly=True)) == sorted(
            q.resolved_per_day(conn, window)
        )
        assert q.activity_counts(conn, window, hourly=True) == q.activity_counts(conn, window)


@pytest.fixture
def seeded(engine: Engine) -> tuple[Settings, s.Seed]:
    """The golden seed, with rollups built for the golden report's window."""
    settings = _settings(engine)
    with engine.begin() as conn:
        seeded = s.seed(conn)
    assert refresh_rollups(engine, _policy(settings), _window(settings), s.NOW).action == (
        "rebuilt"
    )
    return settings, seeded


def test_the_triggers_journal_nothing_until_the_rollups_are_built(engine: Engine) -> None:
    """Before the first build writes cost no journal rows; after it every relevant one does."""
    settings = _settings(engine)
    with engine.begin() as conn:
        s.seed(conn)
        conn.execute(update(shipments).values(delivered_at=s.WINDOW_START))
    assert _journal(engine) == (0, 0)
    refresh_rollups(engine, _policy(settings), _window(settings), s.NOW)
    with engine.begin() as conn:
        conn.execute(update(shipments).values(poll_count=shipments.c.poll_count + 1))
    assert _journal(engine) == (0, 0), "a change the rollups do not read journals nothing"
    with engine.begin() as conn:
        first = conn.execute(select(func.min(shipments.c.id))).scalar_one()
        conn.execute(update(shipments).where(shipments.c.id == first).values(status="returned"))
    assert _journal(engine)[0] == 1


def _pick(rng: random.Random, engine: Engine, table: Any, *where: Any) -> Any:
    with engine.connect() as conn:
        ids = list(conn.execute(select(table.c.id).where(*where).order_by(table.c.id)).scalars())
    return rng.choice(ids) if ids else None


def _ticket(order_pk: int, shipment_id: int | None, kind: str, opened: datetime) -> dict[str, Any]:
    return {
        "order_pk": order_pk,
        "shipment_id": shipment_id,
        "kind": kind,
        "severity": "high",
        "status": "open",
        "opened_at": opened,
        "updated_at": opened,
        "evidence": {},
        "suggested_action": "核实",
        "detections": 1,
        "reopen_blocked": False,
    }


def _mutate(rng: random.Random, engine: Engine, step: int) -> str:
    """One write any part of the tracker (or an operator) might make; returns what it did."""
    end, now = s.WINDOW_END, s.NOW
    parcel = _pick(rng, engine, shipments)
    ticket = _pick(rng, engine, tickets)
    choice = rng.randrange(14)
    with engine.begin() as conn:
        order_pk = conn.execute(
            select(shipments.c.order_pk).where(shipments.c.id == parcel)
        ).scalar_one()
        by_id = update(shipments).where(shipments.c.id == parcel)
        at = end - timedelta(hours=rng.uniform(1, 24 * 20))
        if choice == 0:
            conn.execute(by_id.values(delivered_at=at, status="delivered"))
            return "delivered before the window's end"
        if choice == 1:
            conn.execute(by_id.values(delivered_at=end + timedelta(minutes=30)))
            return "delivered after the window's end"
        if choice == 2:
            conn.execute(by_id.values(status=rng.choice(["returned", "returning", "in_transit"])))
            return "status"
        if choice == 3:
            conn.execute(by_id.values(courier=rng.choice(["zto", "sf", "ems"])))
            return "courier"
        if choice == 4:
            conn.execute(by_id.values(shipped_at=rng.choice([None, at])))
            return "shipped_at"
        if choice == 5:
            destination = rng.choice(s.DESTINATIONS)
            conn.execute(
                update(orders)
                .where(orders.c.id == order_pk)
                .values(dest_province=destination.province, dest_city=destination.city)
            )
            return "destination"
        if choice == 6:
            opened = rng.choice([at, end + timedelta(minutes=10)])
            taken = set(
                conn.execute(
                    select(tickets.c.kind).where(
                        tickets.c.order_pk == order_pk, tickets.c.status != "resolved"
                    )
                ).scalars()
            )
            kind = rng.choice([k for k in s.KINDS if k not in taken])
            conn.execute(insert(tickets).values(_ticket(order_pk, parcel, kind, opened)))
            return "ticket opened"
        if choice == 7 and ticket is not None:
            resolved = rng.choice([end - timedelta(hours=2), end + timedelta(minutes=20)])
            conn.execute(
                update(tickets)
                .where(tickets.c.id == ticket)
                .values(status="resolved", resolved_at=resolved)
            )
            return "ticket resolved"
        if choice == 8 and ticket is not None:
            conn.execute(update(tickets).where(tickets.c.id == ticket).values(shipment_id=parcel))
            return "ticket moved to another parcel"
        if choice == 9 and ticket is not None:
            # a resolved ticket: an open one may not share its order's open kinds
            kind = rng.choice(s.KINDS)
            conn.execute(
                update(tickets)
                .where(tickets.c.id == ticket)
                .values(kind=kind, status="resolved", resolved_at=at + timedelta(hours=1))
            )
            return "ticket kind"
        if choice == 10 and ticket is not None:
            conn.execute(delete(tickets).where(tickets.c.id == ticket))
            return "ticket deleted"
        if choice == 11 and step % 3 == 0:
            conn.execute(delete(orders).where(orders.c.id == order_pk))
            return "order deleted (its parcels and tickets cascade)"
        if choice == 12:
            conn.execute(
                insert(shipments).values(
                    order_pk=order_pk,
                    courier="yto",
                    tracking_number=f"NEW{step:05d}",
                    shipped_at=at,
                    status="in_transit",
                    provider_finished=False,
                    first_scan_at=at + timedelta(hours=1),
                    poll_count=0,
                    consecutive_failures=0,
                    created_at=now,
                    updated_at=now,
                )
            )
            return "parcel added"
        conn.execute(by_id.values(first_scan_at=at))
        return "first scan"


def test_every_kind_of_write_keeps_the_report_exact_journaled_and_folded(
    engine: Engine, seeded: tuple[Settings, s.Seed]
) -> None:
    """Random writes of every kind: exact before and after each fold, for three windows."""
    settings, _ = seeded
    rng = random.Random(11)
    policy = _policy(settings)
    done: list[str] = []
    for step in range(36):
        done.append(_mutate(rng, engine, step))
        window = _window(settings, rng.choice([0, 0, -1, 1]))
        _assert_exact(engine, settings, window)
        if step % 4 == 3:
            result = refresh_rollups(engine, policy, window, s.NOW)
            assert result.action == "folded", (result, done)
            assert _journal(engine) == (0, 0)
            _assert_exact(engine, settings, _window(settings))
    assert len(set(done)) >= 10, done


def test_moving_the_reference_on_recomputes_only_what_changed_in_between(
    engine: Engine, seeded: tuple[Settings, s.Seed]
) -> None:
    """Refreshing for the next day folds that day's tickets and deliveries, nothing else."""
    settings, _ = seeded
    policy = _policy(settings)
    with engine.connect() as conn:
        before = conn.execute(select(report_rollup_state.c.reference_at)).scalar_one()
    result = refresh_rollups(engine, policy, _window(settings, 1), s.NOW)
    assert result.action == "folded"
    with engine.connect() as conn:
        after = conn.execute(select(report_rollup_state.c.reference_at)).scalar_one()
        changed = conn.execute(
            select(func.count(func.distinct(tickets.c.shipment_id))).where(
                tickets.c.shipment_id.is_not(None),
                ((tickets.c.opened_at >= before) & (tickets.c.opened_at < after))
                | ((tickets.c.resolved_at >= before) & (tickets.c.resolved_at < after)),
            )
        ).scalar_one()
    assert after == s.NOW and before == s.WINDOW_END
    assert 0 < result.parcels <= changed + 10  # a few parcels may also be delivered then
    refreshed_back = refresh_rollups(engine, policy, _window(settings), s.NOW)
    assert refreshed_back.action == "folded" and refreshed_back.parcels == 0
    _assert_exact(engine, settings, _window(settings))  # read "behind" the reference


def test_a_policy_change_sends_reports_to_the_base_tables_until_rebuilt(
    engine: Engine, seeded: tuple[Settings, s.Seed]
) -> None:
    """Days computed with another allowance table are never trusted; a refresh rebuilds."""
    changed = _settings(engine, same_province_days=3)
    window = _window(changed)
    policy = _policy(changed)
    with engine.connect() as conn:
        assert rollup.check(conn, window, policy, allowance_plan(policy, window.day_edges)) is None
    result = refresh_rollups(engine, policy, window, s.NOW)
    assert (result.action, result.reason) == ("rebuilt", "the policy changed")
    _assert_exact(engine, changed, window)


def test_a_timezone_with_daylight_saving_in_the_period_reads_the_base_tables(
    engine: Engine,
) -> None:
    """Berlin's clocks change in October: no fixed offset, so no rollups and no journal."""
    settings = Settings.model_validate(
        {"database": {"url": str(engine.url)}, "timezone": "Europe/Berlin"}
    )
    window = report_window(datetime(2026, 11, 2).date(), s.NOW + timedelta(days=30), settings)
    result = refresh_rollups(engine, _policy(settings), window, s.NOW + timedelta(days=30))
    assert result.action == "skipped"
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(report_rollup_state)).scalar() == 0


def test_the_rollups_hold_only_aggregates_the_report_needs(
    engine: Engine, seeded: tuple[Settings, s.Seed]
) -> None:
    """One row per parcel with a start, and far fewer grouped rows than parcels."""
    with engine.connect() as conn:
        started = conn.execute(
            select(func.count()).where(
                func.coalesce(shipments.c.shipped_at, shipments.c.first_scan_at).is_not(None)
            )
        ).scalar_one()
        kept = conn.execute(select(func.count()).select_from(report_parcels)).scalar_one()
        grouped = conn.execute(select(func.sum(report_rollup.c.parcels))).scalar_one()
    assert kept == started == grouped


def test_the_json_form_is_what_asdict_gives(
    engine: Engine, seeded: tuple[Settings, s.Seed]
) -> None:
    """The report's fast dict conversion equals ``dataclasses.asdict`` (plus the derived key)."""
    settings, _ = seeded
    with engine.connect() as conn:
        report = build_daily_report(
            conn, day=s.REPORT_DAY, now=s.NOW, settings=settings, policy=_policy(settings)
        )
    expected = asdict(report)
    expected["headline"]["alerts_undelivered"] = report.headline.alerts_undelivered
    assert report.to_dict() == expected


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_a_rebuild_waits_for_writers_that_missed_the_journal(pg_engine: Engine) -> None:
    """PostgreSQL: a write made before the rebuild announced itself is in the rollups."""
    settings = _settings(pg_engine)
    with pg_engine.begin() as conn:
        s.seed(conn)
    window = _window(settings)
    writer = pg_engine.connect()
    target = writer.execute(select(func.min(shipments.c.id))).scalar_one()
    # written before any state row exists: the trigger journals nothing
    writer.execute(update(shipments).where(shipments.c.id == target).values(status="returned"))
    results: list[Any] = []
    thread = threading.Thread(
        target=lambda: results.append(refresh_rollups(pg_engine, _policy(settings), window, s.NOW))
    )
    thread.start()
    time.sleep(0.5)
    assert thread.is_alive(), "the rebuild must wait for the open writer"
    writer.commit()
    writer.close()
    thread.join(timeout=30)
    assert results and results[0].action == "rebuilt"
    _assert_exact(pg_engine, settings, window)


@pytest.fixture
def pg_engine(engine: Engine) -> Engine:
    """The ``engine`` fixture, PostgreSQL only."""
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL concurrency")
    return engine
