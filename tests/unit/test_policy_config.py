"""Unit tests for Policy.from_mapping: the TOML [policy] table, validated key by key."""

from __future__ import annotations

import re
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tracker.domain.holidays import DEFAULT_PROMOTIONS
from tracker.domain.policy import Policy, Thresholds

FULL = {
    "timezone": "Asia/Shanghai",
    "dispatch_hours": 36,
    "stalled_hours": 60.5,
    "pause_on_weekends": True,
    "couriers": {"DEPPON": {"stalled_hours": 72}},
    "lanes": [
        {"origin": "广东", "destination": "新疆", "remote_days": 6},
        {"destination": "西藏", "courier": "sf", "remote_days": 9},
    ],
    "coverage": {"deppon": ["西藏", "三沙"]},
    "promotions": [
        {
            "name": "双11",
            "start": "11-01",
            "end": "11-13",
            "extra_dispatch_hours": 72,
            "extra_transit_days": 3,
        }
    ],
}


def test_empty_mapping_gives_the_design_defaults() -> None:
    """An empty [policy] table is DESIGN §5's defaults with the built-in promotions."""
    policy = Policy.from_mapping({})
    assert policy.defaults == Thresholds()
    assert policy.promotions == DEFAULT_PROMOTIONS
    assert policy.timezone.key == "Asia/Shanghai"
    assert policy.overrides == ()


def test_full_mapping_is_read_into_the_policy() -> None:
    """Defaults, courier and lane overrides, coverage and promotions all land in place."""
    policy = Policy.from_mapping(FULL)
    assert policy.defaults.dispatch_hours == 36
    assert policy.defaults.stalled_hours == 60.5
    assert policy.defaults.pause_on_weekends is True
    assert policy.thresholds_for("deppon", "广东省", "浙江省").stalled_hours == 72
    assert policy.thresholds_for("yto", "广东省", "新疆维吾尔自治区").remote_days == 6
    assert policy.thresholds_for("sf", "浙江省", "西藏自治区").remote_days == 9
    assert policy.thresholds_for("yto", "浙江省", "西藏自治区").remote_days == 7
    assert policy.coverage == {"deppon": frozenset({"西藏自治区", "三沙市"})}
    assert [p.name for p in policy.promotions] == ["双11"]
    assert policy.promotions[0].extra_transit_days == 3


def test_empty_promotions_list_disables_promotions() -> None:
    """An empty ``promotions`` array replaces the built-in windows with none."""
    assert Policy.from_mapping({"promotions": []}).promotions == ()


def test_timezone_is_configurable() -> None:
    """A shop abroad can run its clocks in its own timezone."""
    assert Policy.from_mapping({"timezone": "Europe/Berlin"}).timezone.key == "Europe/Berlin"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"stalled_hour": 48}, "policy.stalled_hour: unknown key"),
        ({"stalled_hours": 0}, "policy.stalled_hours: must be a positive number"),
        ({"stalled_hours": -1}, "policy.stalled_hours: must be a positive number"),
        ({"stalled_hours": "48"}, "policy.stalled_hours: must be a positive number"),
        ({"stalled_hours": True}, "policy.stalled_hours: must be a positive number"),
        ({"lost_days": float("nan")}, "policy.lost_days: must be a positive number"),
        ({"weight_tolerance_kg": -0.1}, "policy.weight_tolerance_kg: must be a non-negative"),
        ({"weight_tolerance_ratio": 1.5}, "policy.weight_tolerance_ratio: must be a number"),
        ({"pause_on_weekends": "yes"}, "policy.pause_on_weekends: must be true or false"),
        ({"timezone": "Mars/Base"}, "policy.timezone: unknown timezone 'Mars/Base'"),
        ({"couriers": []}, "policy.couriers: must be a table"),
        ({"couriers": {"sf": {"stall": 1}}}, "policy.couriers.sf.stall: unknown key"),
        ({"couriers": {"sf": {"lost_days": 0}}}, "policy.couriers.sf.lost_days: must be a"),
        ({"lanes": {"origin": "广东"}}, "policy.lanes: must be an array"),
        ({"lanes": [{"destination": "火星", "remote_days": 9}]}, "policy.lanes[0].destination: "),
        ({"lanes": [{"remote_days": 9}]}, "policy.lanes[0]: must name an origin or a destination"),
        ({"lanes": [{"origin": "广东"}]}, "policy.lanes[0]: sets no threshold"),
        ({"lanes": [{"origin": "广东", "speed": 1}]}, "policy.lanes[0].speed: unknown key"),
        ({"coverage": {"deppon": "西藏"}}, "policy.coverage.deppon: must be an array"),
        ({"coverage": {"deppon": ["火星"]}}, "policy.coverage.deppon[0]: unknown province or city"),
        (
            {"promotions": [{"name": "x", "start": "11-01"}]},
            "policy.promotions[0].end: is required",
        ),
        (
            {"promotions": [{"name": "x", "start": "Nov 1", "end": "11-13"}]},
            "policy.promotions[0].start: expected MM-DD",
        ),
        (
            {"promotions": [{"name": "x", "start": "11-01", "end": "11-13", "when": 1}]},
            "policy.promotions[0].when: unknown key",
        ),
        (
            {
                "promotions": [
                    {"name": "x", "start": "11-01", "end": "11-13", "extra_transit_days": -1}
                ]
            },
            "policy.promotions[0].extra_transit_days: must be a non-negative number",
        ),
    ],
)
def test_bad_values_raise_value_error_naming_the_key(data: dict[str, Any], message: str) -> None:
    """Every unknown key or bad value raises ValueError whose message starts with its path."""
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        Policy.from_mapping(data)


def test_prefix_names_where_the_table_came_from() -> None:
    """A caller loading a nested table can prefix the path in messages."""
    with pytest.raises(ValueError, match=r"^shops\.a\.policy\.lost_days: "):
        Policy.from_mapping({"lost_days": 0}, prefix="shops.a.policy")


def test_top_level_timezone_applies_unless_the_table_sets_one() -> None:
    """The config's top-level timezone is the fallback; [policy].timezone wins."""
    berlin = ZoneInfo("Europe/Berlin")
    assert Policy.from_mapping({}, timezone=berlin).timezone == berlin
    table = {"timezone": "Asia/Tokyo"}
    assert Policy.from_mapping(table, timezone=berlin).timezone.key == "Asia/Tokyo"
