"""Micro-benchmark of the poller's database work: claim and store, CPU per parcel.

Loads the benchmark's poll set into a fresh SQLite file and/or PostgreSQL database, then
for each poll cycle claims every due parcel in batches (``claim_due_shipments``) and stores
realistic Kuaidi100 answers for them (``save_results``), inside a transaction that is rolled
back, so every repeat starts from the same state; the best of ``--repeats`` counts. Answers
come from :class:`tests.bench.fake_provider.FakeKuaidi100` (no server) through the real
parser, computed once per cycle outside the timed part. Between cycles the first
implementation's store is committed, so later cycles see the whole history again with 1-3
new scans per parcel, as the real poller does.

``--compare DIR`` also times a copy of the store modules kept in ``DIR`` (a package named
``oldstore`` holding ``ingest.py``, ``shipments_repo.py`` and ``sql.py``, importing each
other) and checks that both store exactly the same rows.

Run: ``.venv/bin/python -m tests.bench.store_micro --db sqlite --db postgresql``.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import hashlib
import importlib
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from sqlalchemy.engine import Engine

from carriers.kuaidi100.adapter import place
from carriers.kuaidi100.parse import parse_query
from carriers.kuaidi100.sign import query_form
from carriers.model import TrackingResult
from tests.bench.datagen import load_poll_set, migrate_fresh
from tests.bench.fake_provider import FakeKuaidi100
from tests.bench.procs import fresh_database
from tests.bench.run import DEFAULT_PG, START
from tests.bench.scenario import Shares
from tracker.store.uow import UnitOfWork, make_engine

__all__ = ["Impl", "main"]

_STEP = timedelta(hours=6)
_LEASE = timedelta(minutes=5)
_TABLES = {
    "shipments": "id",
    "tracking_events": "shipment_id, dedupe_key",
}


@dataclass
class Impl:
    """One implementation of the store functions under test."""

    name: str
    repo: ModuleType
    ingest: ModuleType


@dataclass
class Figures:
    """Best CPU and wall time of one implementation in one cycle."""

    parcels: int = 0
    claim_cpu: float = float("inf")
    save_cpu: float = float("inf")
    claim_wall: float = float("inf")
    save_wall: float = float("inf")
    events: int = 0
    new_events: int = 0


def _answers(
    fake: FakeKuaidi100, cache: dict[str, TrackingResult], claimed: list[Any]
) -> list[TrackingResult]:
    """The answer of the current cycle for each claimed parcel (asked of the fake once)."""
    out = []
    for c in claimed:
        result = cache.get(c.tracking_number)
        if result is None:
            q = c.query
            form = query_form(
                "BENCH",
                "key",
                q.courier,
                q.tracking_number,
                q.phone,
                place(q.origin),
                place(q.destination),
            )
            body = fake.answer(form)
            result = parse_query(
                body, courier=c.courier, tracking_number=c.tracking_number, source="kuaidi100"
            )
            cache[c.tracking_number] = result
        out.append(result)
    return out


def _digest(uow: UnitOfWork, claims: str) -> str:
    """A hash of the claims and of the two tables the store writes, as the driver sees them."""
    h = hashlib.sha256(claims.encode())
    for table, order in _TABLES.items():
        for row in uow.conn.exec_driver_sql(f"SELECT * FROM {table} ORDER BY {order}"):
            cells = list(row)
            if table == "tracking_events":
                cells = cells[1:]  # the surrogate id depends on insert order only
            h.update(repr(cells).encode())
    return h.hexdigest()


def _one_pass(
    engine: Engine,
    impl: Impl,
    now: Any,
    batch: int,
    fake: FakeKuaidi100,
    cache: dict[str, TrackingResult],
    *,
    commit: bool,
    digest: bool,
) -> tuple[Figures, str | None]:
    """Claim everything due at ``now`` and store answers for it; times both parts."""
    fig = Figures(claim_cpu=0, save_cpu=0, claim_wall=0, save_wall=0)
    batches = []
    with UnitOfWork(engine) as uow:
        while True:
            gc.collect()
            c0, w0 = time.process_time(), time.perf_counter()
            claimed = impl.repo.claim_due_shipments(uow.conn, now, batch, _LEASE, "bench")
            fig.claim_cpu += time.process_time() - c0
            fig.claim_wall += time.perf_counter() - w0
            if not claimed:
                break
            batches.append(claimed)
            fig.parcels += len(claimed)
        # what the claims returned counts as stored: the same parcels, fields and order
        claims = repr([dataclasses.astuple(c) for claimed in batches for c in claimed])
        answers = [_answers(fake, cache, claimed) for claimed in batches]
        for claimed, results in zip(batches, answers, strict=True):
            pairs = list(zip(claimed, results, strict=True))
            fig.events += sum(len(r.events) for r in results)
            gc.collect()
            c0, w0 = time.process_time(), time.perf_counter()
            outcomes = impl.ingest.save_results(uow.conn, pairs, now)
            fig.save_cpu += time.process_time() - c0
            fig.save_wall += time.perf_counter() - w0
            fig.new_events += sum(o.new_events for o in outcomes)
        seen = _digest(uow, claims) if digest else None
        if commit:
            uow.commit()
        else:
            uow.rollback()
    return fig, seen


def _best(a: Figures, b: Figures) -> Figures:
    """Per figure the lower of two runs (same parcels and events)."""
    return Figures(
        parcels=b.parcels,
        claim_cpu=min(a.claim_cpu, b.claim_cpu),
        save_cpu=min(a.save_cpu, b.save_cpu),
        claim_wall=min(a.claim_wall, b.claim_wall),
        save_wall=min(a.save_wall, b.save_wall),
        events=b.events,
        new_events=b.new_events,
    )


def run_db(kind: str, impls: list[Impl], args: argparse.Namespace) -> list[dict[str, Any]]:
    """All cycles on one fresh database; one row of figures per cycle and implementation."""
    rows: list[dict[str, Any]] = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        fresh_database(kind, "micro", Path(tmp), args.pg) as url,
    ):
        migrate_fresh(url)
        load_poll_set(url, args.n, START, Shares())
        engine = make_engine(url)
        fake = FakeKuaidi100(customer="BENCH", key="key", shares=Shares(), start=START, step=_STEP)
        try:
            for cycle in range(args.cycles):
                now = START + _STEP * cycle
                cache: dict[str, TrackingResult] = {}
                best = {impl.name: Figures() for impl in impls}
                digests: dict[str, str | None] = {}
                for rep in range(args.repeats):
                    for impl in impls:
                        fig, seen = _one_pass(
                            engine,
                            impl,
                            now,
                            args.batch,
                            fake,
                            cache,
                            commit=False,
                            digest=rep == 0,
                        )
                        best[impl.name] = _best(best[impl.name], fig)
                        if rep == 0:
                            digests[impl.name] = seen
                if len(set(digests.values())) != 1:
                    raise SystemExit(f"{kind} cycle {cycle + 1}: stored rows differ: {digests}")
                for name, fig in best.items():
                    n = max(fig.parcels, 1)
                    rows.append(
                        {
                            "db": kind,
                            "cycle": cycle + 1,
                            "impl": name,
                            "parcels": fig.parcels,
                            "events_per_parcel": round(fig.events / n, 1),
                            "new_per_parcel": round(fig.new_events / n, 1),
                            "claim_cpu_us": round(fig.claim_cpu / n * 1e6, 1),
                            "save_cpu_us": round(fig.save_cpu / n * 1e6, 1),
                            "claim_wall_us": round(fig.claim_wall / n * 1e6, 1),
                            "save_wall_us": round(fig.save_wall / n * 1e6, 1),
                        }
                    )
                _one_pass(engine, impls[0], now, args.batch, fake, cache, commit=True, digest=False)
        finally:
            engine.dispose()
    return rows


def _print(rows: list[dict[str, Any]]) -> None:
    """A plain table of the figures."""
    cols = list(rows[0])
    print("  ".join(f"{c:>17}" for c in cols))
    for row in rows:
        print("  ".join(f"{row[c]!s:>17}" for c in cols))


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run each database and print CPU and wall µs per parcel."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", action="append", choices=("sqlite", "postgresql"))
    parser.add_argument("--n", type=int, default=2000, help="parcels in the poll set")
    parser.add_argument("--batch", type=int, default=200, help="claim batch size")
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pg", default=DEFAULT_PG, help="PostgreSQL server URL")
    parser.add_argument("--compare", help="folder holding an oldstore package to compare with")
    args = parser.parse_args(argv)
    impls = [
        Impl(
            "new",
            importlib.import_module("tracker.store.shipments_repo"),
            importlib.import_module("tracker.store.ingest"),
        )
    ]
    if args.compare:
        sys.path.insert(0, args.compare)
        impls.append(
            Impl(
                "old",
                importlib.import_module("oldstore.shipments_repo"),
                importlib.import_module("oldstore.ingest"),
            )
        )
    rows: list[dict[str, Any]] = []
    for kind in args.db or ["sqlite"]:
        rows += run_db(kind, impls, args)
    _print(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
