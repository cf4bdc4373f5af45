"""The ``tracker`` command line (DESIGN §8): exit 0 ok, 1 failure, 2 bad usage or input."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from tracker import eventloop
from tracker.bootstrap import App, build_app, fixed_clock
from tracker.cli_notify import register as register_notify_commands
from tracker.cli_report import build_report_app
from tracker.errors import BadInputError, ConfigError, NotFoundError
from tracker.logging import configure_logging
from tracker.output import render
from tracker.settings import Settings, find_config_path, load_settings

if TYPE_CHECKING:
    from tracker.store.locks import DaemonLock

__all__ = ["app", "main"]

app = typer.Typer(
    help="Logistics exception monitor: watches paid orders and parcels, opens exception "
    "tickets, notifies buyers and alerts agents.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
orders_app = typer.Typer(help="Orders and their parcels.", no_args_is_help=True)
weights_app = typer.Typer(help="Courier-recorded weights (courier bills).", no_args_is_help=True)
tickets_app = typer.Typer(help="Exception tickets.", no_args_is_help=True)
notices_app = typer.Typer(help="Buyer notices.", no_args_is_help=True)
alerts_app = typer.Typer(help="Agent alert deliveries.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(orders_app, name="orders")
app.add_typer(weights_app, name="weights")
app.add_typer(tickets_app, name="tickets")
app.add_typer(notices_app, name="notices")
app.add_typer(alerts_app, name="alerts")


class Format(StrEnum):
    """Output formats for listings."""

    table = "table"
    json = "json"
    csv = "csv"


class _State:
    config: Path | None = None
    verbose: bool = False
    lock: DaemonLock | None = None


_state = _State()

NowOption = Annotated[
    str | None,
    typer.Option("--now", help="Pretend it is this time (ISO 8601; without offset = shop time)."),
]
FormatOption = Annotated[Format, typer.Option("--format", "-f", help="Output format.")]


@app.callback()
def _global(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="Config file (else $TRACKER_CONFIG, else ./tracker.toml, else defaults).",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False,
) -> None:
    _state.config = config
    _state.verbose = verbose


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    try:
        return load_settings(find_config_path(_state.config))
    except ConfigError as exc:
        _fail(str(exc), 2)


def _parse_now(value: str | None, settings: Settings) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        _fail(f"--now: not an ISO 8601 time: {value!r}", 2)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=settings.tz)


def _open(now: str | None = None, *, migrate: bool = True, daemon_lock: bool = False) -> App:
    settings = _settings()
    configure_logging(verbose=_state.verbose)
    at = _parse_now(now, settings)
    # the daemon (with its lock) checkpoints SQLite off its event loop; see tracker run
    application = build_app(
        settings, clock=fixed_clock(at) if at else None, sqlite_checkpoint_thread=daemon_lock
    )
    if daemon_lock:  # before migrating: a second daemon must not touch the database at all
        _state.lock = _take_daemon_lock(application)
    if migrate:
        try:
            application.ensure_schema()
        except ConfigError as exc:
            _fail(str(exc), 1)
        except Exception as exc:  # database unreachable or similar
            _fail(f"database {_safe_url(settings.database.url)}: {exc}", 1)
    return application


def _take_daemon_lock(application: App) -> DaemonLock | None:
    from tracker.store.locks import AlreadyRunningError, daemon_lock_for  # noqa: PLC0415

    lock = daemon_lock_for(application.engine)
    if lock is not None:
        try:
            lock.acquire()
        except AlreadyRunningError as exc:
            _fail(str(exc), 1)
        except OSError as exc:
            _fail(f"cannot create the daemon lock file {lock.path}: {exc.strerror}", 1)
    return lock


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - only for messages

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable url>"


@app.command()
def demo(
    directory: Annotated[
        Path | None,
        typer.Option(
            "--dir", help="Where to write the demo database and report (default: a temp dir)."
        ),
    ] = None,
) -> None:
    """Run a self-contained tour on a fresh SQLite database with the sandbox carrier."""
    from tracker.demo import run_demo  # noqa: PLC0415 - keeps start-up light

    configure_logging(verbose=_state.verbose, quiet=not _state.verbose)
    code = run_demo(directory, echo=typer.echo)
    raise typer.Exit(code)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations up to the newest schema."""
    from tracker.store import migrate  # noqa: PLC0415
    from tracker.store.locks import singleton  # noqa: PLC0415

    application = _open(migrate=False)
    try:
        with singleton(application.engine, "migrate", wait=True):  # replicas upgrade in turn
            migrate.upgrade(application.engine)
        revision = migrate.current_revision(application.engine)
    except Exception as exc:
        _fail(f"migration failed: {exc}", 1)
    typer.echo(f"database at revision {revision}")


@orders_app.command("import")
def orders_import(
    file: Annotated[Path, typer.Argument(help=".jsonl or .csv file of orders (DESIGN §8).")],
) -> None:
    """Insert or update orders by order_id; any bad line rejects the whole file."""
    from tracker.service.imports import import_orders  # noqa: PLC0415

    application = _open()
    try:
        summary = import_orders(application, file)
    except BadInputError as exc:
        for problem in exc.problems:
            typer.echo(problem, err=True)
        _fail(str(exc), 2)
    typer.echo(summary)


@weights_app.command("import")
def weights_import(
    file: Annotated[Path, typer.Argument(help="CSV with columns tracking_number,weight_kg.")],
) -> None:
    """Record courier-billed weights; any bad line rejects the whole file."""
    from tracker.service.imports import import_weights  # noqa: PLC0415

    application = _open()
    try:
        summary = import_weights(application, file)
    except BadInputError as exc:
        for problem in exc.problems:
            typer.echo(problem, err=True)
        _fail(str(exc), 2)
    typer.echo(summary)


@app.command()
def run(
    once: Annotated[
        bool, typer.Option("--once", help="Run poll, detect and dispatch once, then exit.")
    ] = False,
    now: NowOption = None,
) -> None:
    """Run the monitor (a daemon unless --once)."""
    if now is not None and not once:
        _fail("--now only makes sense with --once", 2)
    application = _open(now, daemon_lock=True)
    from tracker.daemon import run_daemon, run_once, startup_heap_frozen  # noqa: PLC0415

    try:
        try:
            application.preload()  # bad provider, channel or template options fail at start-up
        except ConfigError as exc:
            _fail(str(exc), 2)
        with startup_heap_frozen(), application.background_checkpoints():
            if once:
                code, summary = run_once(application)
                typer.echo(summary)
            else:
                code = run_daemon(application)
    finally:
        if _state.lock is not None:
            _state.lock.release()
    raise typer.Exit(code)


_TICKET_COLUMNS = (
    "id",
    "order_id",
    "kind",
    "severity",
    "status",
    "courier",
    "tracking_number",
    "opened_at",
    "suggested_action",
)


@tickets_app.command("list")
def tickets_list(
    status: Annotated[
        str, typer.Option("--status", help="open, acknowledged, resolved or all.")
    ] = "open",
    kind: Annotated[str | None, typer.Option("--kind", help="Only this exception kind.")] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """List exception tickets, oldest open first."""
    from tracker.domain.model import ExceptionKind  # noqa: PLC0415
    from tracker.service.queries import iter_tickets  # noqa: PLC0415

    if status not in ("open", "acknowledged", "resolved", "all"):
        _fail("--status: choose open, acknowledged, resolved or all", 2)
    if kind is not None and kind not in {k.value for k in ExceptionKind}:
        _fail(
            f"--kind: unknown kind {kind!r} (known: {', '.join(k.value for k in ExceptionKind)})", 2
        )
    application = _open()
    with application.uow() as uow:
        rows = [
            t for t, _ in iter_tickets(uow.conn, application.settings.tz, status=status, kind=kind)
        ]
    typer.echo(render(rows, fmt.value, _TICKET_COLUMNS))


def _ticket_action(action: str, ticket_id: int, note: str | None) -> None:
    from tracker.service import agents  # noqa: PLC0415

    application = _open()
    actor = "cli"
    with application.uow() as uow:
        try:
            handler = agents.acknowledge if action == "ack" else agents.resolve
            status = handler(uow, ticket_id, application.clock(), note, actor)
        except NotFoundError as exc:
            _fail(str(exc), 1)
    typer.echo(f"ticket {ticket_id}: {status}")


@tickets_app.command("ack")
def tickets_ack(
    ticket_id: Annotated[int, typer.Argument(help="Ticket id.")],
    note: Annotated[str | None, typer.Option("--note", help="What the agent did.")] = None,
) -> None:
    """Acknowledge a ticket (an agent is on it)."""
    _ticket_action("ack", ticket_id, note)


@tickets_app.command("resolve")
def tickets_resolve(
    ticket_id: Annotated[int, typer.Argument(help="Ticket id.")],
    note: Annotated[str | None, typer.Option("--note", help="How it was resolved.")] = None,
) -> None:
    """Resolve a ticket by hand; it is not reopened until its condition clears once."""
    _ticket_action("resolve", ticket_id, note)


@notices_app.command("list")
def notices_list(fmt: FormatOption = Format.table) -> None:
    """List every buyer notice, newest first (phone numbers masked)."""
    from tracker.service.queries import iter_notices  # noqa: PLC0415

    application = _open()
    with application.uow() as uow:
        rows = [n for n, _ in iter_notices(uow.conn, application.settings.tz)]
    columns = (
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
    )
    typer.echo(render(rows, fmt.value, columns))


@alerts_app.command("list")
def alerts_list(fmt: FormatOption = Format.table) -> None:
    """List agent alert deliveries, newest first."""
    from tracker.service.queries import iter_alerts  # noqa: PLC0415

    application = _open()
    with application.uow() as uow:
        rows = list(iter_alerts(uow.conn, application.settings.tz))
    columns = ("id", "ticket_id", "type", "endpoint", "status", "attempts", "created_at", "reason")
    typer.echo(render(rows, fmt.value, columns))


@app.command()
def track(
    courier: Annotated[str, typer.Argument(help="Canonical courier code (sf, yto, zto, ...).")],
    number: Annotated[str, typer.Argument(help="Tracking number.")],
    phone: Annotated[str | None, typer.Option("--phone", help="Buyer phone (SF needs it).")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
) -> None:
    """Look one parcel up through the source configured for its courier."""
    from carriers.registry import is_known_courier  # noqa: PLC0415
    from tracker.service.lookup import lookup, result_json, result_table  # noqa: PLC0415

    if not is_known_courier(courier):
        _fail(f"unknown courier code {courier!r}", 2)
    application = _open(migrate=False)
    try:
        result = eventloop.run(lookup(application, courier, number, phone))
    except ConfigError as exc:
        _fail(str(exc), 2)
    data = result_json(result, application.settings.tz)
    typer.echo(
        json.dumps(data, ensure_ascii=False, indent=2) if fmt is Format.json else result_table(data)
    )
    raise typer.Exit(0 if result.error is None else 1)


@app.command()
def check() -> None:
    """Health of the database, scheduler heartbeat and providers; exit 0 healthy, 1 not."""
    from tracker.service.health import check_health  # noqa: PLC0415

    application = _open(migrate=False)
    report = check_health(application)
    for line in report.lines():
        typer.echo(line)
    raise typer.Exit(0 if report.healthy else 1)


# notices preview/retry, buyers opt-out/opt-in, alerts retry/enable/endpoints, dispatch
register_notify_commands(app, notices_app, alerts_app, open_app=_open, fail=_fail)
# report daily/list/show (tracker/cli_report.py)
app.add_typer(build_report_app(open_app=_open, fail=_fail), name="report")


def main() -> None:
    """Console entry point."""
    try:
        app()
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)
