"""Health: database reachable and migrated, scheduler heartbeat fresh, sources configured."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import text

from tracker.bootstrap import App
from tracker.store import migrate, runtime_repo

__all__ = ["HEARTBEAT_MAX_AGE", "HealthReport", "check_health"]

#: the daemon writes a heartbeat every cycle (one a minute); three missed = unhealthy
HEARTBEAT_MAX_AGE = timedelta(minutes=3)


@dataclass
class HealthReport:
    """Each check's outcome; healthy only when every essential check passed."""

    checks: list[tuple[str, bool, str]] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        """True when every check passed."""
        return all(ok for _, ok, _ in self.checks)

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
            "healthy": self.healthy,
            "checks": {name: {"ok": ok, "detail": detail} for name, ok, detail in self.checks},
        }


def check_health(app: App, *, require_heartbeat: bool = True) -> HealthReport:
    """Run every check against the real database."""
    report = HealthReport()
    now: datetime = app.clock()
    try:
        with app.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        report.add("database", True, "reachable")
    except Exception as exc:
        report.add("database", False, f"unreachable: {type(exc).__name__}: {exc}".splitlines()[0])
        return report
    current, head = migrate.current_revision(app.engine), migrate.head_revision()
    report.add("schema", current == head, f"at {current or 'nothing'}, newest {head}")
    if current != head:
        return report
    with app.uow() as uow:
        beat = runtime_repo.read_state(uow.conn, "heartbeat:cycle")
    if beat is None:
        report.add("scheduler", not require_heartbeat, "no heartbeat yet (is `tracker run` up?)")
    else:
        value, at = beat
        age = now - at
        fresh = age <= HEARTBEAT_MAX_AGE
        report.add(
            "scheduler",
            fresh or not require_heartbeat,
            f"last cycle {int(age.total_seconds())} s ago ({'ok' if value.get('ok') else 'failed'})",
        )
    try:
        sources = app.build_sources()
        names = ", ".join(s.name for s, _ in sources) or "none configured"
        report.add("providers", bool(sources), names)
    except Exception as exc:
        report.add("providers", False, str(exc))
    return report
