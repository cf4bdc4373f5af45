"""CPU per Kuaidi100 poll request: the real source vs httpx on our transport vs bare aiohttp.

Starts the benchmark's fake Kuaidi100 (or uses ``--url``) and, on uvloop as the tracker
runs, sends ``--requests`` distinct queries per mode with ``--concurrency`` in flight:

* ``aiohttp``: a bare aiohttp session posting the signed form (the machine's floor);
* ``httpx``: ``make_client().post(...)`` (httpx's API on our aiohttp transport);
* ``send``: :func:`carriers.transport.send` with the form built as the source builds it
  (transport, guard and retry, no parsing);
* ``source``: ``Kuaidi100Source.track`` in batches of ``max_batch``, as the poller calls it
  (signing, transport, guard, parsing).

Modes are interleaved over ``--rounds`` rounds and the best and median process CPU µs per
request of each are printed (CPU time of this process only: the fake runs in its own).
Run: ``python -m tests.bench.transport_micro [--requests 3000] [--rounds 5]``; put an older
``carriers`` package first on ``PYTHONPATH`` to compare versions on the same machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from tempfile import TemporaryDirectory

import aiohttp

from carriers.kuaidi100.adapter import Kuaidi100Source, place
from carriers.kuaidi100.sign import query_form
from carriers.model import Location, TrackingQuery
from carriers.transport import GuardRegistry, make_client, send
from carriers.transport.form import form_request
from tests.bench.procs import start_fake_provider
from tests.bench.scenario import ORIGINS, PLACES, number_for
from tracker.eventloop import loop_factory

__all__ = ["MODES", "main", "measure"]

MODES = ("aiohttp", "httpx", "send", "source")
CUSTOMER, KEY = "BENCHCUSTOMER", "benchkey"
PATH = "/poll/query.do"


def _queries(count: int, prefix: str) -> list[TrackingQuery]:
    """``count`` distinct benchmark queries (phone and from/to hints, as the tracker sends)."""
    out = []
    for i in range(count):
        courier, number = number_for(i, prefix=prefix)
        origin, dest = ORIGINS[i % len(ORIGINS)], PLACES[i % len(PLACES)]
        out.append(
            TrackingQuery(
                courier,
                number,
                phone="13800138000",
                origin=Location(province=origin.province, city=origin.city),
                destination=Location(province=dest.province, city=dest.city),
            )
        )
    return out


def _form(query: TrackingQuery) -> dict[str, str]:
    return query_form(
        CUSTOMER,
        KEY,
        query.courier,
        query.tracking_number,
        query.phone,
        place(query.origin),
        place(query.destination),
    )


async def _pool(
    items: list[TrackingQuery],
    concurrency: int,
    one: Callable[[TrackingQuery], Awaitable[bool]],
) -> int:
    """Run ``one`` over ``items`` with ``concurrency`` in flight; returns how many failed."""
    queue = iter(items)
    failed = 0

    async def worker() -> None:
        nonlocal failed
        for item in queue:
            failed += not await one(item)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return failed


async def _batches(source: Kuaidi100Source, items: list[TrackingQuery], concurrency: int) -> int:
    """``source.track`` over ``items`` in ``max_batch`` chunks, about ``concurrency`` in flight."""
    step = source.max_batch
    chunks = [items[i : i + step] for i in range(0, len(items), step)]
    gate = asyncio.Semaphore(max(1, concurrency // step))
    failed = 0

    async def run(chunk: list[TrackingQuery]) -> None:
        nonlocal failed
        async with gate:
            failed += sum(not r.ok for r in await source.track(chunk))

    await asyncio.gather(*(run(c) for c in chunks))
    return failed


async def measure(
    url: str, *, requests: int, rounds: int, concurrency: int, modes: tuple[str, ...]
) -> dict[str, dict[str, float]]:
    """Best and median CPU µs per request of every mode, interleaved over ``rounds``."""
    options = {
        "base_url": url,
        "customer": CUSTOMER,
        "key": KEY,
        "requests_per_s": 1_000_000,
        "burst": 1_000_000,
    }
    source = Kuaidi100Source("kuaidi100", options, guards=GuardRegistry())
    client = make_client(max_connections=concurrency)
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
    target = url.rstrip("/") + PATH
    timeout_ext = {"timeout": {"connect": 5.0, "read": 10.0, "write": 10.0, "pool": 10.0}}

    async def via_aiohttp(query: TrackingQuery) -> bool:
        async with session.post(target, data=_form(query)) as response:
            await response.read()
            return response.status == 200

    async def via_httpx(query: TrackingQuery) -> bool:
        response = await client.post(target, data=_form(query))
        return response.status_code == 200

    async def via_send(query: TrackingQuery) -> bool:
        request = form_request(client, source._url(PATH), _form(query), timeout_ext)
        reply = await send(client, request, source.guard, clock=source.now)
        return reply.status == 200

    cpu: dict[str, list[float]] = {m: [] for m in modes}
    errors = dict.fromkeys(modes, 0)
    try:
        # a warm-up round opens the connections and does the lazy imports
        for round_no in range(rounds + 1):
            for mode in modes:
                items = _queries(requests, f"{mode[0].upper()}{round_no}")
                start = time.process_time()
                if mode == "source":
                    failed = await _batches(source, items, concurrency)
                else:
                    one = {"aiohttp": via_aiohttp, "httpx": via_httpx, "send": via_send}[mode]
                    failed = await _pool(items, concurrency, one)
                used = time.process_time() - start
                if round_no:
                    cpu[mode].append(used / requests * 1e6)
                    errors[mode] += failed
    finally:
        await session.close()
        await client.aclose()
        await source.aclose()
    return {
        m: {
            "best_us": round(min(v), 1),
            "median_us": round(statistics.median(v), 1),
            "errors": errors[m],
        }
        for m, v in cpu.items()
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, start the fake unless ``--url`` is given, measure, print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running fake provider (default: start one)")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--latency-ms", type=float, default=5.0)
    parser.add_argument("--modes", default=",".join(MODES))
    args = parser.parse_args(argv)
    modes = tuple(m for m in args.modes.split(",") if m)
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}")

    def run(url: str) -> dict[str, dict[str, float]]:
        with asyncio.Runner(loop_factory=loop_factory()) as runner:
            return runner.run(
                measure(
                    url,
                    requests=args.requests,
                    rounds=args.rounds,
                    concurrency=args.concurrency,
                    modes=modes,
                )
            )

    if args.url:
        result = run(args.url)
    else:
        with TemporaryDirectory() as tmp:
            fake = start_fake_provider(
                [
                    "--port",
                    "0",
                    "--latency-ms",
                    str(args.latency_ms),
                    "--start",
                    "2026-10-20T14:00:00+08:00",
                ],
                Path(tmp),
            )
            try:
                result = run(fake.url)
            finally:
                fake.stop()
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
