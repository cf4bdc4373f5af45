"""Micro-benchmark: CPU per order of ``Detector.run`` as the poller runs it, old code vs new.

Usage (from the repository root, with the project's interpreter)::

    python tests/bench/detect_micro.py --old /tmp/detect_old [--db sqlite,postgresql]

``--old`` is a directory holding another copy of ``tracker/`` and ``carriers/`` (e.g. the
modules as they were before a change). A base database per backend gets the bench's live
set (:func:`tests.bench.live_set.load_live_set`: ``--orders`` orders with one parcel each,
their scans and one ticket per order, some open). Each repeat copies it (a file copy on
SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL) and runs a child process per code
version, which times ``Detector.run`` over every order in batches of ``--batch`` (the
poller's claim size) with ``time.process_time``: a first pass at the live set's clock
(opens tickets, notices, alerts) and a second one six hours later (mostly refreshes). The
best of ``--repeats`` per version is reported as CPU µs per order. Each child also prints
a digest of what the passes left in the database (tickets, history, outbox, schedules):
the versions must agree, or the change altered an outcome.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
AGAIN = timedelta(hours=6)
# what a pass leaves behind; ids included: both versions write rows in the same order
_DIGEST_QUERIES = (
    "SELECT id, order_pk, shipment_id, courier, tracking_number, kind, severity, status, "
    "evidence, suggested_action, resolution, reopen_blocked, detections, opened_at, "
    "updated_at, resolved_at FROM tickets ORDER BY id",
    "SELECT ticket_id, at, action, severity, note, actor FROM ticket_log ORDER BY id",
    "SELECT ticket_id, order_pk, channel, recipient, template, body, idempotency_key, status, "
    "scheduled_for FROM notices ORDER BY id",
    "SELECT ticket_id, event_type, endpoint, payload, idempotency_key FROM alerts ORDER BY id",
    "SELECT id, active, next_check_at, updated_at FROM orders ORDER BY id",
)


def _child(url: str, batch: int, loops: int) -> dict[str, Any]:
    """Time the two passes in this process (whatever ``tracker`` the path gives)."""
    from sqlalchemy import text  # the child's sys.path decides which tracker

    from tracker.bootstrap import build_app
    from tracker.settings import Settings

    settings = Settings.model_validate(
        {"timezone": "Asia/Shanghai", "database": {"url": url}, "alerts": {}}
    )
    app = build_app(settings)
    detector = app.detector
    with app.engine.connect() as conn:
        pks = [int(r[0]) for r in conn.execute(text("SELECT id FROM orders ORDER BY id"))]
    found: dict[str, Any] = {"orders": len(pks)}
    for name, now in (("first", NOW), ("again", NOW + AGAIN)):
        best = float("inf")
        for _ in range(loops):  # loops > 1 only for profiling: later loops find less to do
            cpu = 0.0
            counts: dict[str, int] = {}
            for start in range(0, len(pks), batch):
                with app.uow() as uow:
                    t0 = time.process_time()
                    stats = detector.run(uow, pks[start : start + batch], now)
                    cpu += time.process_time() - t0
                for key in ("opened", "updated", "unchanged", "resolved", "notices", "alerts"):
                    counts[key] = counts.get(key, 0) + getattr(stats, key)
            best = min(best, cpu)
        found[name] = {"cpu_us_per_order": round(best / len(pks) * 1e6, 1), **counts}
    digest = hashlib.sha256()
    with app.engine.connect() as conn:
        for query in _DIGEST_QUERIES:
            for row in conn.execute(text(query)):
                digest.update(repr(tuple(_plain(v) for v in row)).encode())
    found["digest"] = digest.hexdigest()[:16]
    app.close()
    return found


def _plain(value: Any) -> Any:
    """Driver values in one form for both backends (JSON text vs dicts, times, flags)."""
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.dumps(json.loads(value), sort_keys=True, ensure_ascii=False)
        except ValueError:
            return value
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    return value


def _run_child(root: Path, url: str, batch: int) -> dict[str, Any]:
    """One timed child with ``root`` first on its path."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    cmd = [sys.executable, __file__, "--child", url, "--batch", str(batch)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    """Build the base databases, then alternate old and new children per repeat."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--child", metavar="URL")
    parser.add_argument("--old", type=Path)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--loops", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/detect_micro"))
    parser.add_argument(
        "--pg-url",
        default=os.environ.get(
            "TRACKER_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/"
        ),
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.batch, args.loops)))
        return
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from tests.bench.datagen import migrate_fresh
    from tests.bench.live_set import load_live_set

    versions = {"new": ROOT, **({"old": args.old.resolve()} if args.old else {})}
    args.workdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}
    for db in args.db.split(","):
        results: dict[str, list[dict[str, Any]]] = {v: [] for v in versions}
        tag = uuid.uuid4().hex[:8]
        admin = None
        if db == "sqlite":
            base = args.workdir / "base.db"
            base.unlink(missing_ok=True)
            base_url = f"sqlite:///{base}"
        else:
            admin = create_engine(args.pg_url, isolation_level="AUTOCOMMIT")
            base_name = f"detect_micro_base_{tag}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{base_name}"'))
            base_url = make_url(args.pg_url).set(database=base_name).render_as_string(False)
        try:
            migrate_fresh(base_url)
            load_live_set(base_url, args.orders, NOW)
            for repeat in range(args.repeats):
                order = list(versions) if repeat % 2 == 0 else list(reversed(versions))
                for version in order:
                    if db == "sqlite":
                        copy = args.workdir / f"run-{version}.db"
                        shutil.copyfile(base, copy)
                        url = f"sqlite:///{copy}"
                        results[version].append(_run_child(versions[version], url, args.batch))
                        copy.unlink()
                        continue
                    assert admin is not None
                    name = f"detect_micro_{version}_{tag}"
                    with admin.connect() as conn:
                        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{base_name}"'))
                    url = make_url(args.pg_url).set(database=name).render_as_string(False)
                    try:
                        results[version].append(_run_child(versions[version], url, args.batch))
                    finally:
                        with admin.connect() as conn:
                            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.execute(text(f'DROP DATABASE IF EXISTS "{base_name}" WITH (FORCE)'))
                admin.dispose()
        summary: dict[str, Any] = {}
        for version, runs in results.items():
            summary[version] = {
                "first_us": min(r["first"]["cpu_us_per_order"] for r in runs),
                "again_us": min(r["again"]["cpu_us_per_order"] for r in runs),
                "first_runs": [r["first"]["cpu_us_per_order"] for r in runs],
                "again_runs": [r["again"]["cpu_us_per_order"] for r in runs],
                "counts": {
                    k: {c: n for c, n in runs[0][k].items() if c != "cpu_us_per_order"}
                    for k in ("first", "again")
                },
                "digests": sorted({r["digest"] for r in runs}),
            }
        report[db] = summary
        print(json.dumps({db: summary}, ensure_ascii=False), flush=True)
    digests = {db: {v: s["digests"] for v, s in summary.items()} for db, summary in report.items()}
    print(json.dumps({"digests": digests}))


if __name__ == "__main__":
    main()
