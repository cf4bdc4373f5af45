"""The shortcuts detection takes per row build exactly what the plain constructors build."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from carriers.model import Location, Status, TrackingEvent
from tracker.domain.model import Address, ShipmentFacts, frozen_builder
from tracker.domain.policy import Allowance, Policy, paused_deadline
from tracker.store import orders_repo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_builder_makes_an_equal_frozen_object() -> None:
    """Same fields, equality and hash as the constructor; the object stays frozen."""
    build = frozen_builder(Address)
    made = build("浙江省", "杭州市", "西湖区", "文三路 1 号")
    plain = Address("浙江省", "杭州市", "西湖区", "文三路 1 号")
    assert made == plain
    assert hash(made) == hash(plain)
    assert type(made) is Address
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.city = "宁波市"  # type: ignore[misc]


def test_builder_takes_every_field_positionally_defaults_included() -> None:
    """Fields with defaults must be passed too: a missing one fails loudly."""
    build = frozen_builder(ShipmentFacts)
    at = datetime(2026, 11, 1, tzinfo=UTC)
    made = build("YTO", "YT1", Status.IN_TRANSIT, at, (), None, False)
    assert made == ShipmentFacts("YTO", "YT1", Status.IN_TRANSIT, at)
    with pytest.raises(TypeError):
        build("YTO", "YT1", Status.IN_TRANSIT, at)


def test_builder_refuses_classes_it_would_build_wrongly() -> None:
    """A class with __post_init__ needs the caller's promise; mutable dataclasses are refused."""
    with pytest.raises(TypeError, match="__post_init__"):
        frozen_builder(TrackingEvent)

    @dataclasses.dataclass(slots=True)
    class Mutable:
        x: int

    with pytest.raises(TypeError, match="frozen"):
        frozen_builder(Mutable)
    event = frozen_builder(TrackingEvent, skip_post_init=True)(
        datetime(2026, 11, 1, tzinfo=UTC), Status.IN_TRANSIT, "0", "到达", Location(), None
    )
    assert event == TrackingEvent(datetime(2026, 11, 1, tzinfo=UTC), Status.IN_TRANSIT, "0", "到达")


def test_paused_deadline_matches_a_plainly_built_allowance() -> None:
    """The allowance built by the fast path equals the one the constructor gives."""
    start = datetime(2026, 9, 30, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai before 国庆
    made = paused_deadline(start, timedelta(hours=48), Policy(), Policy().defaults)
    plain = Allowance(made.start, made.deadline, timedelta(hours=48), paused_days=made.paused_days)
    assert made == plain
    assert made.start.tzinfo is SHANGHAI and made.paused_days


def test_postgresql_array_literals_read_back_exactly() -> None:
    """bigint[], boolean[] and timestamptz[] literals as the store sends them."""
    at = datetime(2026, 11, 26, 18, 0, 0, 1, tzinfo=SHANGHAI)
    assert orders_repo._pg_ints([3, 1, 20]) == "{3,1,20}"
    assert orders_repo._pg_bools([True, False]) == "{t,f}"
    assert orders_repo._pg_times([at, None]) == '{"2026-11-26T18:00:00.000001+08:00",NULL}'


def test_reader_turns_session_utc_zones_into_utc() -> None:
    """Times in psycopg's Etc/UTC session zone come back as datetime.UTC, the same instant."""
    reader = orders_repo._Reader("postgresql")
    value = datetime(2026, 11, 26, 10, 0, tzinfo=ZoneInfo("Etc/UTC"))
    got = reader.time(value)
    assert got.tzinfo is UTC and got == value
    shanghai = reader.time(datetime(2026, 11, 26, 18, 0, tzinfo=SHANGHAI))
    assert shanghai.tzinfo is UTC and shanghai.hour == 10
