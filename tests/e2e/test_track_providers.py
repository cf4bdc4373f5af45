"""``tracker track COURIER NUMBER`` through the real CLI against a real local provider server.

One small HTTP server (a thread in this process, bound to 127.0.0.1 on a free port) plays
Kuaidi100, Kdniao, 17TRACK, AfterShip and EasyPost at once: it checks each request's
credentials and signature the way the real service does and answers with the fixture
payloads. The CLI runs in a subprocess with a config whose ``base_url``s point at it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest

FIXTURES = Path(__file__).parents[1] / "fixtures"
HTML_502 = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


def _fixture(path: str) -> bytes:
    return (FIXTURES / path).read_bytes()


class FakeProviders(BaseHTTPRequestHandler):
    """Answers like the five providers, refusing requests whose credentials are wrong."""

    def log_message(self, format: str, *args: Any) -> None:
        """Keep the test output quiet."""

    def _reply(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_GET(self) -> None:
        """AfterShip: GET /v4/trackings/{slug}/{number} with the API key header."""
        if self.headers.get("aftership-api-key") != "AS-KEY":
            self._reply(401, _fixture("aftership/error_401_invalid_api_key.json"))
        elif self.path == "/v4/trackings/fedex/111111111111":
            self._reply(
                200, _fixture("aftership/v4_get_tracking_delivered_fedex_full_checkpoints.json")
            )
        else:
            self._reply(404, b'{"meta": {"code": 4004, "message": "Tracking does not exist."}}')

    def do_POST(self) -> None:
        """Kuaidi100, Kdniao, 17TRACK and EasyPost, each by its path."""
        body = self._body()
        handlers = {
            "/poll/query.do": self._kuaidi100,
            "/Ebusiness/EbusinessOrderHandle.aspx": self._kdniao,
            "/track/v2.2/gettrackinfo": self._track17,
            "/v2/trackers": self._easypost,
        }
        handler = handlers.get(self.path)
        if handler is None:
            self._reply(404, b"{}")
            return
        handler(body)

    def _kuaidi100(self, body: bytes) -> None:
        form = dict(parse_qsl(body.decode()))
        param = form.get("param", "")
        expected = hashlib.md5((param + "K100-KEY" + form.get("customer", "")).encode()).hexdigest()
        if form.get("sign") != expected.upper():
            self._reply(200, _fixture("kuaidi100/query_503_sign_failed.json"))
        elif json.loads(param)["num"] == "YT7000000502":
            self._reply(502, HTML_502, "text/html")
        else:
            self._reply(200, _fixture("kuaidi100/query_resultv2_4_delivered.json"))

    def _kdniao(self, body: bytes) -> None:
        form = dict(parse_qsl(body.decode()))
        digest = hashlib.md5((form.get("RequestData", "") + "KDN-KEY").encode()).hexdigest()
        if form.get("DataSign") != base64.b64encode(digest.encode()).decode():
            self._reply(200, _fixture("kdniao/query_error_invalid_id_key.json"))
        else:
            self._reply(200, _fixture("kdniao/query_8001_delivered.json"))

    def _track17(self, body: bytes) -> None:
        if self.headers.get("17token") != "T17-KEY":
            self._reply(401, b'{"code": 401}')
        else:
            self._reply(200, _fixture("track17/v2_gettrackinfo_exception_returning.json"))

    def _easypost(self, body: bytes) -> None:
        token = base64.b64encode(b"EP-KEY:").decode()
        if self.headers.get("Authorization") != f"Basic {token}":
            self._reply(401, b'{"error": {"code": "APIKEY.INVALID", "message": "bad key"}}')
        else:
            self._reply(200, _fixture("easypost/tracker_EZ4000000004_delivered.json"))


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The fake providers on 127.0.0.1, a free port; yields the base URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeProviders)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _config(tmp_path: Path, base: str, *, k100_key: str = "K100-KEY") -> Path:
    path = tmp_path / "tracker.toml"
    path.write_text(
        f"""
[database]
url = "sqlite:///{tmp_path / "tracker.db"}"
[carriers.kuaidi100]
base_url = "{base}"
customer = "CUST"
key = "{k100_key}"
couriers = ["yto"]
max_attempts = 2
[carriers.kdniao]
base_url = "{base}"
business_id = "1237100"
api_key = "KDN-KEY"
couriers = ["jd"]
[carriers.track17]
base_url = "{base}"
api_key = "T17-KEY"
couriers = ["ems"]
[carriers.aftership]
base_url = "{base}"
api_key = "AS-KEY"
couriers = ["fedex"]
[carriers.easypost]
base_url = "{base}"
api_key = "EP-KEY"
couriers = ["usps"]
""",
        encoding="utf-8",
    )
    return path


def _track(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TRACKER_CONFIG"}
    return subprocess.run(
        [sys.executable, "-m", "tracker", "--config", str(config), "track", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


@pytest.mark.parametrize(
    ("courier", "number", "source", "status"),
    [
        ("yto", "YT7000000001", "kuaidi100", "delivered"),
        ("jd", "JDVA00000000002", "kdniao", "delivered"),
        ("ems", "AA555666777BR", "track17", "returning"),
        ("fedex", "111111111111", "aftership", "delivered"),
        ("usps", "EZ4000000004", "easypost", "delivered"),
    ],
)
def test_track_reads_each_provider_through_its_base_url(
    server: str, tmp_path: Path, courier: str, number: str, source: str, status: str
) -> None:
    """The CLI routes the courier to its source, which signs, sends and parses the answer."""
    done = _track(_config(tmp_path, server), courier, number, "--format", "json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["source"] == source and data["tracking_number"] == number
    assert data["status"] == status and "error" not in data
    assert data["events"] and all(e["time"] and e["raw_code"] is not None for e in data["events"])
    times = [e["time"] for e in data["events"]]
    assert len(times) >= 1 and all(
        set(e["location"]) >= {"country", "province"} for e in data["events"]
    )


def test_track_reports_a_provider_error_as_data_and_exits_1(server: str, tmp_path: Path) -> None:
    """An HTML 502 page from the provider is an error in the output, not a crash."""
    done = _track(_config(tmp_path, server), "yto", "YT7000000502", "--format", "json")
    assert done.returncode == 1, done.stderr
    error = json.loads(done.stdout)["error"]
    assert error["kind"] == "bad_response" and error["retryable"] is True


def test_track_with_a_wrong_key_says_the_credentials_were_rejected(
    server: str, tmp_path: Path
) -> None:
    """A key the provider refuses gives an auth error naming the problem, exit 1."""
    done = _track(_config(tmp_path, server, k100_key="WRONG"), "yto", "YT7000000001")
    assert done.returncode == 1
    assert "auth" in done.stdout and "验证签名失败" in done.stdout
    assert "provider_auth_rejected" in done.stderr


def test_missing_credentials_are_a_config_error_naming_the_key(tmp_path: Path) -> None:
    """A provider table without its required key fails with carriers.<name>.<key>, exit 2."""
    path = tmp_path / "tracker.toml"
    path.write_text('[carriers.kuaidi100]\ncustomer = "C"\ncouriers = ["*"]\n', encoding="utf-8")
    done = _track(path, "yto", "YT7000000001")
    assert done.returncode == 2
    assert "carriers.kuaidi100.key" in done.stderr
