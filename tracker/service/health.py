"""Health: database reachable and migrated, scheduler heartbeat fresh, sources configured.

One logic serves two callers: ``tracker check`` (a separate process, e.g. a container
HEALTHCHECK, which reads the heartbeat the daemon writes to the database) and the daemon's
own ``/healthz`` (which also knows whether its scheduler loop is making progress right now).
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import text
from sqlalchemy.engine import Connection

from tracker.bootstrap import App
from tracker.store import migrate, runtime_repo

__all__ = [
    "HEARTBEAT_MAX_AGE",
    "HealthReport",
    "Liveness",
    "check_health",
    "write_heartbeat",
]

#: the daemon beats at least once a minute while idle; three missed beats = unhealthy
HEARTBEAT_MAX_AGE = timedelta(minutes=3)

_CYCLE_KEY = "heartbeat:cycle"


class Liveness(Protocol):
    """What the running daemon knows about its own scheduler loop."""

    @property
    def stopping(self) -> bool:
        """True once a stop signal arrived."""
        ...

    def progress_age(self) -> float:
        """Seconds since a job last made progress (finished a run or a batch)."""
        ...


@dataclass
class HealthReport:
    """Each check's outcome; healthy only when every essential check passed."""

    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """True when every check passed."""
        return all(ok for _, ok, _ in self.checks)

    @property
    def reason(self) -> str | None:
        """The first failed check as ``name: detail``, or None when healthy."""
        for name, ok, detail in self.checks:
            if not ok:
                return f"{name}: {detail}"
        return None

    def add(self, name: str, ok: bool, detail: str) -> None:
        """Record one check."""
        self.checks.append((name, ok, detail))

    def lines(self) -> list[str]:
        """One line per check, then the verdict."""
        out = [f"{'ok  ' if ok else 'FAIL'} {name}: {detail}" for name, ok, detail in self.checks]
        out.append("healthy" if self.healthy else "unhealthy")
        return out

    def as_dict(self) -> dict[str, object]:
        """JSON form for /healthz."""
        return {
            "status": "ok" if self.healthy else "unhealthy",
            "healthy": self.healthy,
            "reason": self.reason,
            "checks": {name: {"ok": ok, "detail": detail} for name, ok, detail in self.checks},
        }


def heartbeat_max_age(app: App) -> timedelta:
    """How old the heartbeat may be before the scheduler counts as stuck."""
    return timedelta(seconds=app.settings.daemon.heartbeat_max_age_s)


def write_heartbeat(conn: Connection, now: datetime, *, ok: bool, worker: str) -> None:
    """Record that the scheduler made progress: globally and for this host."""
    runtime_repo.record_heartbeat(conn, "cycle", now, ok=ok)
    runtime_repo.write_state(
        conn,
        f"heartbeat:host:{socket.gethostname()}"[:80],
        {"at": now.isoformat(), "ok": ok, "worker": worker},
        now,
    )


def check_health(
    app: App,
    *,
    require_heartbeat: bool = True,
    liveness: Liveness | None = None,
    sources: Sequence[str] | None = None,
    failing: Mapping[str, str] | None = None,
) -> HealthReport:
    """Run every check; ``liveness``, ``sources`` and ``failing`` come from a running daemon."""
    report = HealthReport()
    now: datetime = app.clock()
    try:
        with app.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        report.add("database", True, "reachable")
    except Exception as exc:
        detail = f"unreachable: {type(exc).__name__}: {exc}".splitlines()[0]
        report.add("database", False, detail)
        return report
    current, head = migrate.current_revision(app.engine), migrate.head_revision()
    report.add("schema", current == head, f"at {current or 'nothing'}, newest {head}")
    if current != head:
        return report
    if liveness is not None:
        _check_liveness(report, app, liveness)
    else:
        _check_heartbeat(report, app, now, require_heartbeat)
    _check_sources(report, app, sources, failing or {})
    return report


def _check_liveness(report: HealthReport, app: App, liveness: Liveness) -> None:
    if liveness.stopping:
        report.add("scheduler", False, "stopping")
        return
    age = liveness.progress_age()
    limit = heartbeat_max_age(app).total_seconds()
    report.add("scheduler", age <= limit, f"last progress {int(age)} s ago (limit {int(limit)} s)")


def _check_heartbeat(report: HealthReport, app: App, now: datetime, required: bool) -> None:
    with app.uow() as uow:
        # prefer this host's own daemon; fall back to any replica's beat
        beat = runtime_repo.read_state(uow.conn, f"heartbeat:host:{socket.gethostname()}"[:80])
        beat = beat or runtime_repo.read_state(uow.conn, _CYCLE_KEY)
    if beat is None:
        report.add("scheduler", not required, "no heartbeat yet (is `tracker run` up?)")
        return
    value, at = beat
    age = now - at
    fresh = age <= heartbeat_max_age(app)
    state = "ok" if value.get("ok") else "failed"
    report.add(
        "scheduler",
        fresh or not required,
        f"last heartbeat {int(age.total_seconds())} s ago (last cycle {state})",
    )


def _check_sources(
    report: HealthReport, app: App, sources: Sequence[str] | None, failing: Mapping[str, str]
) -> None:
    if sources is None:
        try:
            sources = [source.name for source, _ in app.build_sources()]
        except Exception as exc:
            report.add("providers", False, str(exc))
            return
    names = ", ".join(
        f"{name} (failing: {failing[name]})" if name in failing else name for name in sources
    )
    # a provider outage is reported but does not make the process unhealthy: restarting
    # the daemon would not fix the provider
    report.add("providers", bool(sources), names or "none configured")
