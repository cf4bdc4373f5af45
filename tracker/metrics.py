"""Prometheus metrics: one registry, the metric objects, and small ``record_*`` helpers.

Services never touch metric objects directly; they (or the daemon around them) call the
helpers below, which take the stats objects the services already return. Every label has a
small, fixed set of values (provider names from the config, error kinds, ticket kinds, job
names), never order ids or tracking numbers.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from carriers.model import ErrorKind, TrackingQuery, TrackingResult

if TYPE_CHECKING:
    from carriers.base import TrackingSource
    from tracker.service.detect import DetectStats
    from tracker.service.dispatch import DispatchStats
    from tracker.service.poll import PollStats

__all__ = [
    "CONTENT_TYPE_LATEST",
    "REGISTRY",
    "MeteredSource",
    "exposition",
    "record_detect",
    "record_dispatch",
    "record_events_ingested",
    "record_job",
    "record_poll",
    "record_provider_call",
    "record_rate_limit_wait",
    "set_open_tickets",
    "set_outbox",
]

REGISTRY = CollectorRegistry(auto_describe=True)
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

BUILD = Info("tracker_build", "Version of the running tracker.", registry=REGISTRY)
POLLS = Counter(
    "tracker_polls_total",
    "Tracking lookups by provider and outcome (ok, or the error kind).",
    ["provider", "outcome"],
    registry=REGISTRY,
)
PROVIDER_LATENCY = Histogram(
    "tracker_provider_request_seconds",
    "Time for one batch request to a tracking provider, rate-limit waits included.",
    ["provider"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40),
    registry=REGISTRY,
)
RATE_LIMITED = Counter(
    "tracker_rate_limit_waits_total",
    "Times a provider's rate budget made us wait (a 429 or quota answer, or a local limiter).",
    ["provider"],
    registry=REGISTRY,
)
RATE_LIMIT_SECONDS = Counter(
    "tracker_rate_limit_wait_seconds_total",
    "Seconds of waiting imposed by providers' rate budgets (Retry-After and local limiters).",
    ["provider"],
    registry=REGISTRY,
)
EVENTS = Counter(
    "tracker_events_ingested_total",
    "New (de-duplicated) tracking events stored, by how they arrived (poll or push).",
    ["via"],
    registry=REGISTRY,
)
TICKETS_OPENED = Counter(
    "tracker_tickets_opened_total",
    "Exception tickets opened, by kind.",
    ["kind"],
    registry=REGISTRY,
)
TICKETS_OPEN = Gauge(
    "tracker_tickets_open",
    "Tickets not yet resolved, by kind (sampled from the database; same on every replica).",
    ["kind"],
    registry=REGISTRY,
)
OUTBOX_DEPTH = Gauge(
    "tracker_outbox_depth",
    "Queued outbox rows that are due now, by outbox (notices, alerts).",
    ["outbox"],
    registry=REGISTRY,
)
OUTBOX_HELD = Gauge(
    "tracker_outbox_held",
    "Queued outbox rows scheduled for later (quiet hours, daily cap, retry back-off).",
    ["outbox"],
    registry=REGISTRY,
)
OUTBOX_AGE = Gauge(
    "tracker_outbox_oldest_age_seconds",
    "Age of the oldest due, unsent outbox row (0 when none is due): dispatch lag.",
    ["outbox"],
    registry=REGISTRY,
)
NOTICES = Counter(
    "tracker_notices_total",
    "Buyer notice outcomes: sent, failed, retried, suppressed, held.",
    ["outcome"],
    registry=REGISTRY,
)
ALERTS = Counter(
    "tracker_alerts_total",
    "Agent alert outcomes: sent, dead, retried.",
    ["outcome"],
    registry=REGISTRY,
)
JOB_DURATION = Histogram(
    "tracker_job_duration_seconds",
    "Wall time of one run of a scheduled job.",
    ["job"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900),
    registry=REGISTRY,
)
JOB_RUNS = Counter(
    "tracker_job_runs_total",
    "Runs of scheduled jobs by outcome: ok, failed, skipped (another replica holds it).",
    ["job", "outcome"],
    registry=REGISTRY,
)
JOB_LAST_SUCCESS = Gauge(
    "tracker_job_last_success_timestamp_seconds",
    "Unix time when the job last finished without error.",
    ["job"],
    registry=REGISTRY,
)

_RATE_KINDS = (ErrorKind.RATE_LIMITED, ErrorKind.QUOTA_EXCEEDED)


def exposition() -> bytes:
    """The registry in the Prometheus text format."""
    return generate_latest(REGISTRY)


def record_provider_call(provider: str, seconds: float, results: Sequence[TrackingResult]) -> None:
    """One batch request to ``provider``: its latency and each lookup's outcome."""
    PROVIDER_LATENCY.labels(provider).observe(seconds)
    for result in results:
        error = result.error
        POLLS.labels(provider, "ok" if error is None else error.kind.value).inc()
        if error is not None and error.kind in _RATE_KINDS:
            record_rate_limit_wait(provider, error.retry_after_s or 0.0)


def record_rate_limit_wait(provider: str, seconds: float) -> None:
    """A rate budget made us wait ``seconds`` (adapters' local limiters may call this too)."""
    RATE_LIMITED.labels(provider).inc()
    if seconds > 0:
        RATE_LIMIT_SECONDS.labels(provider).inc(seconds)


def record_events_ingested(count: int, via: str = "poll") -> None:
    """``count`` new tracking events were stored (``via`` is ``poll`` or ``push``)."""
    if count > 0:
        EVENTS.labels(via).inc(count)


def record_detect(stats: DetectStats) -> None:
    """Tickets opened by one detection pass."""
    for kind, count in stats.opened_by_kind.items():
        TICKETS_OPENED.labels(kind).inc(count)


def record_poll(stats: PollStats) -> None:
    """Events stored and tickets opened by one poll run (lookups are counted per call)."""
    record_events_ingested(stats.new_events, "poll")
    record_detect(stats.detect)


def record_dispatch(stats: DispatchStats) -> None:
    """Outcomes of one dispatch run."""
    for outcome, count in (
        ("sent", stats.sent),
        ("failed", stats.failed),
        ("retried", stats.retried),
        ("suppressed", stats.suppressed),
        ("held", stats.deferred),
    ):
        if count:
            NOTICES.labels(outcome).inc(count)
    for outcome, count in (
        ("sent", stats.alerts_sent),
        ("dead", stats.alerts_failed),
        ("retried", stats.alerts_retried),
    ):
        if count:
            ALERTS.labels(outcome).inc(count)


def record_job(job: str, outcome: str, seconds: float) -> None:
    """One run of a scheduled job finished with ``outcome`` (ok, failed or skipped)."""
    JOB_RUNS.labels(job, outcome).inc()
    if outcome != "skipped":
        JOB_DURATION.labels(job).observe(seconds)
    if outcome == "ok":
        JOB_LAST_SUCCESS.labels(job).set(time.time())


def set_open_tickets(counts: Mapping[str, int], kinds: Sequence[str]) -> None:
    """Open tickets per kind; kinds absent from ``counts`` are set to zero."""
    for kind in {*kinds, *counts}:
        TICKETS_OPEN.labels(kind).set(counts.get(kind, 0))


def set_outbox(outbox: str, *, due: int, held: int, oldest_age_s: float) -> None:
    """The state of one outbox (``notices`` or ``alerts``)."""
    OUTBOX_DEPTH.labels(outbox).set(due)
    OUTBOX_HELD.labels(outbox).set(held)
    OUTBOX_AGE.labels(outbox).set(max(oldest_age_s, 0.0))


class MeteredSource:
    """Wraps a tracking source to time each batch call and count each lookup's outcome."""

    def __init__(self, inner: TrackingSource) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_batch = inner.max_batch

    async def track(self, queries: Sequence[TrackingQuery]) -> list[TrackingResult]:
        """Delegate to the wrapped source and record latency and outcomes."""
        started = time.perf_counter()
        results = await self.inner.track(queries)
        record_provider_call(self.name, time.perf_counter() - started, results)
        return results

    async def aclose(self) -> None:
        """Close the wrapped source."""
        await self.inner.aclose()
