"""``tracker demo``: a self-contained tour on a fresh SQLite file with the sandbox carrier."""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from tracker import eventloop
from tracker.bootstrap import App, build_app
from tracker.output import render
from tracker.report.job import build_rendered
from tracker.report.store import save_report
from tracker.service.cycle import run_cycle
from tracker.service.imports import import_orders
from tracker.service.queries import iter_notices, iter_tickets
from tracker.settings import Settings

__all__ = ["demo_orders", "run_demo"]

TZ = ZoneInfo("Asia/Shanghai")
#: the demo's simulated Monday morning: no holiday or promotion nearby
EPOCH = datetime(2026, 9, 7, 9, 0, tzinfo=TZ)

_BUYERS = [
    ("张三", "13800138000"), ("李四", "13911112222"), ("王五", "13722223333"),
    ("赵六", "15033334444"), ("孙七", "18644445555"), ("周八", "13655556666"),
    ("吴九", "17766667777"), ("郑十", "15977778888"),
]  # fmt: skip

#: (order suffix, sandbox scenario code or None = not shipped, destination, courier, story)
_STORIES: list[tuple[str, str | None, tuple[str, str, str], str, str]] = [
    ("01", "00", ("浙江省", "杭州市", "西湖区"), "yto", "送达正常"),
    ("02", "01", ("江苏省", "南京市", "鼓楼区"), "zto", "运输中，正常"),
    ("03", "02", ("上海市", "上海市", "浦东新区"), "sf", "派送中，正常"),
    ("04", "03", ("浙江省", "宁波市", "鄞州区"), "yto", "中转后停滞"),
    ("05", "04", ("浙江省", "杭州市", "余杭区"), "zto", "驿站久未取件"),
    ("06", "05", ("四川省", "成都市", "武侯区"), "sto", "快递报丢失"),
    ("07", "06", ("浙江省", "杭州市", "拱墅区"), "yunda", "错分到外省"),
    ("08", "07", ("浙江省", "温州市", "鹿城区"), "jt", "超区不派送"),
    ("09", "08", ("湖北省", "武汉市", "洪山区"), "yto", "拒收退回"),
    ("10", "09", ("北京市", "北京市", "朝阳区"), "zto", "电话无人接听"),
    ("11", "10", ("山东省", "济南市", "历下区"), "yunda", "地址不详"),
    ("12", "11", ("福建省", "厦门市", "思明区"), "sto", "包裹破损"),
    ("13", "12", ("广东省", "深圳市", "南山区"), "yto", "打单后未揽收"),
    ("14", "13", ("新疆维吾尔自治区", "乌鲁木齐市", "天山区"), "ems", "运输太慢"),
    ("15", "14", ("浙江省", "杭州市", "滨江区"), "sf", "快递称重偏轻(疑少发)"),
    ("16", None, ("湖南省", "长沙市", "岳麓区"), "yto", "付款后一直未发货"),
    ("17", "00", ("西藏自治区", "拉萨市", "城关区"), "deppon", "快递不覆盖目的地"),
]


def demo_orders(epoch: datetime = EPOCH) -> list[dict[str, Any]]:
    """The sample orders as DESIGN §8 records: every exception kind plus healthy parcels."""
    records = []
    for n, (suffix, scenario, (province, city, district), courier, story) in enumerate(_STORIES):
        name, phone = _BUYERS[n % len(_BUYERS)]
        paid = epoch - timedelta(hours=20 - n % 5)
        record: dict[str, Any] = {
            "order_id": f"DEMO-{suffix}",
            "paid_at": paid.isoformat(),
            "buyer": {"name": name, "phone": phone, "chat_id": None, "opt_out": False},
            "destination": {
                "province": province,
                "city": city,
                "district": district,
                "address": f"示例路 {n + 1} 号（{story}）",
            },
            "items": [
                {"sku": "TEA-500", "name": "龙井 500g", "qty": 2, "unit_weight_kg": 0.5},
                {"sku": "CUP-01", "name": "玻璃茶杯", "qty": 1, "unit_weight_kg": 0.3},
            ],
        }
        if scenario is not None:
            record["shipments"] = [
                {
                    "courier": courier,
                    "tracking_number": f"SB{scenario}{2026000 + n:07d}",
                    "shipped_at": (epoch + timedelta(minutes=30 * (n % 4))).isoformat(),
                    "weight_kg": None,
                }
            ]
        records.append(record)
    return records


def _settings(db_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "timezone": "Asia/Shanghai",
            "database": {"url": f"sqlite:///{db_path}"},
            "shop": {"name": "示例茶叶旗舰店", "origin": {"province": "广东省", "city": "广州市"}},
            "carriers": {"sandbox": {"couriers": ["*"]}},
            "policy": {"coverage": {"deppon": ["西藏自治区"]}},
        }
    )


#: the simulated moments the tour runs its cycle at, with what to look for
_STEPS = [
    (timedelta(days=1, hours=1), "第 1 天上午：大部分包裹已揽收在途"),
    (timedelta(days=2, hours=5), "第 2 天下午：未发货、未揽收开始报警"),
    (timedelta(days=3, hours=13, minutes=30), "第 3 天 22:30：夜间开的工单，短信留到早上 8 点"),
    (timedelta(days=4, hours=1), "第 4 天上午：停滞、丢件、错分、派送失败"),
    (timedelta(days=8, hours=1), "第 8 天上午：超时、退回；已签收的工单自动关闭"),
]


def run_demo(directory: Path | None, echo: Callable[[str], None] = print) -> int:
    """Run the tour; returns the exit code. Writes tracker.db, orders.jsonl and the report."""
    started = time.monotonic()
    work = (
        Path(directory) if directory else Path(tempfile.mkdtemp(prefix="tracker-demo-"))
    ).resolve()
    work.mkdir(parents=True, exist_ok=True)
    db_path = work / "tracker.db"
    for leftover in (db_path, work / "tracker.db-wal", work / "tracker.db-shm"):
        leftover.unlink(missing_ok=True)
    orders_file = work / "orders.jsonl"
    orders_file.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in demo_orders()), encoding="utf-8"
    )
    settings = _settings(db_path)
    clock_now = [EPOCH]
    app: App = build_app(settings, clock=lambda: clock_now[0])
    try:
        app.ensure_schema()
        echo(f"演示目录 demo directory: {work}")
        echo(import_orders(app, orders_file))
        for offset, caption in _STEPS:
            clock_now[0] = EPOCH + offset
            result = eventloop.run(run_cycle(app))
            echo("")
            echo(f"== {clock_now[0].strftime('%Y-%m-%d %H:%M')} {caption}")
            echo(result.summary())
            if not result.ok:
                return 1
        echo("")
        echo("== 工单 tickets (tracker tickets list --status all)")
        with app.uow() as uow:
            tickets = [t for t, _ in iter_tickets(uow.conn, settings.tz, status="all")]
            notices = [n for n, _ in iter_notices(uow.conn, settings.tz)]
            bodies = [row.body for _, row in iter_notices(uow.conn, settings.tz)]
        echo(
            render(
                tickets,
                "table",
                (
                    "id",
                    "order_id",
                    "kind",
                    "severity",
                    "status",
                    "tracking_number",
                    "suggested_action",
                ),
                max_width=36,
            )
        )
        echo("")
        echo("== 买家通知 buyer notices (tracker notices list)")
        echo(
            render(
                notices,
                "table",
                ("id", "order_id", "recipient", "template", "status", "scheduled_for", "reason"),
                max_width=30,
            )
        )
        if bodies:
            echo("")
            echo("例：短信内容 sample SMS text:")
            echo(f"  {bodies[-1]}")
        report_path = work / "daily-report.html"
        rendered = build_rendered(app, clock_now[0].astimezone(TZ).date(), clock_now[0])
        with app.uow() as uow:
            save_report(uow.conn, rendered, clock_now[0])  # so `tracker report list` shows it
            uow.commit()
        report_path.write_text(rendered.html, encoding="utf-8")
        echo("")
        echo(f"日报 daily report: {report_path}")
        echo(f"再看 explore: tracker --config {_write_config(work, db_path)} tickets list")
        echo(f"完成 done in {time.monotonic() - started:.1f} s")
        return 0
    finally:
        app.close()


def _write_config(work: Path, db_path: Path) -> Path:
    config = work / "tracker.toml"
    config.write_text(
        "\n".join(
            [
                'timezone = "Asia/Shanghai"',
                "[database]",
                f'url = "sqlite:///{db_path}"',
                "[shop]",
                'name = "示例茶叶旗舰店"',
                'origin = { province = "广东省", city = "广州市" }',
                "[carriers.sandbox]",
                'couriers = ["*"]',
                "[policy.coverage]",
                'deppon = ["西藏自治区"]',
                "",
            ]
        ),
        encoding="utf-8",
    )
    return config
