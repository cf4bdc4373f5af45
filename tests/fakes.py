"""Fakes that subclass or satisfy the real interfaces, for fast and honest tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from carriers.model import (
    ErrorKind,
    Location,
    Status,
    TrackingError,
    TrackingEvent,
    TrackingQuery,
    TrackingResult,
)
from tracker.domain.model import Address, Buyer, Item, Order, ShipmentRecord


class ScriptedSource:
    """A tracking source answering from a script: tracking number -> events (or an error)."""

    def __init__(self, name: str = "fake", max_batch: int = 40) -> None:
        self.name = name
        self.max_batch = max_batch
        self.histories: dict[str, list[TrackingEvent]] = {}
        self.errors: dict[str, TrackingError] = {}
        self.weights: dict[str, float] = {}
        self.calls: list[list[str]] = []

    def scan(
        self,
        number: str,
        time: datetime,
        status: Status,
        text: str,
        *,
        province: str | None = None,
        city: str | None = None,
        raw_code: str | None = None,
        problem: object = None,
    ) -> None:
        """Add one scan to a parcel's history."""
        self.histories.setdefault(number, []).append(
            TrackingEvent(
                time=time,
                status=status,
                raw_code=raw_code or status.value,
                text=text,
                location=Location(country="中国", province=province, city=city),
                problem=problem,  # type: ignore[arg-type]
            )
        )

    async def track(self, queries: Sequence[TrackingQuery]) -> list[TrackingResult]:
        """Answer every query from the script; unknown numbers are 'not found' errors."""
        self.calls.append([q.tracking_number for q in queries])
        results = []
        for q in queries:
            if q.tracking_number in self.errors:
                results.append(
                    TrackingResult(
                        q.courier,
                        q.tracking_number,
                        self.name,
                        error=self.errors[q.tracking_number],
                    )
                )
                continue
            if q.tracking_number not in self.histories:
                results.append(
                    TrackingResult(
                        q.courier,
                        q.tracking_number,
                        self.name,
                        error=TrackingError(ErrorKind.NOT_FOUND, "no such parcel"),
                    )
                )
                continue
            events = tuple(sorted(self.histories[q.tracking_number], key=lambda e: e.time))
            results.append(
                TrackingResult(
                    q.courier,
                    q.tracking_number,
                    self.name,
                    status=events[-1].status if events else Status.PENDING,
                    events=events,
                    weight_kg=self.weights.get(q.tracking_number),
                    finished=bool(events) and events[-1].status is Status.DELIVERED,
                )
            )
        return results

    async def aclose(self) -> None:
        """Nothing to release."""


def make_order(
    order_id: str,
    paid_at: datetime,
    *,
    tracking_number: str | None = None,
    shipped_at: datetime | None = None,
    courier: str = "yto",
    phone: str = "13800138000",
    opt_out: bool = False,
    destination: tuple[str, str] = ("浙江省", "杭州市"),
    qty: int = 2,
    unit_weight_kg: float = 0.5,
) -> Order:
    """An order like the DESIGN §8 sample, with at most one parcel."""
    shipments = ()
    if tracking_number:
        shipments = (ShipmentRecord(courier, tracking_number, shipped_at),)
    return Order(
        order_id=order_id,
        paid_at=paid_at,
        buyer=Buyer(name="张三", phone=phone, opt_out=opt_out),
        origin=Address("广东省", "广州市"),
        destination=Address(destination[0], destination[1], "西湖区", "文三路 1 号"),
        items=(Item("TEA-500", "龙井 500g", qty, unit_weight_kg),),
        shipments=shipments,
    )
