"""The event loop every ``tracker`` command runs on: uvloop where installed, else asyncio's.

uvloop does the same work as asyncio's loop with less CPU per socket event (the poller's
hundreds of requests in flight are mostly socket events); ``TRACKER_EVENT_LOOP=asyncio``
chooses the standard loop, e.g. to rule uvloop out while debugging.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["loop_factory", "run"]

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """Uvloop's loop constructor when wanted and importable; None means asyncio's default."""
    if os.environ.get("TRACKER_EVENT_LOOP", "uvloop").strip().lower() == "asyncio":
        return None
    try:
        import uvloop  # noqa: PLC0415 - optional: absent on Windows
    except ImportError:  # not on this platform (Windows) or not installed
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a fresh loop from :func:`loop_factory`."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
