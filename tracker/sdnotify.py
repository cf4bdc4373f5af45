"""The systemd notify protocol (``sd_notify``): READY, WATCHDOG, STATUS, STOPPING.

Messages are newline-separated ``KEY=value`` lines sent as one datagram to the unix socket
named by ``$NOTIFY_SOCKET`` (a leading ``@`` means the abstract namespace). Without that
variable, as under Docker or in a terminal, every call is a no-op, so callers never need
to know whether systemd is there.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

import structlog

__all__ = ["Notifier", "watchdog_interval"]

_log = structlog.get_logger("tracker.sdnotify")


def watchdog_interval(environ: Mapping[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings systemd expects (half of ``WatchdogSec=``), or None.

    None when no watchdog is configured or when ``$WATCHDOG_PID`` names another process
    (the variables leaked from a parent).
    """
    env = os.environ if environ is None else environ
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None
    return int(usec) / 1_000_000 / 2


class Notifier:
    """Sends notify messages to systemd; silently does nothing when not run by systemd."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        """True when a notify socket was given."""
        return bool(self._address)

    def send(self, **fields: str | int) -> bool:
        """Send one message of ``KEY=value`` lines; True when it was delivered."""
        if not self._address:
            return False
        payload = "\n".join(f"{key}={_one_line(str(value))}" for key, value in fields.items())
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                self._sock.connect(self._address)
            self._sock.sendall(payload.encode("utf-8"))
        except OSError as exc:
            self.close()
            if not self._warned:  # say it once, not on every watchdog tick
                self._warned = True
                _log.warning("sd_notify_failed", error=str(exc))
            return False
        return True

    def ready(self, status: str) -> bool:
        """Tell systemd start-up is complete (``READY=1``) with a status line."""
        return self.send(READY=1, STATUS=status, MAINPID=os.getpid())

    def status(self, text: str) -> bool:
        """Update the one-line status shown by ``systemctl status``."""
        return self.send(STATUS=text)

    def watchdog(self) -> bool:
        """Prove the main loop is alive (``WATCHDOG=1``)."""
        return self.send(WATCHDOG=1)

    def stopping(self, status: str) -> bool:
        """Tell systemd a clean shutdown has begun."""
        return self.send(STOPPING=1, STATUS=status)

    def close(self) -> None:
        """Close the socket (it is reopened on the next send)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _one_line(text: str) -> str:
    """A value must not break the line-based protocol."""
    return " ".join(text.split())
