"""CLI commands for buyer notices, opt-outs, alert endpoints and the dispatch worker.

Registered on the main app by ``tracker.cli``: ``tracker notices preview|retry``,
``tracker buyers opt-out|opt-in``, ``tracker alerts retry|enable|endpoints`` and
``tracker dispatch``. The helpers that open the app and fail are passed in, so this module
does not import ``tracker.cli`` back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer

from tracker import eventloop
from tracker.bootstrap import App
from tracker.errors import BadInputError, NotFoundError
from tracker.output import render

__all__ = ["register"]

OpenApp = Callable[..., App]
Fail = Callable[[str, int], NoReturn]

_FORMATS = ("table", "json")


def _format_preview(data: dict[str, Any]) -> str:
    lines = [f"order {data['order_id']} at {data['at']} (buyer {data['buyer']['phone']})"]
    if data["opt_out"]:
        lines.append("buyer opted out: nothing will be sent")
    if not data["previews"]:
        lines.append("no exception fires now")
    for p in data["previews"]:
        ticket = f"ticket {p['ticket_id']}" if p["ticket_id"] else "no open ticket yet"
        if not p["buyer_notice"]:
            lines.append(f"- {p['kind']} ({ticket}): agents only, no buyer notice")
            continue
        lines.append(
            f"- {p['kind']} ({ticket}): template {p['template']}, "
            f"{p['characters']} characters, {p['segments']} SMS segment(s)"
        )
        lines.append(f"    {p['text']}")
    if data["notices"]:
        lines.append("notices already queued or sent:")
    for n in data["notices"]:
        lines.append(
            f"- notice {n['id']} (ticket {n['ticket_id']}, {n['template']}, {n['channel']}): "
            f"{n['status']}, {n['characters']} characters, {n['segments']} SMS segment(s)"
            + (f" - {n['reason']}" if n["reason"] else "")
        )
        lines.append(f"    {n['text']}")
    return "\n".join(lines)


def register(
    app: typer.Typer,
    notices_app: typer.Typer,
    alerts_app: typer.Typer,
    *,
    open_app: OpenApp,
    fail: Fail,
) -> None:
    """Add the notify commands to the ``tracker`` CLI."""
    buyers_app = typer.Typer(help="Buyers: notice opt-out and opt-in.", no_args_is_help=True)
    app.add_typer(buyers_app, name="buyers")

    def check_format(fmt: str) -> None:
        if fmt not in _FORMATS:
            fail(f"--format: choose {' or '.join(_FORMATS)}", 2)

    @notices_app.command("preview")
    def notices_preview(
        order_id: Annotated[str, typer.Argument(help="The order to preview.")],
        now: Annotated[
            str | None, typer.Option("--now", help="Evaluate at this time (ISO 8601).")
        ] = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    ) -> None:
        """Show what each ticket of an order tells the buyer: text and SMS segment count."""
        from tracker.service.notify_admin import preview_order  # noqa: PLC0415

        check_format(fmt)
        application = open_app(now)
        try:
            data = preview_order(application, order_id, application.clock())
        except NotFoundError as exc:
            fail(str(exc), 1)
        if fmt == "json":
            typer.echo(json.dumps(data, ensure_ascii=False, indent=2))
        else:
            typer.echo(_format_preview(data))

    @notices_app.command("retry")
    def notices_retry(
        notice_id: Annotated[int, typer.Argument(help="A failed notice's id.")],
    ) -> None:
        """Queue a failed (dead-lettered) notice again."""
        from tracker.service.dispatch import retry_notice  # noqa: PLC0415

        application = open_app()
        with application.uow() as uow:
            try:
                message = retry_notice(uow.conn, notice_id, application.clock())
            except NotFoundError as exc:
                fail(str(exc), 1)
            uow.commit()
        typer.echo(message)

    def opt(phone: str, opted_out: bool) -> None:
        from tracker.service.notify_admin import normalize_phone, set_opt_out  # noqa: PLC0415

        try:
            digits = normalize_phone(phone)
        except BadInputError as exc:
            fail(str(exc), 2)
        application = open_app()
        with application.uow() as uow:
            message = set_opt_out(uow.conn, digits, opted_out, application.clock())
            uow.commit()
        typer.echo(message)

    @buyers_app.command("opt-out")
    def buyers_opt_out(
        phone: Annotated[str, typer.Argument(help="The buyer's mobile number.")],
    ) -> None:
        """Stop every notice to this buyer (queued ones are suppressed)."""
        opt(phone, True)

    @buyers_app.command("opt-in")
    def buyers_opt_in(
        phone: Annotated[str, typer.Argument(help="The buyer's mobile number.")],
    ) -> None:
        """Allow notices to this buyer again."""
        opt(phone, False)

    @alerts_app.command("retry")
    def alerts_retry(
        alert_id: Annotated[int, typer.Argument(help="A dead alert's id.")],
    ) -> None:
        """Queue a dead-lettered alert again (fresh attempts, sent on the next pass)."""
        from tracker.service.dispatch_alerts import disabled_endpoints, retry_alert  # noqa: PLC0415
        from tracker.store.tables import alerts  # noqa: PLC0415

        application = open_app()
        with application.uow() as uow:
            try:
                message = retry_alert(uow.conn, alert_id, application.clock())
            except NotFoundError as exc:
                fail(str(exc), 1)
            uow.commit()
            endpoint = uow.conn.execute(
                alerts.select().with_only_columns(alerts.c.endpoint).where(alerts.c.id == alert_id)
            ).scalar_one()
            off = disabled_endpoints(uow.conn, [endpoint])
        typer.echo(message)
        if off:
            typer.echo(
                f"warning: endpoint {endpoint} is disabled ({off[endpoint]}); "
                f"run `tracker alerts enable {endpoint}` or it will be dead-lettered again",
                err=True,
            )

    @alerts_app.command("enable")
    def alerts_enable(
        endpoint: Annotated[str, typer.Argument(help="Endpoint name (see `alerts endpoints`).")],
    ) -> None:
        """Switch an endpoint back on after it answered 410 Gone."""
        from tracker.notify.factory import alert_endpoints  # noqa: PLC0415
        from tracker.service.dispatch_alerts import set_endpoint_enabled  # noqa: PLC0415

        application = open_app()
        if endpoint not in alert_endpoints(application.settings.alerts):
            fail(f"no alert endpoint named {endpoint!r} is configured", 1)
        with application.uow() as uow:
            set_endpoint_enabled(uow.conn, endpoint, True, application.clock())
            uow.commit()
        typer.echo(f"endpoint {endpoint} enabled")

    @alerts_app.command("endpoints")
    def alerts_endpoints(
        fmt: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    ) -> None:
        """List configured alert endpoints and whether each is enabled."""
        from tracker.service.notify_admin import endpoint_states  # noqa: PLC0415

        check_format(fmt)
        application = open_app()
        rows = endpoint_states(application)
        typer.echo(render(rows, fmt, ("endpoint", "preset", "kinds", "state", "reason")))

    @app.command("dispatch")
    def dispatch(
        once: Annotated[bool, typer.Option("--once", help="One pass, then exit.")] = False,
        interval: Annotated[
            float, typer.Option("--interval", min=0.1, help="Seconds between passes.")
        ] = 2.0,
    ) -> None:
        """Send due buyer notices and agent alerts until stopped (a dispatch-only worker)."""
        from tracker.service.dispatch_worker import serve  # noqa: PLC0415

        application = open_app()
        application.templates  # noqa: B018 - fail at start-up on a bad template
        application.dispatcher  # noqa: B018 - and on bad provider options
        try:
            code = eventloop.run(serve(application, interval_s=interval, once=once))
        finally:
            application.close()
        raise typer.Exit(code)
