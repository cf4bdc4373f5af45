"""Unit tests for the policy: holidays, promotions, stretched deadlines, overrides, lanes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from tests.unit.rules_builders import GUANGZHOU, HANGZHOU, LHASA, SHENZHEN, TZ, at, hours
from tracker.domain.holidays import (
    DEFAULT_PROMOTIONS,
    DayRef,
    Promotion,
    add_working_time,
    is_makeup_workday,
    is_rest_day,
    is_statutory_holiday,
    spring_festival,
)
from tracker.domain.model import Address
from tracker.domain.policy import (
    Lane,
    Override,
    Policy,
    Thresholds,
    dispatch_window,
    lane_of,
    ship_deadline,
    transit_allowance,
    transit_window,
)

NO_PROMOTIONS = Policy(promotions=())
WEEKENDS_OFF = Policy(defaults=Thresholds(pause_on_weekends=True), promotions=())


def test_national_day_2026_is_a_rest_day() -> None:
    """Every day of National Day 2026 (Oct 1-7) is a statutory holiday."""
    assert all(is_statutory_holiday(date(2026, 10, d)) for d in range(1, 8))
    assert not is_statutory_holiday(date(2026, 10, 8))


def test_makeup_workday_is_a_workday_even_when_weekends_pause() -> None:
    """Saturday 2026-10-10 is a 调休 make-up workday; Sunday 2026-10-11 is a rest day."""
    assert is_makeup_workday(date(2026, 10, 10))
    assert not is_rest_day(date(2026, 10, 10), holidays=True, weekends=True)
    assert is_rest_day(date(2026, 10, 11), holidays=True, weekends=True)


def test_weekends_do_not_pause_by_default() -> None:
    """An ordinary Saturday is a working day unless weekends are configured to pause."""
    assert not is_rest_day(date(2026, 9, 12), holidays=True, weekends=False)
    assert is_rest_day(date(2026, 9, 12), holidays=True, weekends=True)


def test_years_without_holiday_data_fall_back_to_weekends_only() -> None:
    """Outside chinese_calendar's years no holiday is known, weekends still are, nothing raises."""
    assert not is_statutory_holiday(date(2030, 10, 1))
    assert not is_rest_day(date(2030, 10, 1), holidays=True, weekends=True)
    assert is_rest_day(date(2030, 10, 5), holidays=True, weekends=True)
    paid = at("2030-10-01 10:00")
    assert ship_deadline(paid, NO_PROMOTIONS) == paid + hours(48)


def test_working_clock_skips_whole_rest_days() -> None:
    """48 h from 23:00 before National Day uses 1 h, skips Oct 1-7, then 47 h."""
    clock = add_working_time(at("2026-09-30 23:00"), hours(48), TZ, holidays=True, weekends=False)
    assert clock.end == at("2026-10-09 23:00")
    assert clock.paused_days == tuple(date(2026, 10, d) for d in range(1, 8))


def test_working_clock_starting_on_a_rest_day_starts_at_the_next_working_midnight() -> None:
    """A clock started on Oct 3 starts running at Oct 8 00:00."""
    clock = add_working_time(at("2026-10-03 15:00"), hours(24), TZ, holidays=True, weekends=False)
    assert clock.end == at("2026-10-09 00:00")


def test_ship_deadline_is_paid_plus_48_hours_on_ordinary_days() -> None:
    """With no holiday or promotion in the window, the deadline is paid + 48 h."""
    paid = at("2026-09-07 10:00")
    assert ship_deadline(paid, Policy()) == at("2026-09-09 10:00")


def test_ship_deadline_is_stretched_by_national_day() -> None:
    """Paid Sep 30 20:00: 4 h that day, Oct 1-7 paused, 44 h more -> Oct 9 20:00."""
    assert ship_deadline(at("2026-09-30 20:00"), Policy()) == at("2026-10-09 20:00")


def test_ship_deadline_ignores_holidays_when_told() -> None:
    """With pause_on_holidays off the deadline is plain paid + 48 h."""
    policy = Policy(defaults=Thresholds(pause_on_holidays=False))
    assert ship_deadline(at("2026-09-30 20:00"), policy) == at("2026-10-02 20:00")


def test_weekend_pause_counts_a_makeup_saturday() -> None:
    """Weekends pausing: Fri 10:00 + 48 h is Tue 10:00, but Mon 10:00 over a 调休 Saturday."""
    assert ship_deadline(at("2026-09-11 10:00"), WEEKENDS_OFF) == at("2026-09-15 10:00")
    assert ship_deadline(at("2026-10-09 10:00"), WEEKENDS_OFF) == at("2026-10-12 10:00")


def test_ship_deadline_adds_the_double_11_extra() -> None:
    """Paid during 双11 the dispatch window gets 48 extra hours."""
    window = dispatch_window(at("2026-11-05 10:00"), Policy())
    assert window.deadline == at("2026-11-09 10:00")
    assert window.promotion == "双11"
    assert window.extra == hours(48)


def test_transit_allowance_lanes() -> None:
    """Same city 1 d, same province 2 d, other province 4 d, remote 7 d."""
    shipped = at("2026-09-08 10:00")

    def days(origin: Address, destination: Address) -> float:
        allowance = transit_allowance(origin, destination, "yto", shipped, NO_PROMOTIONS)
        return allowance / timedelta(days=1)

    assert days(GUANGZHOU, GUANGZHOU) == 1
    assert days(GUANGZHOU, SHENZHEN) == 2
    assert days(GUANGZHOU, HANGZHOU) == 4
    assert days(GUANGZHOU, LHASA) == 7
    assert days(LHASA, GUANGZHOU) == 7


def test_lane_of_reads_short_and_full_names() -> None:
    """Short names (广东/广州) compare equal to full ones."""
    assert lane_of(Address("广东", "广州"), GUANGZHOU) is Lane.SAME_CITY
    assert lane_of(Address("新疆", "乌鲁木齐"), HANGZHOU) is Lane.REMOTE


def test_transit_allowance_is_stretched_by_national_day() -> None:
    """Shipped Sep 30 10:00 to another province: 14 h, Oct 1-7 paused, 82 h -> 11 days."""
    allowance = transit_allowance(GUANGZHOU, HANGZHOU, "yto", at("2026-09-30 10:00"), Policy())
    assert allowance == timedelta(days=11)


def test_transit_window_reports_the_paused_days() -> None:
    """The window lists each holiday it skipped, for the ticket's evidence."""
    window = transit_window(GUANGZHOU, HANGZHOU, "yto", at("2026-09-30 10:00"), Policy())
    assert window.evidence()["paused_days"][0] == "2026-10-01"
    assert len(window.paused_days) == 7


def test_transit_allowance_gets_the_promotion_extra_inside_double_11() -> None:
    """Shipped Nov 5 (inside 双11): 4 d + 2 d."""
    allowance = transit_allowance(GUANGZHOU, HANGZHOU, "yto", at("2026-11-05 10:00"), Policy())
    assert allowance == timedelta(days=6)


def test_promotion_counts_when_the_transit_window_reaches_into_it() -> None:
    """Shipped Oct 29 the 4-day window reaches Nov 2 (双11): 6 d; shipped Oct 27 it does not."""
    policy = Policy()
    assert transit_allowance(
        GUANGZHOU, HANGZHOU, "yto", at("2026-10-29 10:00"), policy
    ) == timedelta(days=6)
    assert transit_allowance(
        GUANGZHOU, HANGZHOU, "yto", at("2026-10-27 10:00"), policy
    ) == timedelta(days=4)


def test_promotion_no_longer_counts_after_it_ends() -> None:
    """Shipped Nov 14, the day after 双11 ends, the plain 4 days apply."""
    allowance = transit_allowance(GUANGZHOU, HANGZHOU, "yto", at("2026-11-14 10:00"), Policy())
    assert allowance == timedelta(days=4)


def test_new_year_shopping_festival_is_the_three_weeks_before_spring_festival() -> None:
    """年货节 2027 runs Jan 16 - Feb 5 (春节 is Feb 6) and adds 2 transit days."""
    festival = next(p for p in DEFAULT_PROMOTIONS if p.name == "年货节")
    assert spring_festival(2027) == date(2027, 2, 6)
    assert festival.window(2027) == (date(2027, 1, 16), date(2027, 2, 5))
    inside = transit_allowance(GUANGZHOU, HANGZHOU, "yto", at("2027-01-20 10:00"), Policy())
    before = transit_allowance(GUANGZHOU, HANGZHOU, "yto", at("2027-01-05 10:00"), Policy())
    assert inside == timedelta(days=6)
    assert before == timedelta(days=4)


def test_the_largest_overlapping_promotion_extra_wins() -> None:
    """Two overlapping promotions do not add up: the larger extra applies."""
    policy = Policy(
        promotions=(
            Promotion.of("店庆", "2026-09-08", "2026-09-09", 12, 1),
            Promotion.of("会员日", "09-09", "09-09", 24, 3),
        )
    )
    window = transit_window(GUANGZHOU, HANGZHOU, "yto", at("2026-09-08 10:00"), policy)
    assert window.promotion == "会员日"
    assert window.deadline == at("2026-09-15 10:00")


def test_day_refs_parse_every_form() -> None:
    """MM-DD, YYYY-MM-DD and spring_festival±N all parse and print back."""
    assert DayRef.parse("11-01").on(2026) == date(2026, 11, 1)
    assert DayRef.parse("2026-11-01").on(2027) is None
    assert DayRef.parse("春节-21").on(2027) == date(2027, 1, 16)
    assert str(DayRef.parse("spring_festival-21")) == "spring_festival-21"
    with pytest.raises(ValueError, match="MM-DD"):
        DayRef.parse("Nov 1")
    with pytest.raises(ValueError, match="no such day"):
        DayRef.parse("02-30")


def test_promotion_window_may_cross_new_year() -> None:
    """A window from Dec 28 to Jan 3 covers New Year's Day of the next year."""
    promotion = Promotion.of("跨年", "12-28", "01-03", 0, 1)
    assert promotion.overlaps(date(2027, 1, 2), date(2027, 1, 2))
    assert not promotion.overlaps(date(2027, 1, 4), date(2027, 1, 10))


def test_courier_override_changes_only_that_courier() -> None:
    """A deppon override leaves other couriers on the defaults."""
    policy = Policy(overrides=(Override({"stalled_hours": 72.0}, courier="deppon"),))
    assert policy.thresholds_for("deppon", "广东省", "浙江省").stalled_hours == 72
    assert policy.thresholds_for("yto", "广东省", "浙江省").stalled_hours == 48


def test_lane_override_stretches_that_lane_only() -> None:
    """A 广东->浙江 override of 6 days applies to that lane, in short or full names."""
    policy = Policy(
        overrides=(Override({"other_province_days": 6.0}, origin="广东", destination="浙江"),),
        promotions=(),
    )
    shipped = at("2026-09-08 10:00")
    assert transit_allowance(GUANGZHOU, HANGZHOU, "yto", shipped, policy) == timedelta(days=6)
    shanghai = Address("上海市", "上海市")
    assert transit_allowance(GUANGZHOU, shanghai, "yto", shipped, policy) == timedelta(days=4)


def test_more_specific_override_wins() -> None:
    """Courier+lane beats lane, lane beats courier, regardless of declaration order."""
    policy = Policy(
        overrides=(
            Override({"remote_days": 9.0}, courier="sf", destination="西藏"),
            Override({"remote_days": 8.0}, destination="西藏"),
            Override({"remote_days": 5.0}, courier="sf"),
        )
    )
    assert policy.thresholds_for("sf", "广东省", "西藏自治区").remote_days == 9
    assert policy.thresholds_for("yto", "广东省", "西藏自治区").remote_days == 8
    assert policy.thresholds_for("sf", "广东省", "新疆维吾尔自治区").remote_days == 5


def test_override_rejects_unknown_threshold_names() -> None:
    """Override values must be Thresholds fields."""
    with pytest.raises(ValueError, match="stall_hours"):
        Override({"stall_hours": 1.0})


def test_dispatch_hours_override_per_courier() -> None:
    """ship_deadline uses the courier's dispatch_hours when a courier is given."""
    policy = Policy(overrides=(Override({"dispatch_hours": 24.0}, courier="sf"),))
    paid = at("2026-09-07 10:00")
    assert ship_deadline(paid, policy, "sf") == paid + hours(24)
    assert ship_deadline(paid, policy) == paid + hours(48)


def test_coverage_names_the_uncovered_province_or_city() -> None:
    """uncovered_area returns the excluded province or city of the destination."""
    policy = Policy(coverage={"deppon": frozenset({"西藏自治区", "三沙市"})})
    assert policy.uncovered_area("deppon", LHASA) == "西藏自治区"
    assert policy.uncovered_area("deppon", Address("海南", "三沙")) == "三沙市"
    assert policy.uncovered_area("deppon", HANGZHOU) is None
    assert policy.uncovered_area("sf", LHASA) is None


def test_timezone_defaults_to_shanghai_and_clocks_use_it() -> None:
    """Rest days are calendar days in the shop's timezone, not UTC."""
    assert Policy().timezone.key == "Asia/Shanghai"
    # 2026-09-30 17:00 UTC is Oct 1 01:00 in Shanghai: already National Day
    paid = datetime(2026, 9, 30, 17, 0, tzinfo=UTC)
    assert ship_deadline(paid, Policy()) == at("2026-10-10 00:00")


def test_thresholds_are_replaceable_values() -> None:
    """Thresholds is a frozen value: replace() makes a changed copy."""
    base = Thresholds()
    changed = replace(base, lost_days=10.0)
    assert (base.lost_days, changed.lost_days) == (7.0, 10.0)
    assert base.weight_tolerance(1.0) == 0.3
    assert base.weight_tolerance(4.0) == pytest.approx(0.6)
