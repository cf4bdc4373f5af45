"""The machine's ceiling: a bare async HTTP client polling the fake provider, nothing else.

Run as its own process by the harness, once per client, with the same concurrency the
tracker gets: ``aiohttp`` directly, ``httpx-aiohttp`` (httpx's API on aiohttp's pool, built
by :func:`carriers.transport.make_client` exactly as the tracker builds it) and, for
reference, ``httpx`` on its default transport. Each request is a signed Kuaidi100 query
form like the adapter's; the body is read but not parsed. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx

from carriers.kuaidi100.sign import query_form
from carriers.transport import make_client
from tests.bench.procs import RESULT_PREFIX
from tests.bench.scenario import ORIGINS, PLACES, number_for

__all__ = ["CLIENTS", "main", "run_ceiling"]

CLIENTS = ("aiohttp", "httpx-aiohttp", "httpx")

Send = Callable[[dict[str, str]], Awaitable[int]]


def _forms(count: int, customer: str, key: str) -> list[dict[str, str]]:
    """Signed query forms for ``count`` distinct ceiling-only numbers (prefix ``C``)."""
    forms = []
    for i in range(count):
        courier, number = number_for(i, prefix="C")
        origin, dest = ORIGINS[i % len(ORIGINS)], PLACES[i % len(PLACES)]
        forms.append(
            query_form(
                customer, key, courier, number, "13800138000", origin.address(), dest.address()
            )
        )
    return forms


async def _drive(send: Send, forms: list[dict[str, str]], total: int, concurrency: int) -> int:
    """Send ``total`` requests with ``concurrency`` in flight; returns how many failed."""
    next_index = 0
    errors = 0

    async def worker() -> None:
        nonlocal next_index, errors
        while next_index < total:
            form = forms[next_index % len(forms)]
            next_index += 1
            try:
                status = await send(form)
            except Exception:  # a refused connection counts, it must not stop the run
                errors += 1
                continue
            errors += status != 200

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return errors


async def run_ceiling(
    url: str, client: str, *, requests: int, concurrency: int, customer: str, key: str
) -> dict[str, object]:
    """Measure one client: requests per second and client CPU per request."""
    forms = _forms(max(1, requests // 2), customer, key)  # every number is polled twice
    target = url.rstrip("/") + "/poll/query.do"
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if client == "aiohttp":
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def send_aiohttp(form: dict[str, str]) -> int:
                async with session.post(target, data=form) as response:
                    await response.read()
                    return response.status

            errors = await _drive(send_aiohttp, forms, requests, concurrency)
    else:
        if client == "httpx-aiohttp":
            http = make_client(max_connections=concurrency)
        else:
            limits = httpx.Limits(
                max_connections=concurrency, max_keepalive_connections=concurrency
            )
            http = httpx.AsyncClient(limits=limits, timeout=30.0)
        async with http:

            async def send_httpx(form: dict[str, str]) -> int:
                response = await http.post(target, data=form)
                return response.status_code

            errors = await _drive(send_httpx, forms, requests, concurrency)
    wall = time.perf_counter() - wall0
    cpu = time.process_time() - cpu0
    return {
        "client": client,
        "requests": requests,
        "concurrency": concurrency,
        "errors": errors,
        "wall_s": round(wall, 3),
        "requests_per_s": round(requests / wall, 1),
        "cpu_s": round(cpu, 3),
        "cpu_us_per_request": round(cpu / requests * 1e6, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, print the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--client", choices=CLIENTS, default="aiohttp")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--customer", default="BENCHCUSTOMER")
    parser.add_argument("--key", default="benchkey")
    args = parser.parse_args(argv)
    result = asyncio.run(
        run_ceiling(
            args.url,
            args.client,
            requests=args.requests,
            concurrency=args.concurrency,
            customer=args.customer,
            key=args.key,
        )
    )
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
