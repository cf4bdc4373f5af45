"""One full cycle (poll, detect, dispatch): what ``run --once`` and each daemon tick do."""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog

from tracker.bootstrap import App
from tracker.service.detect import DetectStats
from tracker.service.dispatch import DispatchStats
from tracker.service.poll import PollStats, SourceRouter
from tracker.store import runtime_repo

__all__ = ["CycleResult", "run_cycle"]

_log = structlog.get_logger("tracker.cycle")


@dataclass
class CycleResult:
    """What one cycle did, and which jobs failed."""

    poll: PollStats = field(default_factory=PollStats)
    detect: DetectStats = field(default_factory=DetectStats)
    dispatch: DispatchStats = field(default_factory=DispatchStats)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every job ran to completion."""
        return not self.failures

    def summary(self) -> str:
        """One readable line per job."""
        p, d, s = self.poll, self.detect, self.dispatch
        opened = p.detect.opened + d.opened
        lines = [
            f"poll: {p.claimed} parcels polled, {p.ok} ok, {p.failed} failed, "
            f"{p.new_events} new scans",
            f"detect: {opened} tickets opened, {p.detect.updated + d.updated} updated, "
            f"{p.detect.escalated + d.escalated} escalated, "
            f"{p.detect.resolved + d.resolved} resolved",
            f"dispatch: {s.sent} notices sent, {s.deferred} held, {s.suppressed} suppressed, "
            f"{s.failed} failed; {s.alerts_sent} alerts sent, {s.alerts_failed} dead",
        ]
        lines += [f"FAILED: {f}" for f in self.failures]
        return "\n".join(lines)


async def run_cycle(app: App) -> CycleResult:
    """Poll what is due, run the periodic detection pass (orders due), then dispatch."""
    result = CycleResult()
    now = app.clock()
    router = SourceRouter(app.build_sources())
    try:
        result.poll = await app.poller(router).run_once(now)
    except Exception as exc:
        _log.exception("job_failed", job="poll")
        result.failures.append(f"poll: {exc}")
    finally:
        await router.aclose()
    try:
        with app.uow() as uow:
            result.detect = app.detector.run_due(uow, now)
    except Exception as exc:
        _log.exception("job_failed", job="detect")
        result.failures.append(f"detect: {exc}")
    try:
        result.dispatch = await app.dispatcher.run_once(now)
    except Exception as exc:
        _log.exception("job_failed", job="dispatch")
        result.failures.append(f"dispatch: {exc}")
    with app.uow() as uow:
        runtime_repo.record_heartbeat(uow.conn, "cycle", now, ok=result.ok)
        uow.commit()
    return result
