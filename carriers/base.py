"""The contract every tracking source implements, and the errors adapters may raise at setup."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from carriers.model import TrackingQuery, TrackingResult

__all__ = ["ConfigError", "SourceFactory", "TrackingSource"]


class ConfigError(ValueError):
    """A provider's configuration is missing or invalid; the message names the key."""


@runtime_checkable
class TrackingSource(Protocol):
    """A tracking service: a batch of queries in, one result per query out, errors as data.

    ``track`` never raises for provider or network trouble: each result carries
    either events or a :class:`carriers.model.TrackingError`.
    """

    name: str
    max_batch: int

    async def track(self, queries: Sequence[TrackingQuery]) -> list[TrackingResult]:
        """Look up every query; the result list has one entry per query, in order."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


class SourceFactory(Protocol):
    """Builds a source from its config table.

    ``http`` is a shared ``httpx.AsyncClient`` (or ``None`` to make one); ``clock`` returns
    the current aware time and is injected so tests and ``--now`` control it.
    """

    def __call__(
        self,
        name: str,
        options: Mapping[str, Any],
        *,
        http: Any | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> TrackingSource:
        """Return a ready source named ``name``."""
        ...
