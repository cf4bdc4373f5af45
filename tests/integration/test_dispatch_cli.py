"""The notify commands through the real CLI: preview, opt-out/in, alert retry and enable."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import structlog
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from tests.conftest import at
from tests.fakes import make_order
from tests.integration.test_dispatch import NOW, seed_outbox
from tracker.cli import app
from tracker.store import orders_repo
from tracker.store.tables import alerts, buyers
from tracker.store.uow import UnitOfWork


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """The CLI points structlog at the runner's stderr, closed afterwards: put it back."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Path:
    """A config on the test database with one alert endpoint."""
    path = tmp_path / "tracker.toml"
    path.write_text(
        f"""
[database]
url = "{db_url}"
[shop]
name = "测试店"
[alerts.endpoints.ops]
url = "https://ops.example.com/hook"
preset = "dingtalk"
""",
        encoding="utf-8",
    )
    return path


def cli(config: Path, *args: str) -> tuple[int, str, str]:
    """Run ``tracker --config CONFIG ARGS`` in-process."""
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    return result.exit_code, result.stdout, result.stderr


def test_preview_shows_text_and_segments_per_ticket(config: Path, engine: Engine) -> None:
    """An order not shipped in time previews the not_shipped notice with its SMS size."""
    paid = at("2026-09-10 10:00")
    with UnitOfWork(engine) as uow:
        orders_repo.upsert_orders(uow.conn, [make_order("A1001", paid)], paid)
        uow.commit()
    code, out, _ = cli(config, "notices", "preview", "A1001", "--now", "2026-09-13T10:00:00+08:00")
    assert code == 0, out
    assert "buyer 138****8000" in out and "- not_shipped (no open ticket yet): template" in out
    assert "【测试店】张三您好，您的订单A1001" in out and "SMS segment(s)" in out
    code, out, _ = cli(
        config, "notices", "preview", "A1001", "--now", "2026-09-13T10:00:00+08:00", "-f", "json"
    )
    data = json.loads(out)
    (preview,) = data["previews"]
    assert preview["kind"] == "not_shipped" and preview["buyer_notice"]
    assert preview["segments"] == (
        1 if preview["characters"] <= 70 else -(-preview["characters"] // 67)
    )
    assert cli(config, "notices", "preview", "NOPE")[0] == 1


def test_buyers_opt_out_and_back_in(config: Path, engine: Engine) -> None:
    """Opt-out accepts +86 and spaces, masks the number, and opt-in reverses it."""
    seed_outbox(engine, 1, NOW)
    code, out, _ = cli(config, "buyers", "opt-out", "+86 139 0000 0000")
    assert code == 0 and out.strip() == (
        "buyer 139****0000 opted out; 1 queued notice(s) will be suppressed"
    )
    with engine.connect() as conn:
        assert conn.execute(select(buyers.c.opt_out)).scalar_one() is True
    code, out, _ = cli(config, "buyers", "opt-in", "13900000000")
    assert code == 0 and "opted in" in out
    code, out, _ = cli(config, "buyers", "opt-out", "13700000009")
    assert code == 0 and "no orders yet" in out
    code, _, err = cli(config, "buyers", "opt-out", "12345")
    assert code == 2 and "not a mainland mobile" in err


def test_alerts_retry_enable_and_endpoints(config: Path, engine: Engine) -> None:
    """A dead alert is requeued; a disabled endpoint is listed, warned about and re-enabled."""
    seed_outbox(engine, 1, NOW, endpoint="ops")
    with engine.begin() as conn:
        conn.execute(update(alerts).values(status="dead", attempts=8, reason="HTTP 410"))
        alert_id = conn.execute(select(alerts.c.id)).scalar_one()
    from tracker.service.dispatch_alerts import set_endpoint_enabled

    with UnitOfWork(engine) as uow:
        set_endpoint_enabled(uow.conn, "ops", False, NOW, reason="HTTP 410 (endpoint gone)")
        uow.commit()
    code, out, _ = cli(config, "alerts", "endpoints", "-f", "json")
    assert code == 0 and json.loads(out)[0]["state"] == "disabled"
    code, out, err = cli(config, "alerts", "retry", str(alert_id))
    assert code == 0 and out.strip() == f"alert {alert_id} queued again"
    assert "tracker alerts enable ops" in err
    with engine.connect() as conn:
        row = conn.execute(select(alerts)).one()
    assert (row.status, row.attempts) == ("queued", 0)
    assert cli(config, "alerts", "enable", "ops")[0] == 0
    assert json.loads(cli(config, "alerts", "endpoints", "-f", "json")[1])[0]["state"] == "enabled"
    assert cli(config, "alerts", "enable", "nope")[0] == 1
    assert cli(config, "alerts", "retry", "99999")[0] == 1
    assert "not dead" in cli(config, "alerts", "retry", str(alert_id))[1]


def test_bad_template_fails_dispatch_at_start_up(config: Path, tmp_path: Path) -> None:
    """A template with an unknown variable stops `tracker dispatch` before it starts (exit 2)."""
    folder = tmp_path / "tpl"
    folder.mkdir()
    (folder / "stalled.j2").write_text("{{ ordr }}", encoding="utf-8")
    text = config.read_text(encoding="utf-8").replace(
        "[shop]", f'[notify]\ntemplates_dir = "{folder}"\n[shop]'
    )
    config.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["--config", str(config), "dispatch", "--once"])
    assert result.exit_code != 0
    assert "stalled.j2: unknown variable(s) ordr" in str(result.exception or result.stderr)


def test_dispatch_once_sends_due_notices(config: Path, engine: Engine) -> None:
    """`tracker dispatch --once` sends what is due (dry-run SMS) and exits 0."""
    seed_outbox(engine, 2, NOW - timedelta(hours=1))
    text = config.read_text(encoding="utf-8").replace(
        "[shop]", '[notify]\nquiet_hours = ""\n[shop]'
    )
    config.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(app, ["--config", str(config), "dispatch", "--once"])
    assert result.exit_code == 0, result.output
    _, out, _ = cli(config, "notices", "list", "-f", "json")
    assert [n["status"] for n in json.loads(out)] == ["sent", "sent"]
