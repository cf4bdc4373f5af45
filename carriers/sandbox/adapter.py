"""The sandbox tracking source: no network, the same answer for the same inputs and clock.

Options (the ``[carriers.sandbox]`` config table; all optional):

``scenarios``
    tracking number -> scenario name (see :data:`~carriers.sandbox.scenarios.SCENARIO_CODES`,
    plus ``"not_found"`` and ``"invalid_number"``); overrides the number scheme.
``epoch``
    ISO 8601 time used as the anchor of queries without ``shipped_at`` (no offset means
    Beijing time). Without it, such a query is anchored at ``clock()`` minus the
    scenario's length, so "now" falls at the scenario's characteristic moment.
``weights``
    tracking number -> billed weight in kg, overriding the scenario's weight.

Other keys (``couriers`` ...) belong to the caller and are ignored.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import structlog

from carriers.base import ConfigError
from carriers.model import ErrorKind, TrackingError, TrackingQuery, TrackingResult
from carriers.sandbox import parse, stories
from carriers.sandbox.scenarios import (
    INVALID_NUMBER,
    NOT_FOUND,
    SCENARIO_NAMES,
    normalise_number,
    pick_scenario,
)

__all__ = ["SandboxSource"]

_log = structlog.get_logger("carriers.sandbox")


def _utc_now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(UTC)


def _scenarios(value: object) -> dict[str, str]:
    """Validate ``options["scenarios"]``: number -> known scenario name."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError("sandbox option 'scenarios' must be a table of number = scenario")
    known = SCENARIO_NAMES | {NOT_FOUND, INVALID_NUMBER}
    out: dict[str, str] = {}
    for number, scenario in value.items():
        if scenario not in known:
            raise ConfigError(
                f"sandbox option 'scenarios.{number}': unknown scenario {scenario!r}; "
                f"expected one of {', '.join(sorted(known))}"
            )
        out[normalise_number(str(number))] = str(scenario)
    return out


def _epoch(value: object) -> datetime | None:
    """Validate ``options["epoch"]``: an ISO 8601 time (naive means Beijing time)."""
    if value is None:
        return None
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value))
        except ValueError as exc:
            raise ConfigError(f"sandbox option 'epoch': not an ISO 8601 time: {value!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=parse.BEIJING)


def _weights(value: object) -> dict[str, float]:
    """Validate ``options["weights"]``: number -> positive kg."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError("sandbox option 'weights' must be a table of number = kg")
    out: dict[str, float] = {}
    for number, kg in value.items():
        if isinstance(kg, bool) or not isinstance(kg, int | float) or kg <= 0:
            raise ConfigError(f"sandbox option 'weights.{number}': not a positive number")
        out[normalise_number(str(number))] = float(kg)
    return out


class SandboxSource:
    """A fake courier tracking service telling scripted, realistic stories.

    Usable directly as the ``SourceFactory`` registered under the entry point ``sandbox``.
    """

    max_batch = 50

    def __init__(
        self,
        name: str,
        options: Mapping[str, Any],
        *,
        http: Any | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.name = name
        self._clock = clock or _utc_now
        self._scenarios = _scenarios(options.get("scenarios"))
        self._epoch = _epoch(options.get("epoch"))
        self._weights = _weights(options.get("weights"))

    async def track(self, queries: Sequence[TrackingQuery]) -> list[TrackingResult]:
        """One result per query, in order; bad numbers come back as errors, never raised."""
        now = self._clock()
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return [self._guarded(query, now) for query in queries]

    async def aclose(self) -> None:
        """Nothing to release."""

    def _guarded(self, query: TrackingQuery, now: datetime) -> TrackingResult:
        """:meth:`_track_one`, with a bug in the sandbox turned into an error result."""
        try:
            return self._track_one(query, now)
        except Exception as exc:  # one odd query must not sink the batch
            _log.exception("sandbox_query_failed", tracking_number=query.tracking_number)
            return self._error(query, ErrorKind.PROVIDER, f"sandbox failure: {exc!r}")

    def _track_one(self, query: TrackingQuery, now: datetime) -> TrackingResult:
        """The scenario's history for one query as seen at ``now``."""
        number = normalise_number(query.tracking_number)
        scenario = pick_scenario(number, self._scenarios)
        if scenario == NOT_FOUND:
            return self._error(query, ErrorKind.NOT_FOUND, "查无结果：暂无该单号的物流信息")
        if scenario == INVALID_NUMBER:
            return self._error(query, ErrorKind.INVALID_NUMBER, "单号格式不正确，请核对后再查")
        story = stories.tell(scenario, number, query, self._weights.get(number))
        scans = parse.timeline(story, number, query.shipped_at or self._epoch, now)
        return parse.to_result(query, self.name, scenario, scans, story.weight_kg)

    def _error(self, query: TrackingQuery, kind: ErrorKind, message: str) -> TrackingResult:
        """A result carrying an error instead of events."""
        return TrackingResult(
            courier=query.courier,
            tracking_number=query.tracking_number,
            source=self.name,
            error=TrackingError(kind=kind, message=message, raw_excerpt=query.tracking_number),
        )
