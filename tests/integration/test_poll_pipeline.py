"""The poller keeps several claim batches in flight and never loses a batch's answers."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from dataclasses import replace

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from carriers.model import Status, TrackingQuery, TrackingResult
from tests.conftest import at
from tests.fakes import ScriptedSource, make_order
from tracker.bootstrap import App
from tracker.domain.model import ShipmentRecord
from tracker.notify.base import DryRunAlertSender, DryRunChannel
from tracker.service.poll import PollStats, SourceRouter
from tracker.settings import DatabaseConfig, PollConfig, Settings
from tracker.store import orders_repo
from tracker.store.tables import shipments, tracking_events

PAID = at("2026-09-10 10:00")
NOW = at("2026-09-12 12:00")
PARCELS = 12


class SlowSource(ScriptedSource):
    """A scripted source that waits per call and records how many calls overlap."""

    def __init__(self, *, fail_numbers: frozenset[str] = frozenset()) -> None:
        super().__init__(max_batch=1)
        self.active = 0
        self.most_active = 0
        self.fail_numbers = fail_numbers

    async def track(self, queries: Sequence[TrackingQuery]) -> list[TrackingResult]:
        """Answer after a short wait, counting the calls in flight meanwhile."""
        self.active += 1
        self.most_active = max(self.most_active, self.active)
        try:
            await asyncio.sleep(0.02)
            return await super().track(queries)
        finally:
            self.active -= 1


def _app(engine: Engine, source: ScriptedSource, *, batch_size: int, pipeline: int) -> App:
    settings = Settings(
        database=DatabaseConfig(url=str(engine.url)),
        poll=PollConfig(batch_size=batch_size, concurrency=64, pipeline=pipeline),
    )
    return App(
        settings=settings,
        clock=lambda: NOW,
        engine_override=engine,
        sources_override=[(source, frozenset({"*"}))],
        channels_override={"sms": DryRunChannel()},
        alert_senders_override={"ops": DryRunAlertSender("ops")},
    )


def _seed(app: App, source: ScriptedSource) -> list[str]:
    numbers = [f"YT71000000{i:02d}" for i in range(PARCELS)]
    with app.uow() as uow:
        orders = [
            make_order(f"P{i}", PAID, tracking_number=n, shipped_at=PAID)
            for i, n in enumerate(numbers)
        ]
        orders_repo.upsert_orders(uow.conn, orders, PAID)
        uow.commit()
    for n in numbers:
        source.scan(n, at("2026-09-11 18:00"), Status.PICKED_UP, "【广州市】已揽收")
    return numbers


def test_batches_overlap_and_every_parcel_is_stored_once(engine: Engine) -> None:
    """With batches of 2 and a pipeline of 3, up to 6 requests overlap; all 12 are stored."""
    source = SlowSource()
    app = _app(engine, source, batch_size=2, pipeline=3)
    _seed(app, source)
    stats = asyncio.run(app.poller(SourceRouter(app.build_sources())).run_once(NOW))
    assert stats.claimed == PARCELS and stats.ok == PARCELS and stats.new_events == PARCELS
    assert 2 < source.most_active <= 6
    assert sorted(n for call in source.calls for n in call) == sorted(
        f"YT71000000{i:02d}" for i in range(PARCELS)
    )
    with engine.connect() as conn:
        picked = conn.execute(
            select(func.count()).select_from(shipments).where(shipments.c.status == "picked_up")
        ).scalar_one()
        scans = conn.execute(select(func.count()).select_from(tracking_events)).scalar_one()
        claimed = conn.execute(
            select(func.count()).select_from(shipments).where(shipments.c.claimed_by.is_not(None))
        ).scalar_one()
    assert picked == PARCELS and scans == PARCELS and claimed == 0


def test_pipeline_of_one_polls_batch_after_batch(engine: Engine) -> None:
    """``pipeline = 1`` keeps the old order: one batch's requests at a time."""
    source = SlowSource()
    app = _app(engine, source, batch_size=2, pipeline=1)
    _seed(app, source)
    stats = asyncio.run(app.poller(SourceRouter(app.build_sources())).run_once(NOW))
    assert stats.ok == PARCELS and source.most_active == 2


def test_a_failing_batch_lets_the_others_finish_then_raises(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store error in one batch is raised after the batches in flight have stored theirs."""
    source = SlowSource()
    app = _app(engine, source, batch_size=2, pipeline=3)
    _seed(app, source)
    poller = app.poller(SourceRouter(app.build_sources()))
    original = poller._store
    doomed: list[str] = []

    def store(claimed, results, now, stats):  # type: ignore[no-untyped-def]
        if not doomed:  # the first batch to come back fails
            doomed.extend(c.tracking_number for c in claimed)
            raise RuntimeError("disk full")
        return original(claimed, results, now, stats)

    monkeypatch.setattr(poller, "_store", store)
    with pytest.raises(RuntimeError, match="disk full"):
        asyncio.run(poller.run_once(NOW))
    with engine.connect() as conn:
        stored = set(
            conn.execute(
                select(shipments.c.tracking_number).where(shipments.c.status == "picked_up")
            ).scalars()
        )
    # the failed batch's parcels stay due (their lease runs out); the batches already in
    # flight beside it were stored, and no new batch was claimed after the failure
    assert not stored & set(doomed)
    assert len(stored) == 4


def test_stop_ends_claiming_and_each_batch_is_reported(engine: Engine) -> None:
    """Once ``stop()`` is true no batch is claimed; batches in flight finish and are reported."""
    source = SlowSource()
    app = _app(engine, source, batch_size=2, pipeline=2)
    _seed(app, source)
    reported: list[int] = []

    def on_batch(stats: PollStats) -> None:
        reported.append(stats.ok)

    stats = asyncio.run(
        app.poller(SourceRouter(app.build_sources())).run_once(
            NOW, stop=lambda: len(reported) >= 1, on_batch=on_batch
        )
    )
    # two batches were in flight when the first came back; the stop held off the rest
    assert reported == [2, 2] and stats.claimed == 4 and stats.ok == 4


@pytest.mark.parametrize("store_in_thread", [False, True])
def test_store_thread_stores_every_batch_off_the_event_loop(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, store_in_thread: bool
) -> None:
    """With ``store_in_thread`` claims, stores and detections each run on a thread of their own."""
    source = SlowSource()
    app = _app(engine, source, batch_size=2, pipeline=3)
    _seed(app, source)
    poller = app.poller(SourceRouter(app.build_sources()))
    poller.store_in_thread = store_in_thread
    original = poller._store
    threads: set[int] = set()

    def store(claimed, results, now, stats):  # type: ignore[no-untyped-def]
        threads.add(threading.get_ident())
        return original(claimed, results, now, stats)

    original_claim = poller._claim
    claim_threads: set[int] = set()

    def claim(now):  # type: ignore[no-untyped-def]
        claim_threads.add(threading.get_ident())
        return original_claim(now)

    original_detect = poller._detect
    detect_threads: set[int] = set()

    def detect(touched, now, stats):  # type: ignore[no-untyped-def]
        detect_threads.add(threading.get_ident())
        original_detect(touched, now, stats)

    monkeypatch.setattr(poller, "_store", store)
    monkeypatch.setattr(poller, "_claim", claim)
    monkeypatch.setattr(poller, "_detect", detect)
    loop_thread = threading.get_ident()
    stats = asyncio.run(poller.run_once(NOW))
    assert stats.ok == PARCELS and stats.new_events == PARCELS
    assert stats.detect.orders == PARCELS  # every order's parcel got its first scan
    assert len(threads) == len(claim_threads) == len(detect_threads) == 1
    for used in (threads, claim_threads, detect_threads):
        assert (loop_thread in used) is not store_in_thread
    if store_in_thread:  # one thread each: a claim never queues behind a store, nor a store
        assert len(threads | claim_threads | detect_threads) == 3  # behind a detection
    with engine.connect() as conn:
        scans = conn.execute(select(func.count()).select_from(tracking_events)).scalar_one()
    assert scans == PARCELS


def test_orders_split_over_batches_store_and_detect_without_waiting_on_each_other(
    engine: Engine,
) -> None:
    """Parcels of one order in different batches: stores overlap detections, all complete."""
    source = SlowSource()
    app = _app(engine, source, batch_size=1, pipeline=3)
    orders = []
    for i in range(PARCELS // 2):
        order = make_order(f"S{i}", PAID, tracking_number=f"YT72000000{i:02d}", shipped_at=PAID)
        second = ShipmentRecord("yto", f"YT73000000{i:02d}", PAID)
        orders.append(replace(order, shipments=(*order.shipments, second)))
        for record in (*order.shipments, second):
            source.scan(record.tracking_number, at("2026-09-11 18:00"), Status.PICKED_UP, "已揽收")
    with app.uow() as uow:
        orders_repo.upsert_orders(uow.conn, orders, PAID)
        uow.commit()
    poller = app.poller(SourceRouter(app.build_sources()))
    poller.store_in_thread = True
    stats = asyncio.run(poller.run_once(NOW))
    assert stats.claimed == stats.ok == PARCELS and stats.new_events == PARCELS
    assert stats.detect.orders == PARCELS and stats.detect.failed == 0
    with engine.connect() as conn:
        picked = conn.execute(
            select(func.count()).select_from(shipments).where(shipments.c.status == "picked_up")
        ).scalar_one()
    assert picked == PARCELS


def test_a_claim_under_way_when_the_run_is_cancelled_is_given_back(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled while a claim runs on its thread, the run releases what that claim leased."""
    source = SlowSource()
    app = _app(engine, source, batch_size=PARCELS, pipeline=1)
    _seed(app, source)
    poller = app.poller(SourceRouter(app.build_sources()))
    poller.store_in_thread = True
    original = poller._claim
    started, go_on = threading.Event(), threading.Event()

    def claim(now):  # type: ignore[no-untyped-def]
        started.set()
        go_on.wait(10)
        return original(now)

    monkeypatch.setattr(poller, "_claim", claim)

    async def cancel_during_the_claim() -> None:
        run = asyncio.create_task(poller.run_once(NOW))
        await asyncio.get_running_loop().run_in_executor(None, started.wait, 10)
        run.cancel()
        await asyncio.sleep(0)  # the run takes the cancellation while its claim still waits
        go_on.set()
        with pytest.raises(asyncio.CancelledError):
            await run

    asyncio.run(cancel_during_the_claim())
    with engine.connect() as conn:
        held = conn.execute(
            select(func.count()).select_from(shipments).where(shipments.c.claimed_by.is_not(None))
        ).scalar_one()
        total = conn.execute(select(func.count()).select_from(shipments)).scalar_one()
    assert started.is_set() and total == PARCELS
    assert held == 0 and source.calls == []


def test_bootstrap_stores_in_a_thread_on_postgresql_only(engine: Engine) -> None:
    """The composition root overlaps stores with requests where the driver waits on a server."""
    app = _app(engine, SlowSource(), batch_size=2, pipeline=3)
    poller = app.poller(SourceRouter(app.build_sources()))
    assert poller.store_in_thread is (engine.dialect.name == "postgresql")
