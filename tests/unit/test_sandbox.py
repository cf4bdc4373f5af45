"""Unit tests for the sandbox tracking source (carriers.sandbox)."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from carriers import geo
from carriers.base import ConfigError, TrackingSource
from carriers.model import (
    ErrorKind,
    Location,
    Problem,
    Status,
    TrackingQuery,
    TrackingResult,
)
from carriers.sandbox import SCENARIO_CODES, SandboxSource
from carriers.sandbox.codes import CODES
from carriers.sandbox.parse import BEIJING
from carriers.sandbox.routes import NEIGHBOURS, plan_route, resolve_endpoint
from carriers.sandbox.scenarios import HEALTHY, pick_scenario

NOW = datetime(2026, 9, 20, 4, 0, tzinfo=UTC)  # 12:00 Beijing time
SHIPPED = datetime(2026, 9, 11, 9, 0, tzinfo=BEIJING)
CODE_OF = {name: code for code, name in SCENARIO_CODES.items()}


def number(scenario: str, serial: str = "000017") -> str:
    """The sandbox tracking number of a scenario."""
    return f"SB{CODE_OF[scenario]}{serial}"


def source(options: dict[str, object] | None = None, now: datetime = NOW) -> SandboxSource:
    """A sandbox source whose clock is pinned at ``now``."""
    return SandboxSource("sandbox", options or {}, clock=lambda: now)


async def track_one(
    tracking_number: str,
    *,
    now: datetime = NOW,
    courier: str = "yto",
    options: dict[str, object] | None = None,
    **hints: object,
) -> TrackingResult:
    """Track a single number and return its result."""
    query = TrackingQuery(courier, tracking_number, **hints)  # type: ignore[arg-type]
    [result] = await source(options, now).track([query])
    return result


# --- the protocol --------------------------------------------------------------------------


async def test_sandbox_implements_the_tracking_source_protocol() -> None:
    """The class is a SourceFactory and its instances are TrackingSources."""
    src = SandboxSource("my-sandbox", {}, http=None, clock=lambda: NOW)
    assert isinstance(src, TrackingSource)
    assert src.name == "my-sandbox"
    assert src.max_batch == 50
    await src.aclose()


async def test_default_clock_is_aware_now() -> None:
    """Without a clock the source uses the current UTC time (events never in the future)."""
    [result] = await SandboxSource("sandbox", {}).track([TrackingQuery("yto", number("delivered"))])
    assert result.events
    assert all(e.time <= datetime.now(UTC) for e in result.events)


async def test_results_come_one_per_query_in_order_and_errors_are_data() -> None:
    """A batch mixing good, unknown and invalid numbers gives one result each, in order."""
    numbers = [number("lost"), "12", number("delivered"), "SB77000001", "YT7000000001", ""]
    queries = [TrackingQuery("yto", n) for n in numbers]
    results = await source().track(queries)
    assert [r.tracking_number for r in results] == numbers
    assert [r.ok for r in results] == [True, False, True, False, True, False]
    assert results[0].problem is Problem.LOST
    assert results[1].error is not None
    assert results[1].error.kind is ErrorKind.INVALID_NUMBER
    assert results[3].error is not None
    assert results[3].error.kind is ErrorKind.NOT_FOUND
    assert all(r.source == "sandbox" for r in results)


@pytest.mark.parametrize("bad", ["12", "ABC-123!", "", "   ", "X" * 31, "订单号12345678"])
async def test_invalid_numbers_are_invalid_number_errors(bad: str) -> None:
    """Too short, too long, punctuation or non-ASCII: an INVALID_NUMBER error, no events."""
    result = await track_one(bad)
    assert not result.ok
    assert result.error is not None
    assert result.error.kind is ErrorKind.INVALID_NUMBER
    assert result.events == ()
    assert result.weight_kg is None


@pytest.mark.parametrize("unknown", ["SB77000001", "SB99123456", "sb98 0000 01"])
async def test_sb_numbers_with_unknown_codes_are_not_found(unknown: str) -> None:
    """An SB number whose scenario code is unassigned is answered "not found"."""
    result = await track_one(unknown)
    assert result.error is not None
    assert result.error.kind is ErrorKind.NOT_FOUND
    assert not result.error.retryable


# --- the number scheme -------------------------------------------------------------------


def test_scenario_codes_are_the_documented_list() -> None:
    """Scenario codes 00-14 map to the names the demo data relies on."""
    assert SCENARIO_CODES == {
        "00": "delivered",
        "01": "in_transit",
        "02": "out_for_delivery",
        "03": "stalled",
        "04": "stalled_at_station",
        "05": "lost",
        "06": "mis_sorted",
        "07": "out_of_area",
        "08": "returned",
        "09": "delivery_failed",
        "10": "address_problem",
        "11": "damaged",
        "12": "no_pickup",
        "13": "slow",
        "14": "weight_short",
    }


def test_number_scheme_picks_scenarios() -> None:
    """SB+code+serial picks by code; spaces and case are ignored; serial length is 4-14."""
    assert pick_scenario("SB03000017") == "stalled"
    assert pick_scenario(" sb03 000017 ") == "stalled"
    assert pick_scenario("SB050001") == "lost"
    assert pick_scenario("SB05001") != "lost"  # serial too short: not an SB number
    assert pick_scenario("SB77000001") == "not_found"


def test_other_numbers_get_a_stable_healthy_scenario() -> None:
    """A plausible non-SB number gets one healthy scenario, the same every time."""
    picks = {n: pick_scenario(n) for n in (f"YT70000000{i:02d}" for i in range(40))}
    assert set(picks.values()) <= set(HEALTHY)
    assert len(set(picks.values())) > 1  # the hash spreads them
    assert picks == {n: pick_scenario(n) for n in picks}


async def test_options_scenarios_override_any_number() -> None:
    """options["scenarios"] maps explicit numbers (any shape) to scenarios or errors."""
    options: dict[str, object] = {
        "scenarios": {"YT7000000001": "lost", "sf 1234": "damaged", "YT7000000002": "not_found"}
    }
    src = source(options)
    results = await src.track(
        [
            TrackingQuery("yto", "YT7000000001"),
            TrackingQuery("sf", "SF1234"),
            TrackingQuery("yto", "YT7000000002"),
        ]
    )
    assert results[0].problem is Problem.LOST
    assert results[1].problem is Problem.DAMAGED
    assert results[2].error is not None
    assert results[2].error.kind is ErrorKind.NOT_FOUND


@pytest.mark.parametrize(
    "options",
    [
        {"scenarios": {"X1": "teleported"}},
        {"scenarios": ["X1"]},
        {"epoch": "yesterday"},
        {"weights": {"X1": -1}},
        {"weights": {"X1": "heavy"}},
        {"weights": "1.0"},
    ],
)
def test_bad_options_raise_config_error(options: dict[str, object]) -> None:
    """Unknown scenario names, unparsable epochs and bad weights fail at setup."""
    with pytest.raises(ConfigError):
        SandboxSource("sandbox", options)


# --- scenarios ---------------------------------------------------------------------------

EXPECTED: dict[str, tuple[Status, Problem | None, bool]] = {
    "delivered": (Status.DELIVERED, None, True),
    "in_transit": (Status.IN_TRANSIT, None, False),
    "out_for_delivery": (Status.OUT_FOR_DELIVERY, None, False),
    "stalled": (Status.IN_TRANSIT, None, False),
    "stalled_at_station": (Status.READY_FOR_PICKUP, None, False),
    "lost": (Status.EXCEPTION, Problem.LOST, False),
    "mis_sorted": (Status.IN_TRANSIT, Problem.MIS_SORTED, False),
    "out_of_area": (Status.EXCEPTION, Problem.OUT_OF_AREA, False),
    "returned": (Status.RETURNED, Problem.REFUSED, True),
    "delivery_failed": (Status.DELIVERY_FAILED, Problem.UNREACHABLE, False),
    "address_problem": (Status.DELIVERY_FAILED, Problem.ADDRESS_PROBLEM, False),
    "damaged": (Status.EXCEPTION, Problem.DAMAGED, False),
    "no_pickup": (Status.PENDING, None, False),
    "slow": (Status.IN_TRANSIT, None, False),
    "weight_short": (Status.DELIVERED, None, True),
}


def test_every_scenario_has_an_expectation() -> None:
    """The table below covers every scenario code."""
    assert set(EXPECTED) == set(SCENARIO_CODES.values())


@pytest.mark.parametrize("scenario", sorted(EXPECTED))
async def test_scenario_status_problem_and_finished_without_anchor(scenario: str) -> None:
    """Without shipped_at, each scenario is seen at its characteristic moment."""
    status, problem, finished = EXPECTED[scenario]
    result = await track_one(number(scenario))
    assert result.ok
    assert result.status is status
    assert result.problem is problem
    assert result.finished is finished
    assert result.extra["scenario"] == scenario


@pytest.mark.parametrize("scenario", sorted(set(EXPECTED) - {"no_pickup"}))
async def test_scenario_events_are_well_formed(scenario: str) -> None:
    """Events are aware, oldest first, coded, located, masked and not in the future."""
    result = await track_one(number(scenario))
    events = result.events
    assert events
    assert [e.time for e in events] == sorted(e.time for e in events)
    assert events[-1].time <= NOW
    assert events[0].status is Status.PICKED_UP
    for event in events:
        assert event.time.utcoffset() == timedelta(hours=8)
        assert (event.status, event.problem) == CODES[event.raw_code]
        assert event.location.country == "中国"
        assert event.location.province is not None
        assert event.location == geo.parse_location(event.text)
        assert re.search(r"1\d{10}", event.text) is None  # phones always masked
    assert any(re.search(r"1\d{2}\*{4}\d{4}", e.text) for e in events)
    assert result.weight_kg is not None
    assert 0.1 <= result.weight_kg <= 3.5


async def test_no_pickup_has_no_events_and_no_weight() -> None:
    """A label never scanned: ok, PENDING, no events, no courier weight yet."""
    result = await track_one(number("no_pickup"))
    assert result.ok
    assert result.events == ()
    assert result.status is Status.PENDING
    assert result.weight_kg is None


async def test_weight_short_reports_a_low_weight_others_a_plausible_one() -> None:
    """weight_short reports 0.4 kg; healthy parcels 1.5-3.5 kg; options override."""
    short = await track_one(number("weight_short"))
    normal = await track_one(number("delivered"))
    pinned = await track_one(number("delivered"), options={"weights": {number("delivered"): 2.5}})
    assert short.weight_kg == 0.4
    assert normal.weight_kg is not None
    assert 1.5 <= normal.weight_kg <= 3.5
    assert pinned.weight_kg == 2.5


async def test_stalled_scans_stop_mid_route_for_days() -> None:
    """The last scan of a stalled parcel is a hub departure more than 48 h ago."""
    result = await track_one(number("stalled"))
    last = result.events[-1]
    assert last.raw_code == "DEPART"
    assert "转运中心" in last.text
    assert NOW - last.time > timedelta(hours=48)
    assert NOW - last.time < timedelta(days=7)


async def test_stalled_at_station_waits_at_a_pickup_point() -> None:
    """The parcel sits in a 驿站 with a pick-up code for more than 24 h."""
    result = await track_one(number("stalled_at_station"))
    last = result.events[-1]
    assert last.status is Status.READY_FOR_PICKUP
    assert "驿站" in last.text
    assert "取件码" in last.text
    assert NOW - last.time > timedelta(hours=24)


async def test_lost_is_reported_by_the_provider() -> None:
    """A 遗失 scan maps to EXCEPTION with Problem.LOST."""
    result = await track_one(number("lost"))
    assert result.events[-1].problem is Problem.LOST
    assert "遗失" in result.events[-1].text


async def test_mis_sorted_scans_in_a_wrong_neighbouring_province() -> None:
    """After a scan in the destination province comes a mis-sort scan in a neighbour."""
    result = await track_one(number("mis_sorted"))
    dest = "浙江省"
    missort = next(e for e in result.events if e.problem is Problem.MIS_SORTED)
    before = result.events[: result.events.index(missort)]
    assert any(e.location.province == dest for e in before)
    assert missort.location.province != dest
    assert missort.location.province in NEIGHBOURS[dest]


async def test_mis_sorted_parcel_is_rerouted_and_delivered_later() -> None:
    """With a real anchor the mis-sorted parcel comes back and is finally delivered."""
    result = await track_one(
        number("mis_sorted"), now=SHIPPED + timedelta(days=10), shipped_at=SHIPPED
    )
    assert result.status is Status.DELIVERED
    assert result.problem is Problem.MIS_SORTED  # the latest problem seen stays visible
    assert result.events[-1].location.province == "浙江省"


async def test_returned_goes_through_refusal_and_returning() -> None:
    """拒收, then returning scans, then returned to the sender's city."""
    result = await track_one(number("returned"))
    statuses = [e.status for e in result.events]
    refused = statuses.index(Status.RETURNING)
    assert result.events[refused].problem is Problem.REFUSED
    assert "拒收" in result.events[refused].text
    assert statuses[-1] is Status.RETURNED
    assert result.events[-1].location.city == "广州市"


async def test_delivery_failed_and_address_problem_texts() -> None:
    """Unanswered phone and unclear address are told apart by problem and text."""
    failed = await track_one(number("delivery_failed"))
    address = await track_one(number("address_problem"))
    assert "电话无人接听" in failed.events[-1].text
    assert sum(e.status is Status.DELIVERY_FAILED for e in failed.events) == 2
    assert "地址不详" in address.events[-1].text


async def test_out_of_area_and_damaged_texts() -> None:
    """超区 and 破损 scans carry their problems."""
    area = await track_one(number("out_of_area"))
    damaged = await track_one(number("damaged"))
    assert "超区" in area.events[-1].text
    assert "不派送" in area.events[-1].text
    assert "破损" in damaged.events[-1].text


@pytest.mark.parametrize(
    ("destination", "allowance"),
    [
        (None, timedelta(days=4)),
        (Location(province="广东省", city="深圳市"), timedelta(days=2)),
        (Location(province="广东省", city="广州市"), timedelta(days=1)),
        (Location(province="新疆", city="乌鲁木齐"), timedelta(days=7)),
    ],
)
async def test_slow_parcel_is_overdue_but_never_silent_for_48h(
    destination: Location | None, allowance: timedelta
) -> None:
    """On any lane a slow parcel outlives the lane's allowance without a 48 h gap."""
    result = await track_one(number("slow"), destination=destination)
    assert result.status is Status.IN_TRANSIT
    times = [e.time for e in result.events]
    assert NOW - times[0] > allowance
    assert max(b - a for a, b in itertools.pairwise(times)) < timedelta(hours=24)
    assert NOW - times[-1] < timedelta(hours=48)
    assert any(e.raw_code == "TRANSIT" and "运输中" in e.text for e in result.events)


@pytest.mark.parametrize("scenario", ["delivered", "in_transit", "out_for_delivery"])
@pytest.mark.parametrize(
    ("destination", "allowance"),
    [
        (None, timedelta(days=4)),
        (Location(province="广东省", city="深圳市"), timedelta(days=2)),
        (Location(province="广东省", city="广州市"), timedelta(days=1)),
        (Location(province="西藏", city="拉萨"), timedelta(days=7)),
        (Location(province="黑龙江省", city="哈尔滨市"), timedelta(days=4)),
    ],
)
async def test_healthy_parcels_arrive_within_the_lane_allowance(
    scenario: str, destination: Location | None, allowance: timedelta
) -> None:
    """Healthy scenarios are delivered in time and never silent for 48 h."""
    for serial in ("000001", "000002", "000003"):
        result = await track_one(
            number(scenario, serial),
            now=SHIPPED + timedelta(days=20),
            shipped_at=SHIPPED,
            destination=destination,
        )
        assert result.status is Status.DELIVERED
        times = [e.time for e in result.events]
        assert times[-1] - SHIPPED < allowance
        assert max(b - a for a, b in itertools.pairwise(times)) < timedelta(hours=48)


async def test_in_transit_keeps_moving_for_days() -> None:
    """An in_transit parcel is still moving (recent scans) a day and a half after shipping."""
    now = SHIPPED + timedelta(hours=36)
    result = await track_one(number("in_transit"), now=now, shipped_at=SHIPPED)
    assert result.status is Status.IN_TRANSIT
    assert now - result.events[-1].time < timedelta(hours=24)


async def test_lost_is_reported_before_the_parcel_counts_as_stalled() -> None:
    """The 遗失 report follows the last scan within 48 h (lost, not merely stalled)."""
    result = await track_one(number("lost"))
    before, lost = result.events[-2], result.events[-1]
    assert lost.problem is Problem.LOST
    assert lost.time - before.time < timedelta(hours=48)


# --- time ----------------------------------------------------------------------------------


async def test_clock_cuts_off_future_scans_and_history_grows() -> None:
    """At later clocks the history only grows; before pickup nothing is visible."""
    n = number("delivered")
    snapshots = [
        await track_one(n, now=SHIPPED + timedelta(hours=h), shipped_at=SHIPPED)
        for h in (0, 12, 36, 60, 200)
    ]
    assert snapshots[0].events == ()
    assert snapshots[0].status is Status.PENDING
    for earlier, later in itertools.pairwise(snapshots):
        assert later.events[: len(earlier.events)] == earlier.events
        assert len(later.events) >= len(earlier.events)
    assert snapshots[1].status is Status.IN_TRANSIT
    assert snapshots[-1].status is Status.DELIVERED
    assert snapshots[-1].finished
    assert all(e.time <= SHIPPED + timedelta(hours=12) for e in snapshots[1].events)


async def test_shipped_at_anchors_the_story() -> None:
    """The pickup scan comes shortly after shipped_at."""
    result = await track_one(
        number("delivered"), now=SHIPPED + timedelta(days=5), shipped_at=SHIPPED
    )
    first = result.events[0].time
    assert SHIPPED < first < SHIPPED + timedelta(hours=4)


async def test_epoch_option_anchors_queries_without_shipped_at() -> None:
    """options["epoch"] (naive = Beijing time) anchors queries that lack shipped_at."""
    options: dict[str, object] = {"epoch": "2026-09-11T09:00:00"}
    result = await track_one(number("delivered"), now=SHIPPED + timedelta(days=5), options=options)
    assert SHIPPED < result.events[0].time < SHIPPED + timedelta(hours=4)


async def test_courier_rounds_happen_in_working_hours() -> None:
    """With an anchor, 派件 scans fall within 08:00-20:00 Beijing time."""
    for serial in ("000001", "000002", "000003", "000004", "000005"):
        result = await track_one(
            number("delivery_failed", serial),
            now=SHIPPED + timedelta(days=10),
            shipped_at=SHIPPED,
        )
        outs = [e for e in result.events if e.status is Status.OUT_FOR_DELIVERY]
        assert outs
        assert all(8 <= e.time.astimezone(BEIJING).hour < 20 for e in outs)


async def test_same_inputs_and_clock_give_the_same_output() -> None:
    """Two sources with the same inputs and clock answer identically."""
    queries = [TrackingQuery("zto", number(s)) for s in EXPECTED]
    first = await source().track(queries)
    second = await source().track(queries)
    assert first == second


async def test_different_numbers_tell_different_stories() -> None:
    """Serials change couriers, stations and minutes, not the scenario."""
    a = await track_one(number("delivered", "000001"))
    b = await track_one(number("delivered", "000002"))
    assert a.status is b.status is Status.DELIVERED
    assert [e.text for e in a.events] != [e.text for e in b.events]


# --- routes -------------------------------------------------------------------------------


async def test_default_lane_is_guangzhou_to_hangzhou() -> None:
    """Without hints the parcel is picked up in 广州 and delivered in 杭州."""
    result = await track_one(number("delivered"))
    assert result.events[0].location.city == "广州市"
    assert result.events[-1].location.city == "杭州市"


async def test_route_follows_origin_and_destination_hints() -> None:
    """Short-form hints are honoured, the destination district included."""
    result = await track_one(
        number("delivered"),
        courier="sf",
        origin=Location(province="浙江", city="杭州"),
        destination=Location(province="新疆", city="乌鲁木齐", district="天山区"),
    )
    assert result.events[0].location.city == "杭州市"
    last = result.events[-1]
    assert (last.location.province, last.location.city, last.location.district) == (
        "新疆维吾尔自治区",
        "乌鲁木齐市",
        "天山区",
    )
    assert any("集散中心" in e.text for e in result.events)  # SF's hub wording
    assert "顺丰速运" in last.text


def test_plan_route_passes_through_hubs() -> None:
    """A cross-region lane goes through provincial hubs and a gateway; same city stays put."""
    o = resolve_endpoint(Location(city="东莞"), ("广东省", "广州市"), "x")
    d = resolve_endpoint(Location(province="新疆"), ("浙江省", "杭州市"), "x")
    assert plan_route(o, d) == ["东莞市", "广州市", "西安市", "乌鲁木齐市"]
    same = resolve_endpoint(None, ("浙江省", "杭州市"), "x")
    assert plan_route(same, same) == ["杭州市"]


def test_resolve_endpoint_fills_in_and_falls_back() -> None:
    """A city finds its province, a province its hub city, nonsense the default."""
    by_city = resolve_endpoint(Location(city="南京"), ("广东省", "广州市"), "s")
    assert (by_city.province, by_city.city) == ("江苏省", "南京市")
    by_province = resolve_endpoint(Location(province="四川"), ("广东省", "广州市"), "s")
    assert (by_province.province, by_province.city) == ("四川省", "成都市")
    unknown = resolve_endpoint(Location(province="火星"), ("广东省", "广州市"), "s")
    assert (unknown.province, unknown.city) == ("广东省", "广州市")
    assert unknown.district in geo.districts_of("广州市")


AnyFactory = Callable[..., SandboxSource]


def test_sandbox_source_is_usable_as_a_factory() -> None:
    """The class itself has the SourceFactory call shape."""
    factory: AnyFactory = SandboxSource
    src = factory("sb", {"couriers": ["*"]}, http=object(), clock=lambda: NOW)
    assert src.name == "sb"


async def test_an_internal_failure_becomes_an_error_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bug while telling one story gives that query a PROVIDER error; the rest still work."""
    from carriers.sandbox import stories

    real_tell = stories.tell

    def flaky(scenario: str, *args: object, **kwargs: object) -> stories.Story:
        if scenario == "lost":
            raise RuntimeError("boom")
        return real_tell(scenario, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(stories, "tell", flaky)
    results = await source().track(
        [TrackingQuery("yto", number("lost")), TrackingQuery("yto", number("delivered"))]
    )
    assert results[0].error is not None
    assert results[0].error.kind is ErrorKind.PROVIDER
    assert results[1].status is Status.DELIVERED


def test_sandbox_is_registered_as_the_sandbox_entry_point() -> None:
    """The installed entry point ``sandbox`` resolves to SandboxSource."""
    from carriers.registry import load_factories

    assert load_factories()["sandbox"] is SandboxSource
