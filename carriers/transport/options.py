"""Reading a provider's config table: required keys, numbers, and errors naming the key."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from carriers.base import ConfigError

__all__ = ["OptionError", "base_url", "optional_str", "positive", "require_str"]


class OptionError(ConfigError):
    """One option is missing or invalid; ``key`` names it (``carriers.<name>.<key>``)."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"{key}: {reason}")
        self.key = key
        self.reason = reason


def require_str(options: Mapping[str, Any], key: str, what: str) -> str:
    """A non-empty string option; :class:`OptionError` saying what it is when missing."""
    value = options.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise OptionError(key, f"required ({what})")
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise OptionError(key, f"must be a string ({what})")
    return str(value).strip()


def optional_str(options: Mapping[str, Any], key: str) -> str | None:
    """A string option, or ``None`` when absent or empty."""
    value = options.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise OptionError(key, "must be a string")
    return str(value).strip()


def positive(options: Mapping[str, Any], key: str, default: float) -> float:
    """A positive number option, else ``default`` when absent."""
    value = options.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise OptionError(key, f"must be a positive number, not {value!r}")
    return float(value)


def base_url(options: Mapping[str, Any], default: str) -> str:
    """``base_url`` without a trailing slash (``default`` when absent); must be http(s)."""
    value = optional_str(options, "base_url") or default
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise OptionError("base_url", f"must be an http(s) URL, not {value!r}")
    return value.rstrip("/")
