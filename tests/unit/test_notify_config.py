"""Alert endpoint configuration: the DESIGN [alerts.webhook] form and named endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker.errors import ConfigError
from tracker.notify.factory import alert_endpoints, build_alert_senders
from tracker.notify.webhook import WebhookSender
from tracker.settings import AlertsConfig, load_settings

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def test_webhook_and_named_endpoints_are_all_built(tmp_path: Path) -> None:
    """[alerts.webhook] keeps working as 'webhook' beside [alerts.endpoints.NAME] tables."""
    path = tmp_path / "t.toml"
    path.write_text(
        f"""
[alerts.webhook]
url = "https://ops.example.com/hook"
secret = "{SECRET}"
[alerts.endpoints.ding]
url = "https://oapi.dingtalk.com/robot/send?access_token=x"
preset = "dingtalk"
secret = "SEC1"
kinds = ["lost"]
[alerts.endpoints.off]
url = "https://x.example.com"
enabled = false
[alerts.grouping]
window_s = 120
""",
        encoding="utf-8",
    )
    alerts = load_settings(path).alerts
    assert list(alert_endpoints(alerts)) == ["webhook", "ding"]
    senders = build_alert_senders(alerts)
    assert list(senders) == ["webhook", "ding"]
    assert isinstance(senders["ding"], WebhookSender) and senders["ding"].config.kinds == ["lost"]
    assert alerts.grouping.window_s == 120


def test_no_endpoint_means_a_dry_run_recorder() -> None:
    """Without endpoints alerts are still recorded, by a dry-run sender."""
    assert list(build_alert_senders(AlertsConfig())) == ["dry-run"]


def test_bad_endpoint_settings_name_the_key(tmp_path: Path) -> None:
    """A bad secret, URL, preset or endpoint name is reported with its dotted key."""
    with pytest.raises(ConfigError, match=r"alerts\.endpoints\.ops\.secret: not a Standard"):
        build_alert_senders(
            AlertsConfig.model_validate(
                {"endpoints": {"ops": {"url": "https://x", "secret": "whsec_###"}}}
            )
        )
    with pytest.raises(ConfigError, match=r"alerts\.webhook\.url: must start with http"):
        build_alert_senders(AlertsConfig.model_validate({"webhook": {"url": "ftp://x"}}))
    path = tmp_path / "t.toml"
    path.write_text('[alerts.endpoints."bad name"]\nurl = "https://x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"alerts\.endpoints: .*endpoint name 'bad name'"):
        load_settings(path)
    path.write_text('[alerts.endpoints.x]\nurl = "https://x"\npreset = "teams"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"alerts\.endpoints\.x\.preset"):
        load_settings(path)
