"""carriers.model.frozen_builder builds exactly what the frozen dataclasses' constructors build."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from carriers.model import (
    ErrorKind,
    Location,
    Status,
    TrackingError,
    TrackingEvent,
    TrackingResult,
    frozen_builder,
)


def test_builder_makes_an_equal_frozen_result() -> None:
    """Same fields, equality and type as the constructor; the object stays frozen."""
    build = frozen_builder(TrackingResult)
    error = TrackingError(ErrorKind.NETWORK, "timeout", True)
    made = build("yto", "YT1", "kuaidi100", Status.PENDING, (), 1.5, error, "zto", True, None, {})
    plain = TrackingResult(
        "yto", "YT1", "kuaidi100", Status.PENDING, (), 1.5, error, "zto", True, None, {}
    )
    assert made == plain
    assert repr(made) == repr(plain)
    assert type(made) is TrackingResult
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.status = Status.DELIVERED  # type: ignore[misc]


def test_builder_takes_every_field_positionally_defaults_included() -> None:
    """Fields with defaults must be passed too: a missing one fails loudly."""
    build = frozen_builder(Location)
    assert build("中国", "浙江省", "杭州市", None) == Location("中国", "浙江省", "杭州市")
    assert hash(build(None, None, None, None)) == hash(Location())
    with pytest.raises(TypeError):
        build("中国", "浙江省")


def test_builder_refuses_classes_it_would_build_wrongly() -> None:
    """A class with __post_init__ needs the caller's promise; mutable dataclasses are refused."""
    with pytest.raises(TypeError, match="__post_init__"):
        frozen_builder(TrackingEvent)

    @dataclasses.dataclass(slots=True)
    class Mutable:
        x: int

    with pytest.raises(TypeError, match="frozen"):
        frozen_builder(Mutable)
    at = datetime(2026, 11, 1, tzinfo=UTC)
    event = frozen_builder(TrackingEvent, skip_post_init=True)(
        at, Status.IN_TRANSIT, "0", "到达", Location(), None
    )
    assert event == TrackingEvent(at, Status.IN_TRANSIT, "0", "到达")
