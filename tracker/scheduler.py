"""The daemon entry points (kept here for existing imports; the code is in tracker.daemon)."""

from __future__ import annotations

from tracker.daemon import run_daemon, run_once

__all__ = ["run_daemon", "run_once"]
