"""One-off lookup of a parcel through the configured source (``tracker track``)."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from carriers.model import ErrorKind, TrackingError, TrackingQuery, TrackingResult
from tracker.bootstrap import App
from tracker.domain.masking import mask_phones_in_text
from tracker.output import render
from tracker.service.poll import SourceRouter
from tracker.service.views import iso

__all__ = ["lookup", "result_json", "result_table"]


async def lookup(app: App, courier: str, number: str, phone: str | None) -> TrackingResult:
    """Ask the first source serving ``courier``; errors come back inside the result."""
    router = SourceRouter(app.build_sources())
    try:
        source = router.route(courier)
        if source is None:
            return TrackingResult(
                courier=courier,
                tracking_number=number,
                source="none",
                error=TrackingError(
                    ErrorKind.UNSUPPORTED_COURIER,
                    f"no tracking source is configured for courier {courier!r}; "
                    "add one under [carriers.*] with couriers = [...]",
                ),
            )
        query = TrackingQuery(courier=courier, tracking_number=number, phone=phone)
        results = await source.track([query])
        return results[0]
    finally:
        await router.aclose()


def result_json(result: TrackingResult, tz: ZoneInfo) -> dict[str, Any]:
    """The normalised shipment as DESIGN §8 prints it (``error`` instead of events on failure)."""
    data: dict[str, Any] = {
        "courier": result.courier_corrected or result.courier,
        "tracking_number": result.tracking_number,
        "source": result.source,
        "status": result.status.value,
        "weight_kg": result.weight_kg,
    }
    if result.error is not None:
        data["error"] = {
            "kind": result.error.kind.value,
            "message": result.error.message,
            "retryable": result.error.retryable,
        }
        return data
    data["events"] = [
        {
            "time": iso(e.time, tz),
            "status": e.status.value,
            "raw_code": e.raw_code,
            "text": mask_phones_in_text(e.text),
            "location": {
                "country": e.location.country,
                "province": e.location.province,
                "city": e.location.city,
                "district": e.location.district,
            },
        }
        for e in sorted(result.events, key=lambda e: e.time)
    ]
    return data


def result_table(data: dict[str, Any]) -> str:
    """A readable summary and one line per scan."""
    head = f"{data['courier']} {data['tracking_number']} via {data['source']}: {data['status']}" + (
        f", {data['weight_kg']} kg" if data.get("weight_kg") is not None else ""
    )
    if "error" in data:
        return f"{head}\nerror ({data['error']['kind']}): {data['error']['message']}"
    rows = [
        {
            "time": e["time"],
            "status": e["status"],
            "place": " ".join(p for p in (e["location"]["province"], e["location"]["city"]) if p),
            "text": e["text"],
        }
        for e in data["events"]
    ]
    return head + "\n" + render(rows, "table", ("time", "status", "place", "text"), max_width=60)
