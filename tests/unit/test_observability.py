"""Metrics record helpers, the metered source, daemon state and the listen address."""

from __future__ import annotations

from collections.abc import Sequence

from carriers.model import ErrorKind, TrackingError, TrackingQuery, TrackingResult
from tracker import metrics
from tracker.daemon.state import DaemonState
from tracker.service.detect import DetectStats
from tracker.service.dispatch import DispatchStats
from tracker.web.app import parse_listen


def _value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def _result(number: str, error: TrackingError | None = None) -> TrackingResult:
    return TrackingResult("yto", number, "unit", error=error)


class _Source:
    name = "unit-src"
    max_batch = 10

    async def track(self, queries: Sequence[TrackingQuery]) -> list[TrackingResult]:
        """Half the numbers are rate limited with a Retry-After."""
        limited = TrackingError(ErrorKind.RATE_LIMITED, "429", retryable=True, retry_after_s=2.5)
        return [
            _result(q.tracking_number, limited if i % 2 else None) for i, q in enumerate(queries)
        ]

    async def aclose(self) -> None:
        """Nothing to close."""


async def test_metered_source_counts_outcomes_latency_and_rate_limit_waits() -> None:
    """Each lookup is counted by outcome; a 429 counts as a rate-limit wait of its Retry-After."""
    before_ok = _value("tracker_polls_total", provider="unit-src", outcome="ok")
    before_wait = _value("tracker_rate_limit_wait_seconds_total", provider="unit-src")
    source = metrics.MeteredSource(_Source())
    results = await source.track([TrackingQuery("yto", f"N{i}") for i in range(4)])
    assert len(results) == 4 and source.name == "unit-src" and source.max_batch == 10
    assert _value("tracker_polls_total", provider="unit-src", outcome="ok") == before_ok + 2
    assert _value("tracker_polls_total", provider="unit-src", outcome="rate_limited") >= 2
    waited = _value("tracker_rate_limit_wait_seconds_total", provider="unit-src")
    assert waited == before_wait + 5.0
    assert _value("tracker_provider_request_seconds_count", provider="unit-src") >= 1


def test_dispatch_and_detect_stats_become_counters() -> None:
    """Notices by outcome, alerts by outcome and tickets opened by kind."""
    sent = _value("tracker_notices_total", outcome="sent")
    held = _value("tracker_notices_total", outcome="held")
    dead = _value("tracker_alerts_total", outcome="dead")
    lost = _value("tracker_tickets_opened_total", kind="lost")
    metrics.record_dispatch(DispatchStats(sent=3, deferred=2, alerts_failed=1))
    metrics.record_detect(DetectStats(opened=2, opened_by_kind={"lost": 2}))
    assert _value("tracker_notices_total", outcome="sent") == sent + 3
    assert _value("tracker_notices_total", outcome="held") == held + 2
    assert _value("tracker_alerts_total", outcome="dead") == dead + 1
    assert _value("tracker_tickets_opened_total", kind="lost") == lost + 2


def test_job_runs_and_gauges() -> None:
    """Job outcomes, durations and last success; gauges zero the kinds that vanished."""
    metrics.record_job("unit-job", "ok", 0.2)
    metrics.record_job("unit-job", "skipped", 0.0)
    assert _value("tracker_job_runs_total", job="unit-job", outcome="ok") >= 1
    assert _value("tracker_job_runs_total", job="unit-job", outcome="skipped") >= 1
    assert _value("tracker_job_duration_seconds_count", job="unit-job") >= 1
    assert _value("tracker_job_last_success_timestamp_seconds", job="unit-job") > 0
    metrics.set_open_tickets({"stalled": 4}, ["stalled", "lost"])
    assert _value("tracker_tickets_open", kind="stalled") == 4
    metrics.set_open_tickets({}, ["stalled", "lost"])
    assert _value("tracker_tickets_open", kind="stalled") == 0
    metrics.set_outbox("notices", due=5, held=7, oldest_age_s=12.5)
    assert _value("tracker_outbox_depth", outbox="notices") == 5
    assert _value("tracker_outbox_held", outbox="notices") == 7
    assert _value("tracker_outbox_oldest_age_seconds", outbox="notices") == 12.5
    assert b"tracker_outbox_depth" in metrics.exposition()


def test_daemon_state_tracks_progress_of_running_jobs() -> None:
    """A running job's own progress counts; finishing records summaries and failures."""
    state = DaemonState()
    state.begin("poll")
    assert state.running() == ["poll"] and state.progress_age() < 1
    state.end("poll", ok=False, summary="polled 3")
    assert state.failed == {"poll"} and "failing: poll" in state.status_line()
    state.end("poll", ok=True, summary="polled 4")
    assert state.status_line() == "polled 4"
    assert not state.stopping
    state.request_stop()
    assert state.stopping and state.should_stop()


def test_parse_listen_accepts_host_port_forms_and_off() -> None:
    """IPv4, IPv6 in brackets, names, port 0; off/empty disable; junk names the key."""
    assert parse_listen("127.0.0.1:8787") == ("127.0.0.1", 8787)
    assert parse_listen("[::1]:9000") == ("::1", 9000)
    assert parse_listen("localhost:0") == ("localhost", 0)
    assert parse_listen("off") is None and parse_listen("") is None
    for bad in ("8787", "127.0.0.1", "host:99999", "a:b:c"):
        try:
            parse_listen(bad)
        except ValueError as exc:
            assert "web.listen" in str(exc)
        else:
            raise AssertionError(f"{bad!r} accepted")
