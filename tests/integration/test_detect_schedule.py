"""The periodic pass reads only orders due for a look, and misses nothing the full pass finds.

One seeded scenario is imported twice (copy A, copy B: same facts, own numbers and
phones). Every cycle polls both (scans appear as the clock reaches them), then runs the
candidate pass (orders due); copy A additionally gets the old full pass over every active
order. After every cycle both copies must hold the same tickets (kind, status, severity,
action, resolution, evidence but for clock figures), notices and ticket history.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError

from carriers.model import Problem, Status, TrackingQuery, TrackingResult
from tests.conftest import at
from tests.fakes import ScriptedSource, make_order
from tracker.bootstrap import App
from tracker.domain import rules
from tracker.domain.rules_schedule import stable_evidence
from tracker.notify.base import DryRunAlertSender, DryRunChannel
from tracker.service.cycle import run_cycle
from tracker.service.detect import SCHEDULE_STATE_KEY, Detector
from tracker.settings import DatabaseConfig, Settings
from tracker.store import orders_repo, runtime_repo, shipments_repo
from tracker.store.tables import notices, orders, ticket_log, tickets

START = at("2026-09-27 09:00")  # the run crosses 国庆 (10-01..07): clocks pause
HOUR = timedelta(hours=1)
COPIES = ("A", "B")


class ClockedSource(ScriptedSource):
    """Answers with the scans whose time has come on the test's clock, as a provider would."""

    def __init__(self, now: list[datetime]) -> None:
        super().__init__()
        self.now = now

    async def track(self, queries: Sequence[TrackingQuery]) -> list[TrackingResult]:
        """The scripted history up to the clock; a parcel with none is still pending."""
        full, self.histories = (
            self.histories,
            {
                n: [e for e in events if e.time <= self.now[0]]
                for n, events in self.histories.items()
            },
        )
        try:
            results = await super().track(queries)
        finally:
            self.histories = full
        return results


def _number(copy: str, i: int) -> str:
    return f"YT{COPIES.index(copy) + 1}{i:07d}"


def _script(source: ClockedSource, rng: random.Random, i: int, fate: str) -> datetime:
    """Script one parcel's scans for both copies; returns when it shipped."""
    shipped = START + HOUR * rng.uniform(0, 60)
    t = shipped + HOUR * rng.uniform(1, 20)
    steps: list[tuple[Status, Problem | None, str, str]] = []
    if fate != "label_only":  # a printed label the courier never scans
        steps.append((Status.PICKED_UP, None, "广东省", "广州市"))
        moving = [(Status.IN_TRANSIT, None, "广东省", "广州市")] * rng.randint(1, 3)
        steps += moving
        tail = {
            "delivered": [
                (Status.OUT_FOR_DELIVERY, None, "浙江省", "杭州市"),
                (Status.DELIVERED, None, "浙江省", "杭州市"),
            ],
            "stalls": [],
            "last_mile_stall": [(Status.OUT_FOR_DELIVERY, None, "浙江省", "杭州市")],
            "lost_report": [(Status.EXCEPTION, Problem.LOST, "江西省", "南昌市")],
            "failed_then_delivered": [
                (Status.DELIVERY_FAILED, Problem.UNREACHABLE, "浙江省", "杭州市"),
                (Status.DELIVERED, None, "浙江省", "杭州市"),
            ],
            "returning": [(Status.RETURNING, Problem.REFUSED, "浙江省", "杭州市")],
            "misrouted": [
                (Status.IN_TRANSIT, None, "浙江省", "杭州市"),
                (Status.IN_TRANSIT, None, "江苏省", "南京市"),
            ],
            "slow": [(Status.IN_TRANSIT, None, "江西省", "南昌市")] * 4,
        }[fate]
        steps += tail
    gap = {"slow": 30.0, "stalls": 12.0}.get(fate, 10.0)
    for status, problem, province, city in steps:
        for copy in COPIES:
            source.scan(
                _number(copy, i),
                t,
                status,
                f"【{city}】{status.value}",
                province=province,
                city=city,
                problem=problem,
            )
        t += HOUR * rng.uniform(gap / 2, gap * 1.5)
    return shipped


FATES = (
    "unshipped",
    "label_only",
    "delivered",
    "stalls",
    "last_mile_stall",
    "lost_report",
    "failed_then_delivered",
    "returning",
    "misrouted",
    "slow",
)


def _seed(engine: Engine, source: ClockedSource, now: list[datetime]) -> App:
    """Import the scenario twice and return the app (policy with a weekend pause too)."""
    rng = random.Random(8)
    app = App(
        settings=Settings(database=DatabaseConfig(url=str(engine.url))),
        clock=lambda: now[0],
        engine_override=engine,
        sources_override=[(source, frozenset({"*"}))],
        channels_override={"sms": DryRunChannel()},
        alert_senders_override={"ops": DryRunAlertSender("ops")},
    )
    batch = {copy: [] for copy in COPIES}
    for i in range(2 * len(FATES)):
        fate = FATES[i % len(FATES)]
        paid = START - HOUR * rng.uniform(0, 30)
        shipped = None if fate == "unshipped" else _script(source, rng, i, fate)
        for copy in COPIES:
            batch[copy].append(
                make_order(
                    f"{copy}{i:03d}",
                    paid,
                    tracking_number=None if shipped is None else _number(copy, i),
                    shipped_at=shipped,
                    phone=f"13{COPIES.index(copy) + 1}{i:08d}",
                    destination=("西藏自治区", "拉萨市") if i % 7 == 3 else ("浙江省", "杭州市"),
                )
            )
    with app.uow() as uow:
        for copy in COPIES:
            orders_repo.upsert_orders(uow.conn, batch[copy], now[0])
        uow.commit()
    return app


def _state(conn: Connection, copy: str) -> dict[str, Any]:
    """Tickets, their notices and history of one copy, with its own numbers masked out."""
    other = {"A": "B", "B": "A"}[copy]
    rows = conn.execute(
        select(orders.c.order_id, tickets)
        .join(orders, orders.c.id == tickets.c.order_pk)
        .where(orders.c.order_id.like(f"{copy}%"))
        .order_by(orders.c.order_id, tickets.c.kind, tickets.c.id)
    ).all()
    found: dict[str, Any] = {}
    for r in rows:
        key = r.order_id[1:]
        evidence = json.dumps(stable_evidence(r.evidence), sort_keys=True, ensure_ascii=False)
        for value in (r.tracking_number, r.order_id):
            if value:
                evidence = evidence.replace(value, "*")
        # what detection wrote; sending (dispatch) runs before copy A's extra full pass,
        # so delivery states and burst grouping may lag one cycle there
        notice_rows = conn.execute(
            select(notices.c.template).where(notices.c.ticket_id == r.id)
        ).all()
        log_rows = conn.execute(
            select(ticket_log.c.action, ticket_log.c.severity, ticket_log.c.note)
            .where(ticket_log.c.ticket_id == r.id)
            .order_by(ticket_log.c.id)
        ).all()
        found.setdefault(key, []).append(
            (
                r.kind,
                r.status,
                r.severity,
                r.suggested_action,
                r.resolution,
                evidence,
                sorted(n.template for n in notice_rows),
                [tuple(entry) for entry in log_rows],
            )
        )
    assert other not in "".join(found)  # keys are the shared suffixes
    return found


def _active_flags_agree_with_sql(engine: Engine) -> bool:
    """Every stored ``active`` flag equals what counting tickets and parcels in SQL says."""
    with engine.connect() as conn:
        stored = {r.id: r.active for r in conn.execute(select(orders.c.id, orders.c.active))}
        orders_repo.refresh_active_flags(conn, stored, START)  # the reference, rolled back
        counted = {r.id: r.active for r in conn.execute(select(orders.c.id, orders.c.active))}
        conn.rollback()
    return {k: bool(v) for k, v in stored.items()} == {k: bool(v) for k, v in counted.items()}


def _full_pass_over(app: App, copy: str, now: datetime) -> int:
    """The old periodic pass, for one copy: every active order, due or not; returns how many."""
    with app.uow() as uow:
        pks = list(
            uow.conn.execute(
                select(orders.c.id).where(
                    orders.c.active.is_(True), orders.c.order_id.like(f"{copy}%")
                )
            ).scalars()
        )
        app.detector.run(uow, pks, now)
    return len(pks)


def test_candidate_pass_finds_what_the_full_pass_finds(engine: Engine) -> None:
    """Over 16 days of cycles, due-only detection keeps tickets identical to full passes."""
    now = [START]
    source = ClockedSource(now)
    app = _seed(engine, source, now)
    checked_by_pass = checked_by_full = opened = 0
    for step in range(0, 16 * 24, 5):
        now[0] = START + HOUR * step + timedelta(minutes=step % 17)
        result = asyncio.run(run_cycle(app))
        assert result.ok, result.failures
        checked_by_pass += result.detect.orders
        checked_by_full += _full_pass_over(app, "A", now[0])
        with engine.connect() as conn:
            state_a, state_b = _state(conn, "A"), _state(conn, "B")
        assert state_a == state_b, now[0]
        assert _active_flags_agree_with_sql(engine), now[0]
        opened += sum(len(v) for v in state_a.values())
    assert opened > 0
    with engine.connect() as conn:
        kinds = set(conn.execute(select(tickets.c.kind)).scalars())
        active = conn.execute(select(orders.c.id).where(orders.c.active.is_(True))).all()
    assert {"not_shipped", "stalled", "overdue", "lost", "returned"} <= kinds
    # over both copies the candidate passes looked at under a tenth of the full passes' orders
    assert 0 < checked_by_pass < 2 * checked_by_full / 10
    assert len(active) < 4 * len(FATES)


def test_new_and_reimported_orders_are_due_at_once(engine: Engine) -> None:
    """An import makes the order due at the import time (or its payment, if earlier)."""
    now = [START]
    app = _seed(engine, ClockedSource(now), now)
    with engine.connect() as conn:
        due = set(conn.execute(select(orders.c.next_check_at)).scalars())
    assert max(due) <= START
    with app.uow() as uow:
        assert [len(b) for b in orders_repo.iter_due_order_pks(uow.conn, START, 7)] == [7, 7, 7] + [
            7
        ] * 2 + [5]


def test_due_listing_is_keyset_paged_and_skips_inactive_and_later_orders(engine: Engine) -> None:
    """Only active orders with next_check_at <= now, each once, oldest moment first."""
    now = [START]
    app = _seed(engine, ClockedSource(now), now)
    with app.uow() as uow:
        pks = list(uow.conn.execute(select(orders.c.id).order_by(orders.c.id)).scalars())
        for n, pk in enumerate(pks):
            uow.conn.execute(
                update(orders)
                .where(orders.c.id == pk)
                .values(next_check_at=START + HOUR * (n % 5 - 2), active=n % 4 != 0)
            )
        uow.commit()
        listed = [
            pk for batch in orders_repo.iter_due_order_pks(uow.conn, START, 3) for pk in batch
        ]
    expected = sorted(
        (pk for n, pk in enumerate(pks) if n % 4 != 0 and n % 5 <= 2),
        key=lambda pk: (pks.index(pk) % 5, pk),
    )
    assert listed == expected


def test_policy_change_makes_every_active_order_due_once(engine: Engine) -> None:
    """A changed threshold reschedules all active orders; the same policy again does not."""
    now = [START + HOUR * 80]
    app = _seed(engine, ClockedSource(now), now)
    asyncio.run(run_cycle(app))
    with engine.connect() as conn:
        assert runtime_repo.read_state(conn, SCHEDULE_STATE_KEY) is not None
        due_now = list(orders_repo.iter_due_order_pks(conn, now[0]))
    assert due_now == []
    with app.uow() as uow:
        assert app.detector.reschedule_on_policy_change(uow, now[0]) is False
    changed = App(
        settings=app.settings.model_copy(update={"policy": {"stalled_hours": 12}}),
        clock=app.clock,
        engine_override=engine,
    )
    with changed.uow() as uow:
        assert changed.detector.reschedule_on_policy_change(uow, now[0]) is True
        active = uow.conn.execute(select(orders.c.id).where(orders.c.active.is_(True))).all()
        due = [pk for b in orders_repo.iter_due_order_pks(uow.conn, now[0]) for pk in b]
        assert len(due) == len(active) > 0
        assert changed.detector.reschedule_on_policy_change(uow, now[0]) is False


def test_weight_bill_makes_the_order_due_and_the_pass_opens_weight_mismatch(
    engine: Engine,
) -> None:
    """A courier weight far below the ordered 1 kg makes the order due; the pass flags it."""
    now = [START + HOUR * 30]
    app = _seed(engine, ClockedSource(now), now)
    asyncio.run(run_cycle(app))  # polls and schedules every order
    with app.uow() as uow:
        assert list(orders_repo.iter_due_order_pks(uow.conn, now[0])) == []
        touched = shipments_repo.set_weights(uow.conn, [(_number("B", 2), 0.2)], now[0])
        uow.commit()
    assert len(touched) == 1
    result = asyncio.run(run_cycle(app))
    assert result.detect.orders == 1
    assert result.detect.opened_by_kind.get("weight_mismatch") == 1


def test_an_order_the_rules_choke_on_is_skipped_and_retried_later(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One order raising inside the rules does not stop its batch; it is due again in 1 h."""
    now = [START + HOUR * 50]
    app = _seed(engine, ClockedSource(now), now)
    real = rules.detect_and_schedule

    def choke(facts: Any, policy: Any, at: datetime) -> Any:
        if facts.order_id == "A003":
            raise ZeroDivisionError("a rule bug")
        return real(facts, policy, at)

    monkeypatch.setattr(rules, "detect_and_schedule", choke)
    with app.uow() as uow:
        stats = app.detector.run_due(uow, now[0])
    assert stats.failed == 1 and stats.orders == 4 * len(FATES) and stats.opened > 0
    with engine.connect() as conn:
        due = dict(conn.execute(select(orders.c.order_id, orders.c.next_check_at)).all())
    assert due["A003"] == now[0] + HOUR
    assert due["B003"] != due["A003"]


# PostgreSQL only: SQLite serialises writers with BEGIN IMMEDIATE instead
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_detection_locks_its_orders_until_commit_on_postgresql(engine: Engine) -> None:
    """A second detection of the same order waits: the loaded orders' rows stay locked."""
    now = [START]
    _seed(engine, ClockedSource(now), now)
    with engine.connect() as first, engine.connect() as second:
        pk = first.execute(select(orders.c.id).order_by(orders.c.id)).scalars().first()
        assert orders_repo.load_order_contexts(first, [pk], lock=True)
        with pytest.raises(OperationalError, match="could not obtain lock"):
            second.execute(
                select(orders.c.id).where(orders.c.id == pk).with_for_update(nowait=True)
            ).all()
        second.rollback()
        first.rollback()
        assert second.execute(
            select(orders.c.id).where(orders.c.id == pk).with_for_update(nowait=True)
        ).all()


def test_pass_in_small_batches_checks_every_due_order_once(engine: Engine) -> None:
    """Many small batches (two in flight on PostgreSQL) look at each due order exactly once."""
    now = [START + HOUR * 50]
    app = _seed(engine, ClockedSource(now), now)
    batches: list[int] = []
    with app.uow() as uow:
        stats = app.detector.run_due(uow, now[0], 3, on_batch=lambda s: batches.append(s.orders))
    assert stats.orders == 4 * len(FATES) == sum(batches) and max(batches) == 3
    assert stats.opened > 0 and stats.failed == 0
    with engine.connect() as conn:
        assert list(orders_repo.iter_due_order_pks(conn, now[0])) == []
        opened = conn.execute(select(tickets.c.id)).all()
    assert len(opened) == stats.opened


def test_pass_with_a_helper_connection_splits_batches_over_two_threads(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a helper unit of work, batches alternate between two threads, each order once."""
    now = [START + HOUR * 50]
    app = _seed(engine, ClockedSource(now), now)
    threads: list[str] = []
    real_run = Detector.run

    def run(self: Detector, uow: Any, pks: Any, at: datetime) -> Any:
        threads.append(threading.current_thread().name)
        return real_run(self, uow, pks, at)

    monkeypatch.setattr(Detector, "run", run)
    with app.uow() as uow, app.uow() as helper:
        stats = app.detector.run_due(uow, now[0], 3, helper=helper)
    assert stats.orders == 4 * len(FATES) and stats.opened > 0 and stats.failed == 0
    assert len(threads) == -(-stats.orders // 3)  # one call per batch of 3
    assert any(t.startswith("detect-pass") for t in threads)
    assert threading.current_thread().name in threads
    with engine.connect() as conn:
        assert list(orders_repo.iter_due_order_pks(conn, now[0])) == []
        opened = conn.execute(select(tickets.c.order_pk, tickets.c.kind)).all()
    assert len(opened) == len(set(opened)) == stats.opened
