"""Crash test: the dispatcher is SIGKILLed mid-run, restarted, and nothing is lost or stuck.

A real receiver process records the ``Idempotency-Key`` of every SMS gateway request and the
``webhook-id`` of every alert. Hundreds of notices and alerts are queued; ``tracker dispatch``
is killed with SIGKILL several times while sending and started again each time. Afterwards
every notice and alert was delivered, none is left queued or claimed, and no key arrived
more often than the number of kills (a kill can repeat at most the request in flight).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from tests.integration.test_dispatch import seed_outbox
from tracker.store.tables import alerts, notices
from tracker.store.uow import make_engine

COUNT = 300
KILLS = 4
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

RECEIVER = r"""
import json, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = open(sys.argv[1], "a", encoding="utf-8")
lock = threading.Lock()

class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        name = "idempotency-key" if self.path == "/sms" else "webhook-id"
        key = self.headers.get(name)
        time.sleep(0.01)  # a gateway takes a moment; it widens the window a kill can hit
        with lock:  # recorded before answering: an answered request was always recorded
            log.write(json.dumps({"path": self.path, "key": key}) + "\n")
            log.flush()
        body = json.dumps({"message_id": "gw-" + str(key)}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the dispatcher was killed mid-request: exactly the case under test

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def _start_dispatcher(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "TRACKER_CONFIG"}
    with log.open("ab") as err:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tracker",
                "--config",
                str(config),
                "dispatch",
                "--interval",
                "0.2",
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
            env=env,
        )


def _delivered(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def test_sigkilled_dispatcher_loses_nothing_and_repeats_at_most_once_per_kill(
    db_url: str, tmp_path: Path
) -> None:
    """Every notice and alert is delivered despite SIGKILLs; no key more often than the kills."""
    received = tmp_path / "received.jsonl"
    script = tmp_path / "receiver.py"
    script.write_text(RECEIVER, encoding="utf-8")
    receiver = subprocess.Popen(
        [sys.executable, str(script), str(received)], stdout=subprocess.PIPE, text=True
    )
    engine = make_engine(db_url)
    workers: list[subprocess.Popen[bytes]] = []
    try:
        port = int(receiver.stdout.readline())  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        config = tmp_path / "tracker.toml"
        config.write_text(
            f"""
[database]
url = "{db_url}"
[notify]
quiet_hours = ""
max_per_buyer_per_day = 100
lease_s = 2
[notify.sms]
provider = "http"
url = "{base}/sms"
allow_private_networks = true
[alerts.endpoints.ops]
url = "{base}/hook"
secret = "{SECRET}"
allow_private_networks = true
[alerts.grouping]
enabled = false
""",
            encoding="utf-8",
        )
        seed_outbox(engine, COUNT, datetime.now(UTC) - timedelta(minutes=1), endpoint="ops")
        log = tmp_path / "dispatch.log"
        rng = random.Random(5)
        started = time.monotonic()
        progress_at_kills = []
        for _ in range(KILLS):
            workers.append(_start_dispatcher(config, log))
            # kill once it is busy sending: after a random number of further deliveries
            target = len(_delivered(received)) + rng.randint(40, 90)
            deadline = time.monotonic() + 20
            while len(_delivered(received)) < target and time.monotonic() < deadline:
                time.sleep(0.02)
            workers[-1].send_signal(signal.SIGKILL)
            workers[-1].wait(timeout=10)
            progress_at_kills.append(len(_delivered(received)))
        workers.append(_start_dispatcher(config, log))

        def pending() -> int:
            with engine.connect() as conn:
                left = 0
                for table in (notices, alerts):
                    left += conn.execute(
                        select(func.count()).select_from(table).where(table.c.status != "sent")
                    ).scalar_one()
                return int(left)

        while pending() and time.monotonic() - started < 50:
            time.sleep(0.3)
        workers[-1].send_signal(signal.SIGTERM)
        assert workers[-1].wait(timeout=15) == 0
        elapsed = time.monotonic() - started

        assert pending() == 0, log.read_text(encoding="utf-8")[-3000:]
        # the kills landed mid-run: work was left each time
        assert all(0 < n < 2 * COUNT for n in progress_at_kills), progress_at_kills
        with engine.connect() as conn:
            notice_keys = set(conn.execute(select(notices.c.idempotency_key)).scalars())
            alert_keys = set(conn.execute(select(alerts.c.idempotency_key)).scalars())
            stuck = conn.execute(
                select(func.count()).select_from(notices).where(notices.c.claimed_by.is_not(None))
            ).scalar_one()
            ids = set(conn.execute(select(notices.c.provider_message_id)).scalars())
        deliveries = _delivered(received)
        sms = Counter(d["key"] for d in deliveries if d["path"] == "/sms")
        hooks = Counter(d["key"] for d in deliveries if d["path"] == "/hook")
        assert set(sms) == notice_keys and len(notice_keys) == COUNT
        assert set(hooks) == alert_keys and len(alert_keys) == COUNT
        assert max(sms.values()) <= KILLS and max(hooks.values()) <= KILLS
        assert stuck == 0 and ids == {f"gw-{k}" for k in notice_keys}
        repeats = sum(sms.values()) + sum(hooks.values()) - 2 * COUNT
        assert repeats <= KILLS  # one in-flight request per kill at most
        print(f"crash test: {KILLS} kills, {repeats} repeated deliveries, {elapsed:.1f} s")
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        receiver.terminate()
        receiver.wait(timeout=10)
        engine.dispose()
