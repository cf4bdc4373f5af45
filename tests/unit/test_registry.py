"""Provider discovery: every installed plugin is listed, and imported only when looked up."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from carriers import registry
from carriers.kuaidi100.adapter import Kuaidi100Source
from carriers.registry import ENTRY_POINT_GROUP, load_factories


def _points(*pairs: tuple[str, str]) -> list[EntryPoint]:
    return [EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in pairs]


def test_installed_providers_are_all_listed() -> None:
    """The project's own six providers are found through their entry points."""
    factories = load_factories()
    assert sorted(factories) == [
        "aftership",
        "easypost",
        "kdniao",
        "kuaidi100",
        "sandbox",
        "track17",
    ]
    assert factories["kuaidi100"] is Kuaidi100Source
    assert factories.get("nope") is None


def test_a_plugin_is_imported_only_when_looked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listing providers imports nothing; looking one up imports that plugin alone."""
    (tmp_path / "probe_plugin_a.py").write_text("class Source:\n    max_batch = 1\n")
    (tmp_path / "probe_plugin_b.py").write_text("class Source:\n    max_batch = 2\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    points = _points(("a", "probe_plugin_a:Source"), ("b", "probe_plugin_b:Source"))
    monkeypatch.setattr(registry, "entry_points", lambda group: points)
    factories = load_factories()
    assert sorted(factories) == ["a", "b"] and len(factories) == 2
    assert "probe_plugin_a" not in sys.modules and "probe_plugin_b" not in sys.modules
    assert factories["a"].max_batch == 1  # type: ignore[attr-defined]
    assert "probe_plugin_a" in sys.modules and "probe_plugin_b" not in sys.modules
    assert factories["a"] is factories["a"]


def test_a_broken_plugin_is_logged_and_then_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    """A plugin that fails to import is logged once, looks uninstalled, and spares the rest."""
    points = _points(
        ("broken", "no_such_module_for_tracker_tests:Source"),
        ("sandbox", "carriers.sandbox.adapter:SandboxSource"),
    )
    monkeypatch.setattr(registry, "entry_points", lambda group: points)
    factories = load_factories()
    with capture_logs() as logs:
        assert factories.get("broken") is None
        assert factories.get("broken") is None
    assert [e["event"] for e in logs] == ["provider_plugin_broken"]
    assert logs[0]["provider"] == "broken"
    assert sorted(factories) == ["sandbox"]
    assert factories["sandbox"].__name__ == "SandboxSource"  # type: ignore[attr-defined]
