"""The composition root: the one place that builds real (or injected fake) parts."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property

import structlog
from sqlalchemy.engine import Engine

from carriers.base import TrackingSource
from carriers.registry import load_factories
from tracker.domain.policy import Policy
from tracker.errors import ConfigError
from tracker.notify.base import AlertSender, BuyerChannel, DryRunAlertSender, DryRunChannel
from tracker.notify.quiet import QuietHours
from tracker.notify.templates import NoticeTemplates
from tracker.service.detect import AlertEndpoint, Detector
from tracker.service.dispatch import Dispatcher
from tracker.service.poll import Poller, SourceRouter
from tracker.settings import Settings
from tracker.store import migrate
from tracker.store.uow import UnitOfWork, make_engine

__all__ = ["App", "Clock", "build_app", "fixed_clock", "system_clock"]

Clock = Callable[[], datetime]

_log = structlog.get_logger("tracker.bootstrap")


def system_clock() -> datetime:
    """The real time, UTC."""
    return datetime.now(UTC)


def fixed_clock(at: datetime) -> Clock:
    """A clock stuck at ``at`` (for ``--now``, the demo and tests)."""
    return lambda: at


@dataclass
class App:
    """Everything a command needs, built once from settings; fakes may be injected."""

    settings: Settings
    clock: Clock = system_clock
    engine_override: Engine | None = None
    sources_override: list[tuple[TrackingSource, frozenset[str]]] | None = None
    channels_override: Mapping[str, BuyerChannel] | None = None
    alert_senders_override: Mapping[str, AlertSender] | None = None
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}")

    @cached_property
    def engine(self) -> Engine:
        """The database engine."""
        if self.engine_override is not None:
            return self.engine_override
        return make_engine(self.settings.database.url, echo=self.settings.database.echo)

    @cached_property
    def policy(self) -> Policy:
        """The detection policy from ``[policy]``, in the shop's timezone."""
        try:
            policy = Policy.from_mapping(self.settings.policy)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        if "timezone" not in self.settings.policy:
            policy = replace(policy, timezone=self.settings.tz)
        return policy

    @cached_property
    def quiet(self) -> QuietHours:
        """Quiet hours for buyer notices."""
        return QuietHours(self.settings.notify.quiet_hours, self.settings.tz)

    @cached_property
    def templates(self) -> NoticeTemplates:
        """Validated buyer notice templates."""
        return NoticeTemplates()

    @cached_property
    def alert_senders(self) -> Mapping[str, AlertSender]:
        """Agent alert endpoints by name (a dry-run recorder when none is configured)."""
        if self.alert_senders_override is not None:
            return self.alert_senders_override
        hook = self.settings.alerts.webhook
        if hook is None:
            return {"dry-run": DryRunAlertSender()}
        from tracker.notify.webhook import WebhookSender  # noqa: PLC0415 - needs httpx only here

        return {"webhook": WebhookSender("webhook", hook)}

    @cached_property
    def channels(self) -> Mapping[str, BuyerChannel]:
        """Buyer channels by name (``sms``, ``chat``)."""
        if self.channels_override is not None:
            return self.channels_override
        notify = self.settings.notify
        channels: dict[str, BuyerChannel] = {}
        for name, cfg in (("sms", notify.sms), ("chat", notify.chat)):
            if cfg is None:
                continue
            if cfg.provider != "dry-run":
                raise ConfigError(
                    f'notify.{name}.provider: {cfg.provider!r} is not available yet; use "dry-run"'
                )
            channels[name] = DryRunChannel()
        return channels

    @cached_property
    def detector(self) -> Detector:
        """The detection use case."""
        return Detector(
            policy=self.policy,
            tz=self.settings.tz,
            templates=self.templates,
            quiet=self.quiet,
            endpoints=tuple(
                AlertEndpoint(name, frozenset(self._endpoint_kinds(name)))
                for name in self.alert_senders
            ),
            shop_name=self.settings.shop.name,
            chat_enabled="chat" in self.channels,
        )

    def _endpoint_kinds(self, name: str) -> list[str]:
        hook = self.settings.alerts.webhook
        if name == "webhook" and hook is not None:
            return hook.kinds
        return ["*"]

    def build_sources(self) -> list[tuple[TrackingSource, frozenset[str]]]:
        """Instantiate the configured tracking sources, in file order."""
        if self.sources_override is not None:
            return self.sources_override
        factories = load_factories()
        built: list[tuple[TrackingSource, frozenset[str]]] = []
        for name, cfg in self.settings.carriers.items():
            if not cfg.enabled:
                continue
            provider = cfg.provider or name
            factory = factories.get(provider)
            if factory is None:
                known = ", ".join(sorted(factories)) or "none"
                raise ConfigError(
                    f"carriers.{name}.provider: unknown provider {provider!r} (installed: {known})"
                )
            try:
                source = factory(name, cfg.options(), clock=self.clock)
            except ValueError as exc:
                raise ConfigError(f"carriers.{name}: {exc}") from None
            built.append((source, frozenset(cfg.couriers)))
        return built

    def poller(self, router: SourceRouter) -> Poller:
        """The poll use case over ``router``."""
        poll = self.settings.poll
        return Poller(
            engine=self.engine,
            router=router,
            detector=self.detector,
            worker_id=self.worker_id,
            batch_size=poll.batch_size,
            lease=timedelta(seconds=poll.lease_s),
            concurrency=poll.concurrency,
        )

    @cached_property
    def dispatcher(self) -> Dispatcher:
        """The outbox dispatcher."""
        notify = self.settings.notify
        return Dispatcher(
            engine=self.engine,
            channels=self.channels,
            alert_senders=self.alert_senders,
            quiet=self.quiet,
            tz=self.settings.tz,
            worker_id=self.worker_id,
            max_per_buyer_per_day=notify.max_per_buyer_per_day,
            max_attempts=notify.max_attempts,
        )

    def uow(self) -> UnitOfWork:
        """A new unit of work on the store."""
        return UnitOfWork(self.engine)

    def ensure_schema(self) -> None:
        """Bring SQLite up to date by itself; PostgreSQL must be upgraded on purpose."""
        head = migrate.head_revision()
        current = migrate.current_revision(self.engine)
        if current == head:
            return
        if self.engine.dialect.name == "sqlite":
            migrate.upgrade(self.engine)
            _log.info("database_migrated", revision=head)
            return
        raise ConfigError(
            f"database schema is at {current or 'nothing'}, expected {head}: "
            "run `tracker db upgrade`"
        )

    def close(self) -> None:
        """Release database connections."""
        if "engine" in self.__dict__ and self.engine_override is None:
            self.engine.dispose()


def build_app(settings: Settings, *, clock: Clock | None = None, **overrides: object) -> App:
    """Wire the application from settings; tests pass fakes through ``overrides``."""
    return App(settings=settings, clock=clock or system_clock, **overrides)  # type: ignore[arg-type]
