"""Buyer notice templates per exception kind (zh-CN jinja2 files), validated at start-up.

The built-in templates ship inside the package (``tracker/notify/templates/<kind>.j2``). A
directory of overrides (``[notify] templates_dir``, else ``./config/templates`` when it
exists) replaces them file by file; a file whose name is not a kind is an error, so a typo
never silently falls back to the default. Line breaks and the whitespace around lines are
dropped when rendering, so long sentences may be wrapped in the file.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from jinja2 import Environment, StrictUndefined, Template, TemplateSyntaxError, meta

from carriers.registry import courier_name
from tracker.domain.model import Detection, ExceptionKind
from tracker.errors import ConfigError

__all__ = [
    "TEMPLATE_NAMES",
    "TEMPLATE_VARIABLES",
    "NoticeTemplates",
    "RenderedNotice",
    "default_sources",
    "load_templates",
    "sms_segments",
]

#: the variables every template may use
TEMPLATE_VARIABLES = frozenset(
    {"shop", "order_id", "courier", "tracking_number", "reason", "next_step", "buyer_name"}
)
#: file names (without ``.j2``) a template directory may hold
TEMPLATE_NAMES = frozenset({k.value for k in ExceptionKind} | {"generic"})

_SINGLE_SEGMENT = 70  # characters in one SMS (Chinese providers count every character as one)
_MULTI_SEGMENT = 67  # characters per part once a message is split


def sms_segments(text: str) -> int:
    """How many SMS a text is billed as: 1 up to 70 characters, else 67 per part."""
    n = len(text)
    if n <= _SINGLE_SEGMENT:
        return 1 if n else 0
    return math.ceil(n / _MULTI_SEGMENT)


@dataclass(frozen=True, slots=True)
class RenderedNotice:
    """A rendered notice body, the template it came from, and its SMS size."""

    template: str
    body: str

    @property
    def segments(self) -> int:
        """SMS segments the body is billed as (70/67 characters)."""
        return sms_segments(self.body)


def default_sources() -> dict[str, str]:
    """The built-in templates shipped with the package, by name."""
    folder = resources.files("tracker.notify").joinpath("templates")
    return {
        entry.name.removesuffix(".j2"): entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.name.endswith(".j2")
    }


def _flatten(text: str) -> str:
    return "".join(" ".join(line.split()) for line in text.splitlines())


class NoticeTemplates:
    """Validated templates; unknown variables or bad syntax fail at start-up, naming the file."""

    def __init__(
        self,
        overrides: Mapping[str, str] | None = None,
        *,
        origins: Mapping[str, str] | None = None,
    ) -> None:
        self._env = Environment(
            undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
        )
        sources = {**default_sources(), **(overrides or {})}
        where = {name: f"notify.templates.{name}" for name in sources}
        where.update(origins or {})
        self.origins = where
        self._templates: dict[str, Template] = {}
        for name, source in sources.items():
            if name not in TEMPLATE_NAMES:
                raise ConfigError(
                    f"{where[name]}: unknown template name {name!r} "
                    f"(expected one of: {', '.join(sorted(TEMPLATE_NAMES))})"
                )
            try:
                parsed = self._env.parse(source)
            except TemplateSyntaxError as exc:
                raise ConfigError(f"{where[name]}: line {exc.lineno}: {exc.message}") from None
            unknown = meta.find_undeclared_variables(parsed) - TEMPLATE_VARIABLES
            if unknown:
                raise ConfigError(
                    f"{where[name]}: unknown variable(s) {', '.join(sorted(unknown))}"
                    f" (allowed: {', '.join(sorted(TEMPLATE_VARIABLES))})"
                )
            self._templates[name] = self._env.from_string(source)
        if "generic" not in self._templates:
            raise ConfigError("notify.templates: the generic template is missing")

    @property
    def names(self) -> list[str]:
        """Every template name available."""
        return sorted(self._templates)

    def render(self, kind: str, **values: str) -> RenderedNotice:
        """Render the template for ``kind`` (falling back to ``generic``)."""
        name = kind if kind in self._templates else "generic"
        body = self._templates[name].render(**values)
        return RenderedNotice(template=name, body=_flatten(body))

    def render_detection(
        self, det: Detection, *, shop: str, order_id: str, buyer_name: str
    ) -> RenderedNotice:
        """The buyer notice for a rule firing: its reason, next step and parcel."""
        return self.render(
            det.kind.value,
            shop=shop,
            order_id=order_id,
            courier=courier_name(det.courier) if det.courier else "",
            tracking_number=det.tracking_number or "",
            reason=det.reason,
            next_step=det.next_step,
            buyer_name=buyer_name,
        )


def load_templates(templates_dir: str | None, cwd: Path | None = None) -> NoticeTemplates:
    """Built-in templates overridden by ``templates_dir`` (else ``./config/templates``)."""
    base = cwd or Path.cwd()
    if templates_dir:
        folder = Path(templates_dir)
        folder = folder if folder.is_absolute() else base / folder
        if not folder.is_dir():
            raise ConfigError(f"notify.templates_dir: {folder} is not a directory")
    else:
        folder = base / "config" / "templates"
        if not folder.is_dir():
            return NoticeTemplates()
    overrides: dict[str, str] = {}
    origins: dict[str, str] = {}
    for path in sorted(folder.glob("*.j2")):
        name = path.name.removesuffix(".j2")
        try:
            overrides[name] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read template: {exc}") from None
        origins[name] = str(path)
    return NoticeTemplates(overrides, origins=origins)
