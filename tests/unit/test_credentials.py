"""Secrets from systemd credentials, as deploy/systemd/tracker.service passes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker.errors import ConfigError
from tracker.settings import load_settings


def _config(tmp_path: Path) -> Path:
    path = tmp_path / "tracker.toml"
    path.write_text('[alerts.webhook]\nurl = "https://ops.example.com/h"\nsecret = "${HOOK}"\n')
    return path


def test_a_credential_loaded_from_a_directory_is_found_by_its_plain_name(tmp_path: Path) -> None:
    """LoadCredential=tracker:DIR names the file tracker_HOOK; "${HOOK}" still finds it."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "tracker_HOOK").write_text("whsec_abc\n")
    settings = load_settings(_config(tmp_path), {"CREDENTIALS_DIRECTORY": str(creds)})
    assert settings.alerts.webhook is not None and settings.alerts.webhook.secret == "whsec_abc"


def test_a_missing_credential_names_the_key(tmp_path: Path) -> None:
    """Neither the environment nor the credentials hold it: the error names the dotted key."""
    with pytest.raises(ConfigError, match=r"alerts\.webhook\.secret: .*HOOK"):
        load_settings(_config(tmp_path), {"CREDENTIALS_DIRECTORY": str(tmp_path)})
