"""Shared pieces of the HTTP adapter tests: a fake clock and sleep, fixtures, a source builder."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import respx

from carriers.transport import GuardRegistry, HttpSource

FIXTURES = Path(__file__).parents[1] / "fixtures"
NOW = datetime(2026, 9, 14, 2, 0, tzinfo=UTC)
NGINX_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    b"</body>\r\n</html>\r\n"
)

S = TypeVar("S", bound=HttpSource)


def fixture(provider: str, name: str) -> bytes:
    """The raw bytes of ``tests/fixtures/<provider>/<name>``."""
    return (FIXTURES / provider / name).read_bytes()


class FakeTime:
    """A monotonic clock that only moves when told, and a sleep that records and advances it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        """The fake monotonic time."""
        return self.now

    async def sleep(self, seconds: float) -> None:
        """Record the wait and move the clock on by it (no real waiting)."""
        self.sleeps.append(round(seconds, 6))
        self.now += seconds

    async def sleep_frozen(self, seconds: float) -> None:
        """Record the wait without moving the clock (for concurrent reservations)."""
        self.sleeps.append(round(seconds, 6))


def build(
    cls: type[S],
    options: dict[str, Any],
    time: FakeTime | None = None,
    *,
    frozen: bool = False,
    name: str = "src",
    rng: Callable[[], float] = lambda: 0.5,
) -> S:
    """A source with a private guard registry, the fake clock/sleep and a fixed jitter."""
    time = time or FakeTime()
    return cls(
        name,
        options,
        clock=lambda: NOW,
        sleep=time.sleep_frozen if frozen else time.sleep,
        rng=rng,
        guards=GuardRegistry(monotonic=time.monotonic),
    )


@contextmanager
def mocked() -> Iterator[respx.MockRouter]:
    """Mock HTTP at the httpx client level, so the aiohttp transport is intercepted too."""
    with respx.mock(using="httpx", assert_all_called=False) as router:
        yield router
