"""Buyer notice templates per exception kind (zh-CN), rendered with jinja2."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jinja2 import Environment, StrictUndefined, TemplateSyntaxError, meta

from tracker.errors import ConfigError

__all__ = ["DEFAULT_TEMPLATES", "TEMPLATE_VARIABLES", "NoticeTemplates"]

#: the variables every template may use
TEMPLATE_VARIABLES = frozenset(
    {"shop", "order_id", "courier", "tracking_number", "reason", "next_step", "buyer_name"}
)

_PARCEL = "（{{ courier }} {{ tracking_number }}）"

DEFAULT_TEMPLATES: dict[str, str] = {
    "not_shipped": (
        "【{{ shop }}】{{ buyer_name }}您好，您的订单{{ order_id }}{{ reason }}，非常抱歉让您久等。"
        "{{ next_step }}如不便等待，可随时联系客服为您退款。"
    ),
    "stalled": (
        "【{{ shop }}】{{ buyer_name }}您好，您的订单{{ order_id }}" + _PARCEL + "{{ reason }}。"
        "{{ next_step }}给您带来不便，非常抱歉。"
    ),
    "overdue": (
        "【{{ shop }}】{{ buyer_name }}您好，您的订单{{ order_id }}" + _PARCEL + "{{ reason }}，"
        "我们深表歉意。{{ next_step }}"
    ),
    "lost": (
        "【{{ shop }}】{{ buyer_name }}您好，非常抱歉，您的订单{{ order_id }}"
        + _PARCEL
        + "{{ reason }}。{{ next_step }}"
    ),
    "delivery_failed": (
        "【{{ shop }}】{{ buyer_name }}您好，您的订单{{ order_id }}" + _PARCEL + "{{ reason }}。"
        "{{ next_step }}"
    ),
    "returned": (
        "【{{ shop }}】{{ buyer_name }}您好，您的订单{{ order_id }}" + _PARCEL + "{{ reason }}。"
        "{{ next_step }}"
    ),
    "generic": (
        "【{{ shop }}】{{ buyer_name }}您好，您的订单{{ order_id }}" + _PARCEL + "{{ reason }}。"
        "{{ next_step }}"
    ),
}


@dataclass(frozen=True, slots=True)
class RenderedNotice:
    """A rendered notice body and the template it came from."""

    template: str
    body: str


class NoticeTemplates:
    """Validated templates; unknown variables or bad syntax fail at start-up, naming the kind."""

    def __init__(self, overrides: Mapping[str, str] | None = None) -> None:
        self._env = Environment(
            undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
        )
        sources = {**DEFAULT_TEMPLATES, **(overrides or {})}
        self._templates = {}
        for kind, source in sources.items():
            try:
                parsed = self._env.parse(source)
            except TemplateSyntaxError as exc:
                raise ConfigError(
                    f"notify.templates.{kind}: {exc.message} (line {exc.lineno})"
                ) from None
            unknown = meta.find_undeclared_variables(parsed) - TEMPLATE_VARIABLES
            if unknown:
                raise ConfigError(
                    f"notify.templates.{kind}: unknown variable(s) {', '.join(sorted(unknown))}"
                    f" (allowed: {', '.join(sorted(TEMPLATE_VARIABLES))})"
                )
            self._templates[kind] = self._env.from_string(source)

    def render(self, kind: str, **values: str) -> RenderedNotice:
        """Render the template for ``kind`` (falling back to ``generic``)."""
        name = kind if kind in self._templates else "generic"
        body = self._templates[name].render(**values)
        return RenderedNotice(template=name, body=" ".join(body.split()))
