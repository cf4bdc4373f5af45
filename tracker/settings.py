"""Configuration: a TOML file plus ``${NAME}`` expansion from the environment or secret files."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from tracker.errors import ConfigError

__all__ = [
    "AddressConfig",
    "AlertGroupingConfig",
    "AlertWebhookConfig",
    "CarrierConfig",
    "ReportConfig",
    "ReportSmtpConfig",
    "Settings",
    "find_config_path",
    "load_settings",
]

_VAR = re.compile(r"\$\{([^}]+)\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AddressConfig(_Strict):
    """A province and city, e.g. the shop's default origin."""

    province: str
    city: str


class DatabaseConfig(_Strict):
    """Where the store lives."""

    url: str = "sqlite:///tracker.db"
    echo: bool = False


class ShopConfig(_Strict):
    """Facts about the shop itself."""

    name: str = "本店"
    origin: AddressConfig | None = None


class CarrierConfig(BaseModel):
    """One tracking source; provider-specific keys (``key``, ``customer``...) pass through."""

    model_config = ConfigDict(extra="allow", frozen=True)

    provider: str | None = None
    base_url: str | None = None
    couriers: list[str] = Field(default_factory=lambda: ["*"])
    # None: the provider's own default pace (17TRACK 3/s, Kuaidi100 10/s, ...)
    requests_per_s: float | None = Field(default=None, gt=0)
    daily_quota: int | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)
    enabled: bool = True

    def options(self) -> dict[str, Any]:
        """Every key of the table, the provider-specific ones included."""
        return self.model_dump()


class ChannelConfig(BaseModel):
    """A buyer channel (SMS or chat); provider-specific keys pass through."""

    model_config = ConfigDict(extra="allow", frozen=True)

    provider: str = "dry-run"
    requests_per_s: float | None = Field(default=None, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)
    allow_private_networks: bool = False


class NotifyConfig(_Strict):
    """Buyer notice rules (DESIGN §6)."""

    sms: ChannelConfig = ChannelConfig()
    chat: ChannelConfig | None = None
    quiet_hours: str = "21:00-08:00"
    max_per_buyer_per_day: int = Field(default=3, ge=0)
    max_attempts: int = Field(default=5, ge=1)
    # a directory of <kind>.j2 files overriding the built-in templates (else ./config/templates)
    templates_dir: str | None = None
    # how long a dispatcher's claim on a due row lasts; a killed process's rows come back after it
    lease_s: int = Field(default=60, ge=2, le=3600)

    @field_validator("quiet_hours")
    @classmethod
    def _check_quiet_hours(cls, value: str) -> str:
        if value and not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError('must look like "21:00-08:00" (or "" for none)')
        return value


class AlertWebhookConfig(_Strict):
    """An agent webhook endpoint."""

    url: str
    secret: str | None = None
    allow_private_networks: bool = False
    kinds: list[str] = Field(default_factory=lambda: ["*"])
    preset: Literal["standard", "wecom", "dingtalk", "feishu", "slack"] = "standard"
    timeout_s: float = Field(default=10.0, gt=0)
    requests_per_s: float | None = Field(default=None, gt=0)
    enabled: bool = True


class AlertGroupingConfig(_Strict):
    """Bursts of new tickets for one courier and region sent as one alert."""

    enabled: bool = True
    window_s: int = Field(default=300, ge=1)
    min_tickets: int = Field(default=3, ge=2)
    hold_s: int = Field(default=0, ge=0, le=3600)
    region: Literal["province", "city"] = "province"


class AlertsConfig(_Strict):
    """Agent alert endpoints: ``[alerts.webhook]`` and/or named ``[alerts.endpoints.NAME]``."""

    webhook: AlertWebhookConfig | None = None
    endpoints: dict[str, AlertWebhookConfig] = Field(default_factory=dict)
    grouping: AlertGroupingConfig = AlertGroupingConfig()

    @field_validator("endpoints")
    @classmethod
    def _check_endpoint_names(
        cls, value: dict[str, AlertWebhookConfig]
    ) -> dict[str, AlertWebhookConfig]:
        for name in value:
            if not re.fullmatch(r"[A-Za-z0-9_.-]{1,40}", name):
                raise ValueError(f"endpoint name {name!r}: use 1-40 letters, digits, - _ .")
            if name in ("webhook", "dry-run"):
                raise ValueError(f"endpoint name {name!r} is reserved")
        return value


class WebConfig(_Strict):
    """The local HTTP listener for health, metrics and provider callbacks."""

    listen: str = "127.0.0.1:8787"


class PollConfig(_Strict):
    """How the poller claims work."""

    batch_size: int = Field(default=200, ge=1, le=5000)
    concurrency: int = Field(default=64, ge=1, le=2048)
    pipeline: int = Field(default=3, ge=1, le=32)
    lease_s: int = Field(default=120, ge=10)


class DaemonConfig(_Strict):
    """How ``tracker run`` schedules its jobs and judges its own health."""

    poll_every_s: int = Field(default=60, ge=5, le=3600)
    dispatch_every_s: int = Field(default=5, ge=1, le=600)
    detect_every_s: int = Field(default=300, ge=10, le=86400)
    daily_report: bool = True  # false when a tracker-report.timer builds the report instead
    heartbeat_max_age_s: int = Field(default=180, ge=30)
    stall_after_s: int = Field(default=900, ge=60)
    shutdown_grace_s: float = Field(default=8.0, gt=0, le=9.5)


class HousekeepingConfig(_Strict):
    """Retention of old data, run once a day by one replica."""

    enabled: bool = True
    at: str = "03:30"
    events_days: int = Field(default=90, ge=1)
    orders_days: int = Field(default=365, ge=1)
    batch_size: int = Field(default=1000, ge=10, le=50_000)

    @field_validator("at")
    @classmethod
    def _check_at(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError('must look like "03:30"')
        return value


class ReportSmtpConfig(_Strict):
    """The mail relay the daily report is sent through (STARTTLS by default)."""

    host: str
    port: int = Field(default=587, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    sender: str
    ca_file: str | None = None  # a private CA bundle for the relay's certificate
    timeout_s: float = Field(default=30.0, gt=0)


class ReportConfig(_Strict):
    """The daily exception report: when it covers/runs, who gets it, how long it is kept."""

    at: str = "08:00"
    recipients: list[str] = Field(default_factory=list)
    smtp: ReportSmtpConfig | None = Field(default=None, validate_default=True)
    post_to_webhook: bool = False
    retention_days: int = Field(default=90, ge=1)
    max_actions: int = Field(default=500, ge=1, le=100_000)

    @field_validator("at")
    @classmethod
    def _check_at(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError('must look like "08:00"')
        return value

    @field_validator("recipients")
    @classmethod
    def _check_recipients(cls, value: list[str]) -> list[str]:
        for address in value:
            if not re.fullmatch(r"[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+", address):
                raise ValueError(f"not an e-mail address: {address!r}")
        return value

    @field_validator("smtp")
    @classmethod
    def _check_smtp(cls, value: ReportSmtpConfig | None, info: Any) -> ReportSmtpConfig | None:
        if value is None and info.data.get("recipients"):
            raise ValueError("[report.smtp] is needed to send to report.recipients")
        return value


class Settings(_Strict):
    """The whole configuration, validated."""

    timezone: str = "Asia/Shanghai"
    database: DatabaseConfig = DatabaseConfig()
    shop: ShopConfig = ShopConfig()
    carriers: dict[str, CarrierConfig] = Field(default_factory=dict)
    notify: NotifyConfig = NotifyConfig()
    alerts: AlertsConfig = AlertsConfig()
    web: WebConfig = WebConfig()
    poll: PollConfig = PollConfig()
    report: ReportConfig = ReportConfig()
    daemon: DaemonConfig = DaemonConfig()
    housekeeping: HousekeepingConfig = HousekeepingConfig()
    policy: dict[str, Any] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The shop's timezone."""
        return ZoneInfo(self.timezone)


def find_config_path(explicit: str | Path | None, cwd: Path | None = None) -> Path | None:
    """``--config``, else ``$TRACKER_CONFIG``, else ``./tracker.toml`` if present, else None."""
    if explicit:
        return Path(explicit)
    env = os.environ.get("TRACKER_CONFIG")
    if env:
        return Path(env)
    local = (cwd or Path.cwd()) / "tracker.toml"
    return local if local.is_file() else None


def load_settings(path: Path | None, environ: Mapping[str, str] | None = None) -> Settings:
    """Read, expand and validate the configuration; raises ConfigError naming the key."""
    env = os.environ if environ is None else environ
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            with path.open("rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError as exc:
            raise ConfigError(f"{path}: config file not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    expanded = _expand(raw, env, ())
    try:
        settings = Settings.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, path)) from None
    return settings


def _expand(value: Any, env: Mapping[str, str], key: tuple[str, ...]) -> Any:
    if isinstance(value, dict):
        return {k: _expand(v, env, (*key, str(k))) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, env, (*key, str(i))) for i, v in enumerate(value)]
    if isinstance(value, str):
        return _VAR.sub(lambda m: _lookup(m.group(1), env, key), value)
    return value


def _lookup(name: str, env: Mapping[str, str], key: tuple[str, ...]) -> str:
    dotted = ".".join(key)
    if name.startswith("file:"):
        return _read_secret(Path(name[5:]), dotted)
    if name in env:
        return env[name]
    # systemd LoadCredential= puts secrets in files under $CREDENTIALS_DIRECTORY
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    # deploy/systemd loads a whole directory (LoadCredential=tracker:DIR): files become tracker_*
    for credential in (name, f"tracker_{name}"):
        if cred_dir and (Path(cred_dir) / credential).is_file():
            return _read_secret(Path(cred_dir) / credential, dotted)
    raise ConfigError(f"{dotted}: environment variable {name} is not set")


def _read_secret(path: Path, dotted: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{dotted}: cannot read secret file {path}: {exc.strerror}") from exc


def _describe(exc: ValidationError, path: Path | None) -> str:
    where = f"{path}: " if path else ""
    lines = []
    for err in exc.errors():
        dotted = ".".join(str(p) for p in err["loc"])
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{where}{dotted}: {message}")
    return "\n".join(lines)
