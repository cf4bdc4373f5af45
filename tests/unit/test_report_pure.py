"""Pure parts of the daily report: the allowance table, windows, evidence lines, charts, CSV."""

from __future__ import annotations

import csv
import io
import random
import tempfile
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tracker.domain.model import Address
from tracker.domain.policy import Policy, lane_of, transit_window
from tracker.errors import ConfigError
from tracker.report.allowance import allowance_plan
from tracker.report.charts import horizontal_bars, nice_max, stacked_columns
from tracker.report.evidence import summarize_evidence
from tracker.report.model import daily_window
from tracker.report.rollup import day_signatures, fixed_offset, plan_for_days, slot_of
from tracker.settings import load_settings

TZ = ZoneInfo("Asia/Shanghai")
POLICY = Policy.from_mapping(
    {
        "couriers": {"ems": {"other_province_days": 5, "pause_on_weekends": True}},
        "lanes": [{"destination": "新疆", "courier": "sf", "remote_days": 5}],
        "promotions": [
            {"name": "国庆大促", "start": "09-28", "end": "10-03", "extra_dispatch_hours": 24,
             "extra_transit_days": 1},
        ],
    },
    timezone=TZ,
)  # fmt: skip
ORIGIN = Address("广东省", "广州市")
PLACES = [
    Address("广东省", "广州市"),
    Address("广东省", "深圳市"),
    Address("浙江省", "杭州市"),
    Address("新疆维吾尔自治区", "乌鲁木齐市"),
    Address("西藏自治区", "拉萨市"),
]


def test_allowance_table_gives_the_policy_deadline_for_any_start_time() -> None:
    """For every courier, lane and start instant of the period, w*start+v is the deadline."""
    window = daily_window(date(2026, 10, 10), datetime(2026, 10, 10, 9, tzinfo=TZ), TZ)
    plan = allowance_plan(POLICY, window.day_edges)
    rows = {(p, d): (w, v) for p, d, w, v in plan.rows}
    rng = random.Random(3)
    checked = 0
    for courier in ("ems", "sf", "yto"):
        for destination in PLACES:
            lane = lane_of(ORIGIN, destination)
            province = destination.province
            [profile] = [
                pid
                for cell, cell_lane, pid in plan.cells
                if cell_lane == lane
                and cell.origin is None
                and cell.courier in (courier, None if courier not in plan.couriers else courier)
                and cell.destination
                in (province, None if province not in plan.destinations else province)
            ]
            for day_index in range(len(window.day_edges) - 1):
                for _ in range(3):
                    start = window.day_edges[day_index] + timedelta(seconds=rng.randrange(86400))
                    w, v = rows[(profile, day_index)]
                    expected = transit_window(ORIGIN, destination, courier, start, POLICY)
                    assert w * start.timestamp() + v == expected.deadline.timestamp(), (
                        courier, destination, start,
                    )  # fmt: skip
                    checked += 1
    assert checked == 3 * len(PLACES) * 30 * 3


def test_window_is_the_24_hours_before_the_report_time_never_the_future() -> None:
    """The report of D ends at D 08:00, or at ``now`` when that is earlier."""
    day = date(2026, 10, 10)
    full = daily_window(day, datetime(2026, 10, 10, 9, tzinfo=TZ), TZ)
    assert (full.start, full.end) == (
        datetime(2026, 10, 9, 8, tzinfo=TZ),
        datetime(2026, 10, 10, 8, tzinfo=TZ),
    )
    assert full.days[0] == date(2026, 9, 10) and full.days[-1] == date(2026, 10, 9)
    early = daily_window(day, datetime(2026, 10, 10, 6, tzinfo=TZ), TZ, time(8))
    assert early.end == datetime(2026, 10, 10, 6, tzinfo=TZ)
    assert early.end - early.start == timedelta(days=1)


def test_evidence_lines_name_the_facts_and_mask_phones() -> None:
    """Each known trigger gets a readable line; unknown ones fall back; phones are masked."""
    assert summarize_evidence(
        "overdue",
        {"trigger": "not_delivered_in_time", "deliver_by": "2026-09-11T09:00:00+08:00",
         "hours_late": 96, "transit_window": {"promotion": "双11"}},
    ) == "超过应送达时间 09-11 09:00 已 4.0 天（已含双11延长）"  # fmt: skip
    assert summarize_evidence(
        "weight_mismatch",
        {"trigger": "courier_weight_below_order", "ordered_kg": 1.3, "courier_weight_kg": 0.4,
         "missing_kg": 0.9, "tolerance_kg": 0.3},
    ) == "快递称重 0.4 kg，订单应重 1.3 kg，少 0.9 kg（容差 0.3 kg）"  # fmt: skip
    line = summarize_evidence(
        "wrong_region",
        {"trigger": "left_destination_province",
         "outside_scan": {"time": "2026-09-09T12:49:00+08:00", "place": "福建省福州市",
                          "text": "派件员 13812345678 已取件"}},
    )  # fmt: skip
    assert "福建省福州市" in line and "138****5678" in line and "13812345678" not in line
    assert summarize_evidence("stalled", {"trigger": "something_new"}) == "something_new"
    assert summarize_evidence("stalled", None) == ""


def test_charts_escape_labels_and_scale_to_round_maxima() -> None:
    """Labels are escaped (no markup injection) and the axis tops at 1/2/5 x 10^n."""
    assert [nice_max(v) for v in (0, 1, 3, 7, 11, 99, 101)] == [1, 1, 5, 10, 20, 100, 200]
    svg = stacked_columns(["<b>"], {"lost": [3]}, {"lost": "疑似<丢件>"}, title="t&t")
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "疑似&lt;丢件&gt;" in svg
    bars = horizontal_bars([("浙江<省>", {"lost": 2, "stalled": 1})], {}, title="x")
    assert "浙江&lt;省&gt;" in bars and bars.count("<rect") == 2 and ">3</text>" in bars


def test_csv_defuses_spreadsheet_formulas() -> None:
    """A courier text starting with = + - @ cannot run as a formula when opened in Excel."""
    from tracker.report.render_csv import _safe

    out = io.StringIO()
    csv.writer(out).writerow([_safe("=HYPERLINK(1)"), _safe("-1+2"), _safe("正常"), _safe(3)])
    assert out.getvalue().strip() == "'=HYPERLINK(1),'-1+2,正常,3"


def test_report_settings_name_the_bad_key() -> None:
    """Recipients need a relay; a bad time or address is refused with its dotted key."""

    def problem(toml: str, tmp: Path) -> str:
        path = tmp / "tracker.toml"
        path.write_text(toml, encoding="utf-8")
        with pytest.raises(ConfigError) as caught:
            load_settings(path)
        return str(caught.value)

    tmp = Path(tempfile.mkdtemp())
    assert "report.smtp" in problem('[report]\nrecipients = ["ops@shop.cn"]\n', tmp)
    assert "report.at" in problem('[report]\nat = "8am"\n', tmp)
    assert "report.recipients" in problem('[report]\nrecipients = ["not-an-address"]\n', tmp)
    ok = tmp / "ok.toml"
    ok.write_text(
        '[report]\nat = "07:30"\nrecipients = ["a@shop.cn", "b@shop.cn"]\npost_to_webhook = true\n'
        '[report.smtp]\nhost = "smtp.shop.cn"\nsender = "tracker@shop.cn"\npassword = "${PW}"\n',
        encoding="utf-8",
    )
    settings = load_settings(ok, {"PW": "secret"})
    assert settings.report.smtp is not None and settings.report.smtp.starttls
    assert settings.report.smtp.port == 587 and settings.report.smtp.password == "secret"


def test_a_days_signature_does_not_depend_on_the_span_it_was_computed_with() -> None:
    """The rollups' per-day digest equals the one a report computes for its own period."""
    window = daily_window(date(2026, 10, 10), datetime(2026, 10, 10, 9, tzinfo=TZ), TZ)
    days = [d.toordinal() for d in window.days]
    from_report = day_signatures(allowance_plan(POLICY, window.day_edges), days)
    scattered = [days[3], days[17], days[29], date(2027, 2, 1).toordinal()]
    plan, _ = plan_for_days(POLICY, scattered)
    from_rollup = day_signatures(plan, scattered)
    assert all(from_rollup[d] == from_report[d] for d in scattered[:3])
    other = Policy.from_mapping({"same_province_days": 3}, timezone=TZ)
    assert (
        day_signatures(allowance_plan(other, window.day_edges), days)[days[3]]
        != (from_report[days[3]])
    )


def test_deadline_slots_start_at_the_anchor_and_offsets_must_be_fixed() -> None:
    """A slot is a local day starting at the anchor time; DST zones have no fixed offset."""
    eight = datetime(2026, 10, 20, 8, tzinfo=TZ)
    slot = slot_of(eight, 8 * 3600, 8 * 3600)
    assert slot_of(eight - timedelta(microseconds=1), 8 * 3600, 8 * 3600) == slot - 1
    assert slot_of(eight + timedelta(hours=23, minutes=59), 8 * 3600, 8 * 3600) == slot
    assert slot_of(eight, 8 * 3600, 0) == slot_of(datetime(2026, 10, 20, tzinfo=TZ), 28800, 0)
    year = [datetime(2026, 1, 1, tzinfo=TZ) + timedelta(days=d) for d in range(0, 365, 7)]
    assert fixed_offset(TZ, year) == 8 * 3600
    assert fixed_offset(ZoneInfo("Europe/Berlin"), year) is None
