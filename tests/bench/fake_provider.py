"""A local fake of Kuaidi100's real-time query API, run as its own process by the benchmark.

``POST /poll/query.do`` takes the form fields ``customer``, ``sign`` and ``param`` exactly
as Kuaidi100 does (``sign = MD5(param + key + customer)``, upper-case hex) and answers with
a ``resultv2=4`` tracking body (``data[]`` newest first, ``statusCode``, ``areaName`` on
about half the scans, Chinese texts naming hubs and stations) after a fixed latency slept
with ``asyncio.sleep``. Every poll of a number shows 1-3 scans more than the previous poll
of that number did (the whole history, like the real API), until the parcel is delivered;
stalled and lost parcels show their few old scans and never move again (see
:mod:`tests.bench.scenario`). ``GET /stats`` reports requests served and the server's own
CPU time, so the harness can tell when the fake itself is the bottleneck.

Run: ``python -m tests.bench.fake_provider --port 0 --start 2026-10-20T14:00:00+08:00``;
it prints ``READY <port>`` on stdout once listening and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import parse_qsl

from aiohttp import web

from tests.bench.scenario import (
    CHINA_TZ,
    ORIGINS,
    PLACES,
    Fate,
    RouteStep,
    Shares,
    fate_of,
    place_by_text,
    reveal_times,
    route_for,
    seed_of,
)

__all__ = ["FakeKuaidi100", "build_app", "main"]

_NAMES = {"103": "已揽收", "1002": "干线", "1001": "到达派件城市", "5": "派件", "301": "本人签收"}
_FAMILY = {"103": "1", "1002": "0", "1001": "0", "5": "5", "301": "3"}


@dataclass(slots=True)
class _Parcel:
    """What the fake remembers about one number between polls."""

    fate: str
    steps: list[RouteStep]
    times: list[datetime] = field(default_factory=list)
    polls: int = 0
    body: bytes = b""


def _md5_upper(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest().upper()


def _error(code: str, message: str) -> bytes:
    return json.dumps(
        {"result": False, "returnCode": code, "message": message}, ensure_ascii=False
    ).encode()


class FakeKuaidi100:
    """The fake's state and answers; no I/O here, so tests can drive it directly."""

    def __init__(
        self,
        *,
        customer: str,
        key: str,
        shares: Shares,
        start: datetime,
        step: timedelta,
    ) -> None:
        self.customer = customer
        self.key = key
        self.shares = shares
        self.start = start
        self.step = step
        self.parcels: dict[str, _Parcel] = {}
        self.requests = 0

    def answer(self, form: dict[str, str]) -> bytes:
        """The body for one ``poll/query.do`` form (advances that number's history)."""
        self.requests += 1
        param = form.get("param", "")
        if form.get("customer") != self.customer:
            return _error("400", "找不到对应公司或账号未充值")
        if form.get("sign", "").upper() != _md5_upper(param + self.key + self.customer):
            return _error("503", "验证签名失败")
        try:
            query = json.loads(param)
            com, number = str(query["com"]), str(query["num"])
        except (ValueError, KeyError, TypeError):
            return _error("400", "提交数据不完整")
        parcel = self.parcels.get(number)
        if parcel is None:
            parcel = self._new_parcel(number, query.get("from"), query.get("to"))
            self.parcels[number] = parcel
        return self._poll(number, com, parcel)

    def _new_parcel(self, number: str, origin_hint: object, dest_hint: object) -> _Parcel:
        seed = seed_of(number)
        origin = place_by_text(origin_hint if isinstance(origin_hint, str) else None)
        dest = place_by_text(dest_hint if isinstance(dest_hint, str) else None)
        o_place = origin[0] if origin else ORIGINS[seed % len(ORIGINS)]
        d_place, district = dest if dest else (PLACES[seed % len(PLACES)], None)
        fate = fate_of(number, self.shares)
        return _Parcel(fate, route_for(number, o_place, d_place, district, fate))

    def _poll(self, number: str, com: str, parcel: _Parcel) -> bytes:
        parcel.polls += 1
        shown = len(parcel.times)
        if parcel.fate in (Fate.STALLED, Fate.LOST):
            more = len(parcel.steps) - shown if parcel.polls == 1 else 0
        else:
            more = 1 + random.Random(seed_of(f"new:{number}:{parcel.polls}")).randrange(3)
            more = min(more, len(parcel.steps) - shown)
        if more <= 0 and parcel.body:
            return parcel.body
        parcel.times += reveal_times(number, parcel.fate, parcel.polls, more, self.start, self.step)
        parcel.body = self._body(number, com, parcel)
        return parcel.body

    @staticmethod
    def _body(number: str, com: str, parcel: _Parcel) -> bytes:
        data = []
        for step, when in zip(parcel.steps, parcel.times, strict=False):
            stamp = when.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M:%S")
            item = {
                "time": stamp,
                "ftime": stamp,
                "context": step.text,
                "status": _NAMES[step.code],
                "statusCode": step.code,
            }
            if step.area:
                item["areaName"] = step.area
            data.append(item)
        data.reverse()  # newest first, as documented
        newest = parcel.steps[len(parcel.times) - 1].code
        body = {
            "message": "ok",
            "nu": number,
            "ischeck": "1" if newest == "301" else "0",
            "condition": "F00",
            "com": com,
            "status": "200",
            "state": _FAMILY[newest],
            "data": data,
        }
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def build_app(fake: FakeKuaidi100, latency_s: float) -> web.Application:
    """The aiohttp application serving ``fake`` with ``latency_s`` per query."""

    async def query(request: web.Request) -> web.Response:
        # parse_qsl is several times cheaper than aiohttp's multipart-capable request.post()
        form = dict(parse_qsl((await request.read()).decode("utf-8")))
        body = fake.answer(form)
        await asyncio.sleep(latency_s)
        return web.Response(body=body, content_type="application/json", charset="utf-8")

    async def stats(_request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": fake.requests,
                "parcels": len(fake.parcels),
                "cpu_s": time.process_time(),
                "monotonic_s": time.monotonic(),
            }
        )

    app = web.Application()
    app.router.add_post("/poll/query.do", query)
    app.router.add_get("/stats", stats)
    return app


async def _serve(args: argparse.Namespace) -> None:
    fake = FakeKuaidi100(
        customer=args.customer,
        key=args.key,
        shares=Shares(args.stalled, args.lost, args.misrouted),
        start=datetime.fromisoformat(args.start),
        step=timedelta(hours=args.step_hours),
    )
    runner = web.AppRunner(build_app(fake, args.latency_ms / 1000), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port, backlog=4096)
    await site.start()
    port = runner.addresses[0][1]  # the port the OS chose for --port 0
    print(f"READY {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve until stopped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--start", required=True, help="the first benchmark cycle's time")
    parser.add_argument("--step-hours", type=float, default=6.0, help="time between cycles")
    defaults = Shares()
    parser.add_argument("--stalled", type=float, default=defaults.stalled)
    parser.add_argument("--lost", type=float, default=defaults.lost)
    parser.add_argument("--misrouted", type=float, default=defaults.misrouted)
    parser.add_argument("--customer", default="BENCHCUSTOMER")
    parser.add_argument("--key", default="benchkey")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
