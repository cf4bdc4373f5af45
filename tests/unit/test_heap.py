"""``startup_heap_frozen``: the heap alive at start-up is frozen inside the block, then thawed."""

from __future__ import annotations

import gc

from tracker.daemon import startup_heap_frozen


class _Node:
    """An object that can sit in a reference cycle."""

    def __init__(self) -> None:
        self.other: _Node | None = None


def test_freezes_what_is_alive_and_thaws_on_leaving() -> None:
    """Objects alive at entry are frozen inside the block; none stay frozen after it."""
    survivor = _Node()
    with startup_heap_frozen():
        assert gc.get_freeze_count() > 0
        # the collector's generations no longer hold it: full collections skip it
        assert not any(obj is survivor for obj in gc.get_objects())
    assert gc.get_freeze_count() == 0
    assert any(obj is survivor for obj in gc.get_objects())


def test_cycles_made_inside_the_block_are_still_collected() -> None:
    """Garbage created after start-up is collected as usual while the block runs."""
    with startup_heap_frozen():
        first, second = _Node(), _Node()
        first.other, second.other = second, first
        ident = id(first)
        del first, second
        gc.collect()
        assert all(id(obj) != ident for obj in gc.get_objects() if isinstance(obj, _Node))


def test_thaws_when_the_block_raises() -> None:
    """An error inside the block still leaves nothing frozen."""
    try:
        with startup_heap_frozen():
            raise RuntimeError("job failed")
    except RuntimeError:
        pass
    assert gc.get_freeze_count() == 0
