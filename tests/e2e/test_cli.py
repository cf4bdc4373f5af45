"""The outside contract (DESIGN §8) driven end to end through the real CLI in subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tracker.demo import demo_orders

TICKET_FIELDS = {
    "id",
    "order_id",
    "courier",
    "tracking_number",
    "kind",
    "severity",
    "status",
    "opened_at",
    "updated_at",
    "evidence",
    "suggested_action",
}
ALL_KINDS = {
    "not_shipped",
    "stalled",
    "overdue",
    "lost",
    "wrong_region",
    "weight_mismatch",
    "delivery_failed",
    "returned",
    "carrier_exception",
}
NOTICE_FIELDS = {
    "id",
    "order_id",
    "ticket_id",
    "channel",
    "recipient",
    "template",
    "status",
    "scheduled_for",
    "sent_at",
    "reason",
}


def tracker(
    config: Path | None, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would and capture its output."""
    cmd = [sys.executable, "-m", "tracker"]
    if config is not None:
        cmd += ["--config", str(config)]
    env = {k: v for k, v in os.environ.items() if k != "TRACKER_CONFIG"}
    return subprocess.run(
        cmd + list(args), capture_output=True, text=True, timeout=120, cwd=cwd, env=env, check=False
    )


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Path:
    """A config file on the test database with the sandbox serving every courier."""
    path = tmp_path / "tracker.toml"
    path.write_text(
        f"""
timezone = "Asia/Shanghai"
[database]
url = "{db_url}"
[shop]
name = "测试店"
origin = {{ province = "广东省", city = "广州市" }}
[carriers.sandbox]
couriers = ["*"]
[policy.coverage]
deppon = ["西藏自治区"]
""",
        encoding="utf-8",
    )
    return path


def _write_orders(tmp_path: Path) -> Path:
    path = tmp_path / "orders.jsonl"
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in demo_orders()), encoding="utf-8"
    )
    return path


def test_bad_file_is_rejected_whole_with_file_line_reasons(config: Path, tmp_path: Path) -> None:
    """Bad lines are each reported as FILE:LINE: reason, exit 2, and nothing is stored."""
    records = demo_orders()[:3]
    records[1]["buyer"]["phone"] = "12345"
    records[2]["items"][0]["qty"] = 0
    path = tmp_path / "bad.jsonl"
    path.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records) + "{not json\n",
        encoding="utf-8",
    )
    result = tracker(config, "orders", "import", str(path))
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(path))]
    assert [line.split(":")[1] for line in lines[:3]] == ["2", "3", "4"]
    assert "buyer.phone" in lines[0] and "items[0].qty" in lines[1]
    assert "nothing from this file was stored" in result.stderr
    listed = tracker(config, "run", "--once", "--now", "2026-09-10T10:00:00+08:00")
    assert listed.returncode == 0
    assert "0 parcels polled" in listed.stdout


def test_contract_end_to_end(config: Path, tmp_path: Path) -> None:
    """Import, run at simulated times, then list tickets, notices, alerts, report and track."""
    imported = tracker(config, "orders", "import", str(_write_orders(tmp_path)))
    assert imported.returncode == 0, imported.stderr
    for moment in ("2026-09-08T10:00:00+08:00", "2026-09-11T10:00:00+08:00"):
        ran = tracker(config, "run", "--once", "--now", moment)
        assert ran.returncode == 0, ran.stderr
    everything = json.loads(
        tracker(config, "tickets", "list", "--status", "all", "-f", "json").stdout
    )
    assert {t["kind"] for t in everything} == ALL_KINDS, "the sample orders cover every kind"
    tickets = json.loads(tracker(config, "tickets", "list", "--format", "json").stdout)
    assert tickets and all(t["status"] != "resolved" for t in tickets)
    assert all(set(t) == TICKET_FIELDS for t in tickets)
    assert all(t["opened_at"].endswith("+08:00") for t in tickets)
    pairs = [(t["order_id"], t["kind"]) for t in tickets]
    assert len(pairs) == len(set(pairs)), "one open ticket per order and kind"

    notices = json.loads(tracker(config, "notices", "list", "--format", "json").stdout)
    assert notices and all(set(n) == NOTICE_FIELDS for n in notices)
    assert all("****" in n["recipient"] for n in notices if n["channel"] == "sms")
    quiet_kinds = {"wrong_region", "weight_mismatch", "carrier_exception"}
    noticed = {t["id"] for t in tickets if t["kind"] in quiet_kinds}
    assert not noticed & {n["ticket_id"] for n in notices}

    csv_out = tracker(config, "tickets", "list", "--format", "csv").stdout.splitlines()
    assert csv_out[0].startswith("id,order_id,courier") and len(csv_out) == len(tickets) + 1
    alerts = json.loads(tracker(config, "alerts", "list", "--format", "json").stdout)
    assert {a["type"] for a in alerts} >= {"ticket.opened"}

    first = tickets[0]["id"]
    assert tracker(config, "tickets", "ack", str(first), "--note", "已联系快递").returncode == 0
    resolved = tracker(config, "tickets", "resolve", str(first), "--note", "已补发")
    assert resolved.returncode == 0 and "resolved" in resolved.stdout
    assert tracker(config, "tickets", "resolve", "999999").returncode == 1

    report = tmp_path / "report.html"
    made = tracker(
        config, "report", "daily", "--now", "2026-09-11T10:00:00+08:00", "--out", str(report)
    )
    assert made.returncode == 0, made.stderr
    assert "物流异常日报" in report.read_text(encoding="utf-8")

    tracked = tracker(config, "track", "yto", "SB00000001", "--format", "json")
    assert tracked.returncode == 0, tracked.stderr
    shipment = json.loads(tracked.stdout)
    assert shipment["status"] == "delivered" and shipment["source"] == "sandbox"
    times = [e["time"] for e in shipment["events"]]
    assert times == sorted(times)
    assert set(shipment["events"][0]["location"]) == {"country", "province", "city", "district"}


def test_bad_usage_exits_2(config: Path) -> None:
    """Unknown kinds, bad times and unknown couriers are usage errors (exit 2)."""
    assert tracker(config, "tickets", "list", "--kind", "nope").returncode == 2
    assert tracker(config, "run", "--once", "--now", "yesterday").returncode == 2
    assert tracker(config, "track", "nope", "123").returncode == 2


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    """An unknown key or a missing environment variable names the key and exits 2."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[database]\nurl = "sqlite:///x.db"\nurll = 1\n', encoding="utf-8")
    result = tracker(bad, "tickets", "list")
    assert result.returncode == 2 and "database.urll: unknown key" in result.stderr
    bad.write_text('[carriers.kuaidi100]\nkey = "${NOPE_NOT_SET}"\n', encoding="utf-8")
    result = tracker(bad, "tickets", "list")
    assert result.returncode == 2 and "carriers.kuaidi100.key" in result.stderr


def test_demo_runs_and_writes_report(tmp_path: Path) -> None:
    """`tracker demo` exits 0, shows tickets and notices, and writes the daily report."""
    result = tracker(None, "demo", "--dir", str(tmp_path / "demo"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "工单 tickets" in result.stdout and "买家通知" in result.stdout
    assert (tmp_path / "demo" / "daily-report.html").is_file()


@pytest.mark.parametrize("once", [True, False], ids=["once", "daemon"])
def test_run_refuses_bad_provider_options_at_start_up(tmp_path: Path, once: bool) -> None:
    """`run` exits 2 (bad input) before any job, naming the key, for a misconfigured source."""
    config = tmp_path / "tracker.toml"
    database = tmp_path / "tracker.db"
    config.write_text(
        f"""
timezone = "Asia/Shanghai"
[database]
url = "sqlite:///{database}"
[carriers.kuaidi100]
customer = "C1"
couriers = ["*"]
""",
        encoding="utf-8",
    )
    result = tracker(config, "run", *(["--once"] if once else []))
    assert result.returncode == 2
    assert "error: carriers.kuaidi100.key: required" in result.stderr
    assert "poll" not in result.stdout  # no job ran, so no cycle summary either
