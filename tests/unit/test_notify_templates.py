"""Notice templates: shipped as package files, overridable, validated, SMS length counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracker.errors import ConfigError
from tracker.notify.templates import (
    TEMPLATE_NAMES,
    NoticeTemplates,
    default_sources,
    load_templates,
    sms_segments,
)

REPO = Path(__file__).resolve().parents[2]
VALUES = {
    "shop": "测试店",
    "order_id": "A1001",
    "courier": "圆通速递",
    "tracking_number": "YT7000000001",
    "reason": "在运输途中已超过48小时没有更新",
    "next_step": "我们已联系快递核实，将在24小时内告知您最新进展。",
    "buyer_name": "张三",
}


def test_package_templates_cover_every_buyer_kind_and_match_config_copies() -> None:
    """The package ships a template per buyer-notified kind; config/templates holds copies."""
    sources = default_sources()
    assert {"not_shipped", "stalled", "overdue", "lost", "delivery_failed", "returned"} <= set(
        sources
    )
    assert "generic" in sources and set(sources) <= TEMPLATE_NAMES
    for name, text in sources.items():
        assert (REPO / "config" / "templates" / f"{name}.j2").read_text(encoding="utf-8") == text


def test_rendering_joins_lines_and_drops_comments() -> None:
    """A template wrapped over lines renders as one line with the facts in it."""
    body = NoticeTemplates().render("stalled", **VALUES).body
    assert body == (
        "【测试店】张三您好，您的订单A1001（圆通速递 YT7000000001）在运输途中已超过48小时没有更新，"
        "给您带来不便，非常抱歉。我们已联系快递核实，将在24小时内告知您最新进展。"
    )


def test_unknown_kind_falls_back_to_generic() -> None:
    """A kind without its own template uses generic."""
    rendered = NoticeTemplates().render("carrier_exception", **VALUES)
    assert rendered.template == "generic" and "A1001" in rendered.body


def test_directory_overrides_file_by_file(tmp_path: Path) -> None:
    """A file in the templates directory replaces that kind only."""
    (tmp_path / "lost.j2").write_text("【{{ shop }}】订单{{ order_id }}丢了。\n", encoding="utf-8")
    templates = load_templates(str(tmp_path))
    assert templates.render("lost", **VALUES).body == "【测试店】订单A1001丢了。"
    assert templates.render("stalled", **VALUES).body.startswith("【测试店】张三您好")


def test_config_templates_in_the_working_directory_are_used(tmp_path: Path) -> None:
    """Without templates_dir, ./config/templates overrides when present."""
    folder = tmp_path / "config" / "templates"
    folder.mkdir(parents=True)
    (folder / "returned.j2").write_text("退回了{{ order_id }}", encoding="utf-8")
    assert load_templates(None, cwd=tmp_path).render("returned", **VALUES).body == "退回了A1001"
    assert load_templates(None, cwd=tmp_path / "elsewhere").render("returned", **VALUES).body != (
        "退回了A1001"
    )


def test_unknown_variable_fails_naming_the_file(tmp_path: Path) -> None:
    """A template using a variable that does not exist is refused at start-up."""
    (tmp_path / "stalled.j2").write_text("{{ order_no }}", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"stalled\.j2: unknown variable\(s\) order_no"):
        load_templates(str(tmp_path))


def test_syntax_error_and_unknown_file_name_fail(tmp_path: Path) -> None:
    """Bad syntax names file and line; a misspelt file name is not silently ignored."""
    (tmp_path / "stalled.j2").write_text("ok\n{{ order_id ", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"stalled\.j2: line 2"):
        load_templates(str(tmp_path))
    (tmp_path / "stalled.j2").unlink()
    (tmp_path / "stalld.j2").write_text("x", encoding="utf-8")
    with pytest.raises(ConfigError, match="unknown template name 'stalld'"):
        load_templates(str(tmp_path))


def test_missing_templates_dir_is_a_config_error(tmp_path: Path) -> None:
    """A configured directory that does not exist is reported."""
    with pytest.raises(ConfigError, match=r"notify\.templates_dir"):
        load_templates(str(tmp_path / "nope"))


@pytest.mark.parametrize(
    ("length", "segments"), [(0, 0), (1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3)]
)
def test_sms_segments_count_70_then_67(length: int, segments: int) -> None:
    """Up to 70 characters is one SMS; longer texts are billed per 67 characters."""
    assert sms_segments("字" * length) == segments


def test_default_notices_fit_in_two_segments() -> None:
    """Every built-in template with typical facts stays within two SMS."""
    templates = NoticeTemplates()
    for name in templates.names:
        assert templates.render(name, **VALUES).segments <= 2, name
