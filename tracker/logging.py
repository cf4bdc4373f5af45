"""structlog set-up: JSON lines for services, readable output on a terminal."""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["configure_logging"]


def configure_logging(
    *, verbose: bool = False, quiet: bool = False, json: bool | None = None
) -> None:
    """Configure structlog once per process; logs go to stderr so stdout stays clean."""
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    use_json = (not sys.stderr.isatty()) if json is None else json
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _route_stdlib_logging(level, renderer)


def _route_stdlib_logging(level: int, renderer: structlog.typing.Processor) -> None:
    """Render library logs (APScheduler, uvicorn, alembic) like ours: one JSON object a line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[
                structlog.contextvars.merge_contextvars,
                structlog.stdlib.add_logger_name,
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso", utc=True),
            ],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # their INFO lines ("Added job", "Context impl", one per HTTP request) are noise next to
    # our own events, and httpx's costs ~100 µs on every provider request
    for name in ("alembic", "apscheduler", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx"):
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
