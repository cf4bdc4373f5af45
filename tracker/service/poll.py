"""Polling use case: claim due parcels, ask their tracking sources, store, detect."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from sqlalchemy.engine import Engine

from carriers.base import TrackingSource
from carriers.model import ErrorKind, TrackingError, TrackingQuery, TrackingResult
from tracker.service.detect import Detector, DetectStats
from tracker.store import ingest, shipments_repo
from tracker.store.shipments_repo import ClaimedShipment
from tracker.store.uow import UnitOfWork

__all__ = ["PollStats", "Poller", "ProviderHealth", "SourceRouter"]

_log = structlog.get_logger("tracker.poll")


class SourceRouter:
    """Routes a courier code to the first configured source that serves it (or ``*``)."""

    def __init__(self, sources: Sequence[tuple[TrackingSource, frozenset[str]]]) -> None:
        self.sources = list(sources)

    def route(self, courier: str) -> TrackingSource | None:
        """The source for ``courier``, in configuration order, or None."""
        for source, couriers in self.sources:
            if courier in couriers or "*" in couriers:
                return source
        return None

    async def aclose(self) -> None:
        """Close every source."""
        for source, _ in self.sources:
            await source.aclose()


class ProviderHealth:
    """Logs a source once when it starts failing and once when it recovers."""

    def __init__(self) -> None:
        self.failing: dict[str, str] = {}

    def observe(self, source: str, results: Sequence[TrackingResult]) -> None:
        """Update from one batch: all failed with a source-wide error = broken."""
        errors = [r.error for r in results if r.error is not None]
        broken = (
            bool(results)
            and len(errors) == len(results)
            and all(
                e.kind
                in (
                    ErrorKind.AUTH,
                    ErrorKind.NETWORK,
                    ErrorKind.PROVIDER,
                    ErrorKind.BAD_RESPONSE,
                    ErrorKind.RATE_LIMITED,
                    ErrorKind.QUOTA_EXCEEDED,
                )
                for e in errors
            )
        )
        if broken and source not in self.failing:
            first = errors[0]
            self.failing[source] = first.kind.value
            _log.error(
                "provider_failing",
                provider=source,
                error_kind=first.kind.value,
                error=first.message,
            )
        elif not broken and source in self.failing and len(errors) < len(results):
            del self.failing[source]
            _log.info("provider_recovered", provider=source)


@dataclass(slots=True)
class PollStats:
    """Counts from one poll run."""

    claimed: int = 0
    ok: int = 0
    failed: int = 0
    new_events: int = 0
    detect: DetectStats = field(default_factory=DetectStats)

    def add(self, other: PollStats) -> None:
        """Accumulate another run's (or batch's) counts into this one."""
        self.claimed += other.claimed
        self.ok += other.ok
        self.failed += other.failed
        self.new_events += other.new_events
        self.detect.add(other.detect)


@dataclass
class Poller:
    """Claims due parcels in batches and runs each through its source, store and rules.

    ``concurrency`` bounds the source calls in flight over all batches; ``pipeline`` is how
    many claimed batches may be in flight at once. With ``store_in_thread`` the database
    work runs on three threads of the run's own, one each for claims, stores and
    detections (each takes one batch at a time), so the event loop keeps sending and
    reading requests while a statement waits on a database server, and a batch's store
    overlaps the previous batch's detection; worth it for PostgreSQL, where the driver
    waits on the network, not for SQLite, whose work is all in-process CPU (and whose
    writers take turns on one file lock).
    """

    engine: Engine
    router: SourceRouter
    detector: Detector
    worker_id: str
    batch_size: int = 200
    lease: timedelta = timedelta(minutes=2)
    concurrency: int = 64
    pipeline: int = 3
    store_in_thread: bool = False
    health: ProviderHealth = field(default_factory=ProviderHealth)

    async def run_once(
        self,
        now: datetime,
        max_batches: int = 10_000,
        *,
        stop: Callable[[], bool] | None = None,
        on_batch: Callable[[PollStats], None] | None = None,
    ) -> PollStats:
        """Poll every parcel due at ``now``, ``pipeline`` claim batches in flight at once.

        The next batch is claimed and its requests sent while earlier batches wait for
        their answers; each batch is stored and its changed orders detected as soon as its
        answers are in, then reported to ``on_batch``. Once ``stop()`` is true nothing more
        is claimed. A failing batch does not strand the others: they finish (and store what
        they got) before the error is raised.
        """
        stats = PollStats()
        gate = asyncio.Semaphore(self.concurrency)
        in_flight: set[asyncio.Task[None]] = set()
        batches_left = max_batches
        error: BaseException | None = None
        database: tuple[ThreadPoolExecutor, ThreadPoolExecutor] | None = None
        claims: ThreadPoolExecutor | None = None
        if self.store_in_thread:
            claims = ThreadPoolExecutor(max_workers=1, thread_name_prefix="poll-claim")
            database = (
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="poll-store"),
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="poll-detect"),
            )
        try:
            while True:
                while error is None and batches_left and len(in_flight) < self.pipeline:
                    if stop is not None and stop():
                        batches_left = 0
                        break
                    if claims is None:
                        claimed = self._claim(now)
                    else:
                        claimed = await self._claim_in(claims, now)
                    batches_left = batches_left - 1 if claimed else 0
                    if not claimed:
                        break
                    work = self._process(claimed, now, gate, database, stats, on_batch)
                    in_flight.add(asyncio.create_task(work))
                if not in_flight:
                    break
                done, in_flight = await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if error is None and task.exception() is not None:
                        error = task.exception()
        finally:
            if in_flight:  # cancelled from outside: let claimed batches finish their store
                await asyncio.gather(*in_flight, return_exceptions=True)
            # a store or detection already started always finishes
            for executor in (claims, *(database or ())):
                if executor is not None:
                    executor.shutdown(wait=True)
        if error is not None:
            raise error
        return stats

    def _claim(self, now: datetime) -> list[ClaimedShipment]:
        with UnitOfWork(self.engine) as uow:
            claimed = shipments_repo.claim_due_shipments(
                uow.conn, now, self.batch_size, self.lease, self.worker_id
            )
            uow.commit()
        return claimed

    async def _claim_in(self, claims: Executor, now: datetime) -> list[ClaimedShipment]:
        """:meth:`_claim` on the claim thread; a run cancelled meanwhile gives the parcels back.

        The claim's statement cannot be stopped halfway, so on cancellation it is waited for
        and what it leased is released at once rather than left until the lease expires.
        """
        loop = asyncio.get_running_loop()
        claiming = loop.run_in_executor(claims, self._claim, now)
        try:
            return await asyncio.shield(claiming)
        except asyncio.CancelledError:
            claimed = await claiming
            if claimed:
                await loop.run_in_executor(claims, self._release, claimed)
            raise

    def _release(self, claimed: list[ClaimedShipment]) -> None:
        with UnitOfWork(self.engine) as uow:
            shipments_repo.release_claims(uow.conn, [item.id for item in claimed])
            uow.commit()

    async def _process(
        self,
        claimed: list[ClaimedShipment],
        now: datetime,
        gate: asyncio.Semaphore,
        database: tuple[Executor, Executor] | None,
        total: PollStats,
        on_batch: Callable[[PollStats], None] | None,
    ) -> None:
        """Track one claimed batch, store the answers and detect on the orders that changed."""
        results = await self._track_all(claimed, gate)
        stats = PollStats(claimed=len(claimed))
        # a batch is stored, then detected; stores never interleave with each other, nor
        # detections: inline there is no await between them, and each thread takes one
        # batch at a time. A store may overlap another batch's detection: they write
        # disjoint tables (scans and parcels; orders, tickets and outbox) and take no lock
        # the other waits for (see _detect)
        if database is None:
            touched = self._store(claimed, results, now, stats)
            self._detect(touched, now, stats)
        else:
            loop = asyncio.get_running_loop()
            stores, detections = database
            touched = await loop.run_in_executor(stores, self._store, claimed, results, now, stats)
            await loop.run_in_executor(detections, self._detect, touched, now, stats)
        total.add(stats)
        if on_batch is not None:
            on_batch(stats)

    def _store(
        self,
        claimed: list[ClaimedShipment],
        results: list[TrackingResult],
        now: datetime,
        stats: PollStats,
    ) -> set[int]:
        """Store a batch's answers and commit; returns the orders whose parcels changed."""
        touched: set[int] = set()
        with UnitOfWork(self.engine) as uow:
            pairs = list(zip(claimed, results, strict=True))
            outcomes = ingest.save_results(uow.conn, pairs, now)
            for (item, result), outcome in zip(pairs, outcomes, strict=True):
                stats.new_events += outcome.new_events
                if outcome.ok:
                    stats.ok += 1
                else:
                    stats.failed += 1
                    _log.warning(
                        "tracking_failed",
                        provider=result.source,
                        courier=item.courier,
                        tracking_number=item.tracking_number,
                        shipment_id=item.id,
                        error_kind=result.error.kind.value if result.error else None,
                        error=result.error.message if result.error else None,
                    )
                if outcome.new_events or outcome.status is not item.status:
                    # unchanged parcels wait for the periodic pass (time-based rules)
                    touched.add(item.order_pk)
            uow.commit()
        return touched

    def _detect(self, touched: set[int], now: datetime, stats: PollStats) -> None:
        """Run the rules on the orders a store touched (``Detector.run`` commits).

        It locks the orders' rows and writes orders, tickets and the outbox; a store writes
        scans and parcels only and locks no order row (a parcel update that keeps its
        order key takes no lock on the order), so the two never wait for each other.
        """
        if not touched:  # nothing changed: no connection to take from the pool either
            return
        with UnitOfWork(self.engine) as uow:
            stats.detect.add(self.detector.run(uow, touched, now))

    async def _track_all(
        self, claimed: list[ClaimedShipment], gate: asyncio.Semaphore
    ) -> list[TrackingResult]:
        by_source: dict[str, list[int]] = defaultdict(list)
        sources: dict[str, TrackingSource] = {}
        results: list[TrackingResult | None] = [None] * len(claimed)
        for index, item in enumerate(claimed):
            source = self.router.route(item.courier)
            if source is None:
                results[index] = _failed(
                    item.query,
                    "none",
                    TrackingError(
                        ErrorKind.UNSUPPORTED_COURIER,
                        f"no tracking source is configured for courier {item.courier!r}",
                    ),
                )
                continue
            by_source[source.name].append(index)
            sources[source.name] = source

        async def run_chunk(source: TrackingSource, indexes: list[int]) -> None:
            queries = [claimed[i].query for i in indexes]
            async with gate:
                try:
                    answers = await source.track(queries)
                    if len(answers) != len(queries):
                        raise ValueError(
                            f"source returned {len(answers)} results for {len(queries)} queries"
                        )
                except Exception as exc:  # a buggy adapter must not sink the run
                    _log.exception("source_crashed", provider=source.name)
                    error = TrackingError(ErrorKind.PROVIDER, f"adapter error: {exc!r}", True)
                    answers = [_failed(q, source.name, error) for q in queries]
            self.health.observe(source.name, answers)
            for i, answer in zip(indexes, answers, strict=True):
                results[i] = answer

        tasks = []
        for name, indexes in by_source.items():
            source = sources[name]
            step = max(1, source.max_batch)
            for start in range(0, len(indexes), step):
                tasks.append(run_chunk(source, indexes[start : start + step]))
        await asyncio.gather(*tasks)
        return [r if r is not None else _lost(claimed[i].query) for i, r in enumerate(results)]


def _failed(query: TrackingQuery, source: str, error: TrackingError) -> TrackingResult:
    return TrackingResult(
        courier=query.courier, tracking_number=query.tracking_number, source=source, error=error
    )


def _lost(query: TrackingQuery) -> TrackingResult:
    return _failed(query, "none", TrackingError(ErrorKind.PROVIDER, "no result produced", True))
