"""``tracker report``: build, send, list and show the daily exception report.

Added to the main app by ``tracker.cli`` (:func:`build_report_app`); the helpers that open
the app and fail are passed in, so this module does not import ``tracker.cli`` back.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from tracker import eventloop
from tracker.bootstrap import App
from tracker.output import render

__all__ = ["ReportFormat", "build_report_app"]

OpenApp = Callable[..., App]
Fail = Callable[[str, int], NoReturn]


class ReportFormat(StrEnum):
    """Output formats for reports."""

    html = "html"
    csv = "csv"
    json = "json"


class ListFormat(StrEnum):
    """Output formats for the list of stored reports."""

    table = "table"
    json = "json"
    csv = "csv"


_LIST_COLUMNS = (
    "id",
    "date",
    "status",
    "generated_at",
    "open_total",
    "urgent",
    "opened",
    "resolved",
    "delivered_to",
)

FormatOption = Annotated[ReportFormat, typer.Option("--format", "-f", help="html, csv or json.")]
OutOption = Annotated[
    Path | None, typer.Option("--out", "-o", help="Write here instead of stdout.")
]


def _write(text: str, out: Path | None, fail: Fail) -> None:
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    try:
        out.write_text(text, encoding="utf-8", newline="")
    except OSError as exc:
        fail(f"--out: cannot write {out}: {exc.strerror}", 1)
    typer.echo(f"report written to {out}")


def _delivered_to(delivery: Any) -> str:
    channels = (delivery or {}).get("channels") or []
    return ", ".join(f"{c.get('channel')}{'' if c.get('ok') else ' (failed)'}" for c in channels)


def build_report_app(*, open_app: OpenApp, fail: Fail) -> typer.Typer:
    """The ``report`` command group."""
    report_app = typer.Typer(help="The daily exception report.", no_args_is_help=True)

    @report_app.command("daily")
    def report_daily(
        date: Annotated[
            str | None,
            typer.Option("--date", help="Report date (YYYY-MM-DD, shop time; default today)."),
        ] = None,
        now: Annotated[
            str | None,
            typer.Option(
                "--now", help="Pretend it is this time (ISO 8601; no offset = shop time)."
            ),
        ] = None,
        fmt: FormatOption = ReportFormat.html,
        out: OutOption = None,
        send: Annotated[
            bool,
            typer.Option(
                "--send",
                help="Store the report and deliver it now (e-mail, webhook), even if sent before.",
            ),
        ] = False,
        store: Annotated[
            bool, typer.Option("--store", help="Store the report without delivering it.")
        ] = False,
    ) -> None:
        """Build the daily exception report: the 24 h before [report] at (08:00) on DATE."""
        from tracker.report import parse_report_date, run_daily_report  # noqa: PLC0415
        from tracker.report.job import build_rendered  # noqa: PLC0415
        from tracker.report.store import save_report  # noqa: PLC0415

        application = open_app(now)
        settings = application.settings
        at = application.clock()
        try:
            day = parse_report_date(date, at, settings.tz)
        except ValueError as exc:
            fail(f"--date: {exc}", 2)
        if send:
            config = settings.report
            if not (config.recipients and config.smtp) and not config.post_to_webhook:
                fail(
                    "--send: nothing to send to; set [report] recipients and [report.smtp], "
                    "or post_to_webhook = true",
                    2,
                )
            run = eventloop.run(run_daily_report(application, at, day=day, force=True))
            for outcome in run.outcomes:
                mark = "ok  " if outcome.ok else "FAIL"
                typer.echo(f"{mark} {outcome.channel}: {outcome.detail}")
            typer.echo(f"report {run.report_id} ({run.date}): {run.status}")
            if out is not None:
                _show(application, run.report_id, fmt, out, fail)
            raise typer.Exit(0 if run.ok else 1)
        rendered = build_rendered(application, day, at)
        if store:
            with application.uow() as uow:
                report_id = save_report(uow.conn, rendered, at)
                uow.commit()
            typer.echo(f"report {report_id} ({day}) stored", err=True)
        _write(rendered.form(fmt.value), out, fail)

    @report_app.command("list")
    def report_list(
        limit: Annotated[int, typer.Option("--limit", min=1, help="How many, newest first.")] = 30,
        fmt: Annotated[
            ListFormat, typer.Option("--format", "-f", help="table, json or csv.")
        ] = ListFormat.table,
    ) -> None:
        """List stored reports, newest first."""
        from tracker.report.store import list_reports  # noqa: PLC0415

        application = open_app()
        tz = application.settings.tz
        with application.uow() as uow:
            rows = list_reports(uow.conn, limit)
        items = [
            {
                "id": r.id,
                "date": r.report_date.isoformat(),
                "kind": r.kind,
                "status": r.status,
                "generated_at": r.generated_at.astimezone(tz).isoformat(),
                "window_start": r.window_start.astimezone(tz).isoformat(),
                "window_end": r.window_end.astimezone(tz).isoformat(),
                **{k: (r.summary or {}).get(k) for k in ("open_total", "urgent", "opened")},
                "resolved": (r.summary or {}).get("resolved"),
                "delivered_to": _delivered_to(r.delivery),
                "delivery": r.delivery,
            }
            for r in rows
        ]
        if fmt is ListFormat.json:
            typer.echo(json.dumps(items, ensure_ascii=False, indent=2))
            return
        typer.echo(render(items, fmt.value, _LIST_COLUMNS))

    @report_app.command("show")
    def report_show(
        report_id: Annotated[int, typer.Argument(help="Stored report id (see `report list`).")],
        fmt: FormatOption = ReportFormat.html,
        out: OutOption = None,
    ) -> None:
        """Print (or write) a stored report exactly as it was built."""
        _show(open_app(), report_id, fmt, out, fail)

    return report_app


def _show(
    application: App, report_id: int, fmt: ReportFormat, out: Path | None, fail: Fail
) -> None:
    from tracker.report.store import get_report  # noqa: PLC0415

    with application.uow() as uow:
        row = get_report(uow.conn, report_id)
    if row is None:
        fail(f"report {report_id} not found", 1)
    text: str = {"html": row.content_html, "csv": row.content_csv, "json": row.content_json}[
        fmt.value
    ]
    _write(text, out, fail)
