"""Benchmark the whole pipeline against this machine's own ceiling (issue 8).

Usage: ``python tests/bench/run.py [--quick] [--db sqlite|postgresql] [--json OUT]``

Starts a fake Kuaidi100 as its own process, measures a bare HTTP client against it (the
ceiling), generates data in bulk, runs the real ``tracker run --once`` in child processes
(two poll cycles over a fresh poll set; the detection pass and the daily report over a
live set of 1,000,000 parcels, 100,000 with ``--quick``), and writes the figures as JSON
plus a short table. See ``tests/bench/README.md`` for what each figure means.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: make ``tests.bench`` importable
    sys.path.insert(0, str(ROOT))

from tests.bench.procs import start_fake_provider  # noqa: E402
from tests.bench.scenario import Shares  # noqa: E402
from tests.bench.stages import (  # noqa: E402
    MODES,
    Bench,
    effective_concurrency,
    stage_ceiling,
    stage_live,
    stage_poll,
)

__all__ = ["TARGETS", "main", "summarize"]

#: the first benchmark cycle's moment: a working Tuesday afternoon (no quiet hours)
START = datetime.fromisoformat("2026-10-20T14:00:00+08:00")
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/"

#: figure -> (target, True when lower is better)
TARGETS: dict[str, tuple[float, bool]] = {
    "polls_per_s": (2000, False),
    "ratio_to_ceiling": (0.5, False),
    "cpu_us_per_poll": (500, True),
    "peak_rss_mb": (150, True),
    "detect_pass_s": (5, True),
    "stalled_query_p95_ms": (100, True),
    "report_s": (1, True),
}


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _tree_digest() -> str:
    """A hash of every tracked source file as it is on disk (the tree may be uncommitted)."""
    digest = hashlib.sha1(usedforsecurity=False)
    for folder in ("carriers", "tracker"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            digest.update(str(path.relative_to(ROOT)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def _sum(items: list[dict[str, Any]], key: str) -> float:
    return float(sum(item.get(key) or 0 for item in items))


def summarize(out: dict[str, Any]) -> dict[str, Any]:
    """The headline figures from the stages' details (None where a stage did not run)."""
    head: dict[str, Any] = dict.fromkeys(TARGETS)
    ceiling = out.get("ceiling", {})
    before = ceiling.get("aiohttp", {}).get("requests_per_s")
    after = out.get("ceiling_after", {}).get("aiohttp", {}).get("requests_per_s")
    # bracketing the poll stage: the mean of the bare client's runs before and after it
    head["ceiling_polls_per_s"] = round((before + after) / 2, 1) if before and after else before
    head["ceiling_polls_per_s_before_after"] = [before, after] if before and after else None
    head["ceiling_httpx_aiohttp_polls_per_s"] = ceiling.get("httpx-aiohttp", {}).get(
        "requests_per_s"
    )
    rss: list[float] = []
    poll = out.get("poll")
    if poll and poll["cycles"]:
        cycles = poll["cycles"]
        polled = _sum(cycles, "polled")
        wall = _sum(cycles, "poll_wall_s")
        if polled and wall:
            head["polls_per_s"] = round(polled / wall, 1)
            head["cpu_us_per_poll"] = round(_sum(cycles, "run_cpu_s") / polled * 1e6, 1)
            head["cpu_us_per_poll_poll_job"] = round(_sum(cycles, "poll_cpu_s") / polled * 1e6, 1)
            after_start = [c["phases"].get("run_once", {}).get("cpu_s") for c in cycles]
            if all(after_start):
                head["cpu_us_per_poll_after_start"] = round(sum(after_start) / polled * 1e6, 1)
            process_cpu = sum(c["process"]["cpu_s"] for c in cycles)
            head["cpu_us_per_poll_whole_process"] = round(process_cpu / polled * 1e6, 1)
            cycle_wall = _sum(cycles, "run_wall_s")
            head["cycle_polls_per_s"] = round(polled / cycle_wall, 1) if cycle_wall else None
        rss += [c["process"]["maxrss_mb"] for c in cycles]
    if head["polls_per_s"] and head["ceiling_polls_per_s"]:
        head["ratio_to_ceiling"] = round(head["polls_per_s"] / head["ceiling_polls_per_s"], 3)
    live = out.get("live")
    if live:
        stalled = live.get("stalled_query", {})
        migrated = stalled["as_migrated"]
        # what the periodic pass runs to find stalled (and every other time-based) candidates:
        # orders whose stored next check has come; the silent-parcel scan is kept alongside
        head["stalled_query_p95_ms"] = migrated.get("due_orders", migrated["all_candidates"])[
            "p95_ms"
        ]
        head["silent_parcels_query_p95_ms"] = migrated["all_candidates"]["p95_ms"]
        without_index = stalled.get("without_index")
        if without_index:
            head["silent_parcels_query_p95_ms_without_index"] = without_index["all_candidates"][
                "p95_ms"
            ]
        head["detect_pass_s"] = live["detect"].get("detect_pass_s")
        head["detect_pass_extrapolated"] = bool(live["detect"].get("extrapolated"))
        head["report_s"] = live["report"].get("report_s")
        rss += [live["detect"]["process"]["maxrss_mb"], live["report"]["process"]["maxrss_mb"]]
    head["peak_rss_mb"] = max(rss) if rss else None
    return head


def _verdicts(head: dict[str, Any]) -> dict[str, Any]:
    verdicts = {}
    for name, (target, lower) in TARGETS.items():
        value = head.get(name)
        met = None if value is None else (value <= target if lower else value >= target)
        if name == "stalled_query_p95_ms" and value is not None:
            met = value < target
        verdicts[name] = {"value": value, "target": target, "met": met}
    return verdicts


def _table(result: dict[str, Any]) -> str:
    rows = [("figure", "value", "target", "")]
    for name, verdict in result["targets"].items():
        value = verdict["value"]
        shown = (
            "-" if value is None else f"{value:,.1f}" if isinstance(value, float) else str(value)
        )
        mark = {True: "ok", False: "MISSED", None: "n/a"}[verdict["met"]]
        sign = "<=" if TARGETS[name][1] else ">="
        rows.append((name, shown, f"{sign} {TARGETS[name][0]:,}", mark))
    for extra in ("ceiling_polls_per_s", "ceiling_httpx_aiohttp_polls_per_s"):
        value = result.get(extra)
        rows.append((extra, "-" if value is None else f"{value:,.1f}", "", ""))
    widths = [max(len(str(r[i])) for r in rows) for i in range(4)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    head = (
        f"{result['mode']} on {result['db']}: {result['shipments']:,} live shipments, "
        f"{result['poll_shipments']:,} polled x{result['cycles']}, concurrency "
        f"{result['concurrency']}, python {result['python']}, {result['git_sha'][:10]}"
    )
    return "\n".join([head, *lines, *(f"note: {n}" for n in result["notes"])])


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="100k live parcels; under 3 min")
    mode.add_argument("--toy", action="store_true", help="tiny sizes (the harness's own test)")
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument(
        "--pg-url", default=os.environ.get("TRACKER_BENCH_PG_URL", DEFAULT_PG),
        help="server URL; a fresh database is created per data set and dropped after",
    )  # fmt: skip
    parser.add_argument("--workdir", type=Path, help="logs and SQLite files (default artifacts/)")
    parser.add_argument("--stages", default="ceiling,poll,live")
    parser.add_argument("--keep", action="store_true", help="keep the databases afterwards")
    parser.add_argument("--profile", type=Path, help="record py-spy profiles of tracker runs here")
    parser.add_argument(
        "--profile-gil", action="store_true", help="with --profile: sample only the GIL's holder"
    )
    parser.add_argument("--poll-shipments", type=int)
    parser.add_argument("--live-shipments", type=int)
    parser.add_argument("--detect-deadline", type=float)
    parser.add_argument("--cycles", type=int, default=2)
    parser.add_argument("--batch-size", type=int, help="[poll] batch_size for the tracker")
    parser.add_argument("--poll-concurrency", type=int, help="[poll] concurrency")
    parser.add_argument("--pipeline", type=int, help="[poll] pipeline (claim batches in flight)")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    defaults = Shares()
    parser.add_argument("--stalled", type=float, default=defaults.stalled)
    parser.add_argument("--lost", type=float, default=defaults.lost)
    parser.add_argument("--misrouted", type=float, default=defaults.misrouted)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the selected stages, print the table, write the JSON; exit 1 if a stage broke."""
    args = _parse(argv)
    mode = "toy" if args.toy else "quick" if args.quick else "full"
    sizes = MODES[mode]
    overrides = {
        "poll_shipments": args.poll_shipments,
        "live_shipments": args.live_shipments,
        "detect_deadline_s": args.detect_deadline,
    }
    sizes = dataclasses.replace(sizes, **{k: v for k, v in overrides.items() if v})
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    workdir = args.workdir or ROOT / "artifacts" / "bench" / f"{stamp}-{args.db}-{mode}"
    workdir.mkdir(parents=True, exist_ok=True)
    shares = Shares(args.stalled, args.lost, args.misrouted)
    step = timedelta(hours=6)
    started = time.perf_counter()
    fake = start_fake_provider(
        [
            "--start",
            START.isoformat(),
            "--step-hours",
            "6",
            "--latency-ms",
            str(args.latency_ms),
            "--stalled",
            str(shares.stalled),
            "--lost",
            str(shares.lost),
            "--misrouted",
            str(shares.misrouted),
        ],
        workdir / "logs",
    )
    bench = Bench(
        db=args.db,
        sizes=sizes,
        workdir=workdir,
        pg_base=args.pg_url,
        fake=fake,
        start=START,
        step=step,
        shares=shares,
        cycles=args.cycles,
        batch_size=args.batch_size,
        poll_concurrency=args.poll_concurrency,
        pipeline=args.pipeline,
        profile_dir=args.profile,
        profile_gil=args.profile_gil,
        keep=args.keep,
    )
    concurrency = effective_concurrency(args.batch_size, args.poll_concurrency, args.pipeline)
    stages = {s.strip() for s in args.stages.split(",") if s.strip()}
    out: dict[str, Any] = {"loadavg": {"start": os.getloadavg()}}
    failed = False
    try:
        plan: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            ("ceiling", lambda: stage_ceiling(bench, concurrency)),
            ("poll", lambda: stage_poll(bench)),
            # the machine's speed drifts: the bare client again, right after the pipeline
            ("ceiling_after", lambda: stage_ceiling(bench, concurrency, ("aiohttp",))),
            ("live", lambda: stage_live(bench)),
        ]
        if {"ceiling", "poll"} <= stages:
            stages.add("ceiling_after")
        for name, run in plan:
            if name in stages:
                stage_started = time.perf_counter()
                out[name] = run()
                out[name]["stage_s"] = round(time.perf_counter() - stage_started, 1)
                out["loadavg"][f"after_{name}"] = os.getloadavg()
    except Exception as exc:
        failed = True
        bench.notes.append(f"harness error: {exc!r}")
        raise
    finally:
        fake.stop()
        head = summarize(out)
        result: dict[str, Any] = {
            "mode": mode,
            "db": args.db,
            "shipments": sizes.live_shipments if "live" in stages else 0,
            "poll_shipments": sizes.poll_shipments if "poll" in stages else 0,
            "cycles": args.cycles,
            "concurrency": concurrency,
            "batch_size": args.batch_size,
            "poll_concurrency": args.poll_concurrency,
            "pipeline": args.pipeline,
            "latency_ms": args.latency_ms,
            "shares": dataclasses.asdict(shares),
            "python": platform.python_version(),
            "git_sha": _git("rev-parse", "HEAD"),
            "git_dirty": bool(_git("status", "--porcelain")),
            "tree_digest": _tree_digest(),
            "cpus": os.cpu_count(),
            "started_at": stamp,
            "duration_s": round(time.perf_counter() - started, 1),
            "workdir": str(workdir),
            **head,
            "targets": _verdicts(head),
            "notes": bench.notes,
            "details": out,
        }
        if args.json:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str))
        print(_table(result))
    broken = _broken_children(out)
    for problem in broken:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if failed or broken else 0


def _broken_children(out: dict[str, Any]) -> list[str]:
    """Tracker runs that crashed or failed (a detection run stopped by its deadline is fine)."""
    problems = []
    for cycle in out.get("poll", {}).get("cycles", []):
        if cycle.get("exit_code") != 0:
            problems.append(
                f"poll cycle at {cycle['now']} failed: see {cycle['process']['stderr']}"
            )
    live = out.get("live", {})
    for name in ("report", "detect"):
        stage = live.get(name)
        if stage is not None and (stage["process"]["returncode"] != 0 or "error" in stage):
            problems.append(f"{name} run failed: see {stage['process']['stderr']}")
    detect = live.get("detect")
    if detect is not None and not detect.get("orders_checked"):
        problems.append(f"detection run checked no order: see {detect['process']['stderr']}")
    return problems


if __name__ == "__main__":
    sys.exit(main())
