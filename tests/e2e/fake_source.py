"""The tracking source that talks to ``tests.e2e.fake_provider`` (a test-only provider plugin).

Tests make it discoverable by the ``tracker`` subprocess through a throwaway ``.dist-info``
folder on ``PYTHONPATH`` that declares the ``tracker.carriers`` entry point ``fakehttp``:
the real plugin discovery path, with nothing test-only in the package.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from carriers.model import (
    ErrorKind,
    Location,
    Status,
    TrackingError,
    TrackingEvent,
    TrackingQuery,
    TrackingResult,
)

REPO = Path(__file__).resolve().parents[2]


class FakeHttpSource:
    """POSTs batches of numbers to the fake provider and maps its answers."""

    def __init__(
        self,
        name: str,
        options: Mapping[str, Any],
        *,
        http: object = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.name = name
        self.max_batch = int(options.get("max_batch", 50))
        self.base_url = str(options["base_url"]).rstrip("/")
        # its own client: the ``http`` the daemon shares is for the real adapters
        self.http = httpx.AsyncClient(timeout=float(options.get("timeout_s", 60)))

    async def track(self, queries: Sequence[TrackingQuery]) -> list[TrackingResult]:
        """One POST for the whole batch; a transport error becomes a per-query error."""
        numbers = [q.tracking_number for q in queries]
        try:
            response = await self.http.post(f"{self.base_url}/track", json={"numbers": numbers})
            response.raise_for_status()
            answers = response.json()["results"]
        except httpx.HTTPError as exc:
            error = TrackingError(ErrorKind.NETWORK, repr(exc), retryable=True)
            return [
                TrackingResult(q.courier, q.tracking_number, self.name, error=error)
                for q in queries
            ]
        results = []
        for q in queries:
            answer = answers[q.tracking_number]
            events = tuple(
                TrackingEvent(
                    time=datetime.fromisoformat(e["time"]),
                    status=Status(e["status"]),
                    raw_code=e["code"],
                    text=e["text"],
                    location=Location(country="中国", province=e["province"], city=e["city"]),
                )
                for e in answer["events"]
            )
            results.append(
                TrackingResult(
                    q.courier,
                    q.tracking_number,
                    self.name,
                    status=Status(answer["status"]),
                    events=events,
                )
            )
        return results

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.http.aclose()


def plugin_path(tmp: Path) -> str:
    """A PYTHONPATH (plugin metadata + repository root) that makes ``fakehttp`` discoverable."""
    info = tmp / "fakehttp_plugin-0.0.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakehttp-plugin\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(
        "[tracker.carriers]\nfakehttp = tests.e2e.fake_source:FakeHttpSource\n"
    )
    return f"{tmp}:{REPO}"
