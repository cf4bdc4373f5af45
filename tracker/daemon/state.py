"""What the running daemon knows about itself: stop requests, job progress, a status line."""

from __future__ import annotations

import threading
import time

__all__ = ["DaemonState"]


class DaemonState:
    """Shared by the scheduler loop, job threads, the web app and the signal handler.

    "Progress" is noted whenever a job starts, finishes or completes a batch. While a job
    runs, its own last progress counts; while idle, the time since the last job ended does
    (the dispatcher runs every few seconds, so an idle but healthy loop stays fresh).
    """

    def __init__(self) -> None:
        self._monotonic = time.monotonic
        self._stop = threading.Event()
        self._lock = threading.Lock()
        now = self._monotonic()
        self._running: dict[str, float] = {}
        self._last_end = now
        self.summaries: dict[str, str] = {}
        self.failed: set[str] = set()

    @property
    def stopping(self) -> bool:
        """True once a stop was requested (first SIGTERM/SIGINT)."""
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Ask every job to stop taking new work; safe from any thread."""
        self._stop.set()

    def should_stop(self) -> bool:
        """Callable form of :attr:`stopping` for code running in worker threads."""
        return self._stop.is_set()

    def begin(self, job: str) -> None:
        """Note that ``job`` started."""
        with self._lock:
            self._running[job] = self._monotonic()

    def touch(self, job: str) -> None:
        """Note that the running ``job`` finished one batch."""
        with self._lock:
            if job in self._running:
                self._running[job] = self._monotonic()

    def end(self, job: str, *, ok: bool, summary: str | None = None) -> None:
        """Note that ``job`` finished (and how)."""
        with self._lock:
            self._running.pop(job, None)
            self._last_end = self._monotonic()
            if summary is not None:
                self.summaries[job] = summary
            if ok:
                self.failed.discard(job)
            else:
                self.failed.add(job)

    def progress_age(self) -> float:
        """Seconds since the slowest running job last progressed, or since the last job ended."""
        now = self._monotonic()
        with self._lock:
            if self._running:
                return max(now - since for since in self._running.values())
            return now - self._last_end

    def running(self) -> list[str]:
        """Names of the jobs running now."""
        with self._lock:
            return sorted(self._running)

    def status_line(self) -> str:
        """A one-line summary for ``systemctl status`` (STATUS=)."""
        parts = [self.summaries[job] for job in ("poll", "dispatch") if job in self.summaries]
        if self.failed:
            parts.append("failing: " + ", ".join(sorted(self.failed)))
        return "; ".join(parts) or "running"
