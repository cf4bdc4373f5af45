"""The benchmark harness at toy size, so it cannot rot between benchmark runs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from sqlalchemy import func, inspect, select
from sqlalchemy.engine import Engine

from carriers.geo import parse_location
from carriers.kuaidi100.parse import parse_query
from carriers.kuaidi100.sign import query_form
from carriers.model import Status
from tests.bench import run
from tests.bench.ceiling import run_ceiling
from tests.bench.datagen import load_poll_set
from tests.bench.fake_provider import FakeKuaidi100, build_app
from tests.bench.live_set import load_live_set
from tests.bench.scenario import PLACES, Fate, Shares, fate_of, number_for, route_for
from tests.bench.stages import profiled
from tests.bench.stalled import PROPOSED_INDEX, measure
from tracker.store.tables import orders, shipments, tickets, tracking_events

START = datetime.fromisoformat("2026-10-20T14:00:00+08:00")
STEP = timedelta(hours=6)
SHARES = Shares(stalled=0.2, lost=0.1, misrouted=0.2)


def _fake() -> FakeKuaidi100:
    return FakeKuaidi100(customer="C", key="K", shares=SHARES, start=START, step=STEP)


def _number_with(fate: str) -> tuple[str, str]:
    for index in range(1000):
        courier, number = number_for(index)
        if fate_of(number, SHARES) == fate:
            return courier, number
    raise AssertionError(f"no {fate} number in the first 1000")


def _poll(fake: FakeKuaidi100, courier: str, number: str, polls: int) -> list[int]:
    """Poll ``number`` ``polls`` times; returns how many scans each answer held."""
    seen = []
    for _ in range(polls):
        form = query_form("C", "K", courier, number, None, "广东省广州市", "浙江省杭州市西湖区")
        result = parse_query(fake.answer(form), courier=courier, tracking_number=number, source="k")
        assert result.ok, result.error
        seen.append(len(result.events))
    return seen


def test_fate_shares_are_close_to_the_configured_ones() -> None:
    """Fates are spread over numbers in about the configured shares."""
    fates = [fate_of(number_for(i)[1], SHARES) for i in range(4000)]
    assert abs(fates.count(Fate.STALLED) / 4000 - 0.2) < 0.03
    assert abs(fates.count(Fate.MISROUTED) / 4000 - 0.2) < 0.03


def test_misrouted_route_leaves_the_destination_province_after_reaching_it() -> None:
    """A mis-routed parcel is scanned in its destination province, then in another one."""
    dest = PLACES[2]  # 浙江省杭州市
    steps = route_for("YT1", PLACES[0], dest, "西湖区", Fate.MISROUTED)
    provinces = [parse_location(s.text).province for s in steps]
    first_inside = provinces.index(dest.province)
    assert any(p not in (None, dest.province) for p in provinces[first_inside + 1 :])


def test_each_poll_reveals_one_to_three_new_scans_until_delivered() -> None:
    """A moving parcel shows 1-3 scans more on every poll, ending delivered."""
    fake = _fake()
    courier, number = _number_with(Fate.NORMAL)
    seen = _poll(fake, courier, number, 12)
    steps = [b - a for a, b in zip([0, *seen], seen, strict=False)]
    moving = [s for s, total in zip(steps, seen, strict=True) if total < seen[-1]]
    assert moving and all(1 <= s <= 3 for s in moving)
    form = query_form("C", "K", courier, number)
    final = parse_query(fake.answer(form), courier=courier, tracking_number=number, source="k")
    assert final.status is Status.DELIVERED and final.finished


def test_stalled_parcel_never_moves_and_bad_signature_is_refused() -> None:
    """A stalled parcel repeats its old scans; a wrongly signed query gets returnCode 503."""
    fake = _fake()
    courier, number = _number_with(Fate.STALLED)
    seen = _poll(fake, courier, number, 3)
    assert seen[0] in (2, 3) and seen == [seen[0]] * 3
    form = query_form("C", "wrong-key", courier, number)
    assert json.loads(fake.answer(form))["returnCode"] == "503"


@pytest.fixture
async def fake_url() -> AsyncIterator[str]:
    """The fake provider served in this process."""
    server = TestServer(build_app(_fake(), latency_s=0.01))
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


@pytest.mark.parametrize("client", ["aiohttp", "httpx-aiohttp"])
async def test_ceiling_clients_poll_the_fake_without_errors(fake_url: str, client: str) -> None:
    """Both ceiling clients complete every request against the fake and report a rate."""
    result = await run_ceiling(fake_url, client, requests=40, concurrency=8, customer="C", key="K")
    assert result["errors"] == 0 and result["requests"] == 40
    assert isinstance(result["requests_per_s"], float) and result["requests_per_s"] > 0


def test_datagen_and_stalled_query_on_the_real_schema(engine: Engine) -> None:
    """Bulk loads fill the migrated schema; the stalled query finds exactly the silent parcels."""
    url = engine.url.render_as_string(hide_password=False)
    live = load_live_set(url, 300, START)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(orders)).scalar() == 300
        assert conn.execute(select(func.count()).select_from(tickets)).scalar() == 300
        events = conn.execute(select(func.count()).select_from(tracking_events)).scalar()
        assert events == live.rows["tracking_events"] and events > 300
        silent = conn.execute(
            select(func.count())
            .select_from(shipments)
            .where(shipments.c.last_scan_at < START - timedelta(hours=48))
        ).scalar_one()
    found = measure(engine, START, runs=2, warmup=0)
    rows = found["as_migrated"]["all_candidates"]["rows"]
    assert rows >= silent > 0
    assert found["with_index"]["all_candidates"]["rows"] == rows
    assert found["without_index"]["all_candidates"]["rows"] == rows
    # measuring without the index (migration 0003) left it in place
    assert PROPOSED_INDEX in {ix["name"] for ix in inspect(engine).get_indexes("shipments")}


def test_poll_set_is_due_at_the_start(engine: Engine) -> None:
    """Every parcel of the poll set is due for polling at the first cycle."""
    url = engine.url.render_as_string(hide_password=False)
    loaded = load_poll_set(url, 50, START, SHARES)
    assert sum(loaded.fates.values()) == 50
    with engine.connect() as conn:
        due = conn.execute(
            select(func.count()).select_from(shipments).where(shipments.c.next_poll_at <= START)
        ).scalar()
    assert due == 50


def test_toy_run_end_to_end_on_sqlite(tmp_path: Path) -> None:
    """The harness polls, detects and reports through real tracker processes and writes JSON."""
    out = tmp_path / "bench.json"
    code = run.main(
        [
            "--toy", "--db", "sqlite", "--stages", "poll,live", "--cycles", "1",
            "--pipeline", "2", "--workdir", str(tmp_path), "--json", str(out),
        ]
    )  # fmt: skip
    assert code == 0
    result = json.loads(out.read_text())
    for key in ("ceiling_polls_per_s", "polls_per_s", "ratio_to_ceiling", "cpu_us_per_poll",
                "peak_rss_mb", "detect_pass_s", "stalled_query_p95_ms", "report_s", "db",
                "shipments", "python", "git_sha"):  # fmt: skip
        assert key in result, key
    cycle = result["details"]["poll"]["cycles"][0]
    assert cycle["polled"] == 40 and cycle["failed"] == 0
    assert 40 <= cycle["new_events"] <= 120  # 1-3 scans per parcel on its first poll
    assert result["polls_per_s"] > 0 and result["peak_rss_mb"] > 0
    assert result["details"]["live"]["detect"]["completed"]
    assert result["report_s"] > 0 and result["stalled_query_p95_ms"] >= 0
    # the tracker ran with the pipeline asked for
    assert result["pipeline"] == 2
    (config,) = tmp_path.rglob("poll.toml")
    assert "pipeline = 2" in config.read_text().splitlines()


def test_ceiling_is_the_mean_of_the_runs_bracketing_the_poll_stage() -> None:
    """With a bare-client run before and after the pipeline, the ratio uses their mean."""
    cycle = {
        "polled": 1000, "poll_wall_s": 1.0, "poll_cpu_s": 0.8, "run_cpu_s": 0.9,
        "run_wall_s": 1.1, "process": {"cpu_s": 1.5, "maxrss_mb": 100.0},
        "phases": {"run_once": {"cpu_s": 0.85}},
    }  # fmt: skip
    out = {
        "ceiling": {"aiohttp": {"requests_per_s": 1800.0}},
        "ceiling_after": {"aiohttp": {"requests_per_s": 2200.0}},
        "poll": {"cycles": [cycle]},
    }
    head = run.summarize(out)
    assert head["ceiling_polls_per_s"] == 2000.0
    assert head["ceiling_polls_per_s_before_after"] == [1800.0, 2200.0]
    assert head["polls_per_s"] == 1000.0 and head["ratio_to_ceiling"] == 0.5
    assert head["cpu_us_per_poll"] == 900.0 and head["cpu_us_per_poll_after_start"] == 850.0
    del out["ceiling_after"]
    assert run.summarize(out)["ceiling_polls_per_s"] == 1800.0


def test_profiles_sample_every_thread_or_only_the_gils_holder() -> None:
    """``--profile`` records every thread; ``--profile-gil`` adds py-spy's ``--gil``."""
    cmd = ["python", "-m", "tests.bench.worker"]
    out = Path("p.json")
    every = profiled("py-spy", out, cmd)
    gil = profiled("py-spy", out, cmd, gil=True)
    assert every[:2] == ["py-spy", "record"] and "--gil" not in every
    assert gil == [*every[:2], "--gil", *every[2:]]
    assert every[every.index("--") + 1 :] == cmd
