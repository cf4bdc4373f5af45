"""Which event loop ``tracker`` commands run on."""

from __future__ import annotations

import asyncio

import pytest

from tracker import eventloop


async def _loop_module() -> str:
    """The module of the running loop's class."""
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_is_the_default_where_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no setting, commands run on uvloop's loop (installed with the project on Linux)."""
    monkeypatch.delenv("TRACKER_EVENT_LOOP", raising=False)
    assert eventloop.run(_loop_module()).startswith("uvloop")


def test_the_standard_loop_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    """``TRACKER_EVENT_LOOP=asyncio`` runs on asyncio's own loop."""
    monkeypatch.setenv("TRACKER_EVENT_LOOP", "asyncio")
    assert eventloop.loop_factory() is None
    assert eventloop.run(_loop_module()).startswith("asyncio")
