"""The long-running service: scheduled jobs, signals, health, systemd notify."""

from tracker.daemon.heap import startup_heap_frozen
from tracker.daemon.once import run_once
from tracker.daemon.runner import run_daemon

__all__ = ["run_daemon", "run_once", "startup_heap_frozen"]
