"""Golden tests: every number in the JSON report equals a count made without the report's SQL.

The database is seeded by ``report_seed`` on SQLite and PostgreSQL; expectations come from
the seeded rows in Python (on-time judged per parcel by the policy itself).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter, defaultdict
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from tests.integration import report_seed as s
from tracker.domain.policy import Policy
from tracker.report import build_daily_report, render_all, report_window, rollup
from tracker.report.allowance import allowance_plan
from tracker.report.rollup import refresh_rollups
from tracker.settings import Settings


def _settings(engine: Engine) -> Settings:
    return Settings.model_validate(
        {
            "database": {"url": str(engine.url)},
            "shop": {"name": "金标店"},
            "carriers": {"sandbox": {}, "kd100": {"provider": "kuaidi100"}},
            "report": {"max_actions": s.MAX_ACTIONS},
            "policy": s.POLICY_TABLE,
        }
    )


#: how the report reads, as the rollup refreshes run before it: (refresh before seeding,
#: refreshes after seeding as (report day offset, expected action)). "live": base tables
#: only; "journaled": every seeded row still in the journals; "folded": journals folded;
#: "behind"/"ahead": rollups hold at another report's window end; "advanced": moved on.
READS: dict[str, tuple[bool, tuple[tuple[int, str], ...]]] = {
    "live": (False, ()),
    "rebuilt": (False, ((0, "rebuilt"),)),
    "journaled": (True, ()),
    "folded": (True, ((0, "folded"),)),
    "behind": (False, ((-1, "rebuilt"),)),
    "ahead": (False, ((1, "rebuilt"),)),
    "advanced": (False, ((-1, "rebuilt"), (0, "folded"))),
}


@pytest.fixture(params=list(READS))
def golden(
    engine: Engine, request: pytest.FixtureRequest
) -> tuple[s.Seed, dict[str, Any], Policy, Any]:
    """The seeded rows, the report's JSON form, the policy, and every rendered form.

    Every test runs once per way of reading (:data:`READS`) with the same assertions.
    """
    settings = _settings(engine)
    policy = Policy.from_mapping(settings.policy, timezone=settings.tz)
    window = report_window(s.REPORT_DAY, s.NOW, settings)
    early, refreshes = READS[request.param]
    if early:
        assert refresh_rollups(engine, policy, window, s.NOW).action == "rebuilt"
    with engine.begin() as conn:
        seeded = s.seed(conn)
    for days, action in refreshes:
        other = report_window(s.REPORT_DAY + timedelta(days=days), s.NOW, settings)
        assert refresh_rollups(engine, policy, other, s.NOW).action == action
    with engine.connect() as conn:
        plan = allowance_plan(policy, window.day_edges)
        uses_rollups = rollup.check(conn, window, policy, plan) is not None
        assert uses_rollups == (request.param != "live")
        report = build_daily_report(
            conn, day=s.REPORT_DAY, now=s.NOW, settings=settings, policy=policy
        )
    rendered = render_all(report)
    return seeded, json.loads(rendered.json), policy, rendered


def _in_window(moment: Any) -> bool:
    return moment is not None and s.WINDOW_START <= moment < s.WINDOW_END


def test_headline_counts_equal_the_seeded_rows(golden) -> None:
    """Open by kind and severity, the day's activity, notices and alerts: all independent."""
    seeded, data, _, _ = golden
    h = data["headline"]
    open_tickets = [t for t in seeded.tickets if s.open_at_end(t)]
    by_kind: dict[str, dict[str, int]] = defaultdict(dict)
    for t in open_tickets:
        by_kind[t.kind][t.severity] = by_kind[t.kind].get(t.severity, 0) + 1
    assert h["open_by_kind"] == by_kind
    assert h["open_total"] == len(open_tickets) == data["actions_total"]
    assert h["opened"] == sum(_in_window(t.opened_at) for t in seeded.tickets)
    assert h["resolved"] == sum(_in_window(t.resolved_at) for t in seeded.tickets)
    for key, action in (
        ("auto_resolved", "auto_resolved"),
        ("resolved_by_agent", "resolved"),
        ("escalated", "escalated"),
        ("acknowledged", "acknowledged"),
    ):
        expected = {tid for tid, act, at in seeded.log if act == action and _in_window(at)}
        assert h[key] == len(expected), key
    oldest = sorted(open_tickets, key=lambda t: (t.opened_at, t.id))[:5]
    assert [o["ticket_id"] for o in h["oldest_open"]] == [t.id for t in oldest]
    sent = [n for n in seeded.notices if n["status"] == "sent" and _in_window(n["sent_at"])]
    assert h["notices_sent"] == len(sent)
    assert h["buyers_notified"] == len({n["buyer_id"] for n in sent})
    assert h["notices_failed"] == sum(
        n["status"] == "failed" and _in_window(n["scheduled_for"]) for n in seeded.notices
    )
    assert h["notices_waiting"] == sum(n["status"] == "queued" for n in seeded.notices)
    assert h["alerts_dead"] == sum(
        a["status"] == "dead" and _in_window(a["next_attempt_at"]) for a in seeded.alerts
    )
    assert h["alerts_retrying"] == sum(
        a["status"] == "queued" and a["attempts"] > 0 for a in seeded.alerts
    )
    assert h["alerts_undelivered"] == h["alerts_dead"] + h["alerts_retrying"]
    assert h["open_total"] > 20 and h["opened"] > 0 and h["resolved"] > 0  # the seed is rich


def test_action_list_is_urgent_first_then_oldest_and_masked(golden) -> None:
    """Lost, then overdue, then the rest, oldest first; capped; scans and phones masked."""
    seeded, data, _, rendered = golden
    tier = {"lost": 0, "overdue": 1}
    expected = sorted(
        (t for t in seeded.tickets if s.open_at_end(t)),
        key=lambda t: (tier.get(t.kind, 2), t.opened_at, t.id),
    )[: s.MAX_ACTIONS]
    actions = data["actions"]
    assert [a["ticket_id"] for a in actions] == [t.id for t in expected]
    for action, ticket in zip(actions, expected, strict=True):
        assert action["order_id"] == seeded.order_ids[ticket.order]
        hours = (s.WINDOW_END - ticket.opened_at).total_seconds() / 3600
        assert action["open_hours"] == round(hours, 1)
        if ticket.shipment is None:
            assert action["last_scan_time"] is None
            continue
        time, text, province, city = seeded.last_scan[ticket.shipment]
        assert action["last_scan_time"] == time.astimezone(s.TZ).isoformat()
        assert action["last_scan_place"] == f"{province}{city}"
        assert "1391234" not in action["last_scan_text"]
        assert action["last_scan_text"] == re.sub(r"1391234(\d{4})", r"139****\1", text)
        assert "13912345678" not in action["suggested_action"]
    rows = list(csv.reader(io.StringIO(rendered.csv.removeprefix("\ufeff"))))
    assert len(rows) == len(actions) + 1 and rows[1][0] == str(actions[0]["ticket_id"])
    assert "1391234" not in rendered.html and "13912345678" not in rendered.html


def test_trends_count_each_day_kind_and_open_age(golden) -> None:
    """Opened per local day and kind, resolved per day, open-ticket ages per bucket."""
    seeded, data, _, _ = golden
    trends = data["trends"]
    days = [(s.PERIOD_START + timedelta(days=i)).date().isoformat() for i in range(30)]
    assert trends["days"] == days
    opened: dict[str, list[int]] = {}
    resolved = [0] * 30
    for t in seeded.tickets:
        if s.PERIOD_START <= t.opened_at < s.PERIOD_END:
            index = days.index(t.opened_at.astimezone(s.TZ).date().isoformat())
            opened.setdefault(t.kind, [0] * 30)[index] += 1
        if t.resolved_at and s.PERIOD_START <= t.resolved_at < s.PERIOD_END:
            resolved[days.index(t.resolved_at.astimezone(s.TZ).date().isoformat())] += 1
    assert trends["opened_by_kind"] == opened
    assert trends["resolved"] == resolved
    ages = Counter()
    for t in seeded.tickets:
        if s.open_at_end(t):
            hours = (s.WINDOW_END - t.opened_at).total_seconds() / 3600
            bucket = next(
                b["label"]
                for b in trends["open_age"]
                if b["min_hours"] <= hours and (b["max_hours"] is None or hours < b["max_hours"])
            )
            ages[bucket] += 1
    assert {b["label"]: b["total"] for b in trends["open_age"] if b["total"]} == dict(ages)


def _score(parcels: list[s.Parcel], seeded: s.Seed, policy: Policy) -> dict[str, Any]:
    judged = Counter(s.expected_on_time(p, policy) for p in parcels)
    ids = {p.id for p in parcels}
    tickets = [t for t in seeded.tickets if t.shipment in ids and t.opened_at < s.WINDOW_END]
    exceptions: dict[str, set[int]] = defaultdict(set)
    for t in tickets:
        exceptions[t.kind].add(t.shipment)  # type: ignore[arg-type]
    transit = [  # whole hours, rounded down
        (p.delivered_at - (p.shipped_at or p.first_scan_at)).total_seconds() // 3600  # type: ignore[operator]
        for p in parcels
        if p.delivered_at is not None and p.delivered_at < s.WINDOW_END
    ]
    decided = judged["on_time"] + judged["late"]
    return {
        "shipments": len(parcels),
        "delivered": len(transit),
        "on_time": judged["on_time"],
        "late": judged["late"],
        "undecided": judged["undecided"],
        "on_time_rate": round(judged["on_time"] / decided, 4) if decided else None,
        "median_transit_days": round(s.nearest_rank(transit, 50) / 24, 2) if transit else None,
        "p90_transit_days": round(s.nearest_rank(transit, 90) / 24, 2) if transit else None,
        "exceptions": {k: len(v) for k, v in exceptions.items()},
        "exceptional": len({t.shipment for t in tickets}),
        "lost": len(exceptions.get("lost", ())),
    }


def test_scorecard_matches_the_policy_judged_per_parcel(golden) -> None:
    """Per courier and per lane: counts, on-time against the policy, percentiles, exceptions."""
    seeded, data, policy, _ = golden
    cohort = [p for p in seeded.parcels if s.in_period(p)]
    assert {s.expected_on_time(p, policy) for p in cohort} == {"on_time", "late", "undecided"}
    keys = list(_score([], seeded, policy))
    couriers = {c["courier"]: {k: c[k] for k in keys} for c in data["couriers"]}
    expected = {
        courier: _score([p for p in cohort if p.courier == courier], seeded, policy)
        for courier in {p.courier for p in cohort}
    }
    assert couriers == expected
    lanes = {(c["courier"], c["lane"]): {k: c[k] for k in keys} for c in data["lanes"]}
    expected_lanes = {
        key: _score([p for p in cohort if (p.courier, s.lane(p)) == key], seeded, policy)
        for key in {(p.courier, s.lane(p)) for p in cohort}
    }
    assert lanes == expected_lanes
    for c in data["couriers"]:
        assert c["exception_rate"] == round(c["exceptional"] / c["shipments"], 4)
        assert c["exception_total"] == sum(c["exceptions"].values())


def test_regions_freshness_and_disruptions(golden) -> None:
    """Per province: parcels, those with tickets, their open tickets; last good poll; holidays."""
    seeded, data, _, _ = golden
    cohort = [p for p in seeded.parcels if s.in_period(p)]
    expected: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"shipments": 0, "exceptional": 0, "open_now": 0, "by_kind": {}}
    )
    kinds_of: dict[int, set[str]] = defaultdict(set)
    for t in seeded.tickets:
        if t.shipment is not None and t.opened_at < s.WINDOW_END:
            kinds_of[t.shipment].add(t.kind)
    for p in cohort:
        row = expected[p.destination.province]
        row["shipments"] += 1
        row["exceptional"] += bool(kinds_of[p.id])
        for kind in kinds_of[p.id]:
            row["by_kind"][kind] = row["by_kind"].get(kind, 0) + 1
    in_cohort = {p.id for p in cohort}
    for t in seeded.tickets:
        if t.shipment in in_cohort and s.open_at_end(t):
            expected[t.destination.province]["open_now"] += 1
    regions = {
        r["province"]: {k: r[k] for k in ("shipments", "exceptional", "open_now", "by_kind")}
        for r in data["regions"]
    }
    assert regions == dict(expected)
    for r in data["regions"]:
        assert r["exceptions"] == sum(r["by_kind"].values())
        assert r["exception_rate"] == (
            round(r["exceptional"] / r["shipments"], 4) if r["shipments"] else None
        )
    freshness = {f["source"]: f for f in data["freshness"]}
    assert set(freshness) == set(s.SOURCES)
    for source in s.SOURCES:
        ok = [
            p.last_polled_at
            for p in seeded.parcels
            if p.source == source and p.error_kind is None and p.last_polled_at <= s.NOW
        ]
        assert freshness[source]["last_success_at"] == max(ok).astimezone(s.TZ).isoformat()
        failing = sum(p.source == source and p.error_kind is not None for p in seeded.parcels)
        assert freshness[source]["failing_shipments"] == failing
    spans = {(d["name"], d["first_day"], d["last_day"], d["active"]) for d in data["disruptions"]}
    assert ("国庆节", "2026-10-01", "2026-10-07", False) in spans
    assert ("中秋", "2026-09-25", "2026-09-27", False) in spans
    assert ("国庆大促", "2026-09-28", "2026-10-03", False) in spans
    assert data["meta"]["window_start"] == s.WINDOW_START.isoformat()
    assert data["meta"]["window_end"] == s.WINDOW_END.isoformat()
    assert data["meta"]["timezone"] == "Asia/Shanghai"
