"""The systemd notify protocol over a real unix datagram socket."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tracker.sdnotify import Notifier, watchdog_interval


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    """A bound datagram socket standing in for systemd's notify socket."""
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    yield sock, path
    sock.close()


def _fields(sock: socket.socket) -> dict[str, str]:
    data = sock.recv(4096).decode()
    return dict(line.split("=", 1) for line in data.splitlines())


def test_without_notify_socket_every_call_is_a_noop() -> None:
    """Outside systemd nothing is sent and nothing fails."""
    notifier = Notifier(environ={})
    assert not notifier.enabled
    assert notifier.ready("up") is False
    assert notifier.watchdog() is False


def test_ready_status_watchdog_and_stopping_reach_the_socket(
    listener: tuple[socket.socket, str],
) -> None:
    """READY carries STATUS and MAINPID; each message is one datagram of KEY=value lines."""
    sock, path = listener
    notifier = Notifier(environ={"NOTIFY_SOCKET": path})
    assert notifier.ready("worker w1 ready\nsources: sandbox")
    assert _fields(sock) == {
        "READY": "1",
        "STATUS": "worker w1 ready sources: sandbox",
        "MAINPID": str(os.getpid()),
    }
    assert notifier.watchdog()
    assert _fields(sock) == {"WATCHDOG": "1"}
    assert notifier.status("polled 12")
    assert _fields(sock) == {"STATUS": "polled 12"}
    assert notifier.stopping("bye")
    assert _fields(sock) == {"STOPPING": "1", "STATUS": "bye"}
    notifier.close()


def test_abstract_namespace_address() -> None:
    """A leading @ names a socket in the abstract namespace, as systemd may pass it."""
    name = f"tracker-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        assert Notifier(environ={"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert _fields(sock) == {"WATCHDOG": "1"}
    finally:
        sock.close()


def test_a_vanished_socket_is_reported_not_raised(tmp_path: Path) -> None:
    """A notify socket that went away makes sends return False instead of crashing the daemon."""
    notifier = Notifier(environ={"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    assert notifier.enabled
    assert notifier.status("x") is False
    assert notifier.status("y") is False


def test_watchdog_interval_is_half_the_configured_timeout() -> None:
    """Pings come twice per WatchdogSec, as systemd recommends."""
    assert watchdog_interval({"WATCHDOG_USEC": "60000000"}) == 30.0
    own = str(os.getpid())
    assert watchdog_interval({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": own}) == 10.0


def test_watchdog_interval_absent_or_meant_for_another_process() -> None:
    """No watchdog when unset, zero, garbage, or addressed to another PID."""
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    other = str(os.getpid() + 1)
    assert watchdog_interval({"WATCHDOG_USEC": "60000000", "WATCHDOG_PID": other}) is None
