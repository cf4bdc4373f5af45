"""A local fake tracking provider (and agent webhook sink) for daemon end-to-end tests.

Run as ``python -m tests.e2e.fake_provider [--delay S]``; it prints ``PORT <n>`` once it
listens on 127.0.0.1. Protocol:

- ``POST /track`` ``{"numbers": [...]}`` -> ``{"results": {number: {"status", "events"}}}``.
  A number ending in ``F`` answers with a failed delivery attempt; any other is in transit
  with a fresh scan. Every request is counted per tracking number.
- ``GET /counts`` -> ``{number: times asked}``; ``GET /inflight`` -> requests in progress.
- ``POST /hooks`` records an agent alert by its ``webhook-id``; ``GET /hooks`` -> ``{id: n}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_lock = threading.Lock()
_counts: Counter[str] = Counter()
_hooks: Counter[str] = Counter()
_inflight = 0
_delay = 0.0


def history(number: str, now: datetime) -> dict[str, Any]:
    """The deterministic answer for one tracking number."""
    picked = (now - timedelta(hours=20)).isoformat()
    moved = (now - timedelta(hours=2)).isoformat()
    events = [
        {
            "time": picked,
            "status": "picked_up",
            "code": "10",
            "text": "【广州市】已揽收",
            "province": "广东省",
            "city": "广州市",
        },
        {
            "time": moved,
            "status": "in_transit",
            "code": "20",
            "text": "到达【杭州转运中心】",
            "province": "浙江省",
            "city": "杭州市",
        },
    ]
    if number.endswith("F"):
        failed = (now - timedelta(hours=1)).isoformat()
        events.append(
            {
                "time": failed,
                "status": "delivery_failed",
                "code": "40",
                "text": "【杭州市】派送不成功，收件人电话无人接听",
                "province": "浙江省",
                "city": "杭州市",
            }
        )
    return {"status": events[-1]["status"], "events": events}


class _Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""

    def _reply(self, body: Any, status: int = 200) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        """Counters for the test to assert on."""
        with _lock:
            if self.path == "/counts":
                self._reply(dict(_counts))
            elif self.path == "/hooks":
                self._reply(dict(_hooks))
            elif self.path == "/inflight":
                self._reply({"inflight": _inflight})
            else:
                self._reply({"error": "not found"}, 404)

    def do_POST(self) -> None:
        """Tracking lookups and agent alerts."""
        global _inflight  # noqa: PLW0603 - a tiny test server
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
        if self.path == "/hooks":
            with _lock:
                _hooks[self.headers.get("webhook-id", "?")] += 1
            self._reply({"ok": True})
            return
        if self.path != "/track":
            self._reply({"error": "not found"}, 404)
            return
        numbers = [str(n) for n in body.get("numbers", [])]
        with _lock:
            _counts.update(numbers)
            _inflight += 1
        try:
            if _delay:
                time.sleep(_delay)
            now = datetime.now(UTC)
            self._reply({"results": {n: history(n, now) for n in numbers}})
        finally:
            with _lock:
                _inflight -= 1


def main() -> None:
    """Serve until killed."""
    global _delay  # noqa: PLW0603
    parser = argparse.ArgumentParser()
    parser.add_argument("--delay", type=float, default=0.0)
    _delay = parser.parse_args().delay
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
