"""The composition root: the one place that builds real (or injected fake) parts."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

import structlog
from sqlalchemy.engine import Engine

from carriers.base import TrackingSource
from carriers.registry import load_factories
from carriers.transport import SharedClient
from tracker.domain.policy import Policy
from tracker.errors import ConfigError
from tracker.eventloop import loop_factory
from tracker.notify.base import AlertSender, BuyerChannel
from tracker.notify.quiet import QuietHours
from tracker.notify.templates import NoticeTemplates
from tracker.service.detect import AlertEndpoint, Detector
from tracker.service.dispatch import Dispatcher
from tracker.service.poll import Poller, SourceRouter
from tracker.settings import Settings
from tracker.store import migrate
from tracker.store.checkpoint import BACKSTOP_PAGES, background_checkpoints
from tracker.store.uow import UnitOfWork, make_engine, sqlite_file

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
    # the daemon checkpoints a SQLite log on a thread of its own (see background_checkpoints)
    sqlite_checkpoint_thread: bool = False

    @cached_property
    def engine(self) -> Engine:
        """The database engine."""
        if self.engine_override is not None:
            return self.engine_override
        url = self.settings.database.url
        # the writers leave checkpoints to background_checkpoints' thread, if it will run
        leave = self.sqlite_checkpoint_thread and sqlite_file(url) is not None
        return make_engine(
            url,
            echo=self.settings.database.echo,
            wal_autocheckpoint=BACKSTOP_PAGES if leave else None,
        )

    @cached_property
    def policy(self) -> Policy:
        """The detection policy from ``[policy]``, in the shop's timezone."""
        try:
            return Policy.from_mapping(self.settings.policy, timezone=self.settings.tz)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None

    @cached_property
    def quiet(self) -> QuietHours:
        """Quiet hours for buyer notices."""
        return QuietHours(self.settings.notify.quiet_hours, self.settings.tz)

    @cached_property
    def templates(self) -> NoticeTemplates:
        """Validated buyer notice templates (built-in, overridden by ``templates_dir``)."""
        from tracker.notify.templates import load_templates  # noqa: PLC0415

        return load_templates(self.settings.notify.templates_dir)

    @cached_property
    def alert_senders(self) -> Mapping[str, AlertSender]:
        """Agent alert endpoints by name (a dry-run recorder when none is configured)."""
        if self.alert_senders_override is not None:
            return self.alert_senders_override
        from tracker.notify.factory import build_alert_senders  # noqa: PLC0415

        return build_alert_senders(self.settings.alerts)

    @cached_property
    def channels(self) -> Mapping[str, BuyerChannel]:
        """Buyer channels by name (``sms``, ``chat``)."""
        if self.channels_override is not None:
            return self.channels_override
        from tracker.notify.factory import build_channel  # noqa: PLC0415

        notify = self.settings.notify
        channels: dict[str, BuyerChannel] = {}
        for name, cfg in (("sms", notify.sms), ("chat", notify.chat)):
            if cfg is not None:
                channels[name] = build_channel(name, cfg)
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
        from tracker.notify.factory import alert_endpoints  # noqa: PLC0415

        endpoint = alert_endpoints(self.settings.alerts).get(name)
        return endpoint.kinds if endpoint is not None else ["*"]

    def build_sources(self) -> list[tuple[TrackingSource, frozenset[str]]]:
        """Instantiate the configured tracking sources, in file order."""
        if self.sources_override is not None:
            return self.sources_override
        factories = load_factories()
        built: list[tuple[TrackingSource, frozenset[str]]] = []
        # one client for all of them, opened on first use inside the event loop and closed
        # by the last source's aclose (i.e. with the router)
        http = SharedClient()
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
                source = factory(name, cfg.options(), http=http, clock=self.clock)
            except ValueError as exc:
                key = getattr(exc, "key", None)  # carriers.transport.OptionError names its key
                where = f"carriers.{name}.{key}" if key else f"carriers.{name}"
                raise ConfigError(f"{where}: {getattr(exc, 'reason', exc)}") from None
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
            pipeline=poll.pipeline,
            store_in_thread=self.database_threads,
        )

    @property
    def database_threads(self) -> bool:
        """Whether database work should overlap on threads of its own (PostgreSQL only).

        A server does the statements' work in its own processes while our threads wait
        without the GIL; SQLite works inside our process and takes one writer at a time.
        """
        return self.engine.dialect.name == "postgresql"

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
            lease=timedelta(seconds=notify.lease_s),
            grouping=self.settings.alerts.grouping,
            shop_name=self.settings.shop.name,
        )

    def preload(self) -> None:
        """Load now what the daemon's jobs would load on first use; bad options raise here.

        Builds the configured tracking sources once (importing their provider plugins,
        which load the gazetteer, and checking their options), the dispatcher with its
        channels, senders and templates, the detector and the event loop implementation,
        before the daemon starts its loop and freezes its start-up heap (so what they
        import is frozen with it). The sources are discarded: their shared HTTP client is
        only created on first use.
        """
        self.build_sources()
        self.dispatcher  # noqa: B018 - cached; builds channels, alert senders, templates
        self.detector  # noqa: B018
        loop_factory()

    def background_checkpoints(self) -> AbstractContextManager[object]:
        """Within the block, a SQLite file's log is checkpointed on a thread, not by commits.

        Only with ``sqlite_checkpoint_thread`` (the daemon sets it), whose engine leaves the
        checkpoints to that thread; otherwise, and on PostgreSQL, it does nothing.
        """
        if not self.sqlite_checkpoint_thread:
            return nullcontext()
        return background_checkpoints(self.engine)

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
